"""`tasks/get`, `tasks/cancel`, `tasks/update` (2026-07-28), `tasks/result` and `tasks/list`
(2025-11-25): one handler per method, shaped by the era of the request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import RequestParams
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import Field

from server.errors import MemoryRouterError
from server.mcp.state import AppState, current_user
from server.mcp.tasks.runner import TaskRunner
from server.mcp.tasks.wire import (
    MODERN,
    RELATED_TASK,
    era_of,
    legacy_task,
    modern_task,
    not_found,
    require_extension,
    task_error,
)
from server.memory.tasks import TaskRecord, TaskStatus

LIST_PAGE: Final = 50


class TaskIdParams(RequestParams):
    task_id: str


class ListParams(RequestParams):
    cursor: str | None = None


class UpdateParams(RequestParams):
    task_id: str
    input_responses: dict[str, Any] = Field(default_factory=dict)


@contextmanager
def store_failures() -> Iterator[None]:
    """Our errors (a store failure, tasks unavailable in a peer) as JSON-RPC errors, with their text."""
    try:
        yield
    except MemoryRouterError as e:
        raise MCPError(code=INTERNAL_ERROR, message=str(e)) from None


def runner_of(ctx: ServerRequestContext[AppState]) -> TaskRunner:
    runner = ctx.lifespan_context.tasks
    if runner is None:  # the extension is installed only with tasks on, so this is a wiring mistake
        raise MCPError(code=INTERNAL_ERROR, message="Tasks are turned off (MEMORY_ROUTER_TASKS).")
    return runner


def caller_of(ctx: ServerRequestContext[AppState]) -> str:
    """Tasks belong to the user, not the MCP session: a client that reconnects gets a new session
    and must still reach its results (and neither era binds tasks to a session)."""
    return current_user(ctx.lifespan_context.runtime.settings)


async def _task(ctx: ServerRequestContext[AppState], task_id: str) -> TaskRecord:
    with store_failures():
        task = await runner_of(ctx).store.get(caller_of(ctx), task_id)
    if task is None:
        raise not_found()
    return task


async def tasks_get(ctx: ServerRequestContext[AppState], params: TaskIdParams) -> HandlerResult:
    require_extension(ctx)
    task = await _task(ctx, params.task_id)
    poll = runner_of(ctx).poll_ms
    return modern_task(task, poll, detailed=True) if era_of(ctx) == MODERN else legacy_task(task, poll)


async def tasks_cancel(ctx: ServerRequestContext[AppState], params: TaskIdParams) -> HandlerResult:
    require_extension(ctx)
    runner = runner_of(ctx)
    with store_failures():
        cancelled = await runner.cancel(caller_of(ctx), params.task_id)
    if cancelled is None:
        raise not_found()
    task, now = cancelled
    if era_of(ctx) == MODERN:
        return {}  # an acknowledgement; the state is read with tasks/get
    if not now:  # 2025-11-25: cancelling a terminal task is an error
        raise MCPError(code=INVALID_PARAMS, message=f"Cannot cancel the task: it has already {task.status}.")
    return legacy_task(task, runner.poll_ms)


async def tasks_update(ctx: ServerRequestContext[AppState], params: UpdateParams) -> HandlerResult:
    """route_completion never asks for input, so every response is for a key it is not waiting on:
    acknowledged and ignored, as SEP-2663 asks."""
    require_extension(ctx)
    await _task(ctx, params.task_id)
    return {}


async def tasks_result(ctx: ServerRequestContext[AppState], params: TaskIdParams) -> HandlerResult:
    """2025-11-25: waits until the task ends, then answers as the `tools/call` would have."""
    with store_failures():
        task = await runner_of(ctx).wait_until_ended(caller_of(ctx), params.task_id)
    if task is None:
        raise not_found()
    related = {RELATED_TASK: {"taskId": task.task_id}}
    if task.result is not None:
        result: dict[str, Any] = json.loads(task.result)
        return {**result, "_meta": {**result.get("_meta", {}), **related}}
    if task.status is TaskStatus.CANCELLED:
        raise MCPError(
            code=INVALID_PARAMS, message="The task was cancelled, so it has no result.", data=related
        )
    error = task_error(task)
    raise MCPError(code=error["code"], message=error["message"], data=related)


async def tasks_list(ctx: ServerRequestContext[AppState], params: ListParams) -> HandlerResult:
    """2025-11-25: the caller's own tasks, a page at a time (the cursor is the last task id)."""
    runner = runner_of(ctx)
    with store_failures():
        page = await runner.store.list(caller_of(ctx), params.cursor, LIST_PAGE)
    listed: dict[str, Any] = {"tasks": [legacy_task(task, runner.poll_ms) for task in page]}
    if len(page) == LIST_PAGE:
        listed["nextCursor"] = page[-1].task_id
    return listed
