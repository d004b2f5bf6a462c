"""2025-11-25 tasks, which the SDK (mcp 2.3) has types for but does not serve: this middleware adds
`capabilities.tasks` to the `initialize` result and `execution.taskSupport` to `route_completion` in
`tools/list`, and answers a `tools/call` that carries `params.task` with a `CreateTaskResult`; the
creating connection hears `notifications/tasks/status` when the task ends.

It must be middleware: a middleware's result is sent as it is, while a handler's `tools/call` result
is checked against `CallToolResult`, which a `CreateTaskResult` is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from mcp_types.jsonrpc import INVALID_REQUEST, METHOD_NOT_FOUND
from pydantic import BaseModel

from server.mcp.route_tool import ROUTE_COMPLETION
from server.mcp.sdk import request_connection
from server.mcp.state import AppState
from server.mcp.tasks.methods import caller_of, runner_of, store_failures
from server.mcp.tasks.route_task import route_work
from server.mcp.tasks.runner import Outcome, TaskLimitError, TaskProgress, Work
from server.mcp.tasks.wire import LEGACY, LEGACY_CAPABILITY, LEGACY_VERSION, legacy_task, stored_result
from server.memory.tasks import TaskRecord, TaskStatus


async def legacy_tasks(ctx: ServerRequestContext[AppState], call_next: CallNext) -> HandlerResult:
    if ctx.method == "initialize":
        result = _as_dict(await call_next(ctx))
        if result is not None and result.get("protocolVersion") == LEGACY_VERSION:
            result.setdefault("capabilities", {})["tasks"] = LEGACY_CAPABILITY
        return result
    if ctx.protocol_version != LEGACY_VERSION:
        return await call_next(ctx)
    if ctx.method == "tools/list":
        result = _as_dict(await call_next(ctx))
        if result is not None:
            for tool in result.get("tools", []):
                if tool.get("name") == ROUTE_COMPLETION:
                    tool["execution"] = {"taskSupport": "optional"}
        return result
    params: Mapping[str, Any] = ctx.params or {}
    if ctx.method == "tools/call" and isinstance(params.get("task"), dict):
        return await _create(ctx, params, call_next)
    return await call_next(ctx)


def _as_dict(result: HandlerResult) -> dict[str, Any] | None:
    """A handler's result as its wire dict, for the fields the 2025 wire model has but the SDK
    does not fill in."""
    if isinstance(result, BaseModel):
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return result


async def _create(
    ctx: ServerRequestContext[AppState], params: Mapping[str, Any], call_next: CallNext
) -> HandlerResult:
    if params.get("name") != ROUTE_COMPLETION:
        raise MCPError(code=METHOD_NOT_FOUND, message=f"Only {ROUTE_COMPLETION} runs as a task.")
    runner = runner_of(ctx)
    ttl = params["task"].get("ttl")
    requested_ttl = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None
    resolved = route_work(ctx, params.get("arguments"), LEGACY)
    work: Work
    if resolved is None:
        # An invalid call: the task fails at once with the very error the synchronous call returns.
        refusal = stored_result(CallToolResult.model_validate(await call_next(ctx)), LEGACY_VERSION)

        async def refused(_: TaskProgress) -> Outcome:
            return Outcome(TaskStatus.FAILED, f"{ROUTE_COMPLETION} refused its arguments.", result=refusal)

        user, session, work = caller_of(ctx), "", refused
    else:
        owner, work = resolved
        user, session = owner.user, owner.session
    connection = request_connection(ctx)

    async def announce(ended: TaskRecord) -> None:
        # Optional in 2025-11-25, and only on the connection that created the task.
        await connection.notify("notifications/tasks/status", legacy_task(ended, runner.poll_ms))

    with store_failures():
        try:
            task = await runner.start(user, session, LEGACY, requested_ttl, work, announce)
        except TaskLimitError as e:
            raise MCPError(code=INVALID_REQUEST, message=str(e)) from None
    return {"task": legacy_task(task, runner.poll_ms)}
