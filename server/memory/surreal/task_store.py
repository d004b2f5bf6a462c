"""`SurrealTaskStore`: the task storage protocol on a SurrealDB connection (the memory store's)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from server.memory.storage import WallClock, utc_now
from server.memory.surreal import task_queries as q
from server.memory.surreal.ids import id_text, id_untext, record_id
from server.memory.surreal.statements import Statements
from server.memory.tasks import LEASE_SECONDS, RUNNER_LOST, TaskRecord, TaskStatus, is_task_id


def _record(row: Mapping[str, Any]) -> TaskRecord:
    user, task_id = row["id"].id
    return TaskRecord(
        task_id=task_id,
        user=id_untext(user),
        session=id_untext(row["session"]),
        era=row["era"],
        status=TaskStatus(row["status"]),
        status_message=row.get("status_message"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        ttl_ms=row["ttl_ms"],
        result=row.get("result"),
        error=row.get("error"),
    )


class SurrealTaskStore:
    """`TaskStorage` on an open, signed-in, `use`d SurrealDB connection (see `open_engine`)."""

    def __init__(self, db: Any, *, clock: WallClock = utc_now, lease_seconds: float = LEASE_SECONDS) -> None:
        self._db = db
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)
        # The embedded engine can lose one of two concurrent updates of a record (see the memory
        # store), which would let a progress write undo a cancel: this process serializes its writes.
        self._statements = Statements(db, "task store")

    async def define_schema(self) -> None:
        await self._run(q.TASK_SCHEMA, {}, "defining the task schema")

    async def create(
        self, user: str, session: str, task_id: str, era: str, ttl_ms: int, runner: str, message: str
    ) -> TaskRecord:
        now = self._now()
        content = {
            "session": id_text(session),
            "era": era,
            "status": TaskStatus.WORKING.value,
            "status_message": message,
            "created_at": now,
            "updated_at": now,
            "ttl_ms": ttl_ms,
            "expires_at": now + timedelta(milliseconds=ttl_ms),
            "runner": runner,
            "lease_until": now + self._lease,
        }
        row = await self._write(
            q.CREATE_TASK, {"rid": _rid(user, task_id), "content": content}, "creating a task"
        )
        return _record(row)

    async def get(self, user: str, task_id: str) -> TaskRecord | None:
        if not is_task_id(task_id):
            return None
        row = await self._one(q.GET_TASK, {"rid": _rid(user, task_id)}, "reading a task")
        now = self._now()
        if not row or row["expires_at"] < now:
            return None
        if row["status"] == TaskStatus.WORKING and row["lease_until"] < now:
            params = {"rid": _rid(user, task_id), "message": RUNNER_LOST, "now": now}
            rows = await self._write(q.LOSE_LEASE, params, "failing a task whose runner is gone")
            row = (
                rows[0]
                if rows
                else await self._one(q.GET_TASK, {"rid": _rid(user, task_id)}, "reading a task")
            )
        return _record(row) if row else None

    async def list(self, user: str, after: str | None, limit: int) -> Sequence[TaskRecord]:
        params: dict[str, Any] = {"uid": id_text(user), "now": self._now(), "limit": limit}
        query = q.USER_TASKS
        if after is not None:
            query, params["after"] = q.USER_TASKS_AFTER, after
        rows = await self._one(query, params, "listing tasks") or []
        return [_record(row) for row in rows]

    async def count_running(self, user: str) -> int:
        n = await self._one(q.COUNT_RUNNING, {"uid": id_text(user), "now": self._now()}, "counting tasks")
        return int(n or 0)

    async def progress(self, user: str, task_id: str, runner: str, message: str) -> TaskRecord | None:
        now = self._now()
        params = {
            "rid": _rid(user, task_id),
            "runner": runner,
            "message": message,
            "now": now,
            "lease": now + self._lease,
        }
        rows = await self._write(q.PROGRESS, params, "updating a task")
        return _record(rows[0]) if rows else None

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
        params = {
            "rid": _rid(user, task_id),
            "runner": runner,
            "status": status.value,
            "message": message,
            "result": result,
            "error": error,
            "now": self._now(),
        }
        rows = await self._write(q.FINISH, params, "finishing a task")
        return _record(rows[0]) if rows else None

    async def cancel(self, user: str, task_id: str, message: str) -> tuple[TaskRecord, bool] | None:
        if await self.get(user, task_id) is None:
            return None
        params = {"rid": _rid(user, task_id), "message": message, "now": self._now()}
        rows = await self._write(q.CANCEL, params, "cancelling a task")
        if rows:
            return _record(rows[0]), True
        task = await self.get(user, task_id)
        return None if task is None else (task, False)

    async def fail_runner(self, runner: str, message: str) -> int:
        params = {"runner": runner, "message": message, "now": self._now()}
        return len(await self._write(q.FAIL_RUNNER, params, "failing the tasks of a stopping runner") or [])

    async def sweep_expired(self) -> int:
        return len(await self._write(q.SWEEP_TASKS, {"now": self._now()}, "removing expired tasks") or [])

    # -- internals -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    async def _one(self, query: str, params: Mapping[str, Any], action: str) -> Any:
        return await self._statements.one(query, params, action)

    async def _write(self, query: str, params: Mapping[str, Any], action: str) -> Any:
        """Every write is conditional or keyed by a fresh id, so a conflicting one is simply rerun."""
        return await self._statements.write(query, params, action)

    async def _run(self, query: str, params: Mapping[str, Any], action: str) -> builtins.list[Any]:
        return await self._statements.run(query, params, action)


def _rid(user: str, task_id: str) -> Any:
    return record_id("task", user, task_id)
