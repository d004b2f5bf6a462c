"""Size limits of `route_completion`: oversized arguments are refused at once with an error naming the
limit, and a chain of models is cut at MAX_MODELS_TRIED, so one call cannot tie up the server."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fake_llm import Call, FakeLLM, Turn
from mcp import Client
from mcp_helpers import text_of
from routing_helpers import QUESTION, WEATHER_TOOL, route, structured

from server.config import Alias, Settings
from server.mcp.server import build_server
from server.providers.types import (
    MAX_FALLBACKS,
    MAX_JSON_DEPTH,
    MAX_JSON_SIZE,
    MAX_MESSAGES,
    MAX_MODELS_TRIED,
    MAX_NAME_CHARS,
    MAX_PARTS_PER_MESSAGE,
    MAX_STOP_SEQUENCES,
    MAX_TEXT_CHARS,
    MAX_TOOL_CALLS_PER_MESSAGE,
    MAX_TOOLS,
)

MODEL = "openai/model-a"


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def test_twenty_thousand_fallbacks_are_refused_at_once_and_the_server_keeps_answering(
    settings: Settings, fake: FakeLLM
) -> None:
    fake.script(Turn(text="Sunny."))
    fallbacks = [f"openai/model-{i}" for i in range(20_000)]
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(5):  # de-duplicating and trying them all took minutes
            refused = await route(client, MODEL, QUESTION, fallbacks=fallbacks)
            memory = await client.call_tool(
                "memory", {"op": "record", "scope": "user", "key": "city", "value": "Paris"}
            )
            answer = structured(await route(client, MODEL, QUESTION))
    assert refused.is_error
    assert f"`fallbacks` has 20,000 entries; at most {MAX_FALLBACKS} are allowed" in text_of(refused)
    assert not memory.is_error
    assert answer["text"] == "Sunny."
    assert len(fake.requests) == 1  # no model was tried for the refused call


async def test_an_alias_chain_longer_than_the_cap_tries_only_the_first_models(
    settings: Settings, fake: FakeLLM
) -> None:
    chain = [f"openai/model-{i}" for i in range(3 * MAX_MODELS_TRIED)]
    settings.aliases = {"long": Alias(model=chain[0], fallbacks=chain[1:])}
    fake.script(*[Turn(error=(503, "Overloaded."))] * len(chain))
    async with Client(build_server(settings)) as client:
        result = await route(client, "long", QUESTION)
    assert result.is_error
    assert [r.model for r in fake.requests] == [f"model-{i}" for i in range(MAX_MODELS_TRIED)]


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


OVERSIZED: dict[str, tuple[dict[str, Any], str]] = {
    "messages": (
        {"messages": [user("hi")] * (MAX_MESSAGES + 1)},
        f"`messages` has {MAX_MESSAGES + 1:,} entries; at most {MAX_MESSAGES:,}",
    ),
    "parts": (
        {"messages": [user([{"type": "text", "text": "hi"}] * (MAX_PARTS_PER_MESSAGE + 1))]},
        f"at most {MAX_PARTS_PER_MESSAGE} items",
    ),
    "text": ({"messages": [user("x" * (MAX_TEXT_CHARS + 1))]}, f"at most {MAX_TEXT_CHARS} characters"),
    "system": (
        {"messages": QUESTION, "system": "x" * (MAX_TEXT_CHARS + 1)},
        f"`system` has {MAX_TEXT_CHARS + 1:,} characters; at most {MAX_TEXT_CHARS:,}",
    ),
    "tools": (
        {"messages": QUESTION, "tools": [WEATHER_TOOL] * (MAX_TOOLS + 1)},
        f"`tools` has {MAX_TOOLS + 1} entries; at most {MAX_TOOLS}",
    ),
    "tool schema": (
        {"messages": QUESTION, "tools": [{**WEATHER_TOOL, "input_schema": {"enum": ["x"] * MAX_JSON_SIZE}}]},
        f"larger than {MAX_JSON_SIZE:,}",
    ),
    "stop": (
        {"messages": QUESTION, "parameters": {"stop": ["END"] * (MAX_STOP_SEQUENCES + 1)}},
        f"at most {MAX_STOP_SEQUENCES} items",
    ),
    "model name": (
        {"messages": QUESTION, "fallbacks": ["openai/" + "m" * MAX_NAME_CHARS]},
        f"at most {MAX_NAME_CHARS} are allowed",
    ),
    "provider_options depth": (
        {"messages": QUESTION, "provider_options": {"openai": nested(MAX_JSON_DEPTH + 1)}},
        f"`provider_options` is nested deeper than {MAX_JSON_DEPTH} levels",
    ),
    "provider_options size": (
        {
            "messages": QUESTION,
            "provider_options": {"openai": {"logit_bias": {str(i): 1 for i in range(MAX_JSON_SIZE)}}},
        },
        f"`provider_options` is larger than {MAX_JSON_SIZE:,}",
    ),
}


@pytest.mark.parametrize("case", OVERSIZED)
async def test_an_argument_over_its_limit_is_a_tool_error_naming_the_limit(
    settings: Settings, fake: FakeLLM, case: str
) -> None:
    arguments, expected = OVERSIZED[case]
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("route_completion", {"model": MODEL, **arguments})
    assert result.is_error
    assert expected in text_of(result)
    assert "Traceback" not in text_of(result)
    assert fake.requests == []


async def test_an_answer_over_the_limits_of_history_is_a_clear_tool_error(
    settings: Settings, fake: FakeLLM
) -> None:
    # An OpenAI-compatible server may answer anything; a turn the host could not send back is refused.
    fake.script(Turn.calling(*[Call("get_weather", {"city": "Paris"})] * (MAX_TOOL_CALLS_PER_MESSAGE + 1)))
    async with Client(build_server(settings)) as client:
        result = await route(client, MODEL, QUESTION)
    assert result.is_error
    assert "openai/model-a answered with more than a message may hold (tool_calls over" in text_of(result)
