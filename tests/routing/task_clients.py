"""Driving `route_completion` as a task from the Python SDK client, in either era, one way.

2026-07-28: `TasksExtension` declares the extension and claims `resultType: "task"`, so
`session.call_tool(..., allow_claimed=True)` returns the created task; `tasks/*` requests carry the
task id as their `Mcp-Name`. 2025-11-25: the SDK client checks every `tools/call` answer against
`CallToolResult`, so the task-augmented call goes out through its dispatcher (the one private reach,
`legacy_create`); `tasks/*` answers are read as plain dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import anyio
from mcp import Client, types
from mcp.client.extension import ClaimContext, ClientExtension, NotificationBinding, ResultClaim
from mcp_types import Request, RequestParams, Result, TaskStatusNotificationParams
from pydantic import ConfigDict
from routing_helpers import QUESTION

EXTENSION = "io.modelcontextprotocol/tasks"
ANSWER = "Paris is sunny today."
ARGS: dict[str, Any] = {"model": "openai/model-a", "messages": QUESTION}
TERMINAL = ("completed", "failed", "cancelled")
Mode = Literal["legacy", "2026-07-28"]
MODES: tuple[Mode, ...] = ("legacy", "2026-07-28")


class AnyResult(Result):
    model_config = ConfigDict(extra="allow")


class TaskIdParams(RequestParams):
    task_id: str


class ListParams(RequestParams):
    cursor: str | None = None


class GetTask(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"


class CancelTask(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


class TaskResult(Request[TaskIdParams, Literal["tasks/result"]]):
    method: Literal["tasks/result"] = "tasks/result"
    params: TaskIdParams


class ListTasks(Request[ListParams, Literal["tasks/list"]]):
    method: Literal["tasks/list"] = "tasks/list"
    params: ListParams


class CreatedTask(Result):
    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"
    task_id: str


class TasksExtension(ClientExtension):
    """Declares the Tasks extension and hands a created task back as it is (tests poll themselves)."""

    identifier = EXTENSION

    def claims(self) -> tuple[ResultClaim[Any], ...]:
        async def keep(created: CreatedTask, _: ClaimContext) -> CreatedTask:
            return created

        # The SDK types `resolve` as finishing the call; these tests poll the task themselves.
        return (ResultClaim(result_type="task", model=CreatedTask, resolve=keep),)  # type: ignore[arg-type]


class StatusWatcher(ClientExtension):
    """Keeps the 2025-11-25 `notifications/tasks/status` it hears."""

    identifier = EXTENSION

    def __init__(self) -> None:
        self.heard: list[TaskStatusNotificationParams] = []
        self.arrived = anyio.Event()

    def notifications(self) -> tuple[NotificationBinding[Any], ...]:
        async def heard(params: TaskStatusNotificationParams) -> None:
            self.heard.append(params)
            self.arrived.set()

        binding = NotificationBinding(
            method="notifications/tasks/status", params_type=TaskStatusNotificationParams, handler=heard
        )
        return (binding,)


def dumped(result: Result) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def legacy_create(client: Client, arguments: dict[str, Any], ttl: int | None = None) -> dict[str, Any]:
    """A 2025-11-25 task-augmented `tools/call`, sent raw (see the module docstring)."""
    params = {"name": "route_completion", "arguments": arguments, "task": {} if ttl is None else {"ttl": ttl}}
    return await client.session._dispatcher.send_raw_request("tools/call", params, {})


class TaskDriver:
    """One client's view of its tasks, in the wire shape of its era."""

    def __init__(self, client: Client, mode: Mode) -> None:
        self.client = client
        self.mode = mode

    async def create(self, arguments: dict[str, Any], ttl: int | None = None) -> dict[str, Any]:
        """The created task (`taskId`, `status`, ... and `ttl`/`pollInterval` or `ttlMs`/`pollIntervalMs`)."""
        if self.mode == "legacy":
            return dict((await legacy_create(self.client, arguments, ttl))["task"])
        created = await self.client.session.call_tool("route_completion", arguments, allow_claimed=True)
        assert isinstance(created, CreatedTask), created
        return dumped(created)

    async def _send(self, request: Request[Any, Any]) -> dict[str, Any]:
        return dumped(await self.client.session.send_request(request, AnyResult))

    async def get(self, task_id: str) -> dict[str, Any]:
        return await self._send(GetTask(params=TaskIdParams(task_id=task_id)))

    async def cancel(self, task_id: str) -> dict[str, Any]:
        return await self._send(CancelTask(params=TaskIdParams(task_id=task_id)))

    async def list(self, cursor: str | None = None) -> dict[str, Any]:
        return await self._send(ListTasks(params=ListParams(cursor=cursor)))

    async def poll_until(
        self, task_id: str, done: Callable[[dict[str, Any]], bool], seconds: float = 10
    ) -> dict[str, Any]:
        """Poll `tasks/get` at the interval the server suggests until `done(task)`."""
        with anyio.fail_after(seconds):
            while True:
                task = await self.get(task_id)
                if done(task):
                    return task
                await anyio.sleep((task.get("pollInterval") or task.get("pollIntervalMs") or 10) / 1000)

    async def outcome(self, task_id: str) -> types.CallToolResult:
        """The finished task's tool result: `tasks/result` (2025-11-25) or inline in `tasks/get`."""
        if self.mode == "legacy":
            raw = await self._send(TaskResult(params=TaskIdParams(task_id=task_id)))
            assert raw["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
            return types.CallToolResult.model_validate(raw)
        task = await self.poll_until(task_id, lambda t: t["status"] in TERMINAL)
        assert task["status"] == "completed", task
        return types.CallToolResult.model_validate(task["result"])


def client_options(mode: Mode) -> dict[str, Any]:
    """`Client(...)` options for a task-capable client of `mode`."""
    return {"mode": mode, "extensions": [TasksExtension()] if mode != "legacy" else []}
