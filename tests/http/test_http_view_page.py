"""`GET /app`, the memory view for a plain browser: past the Host / Origin check, before authentication
(the page holds no data), with a strict policy; `/mcp` keeps requiring the token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from http_helpers import INITIALIZE, MCP_HEADERS, running

from server.config import Settings
from server.mcp.view import memories_html


@pytest.fixture
async def base(auth_settings: Settings) -> AsyncIterator[str]:
    with anyio.fail_after(10):
        async with running(auth_settings) as url:
            yield url


async def get(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url, headers=headers)


async def test_the_app_page_is_served_without_a_token_with_a_strict_policy(base: str) -> None:
    response = await get(f"{base}/app")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == memories_html()
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; script-src 'sha256-")
    assert "connect-src 'self'" in policy and policy.endswith("; frame-ancestors 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers


async def test_the_mcp_endpoint_the_page_talks_to_still_requires_the_token(base: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 401


async def test_the_app_page_refuses_foreign_hosts_and_origins(base: str) -> None:
    assert (await get(f"{base}/app", Host="attacker.example")).status_code == 421
    assert (await get(f"{base}/app", Origin="http://attacker.example")).status_code == 403


async def test_the_app_page_answers_get_only(base: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base}/app", content=b"{}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_the_sse_transport_serves_no_app_page(settings: Settings) -> None:
    # The page speaks streamable HTTP to /mcp, which only `--transport http` has.
    with anyio.fail_after(10):
        async with running(settings, "sse") as url:
            assert (await get(f"{url}/app")).status_code == 404
