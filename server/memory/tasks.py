"""Durable task records: a long tool call that runs in the background and is polled for its result
(MCP tasks), and the storage protocol every backend implements.

A task belongs to a user: every method is owner-checked, and another user's task id behaves exactly
like one that never existed. A running task is held by a *runner* (one process's task runner) under
a lease it renews while it works; a task whose runner stopped renewing (the process was restarted or
crashed) is failed with `RUNNER_LOST` the next time anyone reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol

from pydantic import BaseModel, ConfigDict

from server.errors import StoreError

LEASE_SECONDS: Final = 60.0
"""How long a running task stays `working` without a word from its runner."""
MAX_TASK_ID_CHARS: Final = 128
RUNNER_LOST: Final = (
    "memory-router stopped while this task ran (it was restarted or crashed), so its answer was lost. "
    "Call route_completion again."
)


class TaskStatus(StrEnum):
    WORKING = "working"
    INPUT_REQUIRED = "input_required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class TaskRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str
    user: str
    session: str
    era: str
    """Which protocol created it; the MCP layer shapes the task and its result by it."""
    status: TaskStatus
    status_message: str | None
    created_at: datetime
    updated_at: datetime
    ttl_ms: int
    result: str | None
    """The final result as the MCP layer stored it (JSON text), for completed (and some failed) tasks."""
    error: str | None
    """The error the call ended with (JSON text), for failed tasks."""


class TasksUnavailableError(StoreError):
    """This process cannot reach the store's tasks (it is a peer of a shared embedded store)."""


class TaskStorage(Protocol):
    """What every task backend offers. Tasks past their TTL are never returned and are swept."""

    async def create(
        self, user: str, session: str, task_id: str, era: str, ttl_ms: int, runner: str, message: str
    ) -> TaskRecord:
        """A new `working` task held by `runner`; durable when this returns."""
        ...

    async def get(self, user: str, task_id: str) -> TaskRecord | None:
        """The task, or None when there is none for this user; fails it first if its runner is gone."""
        ...

    async def list(self, user: str, after: str | None, limit: int) -> Sequence[TaskRecord]:
        """The user's tasks in task-id order, after the id `after` (exclusive)."""
        ...

    async def count_running(self, user: str) -> int:
        """How many of the user's tasks are working under a live lease."""
        ...

    async def progress(self, user: str, task_id: str, runner: str, message: str) -> TaskRecord | None:
        """Set the status message and renew the lease; None when the task is no longer this
        runner's working task (cancelled, failed, expired): the runner must stop."""
        ...

    async def finish(
        self,
        user: str,
        task_id: str,
        runner: str,
        status: TaskStatus,
        message: str,
        *,
        result: str | None = None,
        error: str | None = None,
    ) -> TaskRecord | None:
        """End a working task; None when it was no longer working (a cancel came first)."""
        ...

    async def cancel(self, user: str, task_id: str, message: str) -> tuple[TaskRecord, bool] | None:
        """Cancel a task that is not terminal yet: the task after the call, and whether this call
        cancelled it (False: it had already ended). None when there is no such task."""
        ...

    async def fail_runner(self, runner: str, message: str) -> int:
        """Fail every task `runner` still holds (it is shutting down); how many there were."""
        ...

    async def sweep_expired(self) -> int:
        """Remove every task past its TTL; how many were removed."""
        ...


def is_task_id(text: str) -> bool:
    """Whether `text` could be a task id at all (anything else is looked up as unknown)."""
    return 0 < len(text) <= MAX_TASK_ID_CHARS and "\x00" not in text
