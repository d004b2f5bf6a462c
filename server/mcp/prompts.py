"""The `remembered-facts` prompt: the current memory preamble as a user message, for hosts that
let the user attach a server's prompt (Claude Desktop's "+" menu, slash commands in Claude Code and
VS Code)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.shared.exceptions import MCPError
from mcp.types.jsonrpc import INVALID_PARAMS
from pydantic import Field, ValidationError

from server.mcp.recall_tool import RecallArguments, nothing_remembered
from server.mcp.state import AppState, caller
from server.memory.storage import Scope
from server.memory.tool import describe_problems

REMEMBERED_FACTS_PROMPT = "remembered-facts"


def add_remembered_facts_prompt(mcp: MCPServer[AppState]) -> None:
    @mcp.prompt(
        name=REMEMBERED_FACTS_PROMPT,
        title="Remembered facts",
        description=(
            "What memory-router remembers about you (user facts and this session's), to give the model "
            "as context. `query`: optional topic; facts relevant to it come first."
        ),
    )
    async def remembered_facts(
        ctx: Context[AppState],
        query: Annotated[
            str | None, Field(description="optional: the topic; facts relevant to it come first")
        ] = None,
    ) -> list[UserMessage]:
        try:
            arguments = RecallArguments(query=query)
        except ValidationError as e:
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Invalid {REMEMBERED_FACTS_PROMPT} arguments: {describe_problems(e)}.",
            ) from None
        memory = ctx.request_context.lifespan_context.runtime.memory
        preamble = await memory.preamble(caller(ctx), query=arguments.query or None)
        return [UserMessage(preamble.text or nothing_remembered(frozenset(Scope)))]
