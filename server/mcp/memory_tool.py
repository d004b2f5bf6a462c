"""The `memory` tool: record or forget a fact, as the caller."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from server.mcp.state import AppState, caller
from server.memory.service import MEMORY_TOOL_DESCRIPTION


def add_memory_tool(mcp: MCPServer[AppState]) -> None:
    @mcp.tool(
        name="memory",
        description=MEMORY_TOOL_DESCRIPTION,
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
        structured_output=False,
    )
    async def memory(
        op: Annotated[Literal["record", "forget"], Field(description="record or forget")],
        scope: Annotated[
            Literal["user", "session"],
            Field(description="user: durable facts about the user; session: working memory of this session"),
        ],
        key: Annotated[str, Field(description="the topic the fact is stored under")],
        ctx: Context[AppState],
        value: Annotated[
            str | None, Field(description="the fact; required for record, ignored for forget")
        ] = None,
        session_id: Annotated[
            str | None, Field(description="optional: the session, for clients without an MCP session")
        ] = None,
    ) -> str:
        state = ctx.request_context.lifespan_context
        result = await state.memory.apply(caller(ctx, session_id), op, scope, key, value)
        if result.is_error:
            raise ToolError(result.text)
        return result.text
