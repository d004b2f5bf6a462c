"""Requests the router refuses, the limits and chains it applies, and the memory calls it answers
itself, through the SDK's client."""

from __future__ import annotations

import pytest
from fake_llm import FORMATS, KEY, Call, FakeLLM, Turn
from mcp import Client
from mcp_helpers import read_json, text_of
from routing_helpers import QUESTION, WEATHER_TOOL, route, structured

from server.config import Alias, Settings
from server.mcp.server import build_server

MEMORY_CALL = Call("memory", {"op": "record", "scope": "session", "key": "step", "value": "thinking"})


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("mistral/large", ["Unknown provider 'mistral'", "anthropic, openai, gemini, ollama"]),
        ("gpt-4.1-mini", ["Malformed model 'gpt-4.1-mini'", "provider/model"]),
        ("openai/", ["Malformed model 'openai/'"]),
        ("openai/gpt-4.1-mini", ["Provider 'openai' is not configured: set OPENAI_API_KEY"]),
    ],
)
async def test_an_unusable_model_is_a_tool_error_listing_what_is_configured(
    settings: Settings, fake: FakeLLM, model: str, expected: list[str]
) -> None:
    settings.openai_api_key = None
    async with Client(build_server(settings)) as client:
        result = await route(client, model, QUESTION)
    assert result.is_error
    text = text_of(result)
    for part in [
        *expected,
        "Configured providers: anthropic, gemini, ollama.",
        "To add one: set OPENAI_API_KEY.",
    ]:
        assert part in text
    assert fake.requests == []


async def test_a_host_tool_named_memory_is_an_invalid_request_while_memory_is_on(
    settings: Settings, fake: FakeLLM
) -> None:
    host_memory = {"name": "memory", "description": "the host's own notes"}
    fake.script(Turn.calling(Call("memory", {"note": "x"})))
    async with Client(build_server(settings)) as client:
        refused = await route(client, "anthropic/model-a", QUESTION, tools=[host_memory])
        passed = structured(
            await route(client, "anthropic/model-a", QUESTION, tools=[host_memory], memory=False)
        )
        stored = await read_json(client, "memory://user")
    assert refused.is_error
    assert "Invalid request" in text_of(refused) and "memory: false" in text_of(refused)
    # Without memory the name is the host's: its call comes back to the host and nothing is stored.
    assert passed["status"] == "tool_calls" and passed["tool_calls"][0]["arguments"] == {"note": "x"}
    assert passed["memory_ops"] == [] and stored == []
    assert len(fake.requests) == 1


async def test_the_model_is_offered_the_memory_tool_with_exactly_the_contract_schema(
    settings: Settings, fake: FakeLLM
) -> None:
    fake.script(Turn(text="Hello."))
    async with Client(build_server(settings)) as client:
        structured(await route(client, "anthropic/model-a", QUESTION))
    [offered] = [tool for tool in fake.requests[0].body["tools"] if tool["name"] == "memory"]
    assert offered["input_schema"] == {
        "type": "object",
        "properties": {
            "op": {"type": "string", "enum": ["record", "forget"], "description": "record or forget"},
            "scope": {
                "type": "string",
                "enum": ["user", "session"],
                "description": "user: durable facts about the user; session: working memory of this session",
            },
            "key": {"type": "string", "description": "the topic the fact is stored under"},
            "value": {"type": "string", "description": "the fact; required for record, ignored for forget"},
        },
        "required": ["op", "scope", "key"],
    }


async def test_a_memory_call_with_invalid_arguments_tells_the_model_what_to_fix_and_runs_nothing(
    settings: Settings, fake: FakeLLM
) -> None:
    recall = Call("memory", {"op": "recall", "scope": "user"})
    fake.script(Turn.calling(recall), Turn(text="Understood."))
    async with Client(build_server(settings)) as client:
        result = structured(await route(client, "anthropic/model-a", QUESTION))
        stored = await read_json(client, "memory://user")
    reply = result["messages"][1]
    assert (reply["role"], reply["is_error"]) == ("tool", True)
    assert reply["content"] == (
        "Invalid memory call: `op`: input should be 'record' or 'forget'; `key` is required."
    )
    assert result["text"] == "Understood."
    assert result["memory_ops"] == [] and stored == []


async def test_a_model_that_keeps_calling_memory_is_stopped_at_max_internal_rounds(
    settings: Settings, fake: FakeLLM
) -> None:
    settings.max_internal_rounds = 2
    fake.script(Turn.calling(MEMORY_CALL), Turn.calling(MEMORY_CALL), Turn(text="never reached"))
    async with Client(build_server(settings)) as client:
        result = await route(client, "anthropic/model-a", QUESTION)
    assert result.is_error
    assert "2 rounds" in text_of(result) and "MEMORY_ROUTER_MAX_INTERNAL_ROUNDS=2" in text_of(result)
    assert len(fake.requests) == 2


async def test_an_alias_names_a_chain_that_falls_back_across_providers(
    settings: Settings, fake: FakeLLM
) -> None:
    settings.aliases = {"smart": Alias(model="anthropic/claude-x", fallbacks=["gemini/gemini-y"])}
    fake.script(Turn(error=(529, "Overloaded")), Turn(text="Gemini here."))
    async with Client(build_server(settings)) as client:
        result = structured(await route(client, "smart", QUESTION, tools=[WEATHER_TOOL]))
    assert (result["provider"], result["model"], result["text"]) == ("gemini", "gemini-y", "Gemini here.")
    assert [(r.provider, r.model) for r in fake.requests] == [
        ("anthropic", "claude-x"),
        ("gemini", "gemini-y"),
    ]
    # The fallback gets the same request, in its own format.
    assert FORMATS["gemini"].tools(fake.requests[1].body) == ["get_weather", "memory"]


async def test_a_failure_that_is_not_retryable_does_not_fall_back(settings: Settings, fake: FakeLLM) -> None:
    fake.script(Turn(error=(400, "messages: roles must alternate")))
    async with Client(build_server(settings)) as client:
        result = await route(client, "openai/model-a", QUESTION, fallbacks=["ollama/model-b"])
    assert result.is_error
    assert "invalid_request" in text_of(result) and "roles must alternate" in text_of(result)
    assert [r.provider for r in fake.requests] == ["openai"]


async def test_without_a_model_the_configured_default_is_used(settings: Settings, fake: FakeLLM) -> None:
    settings.default_model = "ollama/llama3.2"
    fake.script(Turn(text="Default."))
    async with Client(build_server(settings)) as client:
        result = structured(await client.call_tool("route_completion", {"messages": QUESTION}))
    assert (result["provider"], result["model"]) == ("ollama", "llama3.2")
    assert fake.requests[0].path == "/api/chat"


@pytest.mark.parametrize(
    ("model", "status", "variable"),
    [("openai/model-a", 401, "OPENAI_API_KEY"), ("anthropic/model-a", 403, "ANTHROPIC_API_KEY")],
)
async def test_a_refused_key_names_the_variable_to_check_and_never_the_key(
    settings: Settings, fake: FakeLLM, model: str, status: int, variable: str
) -> None:
    fake.script(Turn(error=(status, "Incorrect API key provided")))
    async with Client(build_server(settings)) as client:
        result = await route(client, model, QUESTION)
    assert result.is_error
    assert f"Incorrect API key provided (check {variable})" in text_of(result)
    assert KEY not in text_of(result)
