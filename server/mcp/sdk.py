"""The only code that reaches past the MCP SDK's public API (written against mcp 2.3).

Each adapter names the public API that would replace it; when the SDK grows one, only this file changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

from mcp.server._streamable_http_modern import handle_modern_request
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

LifespanT = TypeVar("LifespanT")
ModelT = TypeVar("ModelT", bound=BaseModel)
ResultT = TypeVar("ResultT")


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


def tool_function(
    name: str,
    arguments: type[ModelT],
    run: Callable[[ModelT, Any], Awaitable[ResultT]],
    *,
    context: Any,
    returns: Any,
) -> Callable[..., Awaitable[ResultT]]:
    """A tool function whose arguments are the fields of one pydantic model, so that the model
    generates the tool's input schema and validates its calls; `run(arguments, ctx)` is its body.
    `name` names the function (the SDK names the schema after it); `context` is the `Context[...]`
    type the SDK injects the request context by.

    mcp 2.3 derives a tool's schema only from a function's signature (`MCPServer.add_tool` takes no
    argument model), so the signature is built from the model's fields. An `add_tool(...,
    arguments=Model)` would replace it."""

    async def tool(ctx: Any, **values: Any) -> ResultT:
        return await run(arguments(**values), ctx)

    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[field.annotation, field],
            default=inspect.Parameter.empty if field.is_required() else field.default,
        )
        for name, field in arguments.model_fields.items()
    ]
    tool.__name__ = tool.__qualname__ = name
    parameters.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=context))
    tool.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    tool.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": returns}
    return tool


def streamable_http_sessions(
    manager: StreamableHTTPSessionManager,
) -> Mapping[str, StreamableHTTPServerTransport]:
    """The open streamable HTTP sessions of `manager`, by session id: what a per-user quota counts,
    and whose transports it terminates to end a session.

    mcp 2.3: `StreamableHTTPSessionManager._server_instances`; a public read-only `sessions` view
    and a `close_session(id)` (or a per-requestor `max_sessions` policy hook) would replace it."""
    return manager._server_instances  # pyright: ignore[reportPrivateUsage]


async def answer_modern_request_as_json(
    manager: StreamableHTTPSessionManager, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve one 2026-07-28 streamable HTTP request with a single JSON body, as the session manager
    does in `json_response` mode: same security, Accept and header checks, same handler, no response
    stream (so notifications the handler sends are dropped, and a client disconnect does not cancel
    it). Only for requests that cannot stream anything.

    mcp 2.3 chooses JSON or a stream once per manager (`json_response`); for the 2026 path it calls the
    private `handle_modern_request` with the lifespan state the manager keeps privately. A per-request
    choice in the SDK (a predicate passed to `streamable_http_app`) would replace this."""
    lifespan_state = manager._lifespan_state  # pyright: ignore[reportPrivateUsage]
    if lifespan_state is None:  # not running (yet, or any more): let the manager answer as usual
        await manager.handle_request(scope, receive, send)
        return
    await handle_modern_request(
        manager.app, manager.security_settings, True, lifespan_state, scope, receive, send
    )
