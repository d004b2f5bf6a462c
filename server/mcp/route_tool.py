"""The `route_completion` tool: one completion through any configured model, with memory.

`run_route` is its body, shared by the synchronous call and the task that runs it in the background
(`tasks/`), so both give the same result.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from server.errors import ConfigError, ProviderError, RoutingError
from server.mcp.progress import progress_stream
from server.mcp.sdk import tool_function
from server.mcp.state import AppState, caller
from server.memory.storage import Owner
from server.providers.types import Message, Parameters, ToolChoice, ToolSpec
from server.routing.router import Router, RouteRequest, RouteResult, StatusSink, TextSink

ROUTE_COMPLETION: Final = "route_completion"
ROUTE_COMPLETION_DESCRIPTION = (
    "Send a completion to any configured model (provider/model, e.g. anthropic/claude-sonnet-4-5, "
    "openai/gpt-4.1-mini, gemini/gemini-2.5-flash, ollama/llama3.2, or an alias). The user's memories "
    "are appended to `system`, and the model may record or forget memories itself. When the model "
    "calls one of your `tools`, the result has status `tool_calls`: run those calls, append the "
    "returned `messages` plus one `tool` message per call (with its `tool_call_id`) to your history, "
    "and call again. Otherwise the status is `completed` and `text` holds the answer."
)


class RouteArguments(BaseModel):
    messages: Annotated[list[Message], Field(description="the conversation so far, oldest first")]
    model: Annotated[str | None, Field(description="provider/model or an alias; default if omitted")] = None
    system: Annotated[str | None, Field(description="system prompt; memories are appended to it")] = None
    tools: Annotated[list[ToolSpec] | None, Field(description="your own tools, run by you")] = None
    tool_choice: ToolChoice | None = None
    parameters: Parameters | None = None
    memory: Annotated[bool, Field(description="false: no memory preamble and no memory tool")] = True
    session_id: Annotated[str | None, Field(description="optional: the session for session memories")] = None
    fallbacks: Annotated[
        list[str] | None, Field(description="models to try in order on a retryable failure")
    ] = None
    provider_options: Annotated[
        dict[str, dict[str, Any]] | None,
        Field(
            description="extra request-body fields per provider, sent only to that provider, e.g. "
            '{"anthropic": {"thinking": {"type": "enabled", "budget_tokens": 2048}}}'
        ),
    ] = None

    def request(self) -> RouteRequest:
        return RouteRequest(
            model=self.model,
            messages=self.messages,
            system=self.system,
            tools=self.tools or [],
            tool_choice=self.tool_choice,
            parameters=self.parameters or Parameters(),
            memory=self.memory,
            fallbacks=self.fallbacks or [],
            provider_options=self.provider_options or {},
        )


def render_route_result(result: RouteResult) -> str:
    """The text rendering of a result, beside its structured form."""
    if result.status == "completed":
        return result.text
    calls = "\n".join(
        f"- {call.name} (id {call.id}): {json.dumps(call.arguments, ensure_ascii=False)}"
        for call in result.tool_calls
    )
    lead = f"{result.text}\n\n" if result.text else ""
    return f"{lead}{result.provider}/{result.model} asks the host to run:\n{calls}"


async def run_route(
    router: Router,
    request: RouteRequest,
    owner: Owner,
    on_text: TextSink | None = None,
    on_status: StatusSink | None = None,
) -> types.CallToolResult:
    """The tool's result: the rendered answer, or the routing failure as a tool error."""
    try:
        result = await router.route(request, owner, on_text, on_status)
    except (ProviderError, RoutingError, ConfigError) as e:
        # The SDK's wording for a tool that raised, which synchronous callers have always seen.
        text = f"Error executing tool {ROUTE_COMPLETION}: {e}"
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=render_route_result(result))],
        structured_content=result.model_dump(mode="json"),
    )


async def _route_completion(arguments: RouteArguments, ctx: Context[AppState]) -> types.CallToolResult:
    router = ctx.request_context.lifespan_context.runtime.router
    owner = caller(ctx, arguments.session_id)
    meta = ctx.request_context.meta
    if meta is None or meta.get("progress_token") is None:
        return await run_route(router, arguments.request(), owner)

    async def report(progress: float, message: str) -> None:
        await ctx.report_progress(progress, None, message)

    async with progress_stream(report) as on_text:
        return await run_route(router, arguments.request(), owner, on_text)


def add_route_completion_tool(mcp: MCPServer[AppState]) -> None:
    mcp.add_tool(
        tool_function(
            ROUTE_COMPLETION,
            RouteArguments,
            _route_completion,
            context=Context[AppState],
            returns=Annotated[types.CallToolResult, RouteResult],
        ),
        description=ROUTE_COMPLETION_DESCRIPTION,
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
