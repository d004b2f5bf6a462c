"""Tool arguments checked before the SDK sees them, so that a bad call is answered with what to fix
in plain words (the SDK answers with the validator's own report, links included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp import types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from pydantic import BaseModel, ValidationError

from server.memory.tool import describe_problems


class ToolArgumentCheck:
    """`ServerMiddleware` for `tools/call`: the arguments of the tools in `models` are validated
    against their model; invalid ones get a tool error naming each field and what is wrong."""

    def __init__(self, models: Mapping[str, type[BaseModel]]) -> None:
        self.models = dict(models)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/call" and ctx.params is not None:
            name = ctx.params.get("name")
            model = self.models.get(name) if isinstance(name, str) else None
            if model is not None:
                try:
                    model.model_validate(ctx.params.get("arguments") or {})
                except ValidationError as e:
                    return types.CallToolResult(
                        content=[types.TextContent(text=f"Invalid {name} call: {describe_problems(e)}.")],
                        is_error=True,
                    )
        return await call_next(ctx)
