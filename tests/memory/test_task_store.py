"""The task store: owner-checked, conditional writes, leases, TTL (real embedded SurrealDB, fake clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from fake_clock import FakeWallClock

from server.config import Settings
from server.memory.sharing import open_shared
from server.memory.store import open_cached, open_store
from server.memory.task_storage import TASKS_NEED_THE_OWNER, task_storage
from server.memory.tasks import LEASE_SECONDS, RUNNER_LOST, TaskStatus, TaskStorage, TasksUnavailableError

HOUR_MS = 3_600_000


@pytest.fixture
def clock() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture
async def tasks(clock: FakeWallClock) -> AsyncIterator[TaskStorage]:
    async with open_store(Settings(store="mem://"), clock=clock) as store:
        yield task_storage(store, clock=clock)


async def test_a_task_is_found_only_by_its_user(tasks: TaskStorage) -> None:
    created = await tasks.create("alice", "s1", "t1", "modern", HOUR_MS, "r1", "Starting")

    assert created.status is TaskStatus.WORKING and created.status_message == "Starting"
    assert await tasks.get("alice", "t1") == created
    assert await tasks.get("bob", "t1") is None
    assert await tasks.cancel("bob", "t1", "no") is None
    assert await tasks.progress("bob", "t1", "r1", "no") is None
    assert [t.task_id for t in await tasks.list("bob", None, 10)] == []


async def test_progress_and_finish_belong_to_the_runner_of_a_working_task(tasks: TaskStorage) -> None:
    await tasks.create("alice", "s1", "t1", "legacy", HOUR_MS, "r1", "Starting")

    assert await tasks.progress("alice", "t1", "r2", "not mine") is None
    moved = await tasks.progress("alice", "t1", "r1", "12 characters")
    assert moved is not None and moved.status_message == "12 characters"
    done = await tasks.finish("alice", "t1", "r1", TaskStatus.COMPLETED, "Done.", result='{"x": 1}')

    assert done is not None and done.status is TaskStatus.COMPLETED and done.result == '{"x": 1}'
    assert await tasks.finish("alice", "t1", "r1", TaskStatus.FAILED, "late") is None
    assert await tasks.progress("alice", "t1", "r1", "late") is None


async def test_a_cancel_wins_over_a_late_result_and_reports_whether_it_cancelled(
    tasks: TaskStorage,
) -> None:
    await tasks.create("alice", "s1", "t1", "legacy", HOUR_MS, "r1", "Starting")

    cancelled = await tasks.cancel("alice", "t1", "Cancelled.")
    again = await tasks.cancel("alice", "t1", "Cancelled.")

    assert cancelled is not None and cancelled[1] and cancelled[0].status is TaskStatus.CANCELLED
    assert again is not None and not again[1]
    assert await tasks.finish("alice", "t1", "r1", TaskStatus.COMPLETED, "Done.") is None
    task = await tasks.get("alice", "t1")
    assert task is not None and task.status is TaskStatus.CANCELLED


async def test_a_cancel_is_never_undone_by_concurrent_progress_writes(tasks: TaskStorage) -> None:
    await tasks.create("alice", "s1", "t1", "legacy", HOUR_MS, "r1", "Starting")

    async with anyio.create_task_group() as tg:
        for n in range(40):
            tg.start_soon(tasks.progress, "alice", "t1", "r1", f"{n} characters")
            if n == 20:
                tg.start_soon(tasks.cancel, "alice", "t1", "Cancelled.")

    task = await tasks.get("alice", "t1")
    assert task is not None and task.status is TaskStatus.CANCELLED
    assert await tasks.progress("alice", "t1", "r1", "after the cancel") is None


async def test_a_task_whose_runner_stops_renewing_its_lease_fails_with_a_message(
    tasks: TaskStorage, clock: FakeWallClock
) -> None:
    await tasks.create("alice", "s1", "t1", "modern", HOUR_MS, "r1", "Starting")
    clock.advance(LEASE_SECONDS * 0.9)
    assert await tasks.progress("alice", "t1", "r1", "still here") is not None
    clock.advance(LEASE_SECONDS * 0.9)
    assert await tasks.count_running("alice") == 1

    clock.advance(LEASE_SECONDS)

    assert await tasks.count_running("alice") == 0
    task = await tasks.get("alice", "t1")
    assert task is not None and task.status is TaskStatus.FAILED and task.status_message == RUNNER_LOST
    assert await tasks.progress("alice", "t1", "r1", "back again") is None


async def test_a_stopping_runner_fails_only_its_own_working_tasks(tasks: TaskStorage) -> None:
    await tasks.create("alice", "s1", "mine", "modern", HOUR_MS, "r1", "Starting")
    await tasks.create("alice", "s1", "done", "modern", HOUR_MS, "r1", "Starting")
    await tasks.finish("alice", "done", "r1", TaskStatus.COMPLETED, "Done.")
    await tasks.create("bob", "s1", "theirs", "modern", HOUR_MS, "r2", "Starting")

    assert await tasks.fail_runner("r1", "Shut down.") == 1

    statuses = {
        (user, task_id): task.status
        for user, task_id in (("alice", "mine"), ("alice", "done"), ("bob", "theirs"))
        if (task := await tasks.get(user, task_id)) is not None
    }
    assert statuses == {
        ("alice", "mine"): TaskStatus.FAILED,
        ("alice", "done"): TaskStatus.COMPLETED,
        ("bob", "theirs"): TaskStatus.WORKING,
    }


async def test_tasks_past_their_ttl_are_gone_and_swept(tasks: TaskStorage, clock: FakeWallClock) -> None:
    await tasks.create("alice", "s1", "short", "legacy", 60_000, "r1", "Starting")
    await tasks.create("alice", "s1", "long", "legacy", HOUR_MS, "r1", "Starting")
    clock.advance(61)

    assert await tasks.get("alice", "short") is None
    assert [t.task_id for t in await tasks.list("alice", None, 10)] == ["long"]
    assert await tasks.sweep_expired() == 1
    assert await tasks.sweep_expired() == 0


async def test_listing_pages_after_a_task_id(tasks: TaskStorage) -> None:
    for task_id in ("a", "b", "c"):
        await tasks.create("alice", "s1", task_id, "legacy", HOUR_MS, "r1", "Starting")

    first = [t.task_id for t in await tasks.list("alice", None, 2)]
    rest = [t.task_id for t in await tasks.list("alice", first[-1], 2)]

    assert first == ["a", "b"] and rest == ["c"]


async def test_on_a_shared_embedded_store_the_owner_keeps_tasks_and_a_peer_says_it_cannot(
    tmp_path: Path,
) -> None:
    settings = Settings(store="mem://")
    opener = lambda: open_cached(settings, "mem://")  # noqa: E731
    store_dir = tmp_path / "store"
    async with open_shared(store_dir, opener) as owner, open_shared(store_dir, opener) as peer:
        created = await task_storage(owner).create("alice", "s1", "t1", "modern", HOUR_MS, "r1", "Go")

        assert await task_storage(owner).get("alice", "t1") == created
        with pytest.raises(TasksUnavailableError) as refused:
            await task_storage(peer).get("alice", "t1")
        assert str(refused.value) == TASKS_NEED_THE_OWNER
