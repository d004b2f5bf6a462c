"""A real uvicorn on a loopback port, and SDK clients for both HTTP transports and both eras."""

from __future__ import annotations

import os
import re
import socket
import sys
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal

import anyio
import uvicorn
from anyio.streams.text import TextReceiveStream
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
from server.mcp.http_server import uvicorn_config

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
    config = uvicorn_config(app, settings, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True


@asynccontextmanager
async def served(
    env: dict[str, str], *, until: str = "memory-router ready on http://", fd_limit: int | None = None
) -> AsyncIterator[tuple[str, str]]:
    """`memory-router serve --transport http --port 0` in a subprocess (environment: this one without
    MEMORY_ROUTER_* variables, plus `env`; at most `fd_limit` open files); yields its base URL and its
    stderr up to the first line containing `until`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_ROUTER_")}
    command = [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", "0"]
    if fd_limit is not None:
        command = ["sh", "-c", f'ulimit -n {fd_limit} && exec "$@"', "sh", *command]
    async with await anyio.open_process(command, env={**clean, **env}) as server:
        assert server.stderr is not None
        log = ""
        async for chunk in TextReceiveStream(server.stderr):
            log += chunk
            if until in log and log.endswith("\n"):
                break
        port = re.search(r"memory-router ready on http://127\.0\.0\.1:(\d+)/mcp", log)
        assert port is not None, log
        try:
            yield f"http://127.0.0.1:{port[1]}", log
        finally:
            server.terminate()


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
