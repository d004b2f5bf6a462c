"""A real uvicorn on a loopback port, and SDK clients for both HTTP transports and both eras."""

from __future__ import annotations

import socket
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal

import anyio
import uvicorn
from mcp import Client, types
from mcp.client.extension import ClientExtension
from mcp.client.session import MessageHandlerFnT
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPDeprecationWarning
from starlette.applications import Starlette

from server.config import Settings
from server.mcp.auth import build_token_verifier
from server.mcp.http import Transport, build_http_app

Mode = Literal["legacy", "auto", "2026-07-28"]

# For plain HTTP requests.
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


@asynccontextmanager
async def running(
    settings: Settings, transport: Transport = "http", *, app: Starlette | None = None
) -> AsyncIterator[str]:
    """Serve `settings` (or `app`) on a free loopback port; yields the base URL (`http://127.0.0.1:PORT`)."""
    app = app or build_http_app(settings, transport=transport, verifier=build_token_verifier(settings))
    # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY only then, else replies wait ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue until uvicorn accepts them: no readiness polling needed
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True


@asynccontextmanager
async def connect(
    base: str,
    *,
    token: str | None = None,
    transport: Transport = "http",
    mode: Mode = "legacy",
    message_handler: MessageHandlerFnT | None = None,
    extensions: Sequence[ClientExtension] = (),
) -> AsyncIterator[Client]:
    """An SDK client; `mode="legacy"` handshakes (MCP session), `"2026-07-28"` is sessionless,
    `"auto"` discovers (`server/discover`) and then is sessionless too."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with AsyncExitStack() as stack:
        if transport == "http":
            http = await stack.enter_async_context(create_mcp_http_client(headers=headers))
            stream = streamable_http_client(f"{base}/mcp", http_client=http)
        else:
            stream = sse_client(f"{base}/sse", headers=headers)
        client = Client(
            stream, mode=mode, cache=None, message_handler=message_handler, extensions=list(extensions)
        )
        yield await stack.enter_async_context(client)


async def subscribe(client: Client, uri: str) -> None:
    """`resources/subscribe`, the handshake-era way (deprecated as of 2026-07-28, still served)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await client.subscribe_resource(uri)


async def memory(client: Client, op: str, scope: str, key: str, **extra: Any) -> types.CallToolResult:
    return await client.call_tool("memory", {"op": op, "scope": scope, "key": key, **extra})
