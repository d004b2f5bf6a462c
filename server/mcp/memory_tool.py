"""The `memory` tool: record or forget a fact, as the caller."""

from __future__ import annotations

from typing import Annotated, Any

from mcp import types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from server.errors import MemoryInputError
from server.mcp.sdk import tool_function
from server.mcp.state import AppState, caller
from server.memory.tool import MEMORY_TOOL_DESCRIPTION, MEMORY_TOOL_NAME, MemoryArguments


class MemoryToolArguments(MemoryArguments):
    """The contract's arguments, plus the session for clients without an MCP session."""

    session_id: Annotated[
        str | None, Field(description="optional: the session, for clients without an MCP session")
    ] = None


async def _memory(arguments: MemoryToolArguments, ctx: Context[AppState]) -> str:
    memory = ctx.request_context.lifespan_context.runtime.memory
    result = await memory.apply(caller(ctx, arguments.session_id), arguments)
    if result.is_error:
        raise ToolError(result.text)
    return result.text


async def _plain_argument_errors(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Middleware: a `memory` call with bad arguments is answered in words ("op must be record or
    forget"), where the SDK would answer with pydantic's report and its links."""
    params = ctx.params or {}
    if ctx.method == "tools/call" and params.get("name") == MEMORY_TOOL_NAME:
        try:
            MemoryToolArguments.from_call(params.get("arguments") or {})
        except MemoryInputError as e:
            return types.CallToolResult(content=[types.TextContent(text=str(e))], is_error=True)
    return await call_next(ctx)


def add_memory_tool(mcp: MCPServer[AppState]) -> None:
    mcp.add_tool(
        tool_function(MEMORY_TOOL_NAME, MemoryToolArguments, _memory, context=Context[AppState], returns=str),
        description=MEMORY_TOOL_DESCRIPTION,
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
        structured_output=False,
    )
    mcp.middleware.append(_plain_argument_errors)
