"""The task storage of an open memory store: the same SurrealDB database, in this process or not.

A shared embedded store (`sharing/`) is opened by one process, its owner. Tasks are kept for that
process only: a peer's task calls raise `TasksUnavailableError` (the MCP layer then answers
synchronously where the protocol lets it). The running work itself never leaves the process that
started it, so only state and cancel requests would ever need the owner's socket.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from server.errors import ConfigError
from server.memory.cached import CachedStorage
from server.memory.sharing import SharedStore
from server.memory.storage import MemoryStorage, WallClock, utc_now
from server.memory.surreal import SurrealMemoryStore
from server.memory.surreal.task_store import SurrealTaskStore
from server.memory.tasks import TaskRecord, TaskStatus, TaskStorage, TasksUnavailableError

TASKS_NEED_THE_OWNER: Final = (
    "Tasks need the memory-router process that holds the memory store, and this one shares another "
    "process's store. Call route_completion without a task here, or connect to that process "
    "(or point MEMORY_ROUTER_STORE at a SurrealDB server, ws://..., which every process opens itself)."
)


def _engine_of(store: object) -> SurrealMemoryStore | None:
    """The SurrealDB engine under a store (behind its cache, if any), when this process has it open."""
    inner = store.inner if isinstance(store, CachedStorage) else store
    return inner if isinstance(inner, SurrealMemoryStore) else None


def task_storage(store: MemoryStorage, *, clock: WallClock = utc_now) -> TaskStorage:
    """The tasks kept beside `store`'s memories."""
    engine = _engine_of(store)
    if engine is not None:
        return SurrealTaskStore(engine.connection, clock=clock)
    if isinstance(store, SharedStore):
        return OwnerTasks(store, clock)
    raise ConfigError(f"{type(store).__name__} keeps no tasks.")


class OwnerTasks:
    """The tasks of a shared embedded store, while this process owns it."""

    def __init__(self, shared: SharedStore, clock: WallClock) -> None:
        self._shared = shared
        self._clock = clock
        self._opened: tuple[SurrealMemoryStore, SurrealTaskStore] | None = None

    def _tasks(self) -> SurrealTaskStore:
        """The task store on the engine this process owns now (one per engine: it serializes writes)."""
        engine = _engine_of(self._shared.engine)
        if engine is None:
            raise TasksUnavailableError(TASKS_NEED_THE_OWNER)
        if self._opened is None or self._opened[0] is not engine:
            self._opened = (engine, SurrealTaskStore(engine.connection, clock=self._clock))
        return self._opened[1]

    async def create(
        self, user: str, session: str, task_id: str, era: str, ttl_ms: int, runner: str, message: str
    ) -> TaskRecord:
        return await self._tasks().create(user, session, task_id, era, ttl_ms, runner, message)

    async def get(self, user: str, task_id: str) -> TaskRecord | None:
        return await self._tasks().get(user, task_id)

    async def list(self, user: str, after: str | None, limit: int) -> Sequence[TaskRecord]:
        return await self._tasks().list(user, after, limit)

    async def count_running(self, user: str) -> int:
        return await self._tasks().count_running(user)

    async def progress(self, user: str, task_id: str, runner: str, message: str) -> TaskRecord | None:
        return await self._tasks().progress(user, task_id, runner, message)

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
        return await self._tasks().finish(user, task_id, runner, status, message, result=result, error=error)

    async def cancel(self, user: str, task_id: str, message: str) -> tuple[TaskRecord, bool] | None:
        return await self._tasks().cancel(user, task_id, message)

    async def fail_runner(self, runner: str, message: str) -> int:
        return await self._tasks().fail_runner(runner, message)

    async def sweep_expired(self) -> int:
        return await self._tasks().sweep_expired()
