"""Requests only handshake-era clients send: `resources/subscribe` / `unsubscribe` (MCPServer
serves only the 2026 `subscriptions/listen` path) and `logging/setLevel`."""

from __future__ import annotations

from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer

from server.mcp.sdk import lowlevel_server, request_connection
from server.mcp.state import AppState, owner_of


def add_legacy_subscriptions(mcp: MCPServer[AppState]) -> None:
    async def subscribe(
        ctx: ServerRequestContext[AppState], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        subscriptions = ctx.lifespan_context.legacy_subscriptions
        subscriptions.subscribe(request_connection(ctx), owner_of(ctx), str(params.uri))
        return types.EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[AppState], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        ctx.lifespan_context.legacy_subscriptions.unsubscribe(request_connection(ctx), str(params.uri))
        return types.EmptyResult()

    lowlevel = lowlevel_server(mcp)
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)


def add_logging_level(mcp: MCPServer[AppState]) -> None:
    """We send no log notifications, so any level is fine."""

    async def set_level(
        ctx: ServerRequestContext[AppState], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        return types.EmptyResult()

    lowlevel_server(mcp).add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
