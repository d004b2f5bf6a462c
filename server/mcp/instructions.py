"""The server instructions a client receives when it connects: a short guide to the tools, then
the connecting user's and session's memory preamble as it is at that moment.

Hosts that honour instructions (Claude Code, several IDE agents) put them into the model's system
prompt, so the host's own model starts each session with the memories, exactly as `route_completion`
gives them to its models. A memory recorded later in the session shows through `recall`, the
`remembered-facts` prompt and `memory://preamble` at once, and in the instructions of the next
session.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from pydantic import BaseModel

from server.errors import MemoryInputError, StoreError
from server.mcp.sdk import request_connection
from server.mcp.state import AppState, owner_of

logger = logging.getLogger(__name__)

GUIDE = (
    "memory-router remembers facts about the user across sessions and hosts, and routes completions "
    "to any configured model provider. The facts remembered when this session started follow, when "
    "there are any. When they are not in your context, or to look for facts on a topic, call the "
    "`recall` tool (optional `query`). Record durable facts (preferences, identity) with the `memory` "
    "tool in scope `user`, working notes of this session in scope `session`, and forget facts that "
    "are no longer true."
)

CONNECT_METHODS = frozenset({"initialize", "server/discover"})
"""Where a client learns the instructions: the handshake (until 2025) or discovery (2026-07-28)."""


async def connection_instructions(ctx: ServerRequestContext[AppState, Any]) -> str:
    """The guide plus the caller's preamble now; the guide alone when nothing is remembered or the
    store cannot be read (connecting must not fail because of memory)."""
    # Over streamable HTTP, `initialize` is answered before the client knows its session id (no
    # header yet): the connection has it. Later requests name it in their header.
    session_id = request_connection(ctx).session_id
    try:
        owner = owner_of(ctx, session_id)
        preamble = await ctx.lifespan_context.runtime.memory.preamble(owner)
    except (StoreError, MemoryInputError) as e:
        logger.warning("Server instructions without memories: %s", e)
        return GUIDE
    return f"{GUIDE}\n\n{preamble.text}" if preamble.text else GUIDE


class ConnectionInstructions:
    """`ServerMiddleware`: the `instructions` of `initialize` and `server/discover` results, for the
    user and session that connect (the SDK's are one text for every client)."""

    async def __call__(self, ctx: ServerRequestContext[AppState, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method not in CONNECT_METHODS:
            return result
        instructions = await connection_instructions(ctx)
        if isinstance(result, dict):
            return {**result, "instructions": instructions}
        if isinstance(result, BaseModel):
            return result.model_copy(update={"instructions": instructions})
        return result
