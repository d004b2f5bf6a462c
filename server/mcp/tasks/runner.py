"""`TaskRunner`: runs tasks in the background of this process and keeps their state in the store.

Each task runs in the server's lifespan task group under its own cancel scope, so a cancel stops it at
once (an open provider stream is closed; the router shields memory writes, which land fully or not at
all). While it runs, a reporter writes its status message at most once per poll interval and renews
its lease; when the store says the task is no longer working (cancelled through another process,
failed for a lost lease), the reporter stops it. On shutdown every task still running here is failed
with a message, and a process that dies without shutting down loses its leases instead.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import anyio
from anyio.abc import TaskGroup

from server.config import Settings
from server.errors import MemoryRouterError, StoreError
from server.memory.tasks import LEASE_SECONDS, TaskRecord, TaskStatus, TaskStorage, TasksUnavailableError

logger = logging.getLogger(__name__)

SWEEP_EVERY_CREATES: Final = 100
HEARTBEAT_SECONDS: Final = LEASE_SECONDS / 4
CANCELLED_MESSAGE: Final = "Cancelled by the client."
SHUTDOWN_MESSAGE: Final = (
    "memory-router was shut down while this task ran, so its answer was lost. Call route_completion again."
)
INTERNAL_FAILURE: Final = (
    "memory-router failed while running this task (an internal error, logged on the server). Try again."
)


class TaskLimitError(MemoryRouterError):
    """The user already has the most running tasks allowed."""


@dataclass(frozen=True)
class Outcome:
    """How a task's work ended: its final status and message, and the stored result or error (JSON)."""

    status: TaskStatus
    message: str
    result: str | None = None
    error: str | None = None


class TaskProgress:
    """What a running task reports: the route's latest sentence and the characters received since."""

    def __init__(self) -> None:
        self._status = "Starting."
        self._characters = 0

    async def on_status(self, sentence: str) -> None:
        self._status = sentence
        self._characters = 0

    async def on_text(self, delta: str) -> None:
        self._characters += len(delta)

    @property
    def message(self) -> str:
        if not self._characters:
            return self._status
        return f"{self._status}: {self._characters:,} characters received so far."


Work = Callable[[TaskProgress], Awaitable[Outcome]]
Announce = Callable[[TaskRecord], Awaitable[None]]
"""Told the task once its work has ended, e.g. to send a status notification."""


class TaskRunner:
    """The tasks of this process; their records live in `store`, shared with every other process."""

    def __init__(self, store: TaskStorage, settings: Settings, task_group: TaskGroup) -> None:
        self.store = store
        self.id = secrets.token_hex(12)
        self.ttl_ms = int(settings.task_ttl_seconds * 1000)
        self.poll_ms = settings.task_poll_ms
        self.max_running = settings.max_running_tasks
        self._tg = task_group
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._ended: dict[str, anyio.Event] = {}
        self._creates = 0

    async def start(
        self,
        user: str,
        session: str,
        era: str,
        requested_ttl_ms: int | None,
        work: Work,
        announce: Announce | None = None,
    ) -> TaskRecord:
        """Create the task (durably, before anyone hears of it) and start its work."""
        if await self.store.count_running(user) >= self.max_running:
            raise TaskLimitError(
                f"{self.max_running} route_completion tasks are already running for you "
                f"(MEMORY_ROUTER_MAX_RUNNING_TASKS={self.max_running}); wait for one to finish, "
                "or cancel one with tasks/cancel."
            )
        ttl_ms = self.ttl_ms if requested_ttl_ms is None else max(1, min(requested_ttl_ms, self.ttl_ms))
        task_id = secrets.token_urlsafe(24)
        task = await self.store.create(user, session, task_id, era, ttl_ms, self.id, "Starting.")
        scope = self._scopes[task_id] = anyio.CancelScope()
        self._ended[task_id] = anyio.Event()
        self._tg.start_soon(self._run, task, scope, work, announce)
        await self._sweep_now_and_then()
        return task

    async def cancel(self, user: str, task_id: str) -> tuple[TaskRecord, bool] | None:
        """Mark the task cancelled in the store first, then stop its work if it runs here (a runner
        elsewhere stops at its next report)."""
        cancelled = await self.store.cancel(user, task_id, CANCELLED_MESSAGE)
        if cancelled is not None and cancelled[1] and task_id in self._scopes:
            self._scopes[task_id].cancel()
        return cancelled

    async def wait_until_ended(self, user: str, task_id: str) -> TaskRecord | None:
        """The task once it is terminal (or None once it is gone): woken at once for a task of this
        process, else by reading the store every poll interval."""
        while True:
            task = await self.store.get(user, task_id)
            if task is None or task.status.terminal:
                return task
            ended = self._ended.get(task_id)
            with anyio.move_on_after(self.poll_ms / 1000):
                await (ended.wait() if ended is not None else anyio.sleep_forever())

    async def _run(
        self, task: TaskRecord, scope: anyio.CancelScope, work: Work, announce: Announce | None
    ) -> None:
        progress = TaskProgress()
        outcome: Outcome | None = None  # stays None when cancelled: the store already says why
        try:
            with scope, anyio.move_on_after(task.ttl_ms / 1000) as ttl:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._report, task, progress, scope)
                    outcome = await work(progress)
                    tg.cancel_scope.cancel()
            if ttl.cancelled_caught:
                outcome = Outcome(
                    TaskStatus.FAILED,
                    f"The task ran longer than its time to live ({task.ttl_ms // 1000:,} s, "
                    "MEMORY_ROUTER_TASK_TTL_SECONDS) and was stopped.",
                )
        except Exception:  # the boundary of one background task: report it on the task, keep serving
            logger.exception("task %s failed", task.task_id)
            outcome = Outcome(TaskStatus.FAILED, INTERNAL_FAILURE)
        finally:
            self._scopes.pop(task.task_id, None)
        ended = None
        if outcome is not None:
            with anyio.CancelScope(shield=True):
                ended = await self._finish(task, outcome)
        self._ended.pop(task.task_id).set()
        if ended is not None and announce is not None:
            try:
                await announce(ended)
            except Exception:  # a courtesy to a client that may be gone; the store has the truth
                logger.debug("could not announce the end of task %s", task.task_id, exc_info=True)

    async def _finish(self, task: TaskRecord, outcome: Outcome) -> TaskRecord | None:
        try:
            return await self.store.finish(
                task.user,
                task.task_id,
                self.id,
                outcome.status,
                outcome.message,
                result=outcome.result,
                error=outcome.error,
            )
        except StoreError:
            logger.exception("could not record the end of task %s; its lease will fail it", task.task_id)
            return None

    async def _report(self, task: TaskRecord, progress: TaskProgress, scope: anyio.CancelScope) -> None:
        """Write the status message when it changed (at most once per poll interval), renew the lease
        at least every heartbeat, and stop the task when the store no longer has it working here."""
        written, since_write = task.status_message, 0.0
        interval = self.poll_ms / 1000
        while True:
            await anyio.sleep(interval)
            since_write += interval
            message = progress.message
            if message == written and since_write < HEARTBEAT_SECONDS:
                continue
            try:
                current = await self.store.progress(task.user, task.task_id, self.id, message)
            except StoreError:
                logger.warning("could not update task %s; trying again", task.task_id, exc_info=True)
                continue
            if current is None:
                scope.cancel()
                return
            written, since_write = message, 0.0

    async def _sweep_now_and_then(self) -> None:
        self._creates += 1
        if self._creates % SWEEP_EVERY_CREATES == 0:
            await sweep(self.store)


async def sweep(store: TaskStorage) -> None:
    """Remove expired tasks; housekeeping, so a failure is logged, never raised."""
    try:
        removed = await store.sweep_expired()
    except TasksUnavailableError:
        return  # a peer of a shared store: its owner sweeps
    except StoreError:
        logger.warning("sweeping expired tasks failed; the next sweep will try again", exc_info=True)
        return
    if removed:
        logger.info("Removed %d expired task(s).", removed)


@asynccontextmanager
async def open_task_runner(store: TaskStorage, settings: Settings) -> AsyncIterator[TaskRunner]:
    """A runner for the server's lifespan. On exit its running tasks stop and are failed with
    `SHUTDOWN_MESSAGE`."""
    await sweep(store)
    async with anyio.create_task_group() as tg:
        runner = TaskRunner(store, settings, tg)
        try:
            yield runner
        finally:
            tg.cancel_scope.cancel()
    with anyio.CancelScope(shield=True):
        try:
            stopped = await store.fail_runner(runner.id, SHUTDOWN_MESSAGE)
        except TasksUnavailableError:
            return  # a peer of a shared store never ran a task
        except StoreError:
            logger.warning("could not fail the tasks running at shutdown; their leases will", exc_info=True)
            return
    if stopped:
        logger.info("Failed %d running task(s) at shutdown.", stopped)
