"""The 2026-07-28 Tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663), through the SDK's
`Extension`: advertised in `server/discover`, it turns a declaring client's `route_completion` call
into a task. Its methods also serve the 2025-11-25 `tasks/*` requests (`legacy.py` creates those)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp import types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from server.mcp.route_tool import ROUTE_COMPLETION
from server.mcp.tasks import methods
from server.mcp.tasks.route_task import route_work
from server.mcp.tasks.runner import TaskLimitError
from server.mcp.tasks.wire import (
    EXTENSION_ID,
    LEGACY_VERSION,
    MODERN,
    declares_extension,
    era_of,
    modern_task,
)
from server.memory.tasks import TasksUnavailableError

LEGACY_ONLY = frozenset({LEGACY_VERSION})
MODERN_ONLY = frozenset(MODERN_PROTOCOL_VERSIONS)
BOTH_ERAS = LEGACY_ONLY | MODERN_ONLY


class TasksExtension(Extension):
    identifier = EXTENSION_ID

    def methods(self) -> Sequence[MethodBinding]:
        return (
            MethodBinding("tasks/get", methods.TaskIdParams, methods.tasks_get, protocol_versions=BOTH_ERAS),
            MethodBinding(
                "tasks/cancel", methods.TaskIdParams, methods.tasks_cancel, protocol_versions=BOTH_ERAS
            ),
            MethodBinding(
                "tasks/update",
                methods.UpdateParams,
                methods.tasks_update,
                protocol_versions=MODERN_ONLY,
            ),
            MethodBinding(
                "tasks/result", methods.TaskIdParams, methods.tasks_result, protocol_versions=LEGACY_ONLY
            ),
            MethodBinding(
                "tasks/list", methods.ListParams, methods.tasks_list, protocol_versions=LEGACY_ONLY
            ),
        )

    async def intercept_tool_call(
        self, params: types.CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Server-directed: every `route_completion` call of a client that declares the extension
        becomes a task; any other call, or an invalid one, is answered as usual."""
        if params.name != ROUTE_COMPLETION or era_of(ctx) != MODERN or not declares_extension(ctx):
            return await call_next(ctx)
        resolved = route_work(ctx, params.arguments, MODERN)
        if resolved is None:
            return await call_next(ctx)
        owner, work = resolved
        runner = methods.runner_of(ctx)
        with methods.store_failures():
            try:
                task = await runner.start(owner.user, owner.session, MODERN, None, work)
            except TasksUnavailableError:
                return await call_next(ctx)  # a peer of a shared store answers synchronously
            except TaskLimitError as e:
                return types.CallToolResult(
                    content=[types.TextContent(type="text", text=str(e))], is_error=True
                )
        return {"resultType": "task", **modern_task(task, runner.poll_ms, detailed=False)}
