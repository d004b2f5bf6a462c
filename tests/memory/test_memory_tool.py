"""The `memory` tool and the memory resources, through the SDK's client, in memory."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import anyio
import pytest
from mcp import Client, types
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.subscriptions import ResourceUpdated
from mcp_helpers import read_json, text_of

from server.config import Settings
from server.mcp.server import build_server


async def record(client: Client, scope: str, key: str, value: str, **extra: Any) -> types.CallToolResult:
    return await client.call_tool(
        "memory", {"op": "record", "scope": scope, "key": key, "value": value, **extra}
    )


async def test_a_fact_recorded_through_the_tool_names_the_connecting_client_and_session(
    settings: Settings,
) -> None:
    host = types.Implementation(name="test-host", version="1.2.3")
    async with Client(build_server(settings), client_info=host) as client:
        await record(client, "user", "drink", "likes green tea", session_id="talk")
        stored = await read_json(client, f"memory://user/{quote('drink')}")
    assert stored["source"] == {"via": "tool", "client": "test-host/1.2.3", "session": "talk"}


async def test_memory_tool_has_the_contract_schema_and_annotations(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    tool = tools["memory"]
    schema = tool.input_schema
    assert schema["required"] == ["op", "scope", "key"]
    # The contract's four arguments, plus session_id for clients without an MCP session (README).
    assert set(schema["properties"]) == {"op", "scope", "key", "value", "session_id"}
    assert schema["properties"]["op"]["enum"] == ["record", "forget"]
    assert schema["properties"]["scope"]["enum"] == ["user", "session"]
    assert "recall" in (tool.description or "")
    assert tool.annotations is not None
    assert tool.annotations.read_only_hint is False
    assert tool.annotations.destructive_hint is True
    assert tool.annotations.idempotent_hint is True
    assert tool.annotations.open_world_hint is False


async def test_record_then_read_it_back_from_the_user_resource(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        result = await record(client, "user", "drink", "likes green tea")
        assert not result.is_error
        assert text_of(result) == 'Recorded user memory "drink".'
        listed = await read_json(client, "memory://user")
    assert [(m["key"], m["content"]) for m in listed] == [("drink", "likes green tea")]
    assert set(listed[0]) == {"handle", "key", "content", "created_at", "updated_at", "source"}


async def test_record_of_an_existing_key_replaces_the_fact(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await record(client, "user", "city", "Paris")
        await record(client, "user", "city", "Lyon")
        listed = await read_json(client, "memory://user")
        one = await read_json(client, "memory://user/city")
    assert [m["content"] for m in listed] == ["Lyon"]
    assert one["content"] == "Lyon"


async def test_record_without_a_value_is_a_tool_error_saying_the_value_is_required(
    settings: Settings,
) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("memory", {"op": "record", "scope": "user", "key": "k"})
        assert result.is_error
        assert "value is required" in text_of(result)
        assert await read_json(client, "memory://user") == []


async def test_forget_removes_the_fact_and_says_so(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await record(client, "session", "task", "drafting a talk")
        result = await client.call_tool("memory", {"op": "forget", "scope": "session", "key": "task"})
        assert text_of(result) == 'Forgot session memory "task".'
        assert await read_json(client, "memory://session") == []


async def test_forget_unknown_key_reports_nothing_found_without_error(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("memory", {"op": "forget", "scope": "user", "key": "nope"})
    assert not result.is_error
    assert text_of(result) == 'No user memory found for "nope".'


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"op": "recall", "scope": "user", "key": "k"}, "Invalid memory call: op must be record or forget."),
        (
            {"op": "record", "scope": "global", "key": "k", "value": "v"},
            "Invalid memory call: scope must be user or session.",
        ),
        ({"op": "record", "scope": "user"}, "Invalid memory call: key is required."),
        ({"op": "record", "scope": "user", "key": 5}, "Invalid memory call: key must be a string."),
    ],
)
async def test_bad_arguments_are_refused_in_words_that_name_the_allowed_values(
    settings: Settings, arguments: dict[str, object], said: str
) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("memory", arguments)
    assert result.is_error
    assert text_of(result) == said


async def test_a_value_over_the_limit_is_refused_with_the_limit_named(settings: Settings) -> None:
    settings.max_value_bytes = 100
    async with Client(build_server(settings)) as client:
        result = await record(client, "user", "big", "x" * 101)
        assert result.is_error
        assert "100 bytes" in text_of(result) and "MEMORY_ROUTER_MAX_VALUE_BYTES" in text_of(result)
        assert not (await record(client, "user", "ok", "x" * 100)).is_error


async def test_nasty_keys_round_trip_through_tool_and_resource(settings: Settings) -> None:
    keys = ["a/b", "quote\"'`", "x:y", "⟩⟨", "123", "'; DELETE memory; --", "sp ace%20", "emoji 🧠", "?#&="]
    async with Client(build_server(settings)) as client:
        for i, key in enumerate(keys):
            assert not (await record(client, "user", key, f"value {i}")).is_error
        for i, key in enumerate(keys):
            one = await read_json(client, f"memory://user/{quote(key, safe='')}")
            assert (one["key"], one["content"]) == (key, f"value {i}")
        assert len(await read_json(client, "memory://user")) == len(keys)


async def test_missing_key_resource_is_not_found(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        with pytest.raises(MCPError) as info:
            await client.read_resource("memory://user/absent")
    assert "absent" in str(info.value)


async def test_session_memories_stay_in_their_session(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await record(client, "session", "task", "mine")
        await record(client, "session", "task", "theirs", session_id="other")
        assert [m["content"] for m in await read_json(client, "memory://session")] == ["mine"]
        result = await client.call_tool(
            "memory", {"op": "forget", "scope": "session", "key": "task", "session_id": "third"}
        )
        assert text_of(result) == 'No session memory found for "task".'
        assert [m["content"] for m in await read_json(client, "memory://session")] == ["mine"]


async def test_preamble_resource_lists_user_then_session_memories(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        empty = await client.read_resource("memory://preamble")
        await record(client, "session", "task", "drafting a talk")
        await record(client, "user", "name", "Alice")
        preamble = await client.read_resource("memory://preamble")
    assert isinstance(empty.contents[0], types.TextResourceContents)
    assert empty.contents[0].text == ""
    text = preamble.contents[0]
    assert isinstance(text, types.TextResourceContents)
    assert text.text.index("[name] Alice") < text.text.index("[task] drafting a talk")


async def test_listen_subscribers_hear_about_their_own_memories(settings: Settings) -> None:
    uris = ["memory://user", "memory://user/drink"]
    async with Client(build_server(settings)) as client, client.listen(resource_subscriptions=uris) as sub:
        await record(client, "user", "drink", "tea")
        heard: list[object] = []
        with anyio.fail_after(5):
            async for event in sub:
                heard.append(event)
                if len(heard) == len(uris):
                    break
    assert heard == [ResourceUpdated(uri=uri) for uri in uris]


async def test_legacy_subscribers_get_resource_updated_notifications(settings: Settings) -> None:
    updated: list[str] = []
    got = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))
            got.set()

    async with Client(build_server(settings), mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities.resources is not None
        assert client.server_capabilities.resources.subscribe
        with pytest.warns(MCPDeprecationWarning):
            await client.subscribe_resource("memory://session")
        await record(client, "user", "unrelated", "x")
        await record(client, "session", "task", "y")
        with anyio.fail_after(5):
            await got.wait()
    assert updated == ["memory://session"]


async def test_resources_take_an_explicit_session_id_like_the_tool(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await record(client, "session", "task", "theirs", session_id="other")
        await record(client, "user", "name", "Alice")
        assert [m["content"] for m in await read_json(client, "memory://session?session_id=other")] == [
            "theirs"
        ]
        one = await read_json(client, "memory://session/task?session_id=other")
        assert one["content"] == "theirs"
        preamble = await client.read_resource("memory://preamble?session_id=other")
        text = preamble.contents[0]
        assert isinstance(text, types.TextResourceContents)
        assert "[task] theirs" in text.text and "[name] Alice" in text.text
        assert await read_json(client, "memory://session") == []
        with pytest.raises(MCPError):
            await client.read_resource("memory://session?session_id=")


async def test_listeners_hear_only_their_own_session_and_named_sessions_by_uri(settings: Settings) -> None:
    named = "memory://session?session_id=other"
    uris = ["memory://session", named]
    async with Client(build_server(settings)) as client, client.listen(resource_subscriptions=uris) as sub:
        # Another session of the same user: heard only through the URI that names it.
        await record(client, "session", "task", "theirs", session_id="other")
        # This session: heard on the plain URI.
        await record(client, "session", "task", "mine")
        seen: list[str] = []
        with anyio.fail_after(5):
            async for event in sub:
                seen.append(getattr(event, "uri", ""))
                if "memory://session" in seen:
                    break
    assert seen == [named, "memory://session"]


async def test_legacy_unsubscribe_stops_the_notifications_of_that_uri(settings: Settings) -> None:
    updated: list[str] = []
    arrived = anyio.Event()

    async def on_message(message: object) -> None:
        nonlocal arrived
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))
            arrived.set()

    async with Client(build_server(settings), mode="legacy", message_handler=on_message) as client:
        with pytest.warns(MCPDeprecationWarning):
            await client.subscribe_resource("memory://user")
        with pytest.warns(MCPDeprecationWarning):
            await client.subscribe_resource("memory://session")
        await record(client, "user", "a", "1")
        with anyio.fail_after(5):
            await arrived.wait()
        arrived = anyio.Event()
        with pytest.warns(MCPDeprecationWarning):
            await client.unsubscribe_resource("memory://user")
        await record(client, "user", "b", "2")
        await record(client, "session", "c", "3")
        with anyio.fail_after(5):
            await arrived.wait()
    assert updated == ["memory://user", "memory://session"]
