"""Over HTTP, what a host's model reads (server instructions, `recall`, the `remembered-facts`
prompt) is the token's user's, in both eras and both transports; never another user's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from http_helpers import Mode, connect, memory, running
from mcp import Client, types
from mcp_helpers import text_of

from server.config import Settings
from server.mcp.http import Transport
from server.memory.preamble import OPEN_TAG

CHANNELS = [("http", "legacy"), ("http", "auto"), ("sse", "legacy")]
"""`auto`: a 2026-era client, which learns the instructions from `server/discover`."""


@pytest.fixture
async def base(auth_settings: Settings) -> AsyncIterator[str]:
    with anyio.fail_after(30):
        async with running(auth_settings) as url:
            yield url


async def everything_read(client: Client) -> str:
    """All that the client's model could be given: instructions, recall (text and structure), prompt."""
    recalled = await client.call_tool("recall", {})
    assert not recalled.is_error, text_of(recalled)
    [message] = (await client.get_prompt("remembered-facts")).messages
    assert isinstance(message.content, types.TextContent)
    return "\n".join(
        [client.instructions or "", text_of(recalled), str(recalled.structured_content), message.content.text]
    )


@pytest.mark.parametrize(("transport", "mode"), CHANNELS)
async def test_each_user_reads_their_own_facts_and_never_the_others(
    auth_settings: Settings, tokens: dict[str, str], transport: Transport, mode: Mode
) -> None:
    with anyio.fail_after(30):
        async with running(auth_settings, transport) as base:
            async with (
                connect(base, token=tokens["alice"], transport=transport) as alice,
                connect(base, token=tokens["bob"], transport=transport) as bob,
            ):
                await memory(alice, "record", "user", "drink", value="alice drinks green tea")
                await memory(bob, "record", "user", "secret", value="bob's diary")
                await memory(bob, "record", "session", "note", value="bob's note")
            # Connections made after the records: their instructions hold the facts.
            async with (
                connect(base, token=tokens["alice"], transport=transport, mode=mode) as alice,
                connect(base, token=tokens["bob"], transport=transport, mode=mode) as bob,
            ):
                assert alice.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
                alice_instructions, bob_instructions = alice.instructions or "", bob.instructions or ""
                seen_by_alice = await everything_read(alice)
                seen_by_bob = await everything_read(bob)
    assert OPEN_TAG in alice_instructions and "alice drinks green tea" in alice_instructions
    assert "alice drinks green tea" in seen_by_alice
    assert "bob's diary" not in seen_by_alice and "bob's note" not in seen_by_alice
    assert "bob's diary" in bob_instructions and "bob's diary" in seen_by_bob
    assert "alice drinks green tea" not in seen_by_bob


async def test_a_new_handshake_session_starts_without_another_sessions_facts(
    base: str, tokens: dict[str, str]
) -> None:
    async with connect(base, token=tokens["alice"]) as first:
        await memory(first, "record", "user", "name", value="Alice")
        await memory(first, "record", "session", "task", value="first session's task")
    # A sessionless client's session facts belong to the server's shared session, not to a new one.
    async with connect(base, token=tokens["alice"], mode="2026-07-28") as sessionless:
        await memory(sessionless, "record", "session", "scratch", value="sessionless scratch")
    async with connect(base, token=tokens["alice"]) as second:
        instructions = second.instructions or ""
        recalled = text_of(await second.call_tool("recall", {}))
    assert "Alice" in instructions and "Alice" in recalled
    for other_sessions_fact in ("first session's task", "sessionless scratch"):
        assert other_sessions_fact not in instructions and other_sessions_fact not in recalled
