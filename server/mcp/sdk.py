"""The only code that reaches past the MCP SDK's public API (written against mcp 2.3).

Each adapter names the public API that would replace it; when the SDK grows one, only this file changes.
"""

from __future__ import annotations

from typing import Any, TypeVar

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer

LifespanT = TypeVar("LifespanT")


def lowlevel_server(mcp: MCPServer[LifespanT]) -> Server[LifespanT]:
    """The lowlevel server, where request handlers without an `MCPServer` hook are registered
    (resources that depend on the caller, `resources/subscribe`, `logging/setLevel`, completions that
    need the request context) and which the SSE transport serves.

    mcp 2.3: `MCPServer._lowlevel_server`; a public `MCPServer.add_request_handler(...)` (or a
    `lowlevel` property) would replace it."""
    return mcp._lowlevel_server  # pyright: ignore[reportPrivateUsage]


def request_connection(ctx: ServerRequestContext[Any]) -> Connection:
    """The connection a request arrived on: it outlives the per-request `ServerSession`, so it is
    what a `resources/subscribe` registration is kept against.

    mcp 2.3: `ServerSession._connection`; a public `ServerRequestContext.connection` (or
    `ServerSession.connection`) would replace it."""
    return ctx.session._connection  # pyright: ignore[reportPrivateUsage]
