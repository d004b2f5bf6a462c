"""What the host's own model reads: the server instructions, the `recall` tool and the
`remembered-facts` prompt, through the SDK's client in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client, types
from mcp.shared.exceptions import MCPError
from mcp_helpers import read_text, text_of

from server.config import Settings
from server.mcp.instructions import GUIDE
from server.mcp.server import build_server
from server.memory.preamble import CLOSE_TAG, OPEN_TAG
from server.memory.tool import MEMORY_TOOL_DESCRIPTION


async def record(client: Client, scope: str, key: str, value: str, **extra: Any) -> None:
    arguments = {"op": "record", "scope": scope, "key": key, "value": value, **extra}
    result = await client.call_tool("memory", arguments)
    assert not result.is_error, text_of(result)


async def recall(client: Client, **arguments: Any) -> types.CallToolResult:
    return await client.call_tool("recall", arguments)


def inside_block(text: str) -> str:
    assert text.count(OPEN_TAG) == 1 and text.count(CLOSE_TAG) == 1, text
    return text.split(OPEN_TAG)[1].split(CLOSE_TAG)[0]


def prompt_text(result: types.GetPromptResult) -> str:
    [message] = result.messages
    assert message.role == "user" and isinstance(message.content, types.TextContent)
    return message.content.text


@pytest.fixture
def durable(settings: Settings, tmp_path: Path) -> Settings:
    """A store that outlives one server, as when a host starts a new session."""
    return settings.model_copy(update={"store": f"surrealkv://{tmp_path / 'store'}"})


async def test_a_new_connection_gets_the_guide_and_the_facts_recorded_before_it(durable: Settings) -> None:
    async with Client(build_server(durable)) as client:
        assert client.instructions == GUIDE
        await record(client, "user", "units", "prefers <metric> units & Celsius")
        await record(client, "session", "task", "planning a trip")
        assert client.instructions == GUIDE  # computed when this connection was made
    async with Client(build_server(durable)) as client:
        instructions = client.instructions
    assert instructions is not None and instructions.startswith(GUIDE)
    block = inside_block(instructions)
    assert "- [units] prefers &lt;metric&gt; units &amp; Celsius" in block
    assert "- [task] planning a trip" in block  # the same stdio session (MEMORY_ROUTER_SESSION)


async def test_instructions_hold_only_this_sessions_session_facts(durable: Settings) -> None:
    async with Client(build_server(durable)) as client:
        await record(client, "user", "name", "Ada")
        await record(client, "session", "task", "another session's work", session_id="elsewhere")
    async with Client(build_server(durable)) as client:
        instructions = client.instructions or ""
    assert "Ada" in inside_block(instructions)
    assert "another session's work" not in instructions


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_without_memories_the_instructions_are_the_guide_alone_in_both_eras(
    settings: Settings, mode: Any
) -> None:
    async with Client(build_server(settings), mode=mode) as client:
        assert client.instructions == GUIDE
    assert OPEN_TAG not in GUIDE


async def test_2026_discovery_carries_the_facts_too(durable: Settings) -> None:
    async with Client(build_server(durable)) as client:
        await record(client, "user", "pet", "a dog called Biscuit")
    async with Client(build_server(durable), mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        assert "a dog called Biscuit" in inside_block(client.instructions or "")


async def test_instructions_stay_within_the_preamble_budget_whatever_is_stored(durable: Settings) -> None:
    durable.preamble_max_chars = 600
    async with Client(build_server(durable)) as client:
        for i in range(40):
            await record(client, "user", f"fact {i}", f"<{i}> " + "long value " * 30)
    async with Client(build_server(durable)) as client:
        instructions = client.instructions or ""
    assert instructions.startswith(GUIDE)
    preamble = instructions.removeprefix(f"{GUIDE}\n\n")
    assert len(preamble) <= 600
    assert "more remembered facts not shown" in inside_block(preamble)


async def test_recall_is_listed_read_only_and_the_memory_tool_tells_hosts_where_facts_come_from(
    settings: Settings,
) -> None:
    async with Client(build_server(settings)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    tool = tools["recall"]
    assert tool.annotations == types.ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    )
    assert set(tool.input_schema["properties"]) == {"query", "scope", "session_id"}
    assert tool.input_schema.get("required", []) == []
    assert tool.input_schema["properties"]["scope"]["enum"] == ["user", "session"]
    assert tool.output_schema is not None
    assert set(tool.output_schema["properties"]) == {"facts", "left_out", "memory_context"}
    memory = tools["memory"].description or ""
    assert memory.startswith(MEMORY_TOOL_DESCRIPTION) and memory != MEMORY_TOOL_DESCRIPTION
    assert "server instructions" in memory and "`recall`" in memory


async def test_recall_returns_the_preamble_and_each_fact_given_at_once(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await record(client, "user", "units", "metric <always>")
        await record(client, "session", "task", "drafting a talk")
        result = await recall(client)
        preamble = await read_text(client, "memory://preamble")
    assert not result.is_error
    assert text_of(result) == preamble
    assert "metric &lt;always&gt;" in inside_block(preamble)
    structured = result.structured_content
    assert structured is not None
    facts = {fact["key"]: fact for fact in structured["facts"]}
    assert set(facts) == {"units", "task"}
    assert (facts["units"]["scope"], facts["units"]["content"]) == ("user", "metric <always>")
    assert set(facts["units"]) == {"handle", "key", "scope", "content", "updated_at", "source"}
    assert facts["units"]["source"]["via"] == "tool"
    assert structured["left_out"] == 0
    context = structured["memory_context"]
    assert context["selection"] == "all" and context["preamble_chars"] == len(preamble)
    assert [(f["handle"], f["key"]) for f in context["included"]] == [
        (f["handle"], f["key"]) for f in structured["facts"]
    ]


async def test_recall_narrows_to_one_scope_and_takes_a_query(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await record(client, "user", "units", "metric")
        await record(client, "session", "task", "drafting a talk")
        user_only = await recall(client, scope="user", query="which units?")
        session_only = await recall(client, scope="session")
        other_session = await recall(client, session_id="elsewhere")
    assert "metric" in text_of(user_only) and "drafting a talk" not in text_of(user_only)
    assert "drafting a talk" in text_of(session_only) and "metric" not in text_of(session_only)
    assert "metric" in text_of(other_session) and "drafting a talk" not in text_of(other_session)
    assert user_only.structured_content is not None
    assert [f["key"] for f in user_only.structured_content["facts"]] == ["units"]


async def test_recall_with_nothing_remembered_says_so(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        result = await recall(client)
    assert not result.is_error
    assert "Nothing is remembered" in text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["facts"] == [] and result.structured_content["left_out"] == 0


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"scope": "global"}, "Invalid recall call: scope must be user or session."),
        ({"query": 42}, "Invalid recall call: query must be a string."),
        ({"query": "x" * 2001}, "Invalid recall call: query: string should have at most 2000 characters."),
        ({"topic": "pets"}, "Invalid recall call: topic: extra inputs are not permitted."),
        ({"session_id": ""}, "session_id must be 1 to 256 characters long."),
    ],
)
async def test_bad_recall_arguments_get_a_clear_tool_error(
    settings: Settings, arguments: dict[str, Any], expected: str
) -> None:
    async with Client(build_server(settings)) as client:
        result = await recall(client, **arguments)
    assert result.is_error
    assert text_of(result).endswith(expected)
    assert "pydantic" not in text_of(result)


async def test_bad_memory_arguments_get_the_same_plain_words(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("memory", {"op": "record", "scope": "user", "key": 7, "value": "v"})
    assert result.is_error
    assert text_of(result) == "Invalid memory call: key must be a string."


async def test_the_remembered_facts_prompt_holds_the_current_preamble(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        [prompt] = (await client.list_prompts()).prompts
        assert prompt.name == "remembered-facts"
        assert [(a.name, a.required) for a in prompt.arguments or []] == [("query", False)]
        empty = prompt_text(await client.get_prompt("remembered-facts"))
        await record(client, "user", "units", "metric")
        filled = prompt_text(await client.get_prompt("remembered-facts", {"query": "units"}))
        preamble = await read_text(client, "memory://preamble")
    assert "Nothing is remembered" in empty and OPEN_TAG not in empty
    assert filled == preamble and "metric" in inside_block(filled)


async def test_a_too_long_prompt_query_is_refused_with_the_limit(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        with pytest.raises(MCPError) as refused:
            await client.get_prompt("remembered-facts", {"query": "x" * 2001})
    assert "query: string should have at most 2000 characters" in refused.value.error.message
