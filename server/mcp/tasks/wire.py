"""The wire shapes of tasks in both protocol eras, and the errors they share.

2025-11-25 ("legacy"): `capabilities.tasks`, `params.task` on `tools/call`, a `Task` with `ttl` /
`pollInterval`, the result from `tasks/result`; a tool result with `isError` fails the task.
2026-07-28 ("modern", the `io.modelcontextprotocol/tasks` extension, SEP-2663): the client declares
the extension per request, a task answer is `{resultType: "task", ...}` with `ttlMs` /
`pollIntervalMs`, and `tasks/get` carries the result inline; `isError` completes the task.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final, Literal

from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY
from mcp_types.methods import serialize_server_result
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from server.memory.tasks import TaskRecord, TaskStatus

Era = Literal["legacy", "modern"]
LEGACY: Final = "legacy"
MODERN: Final = "modern"
LEGACY_VERSION: Final = "2025-11-25"
EXTENSION_ID: Final = "io.modelcontextprotocol/tasks"
RELATED_TASK: Final = "io.modelcontextprotocol/related-task"
LEGACY_CAPABILITY: Final[dict[str, Any]] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
NOT_FOUND: Final = "Failed to retrieve task: Task not found"


def era_of(ctx: ServerRequestContext[Any, Any]) -> Era | None:
    """The task protocol of a request's connection; None for versions without tasks."""
    if ctx.protocol_version == LEGACY_VERSION:
        return LEGACY
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return MODERN
    return None


def declares_extension(ctx: ServerRequestContext[Any, Any]) -> bool:
    capabilities = ctx.session.client_capabilities
    return capabilities is not None and EXTENSION_ID in (capabilities.extensions or {})


def require_extension(ctx: ServerRequestContext[Any, Any]) -> None:
    """SEP-2663: a modern client that did not declare the extension gets -32021 for tasks/*."""
    if era_of(ctx) == MODERN and not declares_extension(ctx):
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message=f"tasks/* need the {EXTENSION_ID} extension in the request's client capabilities.",
            data={"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}},
        )


def not_found() -> MCPError:
    """The one answer for an unknown, expired or another user's task id."""
    return MCPError(code=INVALID_PARAMS, message=NOT_FOUND)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _common(task: TaskRecord) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "taskId": task.task_id,
        "status": task.status.value,
        "createdAt": _iso(task.created_at),
        "lastUpdatedAt": _iso(task.updated_at),
    }
    if task.status_message is not None:
        shaped["statusMessage"] = task.status_message
    return shaped


def legacy_task(task: TaskRecord, poll_ms: int) -> dict[str, Any]:
    return {**_common(task), "ttl": task.ttl_ms, "pollInterval": poll_ms}


def modern_task(task: TaskRecord, poll_ms: int, *, detailed: bool) -> dict[str, Any]:
    """The task as a create answer (`detailed=False`) or as `tasks/get` returns it."""
    shaped = {**_common(task), "ttlMs": task.ttl_ms, "pollIntervalMs": poll_ms}
    if detailed and task.status is TaskStatus.COMPLETED and task.result is not None:
        shaped["result"] = json.loads(task.result)
    if detailed and task.status is TaskStatus.FAILED:
        shaped["error"] = task_error(task)
    return shaped


def task_error(task: TaskRecord) -> dict[str, Any]:
    """The JSON-RPC error a failed task ended with; our own failures carry their status message."""
    if task.error is not None:
        error: dict[str, Any] = json.loads(task.error)
        return error
    return {"code": INTERNAL_ERROR, "message": task.status_message or "The task failed."}


def stored_result(result: CallToolResult, protocol_version: str) -> str:
    """A tool result exactly as the synchronous `tools/call` of this version would have sent it."""
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return json.dumps(serialize_server_result("tools/call", protocol_version, dumped), ensure_ascii=False)
