"""The `memory` tool: record or forget a fact, as the caller."""

from __future__ import annotations

from typing import Annotated

from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from server.mcp.sdk import tool_function
from server.mcp.state import AppState, caller, tool_source
from server.memory.tool import MEMORY_TOOL_DESCRIPTION, MEMORY_TOOL_NAME, MemoryArguments

SessionId = Annotated[
    str | None, Field(description="optional: the session, for clients without an MCP session")
]

HOST_MEMORY_TOOL_DESCRIPTION = (
    f"{MEMORY_TOOL_DESCRIPTION} In an MCP host (outside `route_completion`), the facts are given to you "
    "in the server instructions at the start of the session; call the `recall` tool when they are not "
    "in your context. Record durable preferences and identity in scope `user`, working notes in scope "
    "`session`."
)
"""The models inside `route_completion` get `MEMORY_TOOL_DESCRIPTION` alone; a host's own model
learns where its facts come from."""


class MemoryToolArguments(MemoryArguments):
    """The contract's arguments, plus the session for clients without an MCP session."""

    session_id: SessionId = None


async def _memory(arguments: MemoryToolArguments, ctx: Context[AppState]) -> str:
    memory = ctx.request_context.lifespan_context.runtime.memory
    owner = caller(ctx, arguments.session_id)
    result = await memory.apply(owner, arguments, tool_source(ctx, owner))
    if result.is_error:
        raise ToolError(result.text)
    return result.text


def add_memory_tool(mcp: MCPServer[AppState]) -> None:
    mcp.add_tool(
        tool_function(MEMORY_TOOL_NAME, MemoryToolArguments, _memory, context=Context[AppState], returns=str),
        description=HOST_MEMORY_TOOL_DESCRIPTION,
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
        structured_output=False,
    )
