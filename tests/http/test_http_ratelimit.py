"""The per-user limit on tool calls."""

from __future__ import annotations

import anyio

from server.config import Settings
from server.ratelimit import DEFAULT_HTTP_PER_MINUTE, ToolCallRateLimit, rate_limit_for_http
from tests.http.conftest import connect, memory, read_json, running, text_of


async def test_tool_calls_over_the_limit_get_a_clear_tool_error_and_other_users_are_unaffected(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    limited = auth_settings.model_copy(update={"rate_limit_per_minute": 3})
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
    assert text_of(refused).startswith("Rate limit reached: at most 3 tool calls per minute per user.")
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


def test_the_http_default_is_on_and_zero_turns_it_off() -> None:
    assert rate_limit_for_http(None) == DEFAULT_HTTP_PER_MINUTE
    assert rate_limit_for_http(0) is None
    assert rate_limit_for_http(30) == 30
