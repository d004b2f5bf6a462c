"""`route_completion` end to end through the SDK's client, in memory, against the fake of each provider."""

from __future__ import annotations

import pytest
from fake_llm import FORMATS, KEY, PROVIDERS, Call, FakeLLM, Turn
from mcp import Client
from mcp_helpers import read_json, text_of
from pydantic import SecretStr
from routing_helpers import QUESTION, WEATHER_TOOL, answered, host_answers, route, structured

from server.config import Settings
from server.mcp.server import build_server

pytestmark = pytest.mark.parametrize("provider", PROVIDERS)

AUTH_HEADERS: dict[str, dict[str, str | None]] = {
    "anthropic": {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    "openai": {"authorization": f"Bearer {KEY}"},
    "gemini": {"x-goog-api-key": KEY},
    "ollama": {"authorization": None},  # a local Ollama takes no key
}
RECORD_DRINK = Call("memory", {"op": "record", "scope": "user", "key": "drink", "value": "likes green tea"})


async def test_a_text_completion_comes_back_with_finish_reason_usage_provider_and_model(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    fake.script(Turn(text="Sunny, 18°C.", usage=(30, 5)))
    async with Client(build_server(settings)) as client:
        result = structured(await route(client, f"{provider}/model-a", QUESTION))
    assert result["status"] == "completed"
    assert result["text"] == "Sunny, 18°C."
    assert result["tool_calls"] == []
    assert [(m["role"], m["content"]) for m in result["messages"]] == [("assistant", "Sunny, 18°C.")]
    assert result["finish_reason"] == "stop"
    assert result["usage"] == {"input_tokens": 30, "output_tokens": 5}
    assert (result["provider"], result["model"], result["memory_ops"]) == (provider, "model-a", [])
    [request] = fake.requests
    assert (request.provider, request.model, request.streamed) == (provider, "model-a", False)
    assert {h: request.headers.get(h) for h in AUTH_HEADERS[provider]} == AUTH_HEADERS[provider]


async def test_a_memory_the_model_records_shows_in_the_resource_and_the_next_system_prompt(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    fake.script(Turn.calling(RECORD_DRINK, text="Let me note that."), Turn(text="Noted."), Turn(text="Tea."))
    model = f"{provider}/model-a"
    async with Client(build_server(settings)) as client:
        first = structured(await route(client, model, [{"role": "user", "content": "I like green tea."}]))
        stored = await read_json(client, "memory://user")
        await route(client, model, [{"role": "user", "content": "What should I drink?"}])
    assert first["status"] == "completed" and first["text"] == "Noted."
    assert first["memory_ops"] == [{"op": "record", "scope": "user", "key": "drink", "outcome": "recorded"}]
    roles = [(m["role"], m["content"]) for m in first["messages"]]
    assert roles == [
        ("assistant", "Let me note that."),
        ("tool", 'Recorded user memory "drink".'),
        ("assistant", "Noted."),
    ]
    assert first["usage"] == {"input_tokens": 22, "output_tokens": 14}  # summed over both rounds
    assert [(m["key"], m["content"]) for m in stored] == [("drink", "likes green tea")]
    assert answered(fake.requests[1]) == [("memory", 'Recorded user memory "drink".')]
    system = FORMATS[provider].system(fake.requests[2].body)
    assert system is not None and "likes green tea" in system


async def test_a_host_tool_round_trip_ends_with_the_final_answer(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    fake.script(Turn.calling(Call("get_weather", {"city": "Paris"})), Turn(text="It is 18°C in Paris."))
    model = f"{provider}/model-a"
    async with Client(build_server(settings)) as client:
        first = structured(await route(client, model, QUESTION, tools=[WEATHER_TOOL]))
        history = QUESTION + host_answers(first, {"get_weather": "18°C and sunny"})
        second = structured(await route(client, model, history, tools=[WEATHER_TOOL]))
    assert first["status"] == "tool_calls" and first["finish_reason"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in first["tool_calls"]] == [("get_weather", {"city": "Paris"})]
    assert first["memory_ops"] == []
    assert second["status"] == "completed" and second["text"] == "It is 18°C in Paris."
    assert answered(fake.requests[1]) == [("get_weather", "18°C and sunny")]
    assert "get_weather" in FORMATS[provider].tools(fake.requests[0].body)


async def test_memory_and_host_calls_of_one_turn_are_answered_together_where_the_provider_expects(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    record_city = Call("memory", {"op": "record", "scope": "user", "key": "city", "value": "lives in Paris"})
    fake.script(Turn.calling(record_city, Call("get_weather", {"city": "Paris"})), Turn(text="18°C at home."))
    model = f"{provider}/model-a"
    async with Client(build_server(settings)) as client:
        first = structured(await route(client, model, QUESTION, tools=[WEATHER_TOOL]))
        history = QUESTION + host_answers(first, {"get_weather": "18°C and sunny"})
        second = structured(await route(client, model, history, tools=[WEATHER_TOOL]))
    assert first["status"] == "tool_calls"
    assert [c["name"] for c in first["tool_calls"]] == ["get_weather"]  # memory ran inside the server
    assert first["memory_ops"] == [{"op": "record", "scope": "user", "key": "city", "outcome": "recorded"}]
    assert [m["role"] for m in first["messages"]] == ["assistant", "tool"]
    assert second["text"] == "18°C at home."
    assert len(fake.requests) == 2  # the host call ended the first route_completion at once
    assert answered(fake.requests[1]) == [
        ("memory", 'Recorded user memory "city".'),
        ("get_weather", "18°C and sunny"),
    ]


async def test_a_provider_error_is_a_tool_error_with_category_provider_model_and_message_but_never_the_key(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    settings.ollama_api_key = SecretStr(KEY)  # Ollama's cloud takes a key; a local server needs none
    fake.script(Turn(error=(401, f"Incorrect API key provided: {KEY}.")))
    async with Client(build_server(settings)) as client:
        result = await route(client, f"{provider}/model-a", QUESTION)
    assert result.is_error
    text = text_of(result)
    for part in (
        "authentication",
        f"{provider}/model-a",
        "HTTP 401",
        "not retryable",
        "Incorrect API key provided",
    ):
        assert part in text
    assert KEY not in text


async def test_a_retryable_failure_falls_back_to_the_next_model(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    fake.script(Turn(error=(503, "The model is overloaded.")), Turn(text="From the backup."))
    async with Client(build_server(settings)) as client:
        result = structured(
            await route(client, f"{provider}/model-a", QUESTION, fallbacks=[f"{provider}/model-b"])
        )
    assert (result["text"], result["provider"], result["model"]) == ("From the backup.", provider, "model-b")
    assert [r.model for r in fake.requests] == ["model-a", "model-b"]


async def test_the_memory_preamble_is_appended_to_the_host_system_prompt(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    fake.script(Turn(text="Hi."))
    host_system = "You are terse.\nAnswer in French."
    async with Client(build_server(settings)) as client:
        await client.call_tool("memory", {"op": "record", "scope": "user", "key": "name", "value": "Alice"})
        await route(client, f"{provider}/model-a", QUESTION, system=host_system)
    system = FORMATS[provider].system(fake.requests[0].body)
    assert system is not None
    assert system.startswith(host_system + "\n\n")
    assert "[name] Alice" in system.removeprefix(host_system)
    assert "memory" in FORMATS[provider].tools(fake.requests[0].body)


async def test_memory_false_sends_neither_preamble_nor_memory_tool(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    fake.script(Turn(text="Hi."), Turn(text="Hi again."))
    async with Client(build_server(settings)) as client:
        await client.call_tool("memory", {"op": "record", "scope": "user", "key": "name", "value": "Alice"})
        await route(
            client, f"{provider}/model-a", QUESTION, system="Be brief.", memory=False, tools=[WEATHER_TOOL]
        )
        await route(client, f"{provider}/model-a", QUESTION, memory=False)
    with_system, without = fake.requests
    assert FORMATS[provider].system(with_system.body) == "Be brief."
    assert FORMATS[provider].tools(with_system.body) == ["get_weather"]
    assert FORMATS[provider].system(without.body) is None
    assert FORMATS[provider].tools(without.body) == []


async def test_provider_options_reach_only_the_provider_they_name(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    options = {name: {"x_option_of": name} for name in PROVIDERS}
    fake.script(Turn(text="ok"))
    async with Client(build_server(settings)) as client:
        structured(await route(client, f"{provider}/model-a", QUESTION, provider_options=options))
    [body] = fake.bodies()
    assert body["x_option_of"] == provider


NESTED_OPTIONS: dict[str, tuple[str, dict[str, object], str | None]] = {
    "anthropic": ("metadata", {"user_id": "u1"}, None),
    "openai": ("metadata", {"run": "r1"}, None),
    "gemini": ("generationConfig", {"thinkingConfig": {"thinkingBudget": 128}}, "maxOutputTokens"),
    "ollama": ("options", {"num_ctx": 8192}, "num_predict"),
}


async def test_provider_options_merge_into_nested_settings_and_never_replace_the_request(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    field, value, kept = NESTED_OPTIONS[provider]
    fake.script(Turn(text="ok"))
    async with Client(build_server(settings)) as client:
        options = {provider: {field: value}}
        parameters = {"max_tokens": 99}
        structured(
            await route(
                client, f"{provider}/model-a", QUESTION, provider_options=options, parameters=parameters
            )
        )
        [body] = fake.bodies()
        for name, setting in value.items():
            assert body[field][name] == setting
        if kept is not None:
            assert body[field][kept] == 99  # merged beside, not replaced
        refused = await route(
            client, f"{provider}/model-a", QUESTION, provider_options={provider: {"tools": []}}
        )
    assert refused.is_error
    assert "provider_options may not set tools" in text_of(refused)
