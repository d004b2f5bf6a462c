"""MCP sessions over HTTP: a quota per user, a global cap no user can pin, and opening a session
counted against the rate limit."""

from __future__ import annotations

import anyio
import httpx
import pytest
from http_helpers import INITIALIZE, MCP_HEADERS, running

from server.config import Settings

PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


async def open_session(http: httpx.AsyncClient, base: str, token: str) -> httpx.Response:
    return await http.post(
        f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    )


async def alive(http: httpx.AsyncClient, base: str, token: str, session: str) -> bool:
    headers = {
        **MCP_HEADERS,
        "Authorization": f"Bearer {token}",
        "Mcp-Session-Id": session,
        "Mcp-Protocol-Version": "2025-06-18",
    }
    response = await http.post(f"{base}/mcp", json=PING, headers=headers)
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


async def test_sessions_over_a_users_quota_end_that_users_least_recently_active_ones(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    quota = auth_settings.model_copy(update={"max_sessions_per_user": 3, "rate_limit_per_minute": 0})
    with anyio.fail_after(30):
        async with running(quota) as base, httpx.AsyncClient() as http:
            opened = [await open_session(http, base, tokens["alice"]) for _ in range(3)]
            assert await alive(
                http, base, tokens["alice"], opened[0].headers["mcp-session-id"]
            )  # now the latest
            opened += [await open_session(http, base, tokens["alice"]) for _ in range(2)]
            still = [await alive(http, base, tokens["alice"], r.headers["mcp-session-id"]) for r in opened]
    assert [r.status_code for r in opened] == [200] * 5
    assert still == [True, False, False, True, True]  # the least recently active ones were ended


async def test_a_user_filling_the_server_only_ever_loses_sessions_to_a_lighter_user(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    capped = auth_settings.model_copy(
        update={"max_sessions_per_user": 3, "max_sessions": 4, "rate_limit_per_minute": 0}
    )
    with anyio.fail_after(30):
        async with running(capped) as base, httpx.AsyncClient() as http:
            alices = [
                (await open_session(http, base, tokens["alice"])).headers["mcp-session-id"] for _ in range(20)
            ]
            bob_first = await open_session(http, base, tokens["bob"])
            bob_second = await open_session(http, base, tokens["bob"])
            alice_left = [await alive(http, base, tokens["alice"], s) for s in alices]
            bobs = [
                await alive(http, base, tokens["bob"], r.headers["mcp-session-id"])
                for r in (bob_first, bob_second)
            ]
    assert bobs == [True, True]
    assert alice_left == [False] * 18 + [True, True]


async def test_opening_a_session_spends_the_users_rate_limit_and_is_refused_429_over_it(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    limited = auth_settings.model_copy(update={"rate_limit_per_minute": 2})
    with anyio.fail_after(30):
        async with running(limited) as base, httpx.AsyncClient() as http:
            allowed = [await open_session(http, base, tokens["alice"]) for _ in range(2)]
            refused = await open_session(http, base, tokens["alice"])
            bobs = await open_session(http, base, tokens["bob"])
    assert [r.status_code for r in allowed] == [200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert "Rate limit reached" in refused.json()["error"]["message"]
    assert bobs.status_code == 200


async def test_an_sse_connection_over_the_quota_ends_the_users_oldest(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    quota = auth_settings.model_copy(update={"max_sessions_per_user": 1, "rate_limit_per_minute": 0})
    headers = {"Authorization": f"Bearer {tokens['alice']}", "Accept": "text/event-stream"}
    with anyio.fail_after(30):
        async with (
            running(quota, "sse") as base,
            httpx.AsyncClient() as http,
            http.stream("GET", f"{base}/sse", headers=headers) as first,
        ):
            lines = first.aiter_lines()
            assert (await anext(lines)).startswith("event: endpoint")
            async with http.stream("GET", f"{base}/sse", headers=headers) as second:
                assert second.status_code == 200
                with pytest.raises(httpx.RemoteProtocolError):  # the server ended the first stream
                    async for _ in lines:
                        pass
