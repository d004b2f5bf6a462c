"""The per-user limit on tool calls."""

from __future__ import annotations

import anyio
from http_helpers import connect, memory, running
from mcp import Client
from mcp_helpers import read_json, text_of

from server.config import Settings
from server.mcp.ratelimit import ToolCallRateLimit
from server.mcp.server import build_server


async def test_tool_calls_over_the_limit_get_a_clear_tool_error_and_other_users_are_unaffected(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    limited = auth_settings.model_copy(update={"rate_limit_per_minute": 4})  # opening the session spends one
    with anyio.fail_after(20):
        async with (
            running(limited) as base,
            connect(base, token=tokens["alice"]) as alice,
            connect(base, token=tokens["bob"]) as bob,
        ):
            allowed = [await memory(alice, "record", "user", f"k{i}", value="v") for i in range(3)]
            refused = await memory(alice, "record", "user", "k3", value="v")
            bobs = await memory(bob, "record", "user", "k", value="v")
            alices_reads = await read_json(alice, "memory://user")
    assert not any(result.is_error for result in allowed)
    assert refused.is_error
    assert text_of(refused).startswith("Rate limit reached: at most 4 tool calls per minute per user.")
    assert not bobs.is_error
    assert sorted(m["key"] for m in alices_reads) == ["k0", "k1", "k2"]


def test_the_limit_refills_with_time_and_says_when_to_retry() -> None:
    now = [0.0]
    limit = ToolCallRateLimit(60, lambda: "alice", clock=lambda: now[0])
    assert [limit.try_acquire("alice") for _ in range(60)] == [0.0] * 60
    assert limit.try_acquire("alice") == 1.0
    now[0] += 1.0
    assert limit.try_acquire("alice") == 0.0
    assert limit.try_acquire("bob") == 0.0


async def test_an_explicit_limit_applies_without_http_too(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_per_minute": 1})
    with anyio.fail_after(10):
        async with Client(build_server(limited)) as client:
            first = await memory(client, "record", "user", "a", value="v")
            second = await memory(client, "record", "user", "b", value="v")
    assert not first.is_error
    assert second.is_error
    assert "Rate limit reached" in text_of(second)


async def test_without_http_there_is_no_limit_unless_one_is_set(settings: Settings) -> None:
    with anyio.fail_after(10):
        async with Client(build_server(settings)) as client:
            results = [await memory(client, "record", "user", f"k{i}", value="v") for i in range(5)]
    assert not any(result.is_error for result in results)
