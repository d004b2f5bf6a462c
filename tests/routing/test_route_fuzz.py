"""Bounded fuzzing of `route_completion`'s arguments through the real MCP client: whatever arrives,
the answer is a result or a clear tool error, never an internal error, and the server keeps answering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_llm import FakeLLM, Turn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp_helpers import text_of
from routing_helpers import QUESTION, WEATHER_TOOL, provider_env, route, structured

from server.config import Alias, Settings
from server.mcp.server import build_server

MODELS = [
    "openai/model-a",
    "anthropic/model-b",
    "gemini/model-c",
    "ollama/model-d",
    "fast",
    "nope/x",
    "x",
    "",
]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.sampled_from(["memory", "get_weather", ""]) | st.text(max_size=12)
parts = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image", "audio"])},
    optional={
        "text": st.text(max_size=20),
        "data": st.text(max_size=12),
        "media_type": st.sampled_from(["image/png", ""]),
        "url": st.text(max_size=12),
    },
)
text_parts = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=20)})
tool_calls = st.fixed_dictionaries(
    {"id": st.text(max_size=8), "name": names},
    optional={"arguments": st.dictionaries(st.text(max_size=6), json_values, max_size=3)},
)
well_formed = st.fixed_dictionaries(
    {"role": st.just("user"), "content": st.text(max_size=40) | st.lists(text_parts, min_size=1, max_size=3)}
)
anything = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool", "system"])},
    optional={
        "content": st.text(max_size=40) | st.lists(parts, max_size=3) | json_values,
        "tool_calls": st.lists(tool_calls, max_size=2),
        "tool_call_id": st.text(max_size=8),
        "name": names,
        "is_error": st.booleans(),
        "provider_details": st.dictionaries(
            st.sampled_from(["gemini", "anthropic"]), json_values, max_size=2
        ),
    },
)
# Mostly messages that pass validation, so most examples reach the routing code, not only the SDK's checks.
messages = well_formed | well_formed | anything
tools = st.fixed_dictionaries(
    {"name": names},
    optional={
        "description": st.text(max_size=20),
        "input_schema": st.dictionaries(st.text(max_size=6), json_values),
    },
)
arguments = st.fixed_dictionaries(
    {"messages": st.lists(messages, min_size=1, max_size=4) | json_values},
    optional={
        "model": st.sampled_from(MODELS) | st.text(max_size=20),
        "system": st.none() | st.text(max_size=40) | st.integers(),
        "tools": st.lists(tools, max_size=3),
        "tool_choice": st.sampled_from(["auto", "none", "required", "bogus"])
        | st.fixed_dictionaries({"name": names}),
        "parameters": st.fixed_dictionaries(
            {},
            optional={
                "temperature": st.floats(allow_nan=False) | st.text(max_size=4),
                "max_tokens": st.integers(),
                "top_p": st.floats(allow_nan=False),
                "stop": st.lists(st.text(max_size=8), max_size=20),
            },
        ),
        "memory": st.booleans(),
        "session_id": st.none() | st.text(max_size=12),
        "fallbacks": st.lists(st.sampled_from(MODELS) | st.text(max_size=12), max_size=12),
        "provider_options": st.dictionaries(
            st.sampled_from(["openai", "anthropic", "gemini", "ollama"]) | st.text(max_size=6),
            json_values,
            max_size=3,
        ),
    },
)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    """One server for every example, answering each model call with the same text."""
    async with FakeLLM(default=Turn(text="Fine.")).serving() as fake:
        values = {
            "store": "mem://",
            "user": "alice",
            "session": "s1",
            "max_retries": 0,
            **provider_env(fake.url),
        }
        config = Settings.model_validate(values)
        config.aliases = {"fast": Alias(model="openai/model-a", fallbacks=["gemini/model-c"])}
        async with Client(build_server(config)) as connected:
            yield connected


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arguments=arguments)
async def test_any_arguments_get_a_result_or_a_clear_tool_error_and_the_server_keeps_answering(
    client: Client, arguments: dict[str, Any]
) -> None:
    result = await client.call_tool("route_completion", arguments)
    if result.is_error:
        text = text_of(result)
        # The SDK's text for a crash is this bare prefix; a deliberate error says what was wrong.
        assert text.startswith("Error executing tool route_completion: "), text
        assert "Traceback" not in text
    else:
        assert structured(result)["status"] in ("completed", "tool_calls")
    after = await route(client, "openai/model-a", QUESTION, tools=[WEATHER_TOOL])
    assert structured(after)["text"] == "Fine."
