"""`route_completion` as task work: the same body and result as the synchronous call."""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerRequestContext
from pydantic import ValidationError

from server.errors import MemoryInputError
from server.mcp.route_tool import RouteArguments, run_route
from server.mcp.state import AppState, owner_of
from server.mcp.tasks.runner import Outcome, TaskProgress, Work
from server.mcp.tasks.wire import LEGACY, Era, stored_result
from server.memory.storage import Owner
from server.memory.tasks import TaskStatus


def route_work(
    ctx: ServerRequestContext[AppState], arguments: dict[str, Any] | None, era: Era
) -> tuple[Owner, Work] | None:
    """Who the task belongs to and its work, resolved now, in the request: the background task runs
    outside it. None when the call is invalid: the synchronous path then answers with its error."""
    try:
        parsed = RouteArguments.model_validate(arguments or {})
        owner = owner_of(ctx, parsed.session_id)
    except (ValidationError, MemoryInputError):
        return None
    router = ctx.lifespan_context.runtime.router
    version = ctx.protocol_version

    async def work(progress: TaskProgress) -> Outcome:
        result = await run_route(router, parsed.request(), owner, progress.on_text, progress.on_status)
        stored = stored_result(result, version)
        if not result.is_error:
            return Outcome(TaskStatus.COMPLETED, "Done.", result=stored)
        if era == LEGACY:  # 2025-11-25: a tool error fails the task; tasks/result still returns it
            return Outcome(
                TaskStatus.FAILED, "route_completion ended with an error (see the result).", result=stored
            )
        return Outcome(
            TaskStatus.COMPLETED, "route_completion ended with an error (see the result).", result=stored
        )

    return owner, work
