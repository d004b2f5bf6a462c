"""Closing the HTTP connection of a request cancels it, as MCP cancellation does: a running
`route_completion` stops and its provider request is aborted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from http_helpers import INITIALIZE, MCP_HEADERS, running
from routing.fake_llm import KEY, FakeLLM, Turn

from server.config import Settings


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with FakeLLM().serving() as server:
        yield server


async def test_closing_the_connection_of_a_running_route_completion_aborts_the_provider_request(
    settings: Settings, fake: FakeLLM
) -> None:
    routed = Settings.model_validate(
        {
            **settings.model_dump(exclude={"openai_api_key", "openai_base_url"}),
            "OPENAI_API_KEY": KEY,
            "OPENAI_BASE_URL": f"{fake.url}/v1",
            "max_retries": 0,
        }
    )
    fake.script(Turn(text="Once upon a time", hang=True))
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "route_completion",
            "arguments": {"model": "openai/model-a", "messages": [{"role": "user", "content": "A story?"}]},
        },
    }
    with anyio.fail_after(20):
        async with running(routed) as base, httpx.AsyncClient() as http:
            opened = await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            session = {
                **MCP_HEADERS,
                "Mcp-Session-Id": opened.headers["mcp-session-id"],
                "Mcp-Protocol-Version": "2025-06-18",
            }
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await http.post(f"{base}/mcp", json=initialized, headers=session)
            async with http.stream("POST", f"{base}/mcp", json=call, headers=session):
                await fake.hung.wait()
            # Leaving the block closed the connection mid-answer; no MCP cancellation was sent.
            await fake.disconnected.wait()
    assert fake.disconnects == 1
