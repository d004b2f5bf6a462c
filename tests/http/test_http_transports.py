"""Both HTTP transports, end to end: the memory tool, the resources and change notifications."""

from __future__ import annotations

import anyio
import pytest
from http_helpers import Mode, connect, memory, running, subscribe
from mcp import types
from mcp_helpers import read_json, text_of

from server.config import Settings
from server.mcp.http import Transport


@pytest.mark.parametrize(
    ("transport", "mode"), [("http", "legacy"), ("http", "2026-07-28"), ("sse", "legacy")]
)
async def test_memory_tool_and_resources_work_over_each_transport_and_era(
    settings: Settings, transport: Transport, mode: Mode
) -> None:
    with anyio.fail_after(15):
        async with (
            running(settings, transport) as base,
            connect(base, transport=transport, mode=mode) as client,
        ):
            result = await memory(client, "record", "user", "drink", value="green tea")
            assert text_of(result) == 'Recorded user memory "drink".'
            listed = await read_json(client, "memory://user")
            assert [(m["key"], m["content"]) for m in listed] == [("drink", "green tea")]
            assert (await read_json(client, "memory://user/drink"))["content"] == "green tea"
            result = await memory(client, "forget", "user", "drink")
            assert text_of(result) == 'Forgot user memory "drink".'
            assert await read_json(client, "memory://user") == []


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_legacy_subscribers_hear_their_own_changes_and_never_another_users(
    auth_settings: Settings, tokens: dict[str, str], transport: Transport
) -> None:
    heard_send, heard = anyio.create_memory_object_stream[str](100)

    async def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            await heard_send.send(str(message.params.uri))

    with anyio.fail_after(15):
        async with (
            heard_send,
            heard,
            running(auth_settings, transport) as base,
            connect(base, token=tokens["alice"], transport=transport) as alice,
            connect(base, token=tokens["bob"], transport=transport, message_handler=on_message) as bob,
        ):
            await subscribe(bob, "memory://user/secret")
            await subscribe(bob, "memory://user/marker")
            await memory(alice, "record", "user", "secret", value="alice's")
            await memory(bob, "record", "user", "marker", value="bob's")
            # One stream, in order: had alice's change reached bob, it would come before his marker.
            assert await heard.receive() == "memory://user/marker"
            await memory(bob, "record", "user", "secret", value="bob's")
            assert await heard.receive() == "memory://user/secret"


async def test_sessionless_listeners_hear_their_own_changes_and_never_another_users(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    with anyio.fail_after(15):
        async with (
            running(auth_settings) as base,
            connect(base, token=tokens["alice"], mode="2026-07-28") as alice,
            connect(base, token=tokens["bob"], mode="2026-07-28") as bob,
            bob.listen(resource_subscriptions=["memory://user/secret", "memory://user/marker"]) as events,
        ):
            await memory(alice, "record", "user", "secret", value="alice's")
            await memory(bob, "record", "user", "marker", value="bob's")
            first = await events.__anext__()
            assert getattr(first, "uri", None) == "memory://user/marker"


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_each_handshake_era_connection_is_its_own_session(
    settings: Settings, transport: Transport
) -> None:
    with anyio.fail_after(15):
        async with (
            running(settings, transport) as base,
            connect(base, transport=transport) as first,
            connect(base, transport=transport) as second,
        ):
            await memory(first, "record", "session", "note", value="first's")
            assert [m["content"] for m in await read_json(first, "memory://session")] == ["first's"]
            assert await read_json(second, "memory://session") == []
            forgotten = await memory(second, "forget", "session", "note")
            assert text_of(forgotten) == 'No session memory found for "note".'
