"""Sessionless (2026) requests over streamable HTTP: quick ones are answered with one JSON body,
those that may stream (a progress token, a route_completion) keep their stream, and every check in
front of the MCP endpoint still applies to both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx
from http_helpers import MCP_HEADERS, memory, running
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_helpers import text_of
from pydantic import SecretStr
from routing.fake_llm import FakeLLM, Turn

from server.config import Settings
from server.mcp.quick_json import is_quick

MODERN = "2026-07-28"


@asynccontextmanager
async def modern_client(base: str, *, token: str | None = None) -> AsyncIterator[tuple[Client, list[str]]]:
    """A sessionless SDK client, and the content type of each response to a POST it sent, in order."""
    content_types: list[str] = []

    async def note(response: httpx.Response) -> None:
        if response.request.method == "POST":
            content_types.append(response.headers.get("content-type", "").split(";")[0])

    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(create_mcp_http_client(headers=headers))
        http.event_hooks["response"].append(note)
        client = Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=MODERN, cache=None)
        yield await stack.enter_async_context(client), content_types


def test_only_requests_that_cannot_stream_are_taken_for_one_json_body() -> None:
    def call(name: str, **meta: object) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "_meta": meta}}

    assert is_quick(call("memory")) and is_quick(call("recall"))
    assert is_quick(
        {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "memory://user"}}
    )
    assert not is_quick(call("memory", progressToken="t"))  # progress rides on the stream
    assert not is_quick(call("route_completion"))  # long: closing its stream cancels it
    assert not is_quick({"jsonrpc": "2.0", "id": 3, "method": "subscriptions/listen", "params": {}})
    assert not is_quick({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}})
    assert not is_quick([call("memory")])


async def test_a_quick_sessionless_call_passes_the_origin_check_and_authentication_first(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "memory", "arguments": {}}}
    headers = {**MCP_HEADERS, "MCP-Protocol-Version": MODERN}
    with anyio.fail_after(15):
        async with running(auth_settings) as base:
            async with httpx.AsyncClient() as http:
                foreign = await http.post(
                    f"{base}/mcp",
                    json=body,
                    headers={
                        **headers,
                        "Authorization": f"Bearer {tokens['alice']}",
                        "Origin": "http://x.example",
                    },
                )
                anonymous = await http.post(f"{base}/mcp", json=body, headers=headers)
            async with modern_client(base, token=tokens["alice"]) as (client, content_types):
                result = await memory(client, "record", "user", "drink", value="green tea")
    assert (foreign.status_code, anonymous.status_code) == (403, 401)
    assert text_of(result) == 'Recorded user memory "drink".'
    assert content_types[-1] == "application/json"


async def test_a_sessionless_route_completion_with_a_progress_token_streams_its_text_as_progress(
    settings: Settings,
) -> None:
    # Over the SDK's in-memory transport a sessionless client sends no progress token; over HTTP it does.
    async with FakeLLM().serving() as fake:
        fake.script(Turn(text="Streamed to the caller."))
        routed = settings.model_copy(
            update={"openai_api_key": SecretStr("test-key"), "openai_base_url": f"{fake.url}/v1"}
        )
        messages: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            messages.append(message or "")

        with anyio.fail_after(15):
            async with running(routed) as base, modern_client(base) as (client, _):
                arguments: dict[str, Any] = {
                    "model": "openai/model-a",
                    "messages": [{"role": "user", "content": "Say it."}],
                }
                result = await client.call_tool("route_completion", arguments, progress_callback=on_progress)
    assert not result.is_error, text_of(result)
    assert "".join(messages) == "Streamed to the caller."
