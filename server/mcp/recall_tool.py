"""The read-only `recall` tool: the memories as `route_completion` would give them to a model now,
for hosts whose model does not see the server instructions (Claude Desktop, claude.ai).

A host-facing tool only: the tools offered to models inside `route_completion` stay `memory` alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from server.mcp.memory_tool import SessionId
from server.mcp.sdk import tool_function
from server.mcp.state import AppState, caller
from server.mcp.view import VIEW_TOOL_META
from server.memory.preamble import MemoryContext, Preamble
from server.memory.service import MAX_QUERY_CHARS
from server.memory.storage import Scope

RECALL_TOOL_NAME = "recall"

RECALL_TOOL_DESCRIPTION = (
    "Read what is remembered about the user: the facts `route_completion` gives its models now, "
    "delimited and introduced as data. Call it at the start of a conversation when no remembered facts "
    "are in your context, and whenever remembered preferences or context could matter. `query` puts "
    "the facts relevant to it first; `scope` narrows to `user` or `session` facts (both by default)."
)


class RecallArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[
        str | None,
        Field(max_length=MAX_QUERY_CHARS, description="optional: the topic; facts relevant to it come first"),
    ] = None
    scope: Annotated[
        Scope | None,
        WithJsonSchema({"type": "string", "enum": [scope.value for scope in Scope]}),
        Field(description="optional: user or session facts only; both when omitted"),
    ] = None
    session_id: SessionId = None

    @property
    def scopes(self) -> frozenset[Scope]:
        return frozenset(Scope) if self.scope is None else frozenset({self.scope})


class RecalledFact(BaseModel):
    handle: str
    key: str | None
    scope: Scope
    content: str
    updated_at: datetime
    source: Annotated[dict[str, Any] | None, Field(exclude_if=lambda source: source is None)] = None
    """Where the fact came from, when the store records it."""


class RecallResult(BaseModel):
    facts: list[RecalledFact]
    """The facts given, whole (the preamble may show a long one shortened), in the manifest's order."""
    left_out: int
    memory_context: MemoryContext


def nothing_remembered(scopes: frozenset[Scope]) -> str:
    """What a reader is told instead of an empty preamble."""
    what = "about this user" if scopes == frozenset(Scope) else f"in {next(iter(scopes))} scope"
    return f"Nothing is remembered {what} yet. Facts recorded with the `memory` tool will show here."


def recall_result(preamble: Preamble) -> RecallResult:
    facts = [RecalledFact.model_validate(record.model_dump()) for record in preamble.facts]
    return RecallResult(facts=facts, left_out=preamble.context.left_out, memory_context=preamble.context)


async def _recall(arguments: RecallArguments, ctx: Context[AppState]) -> types.CallToolResult:
    memory = ctx.request_context.lifespan_context.runtime.memory
    owner = caller(ctx, arguments.session_id)
    preamble = await memory.preamble(owner, query=arguments.query or None, scopes=arguments.scopes)
    text = preamble.text or nothing_remembered(arguments.scopes)
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=recall_result(preamble).model_dump(mode="json"),
    )


def add_recall_tool(mcp: MCPServer[AppState]) -> None:
    mcp.add_tool(
        tool_function(
            RECALL_TOOL_NAME,
            RecallArguments,
            _recall,
            context=Context[AppState],
            returns=Annotated[types.CallToolResult, RecallResult],
        ),
        title="Recall memories",
        description=RECALL_TOOL_DESCRIPTION,
        annotations=types.ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
        meta=VIEW_TOOL_META,  # hosts that render MCP Apps show the memory view with the result
    )
