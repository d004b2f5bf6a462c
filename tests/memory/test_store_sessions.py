"""Session memories expire after the session has been idle longer than the TTL (injected clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from fake_clock import FakeWallClock

from server.config import Settings
from server.memory.storage import MemoryRecord, Owner, Scope
from server.memory.store import open_engine
from server.memory.surreal import SurrealMemoryStore

TTL = 3600.0
ALICE = Owner("alice", "s1")
ALICE_LATER = Owner("alice", "s2")


@pytest.fixture
def clock() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture
async def store(clock: FakeWallClock) -> AsyncIterator[SurrealMemoryStore]:
    settings = Settings(store="mem://", session_ttl_seconds=TTL)
    async with open_engine(settings, "mem://", clock=clock) as opened:
        yield opened


async def test_session_memories_vanish_after_the_idle_ttl(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    await store.put(ALICE, Scope.SESSION, "working on the report", key="task")
    await store.put(ALICE, Scope.SESSION, "a note")
    durable = await store.put(ALICE, Scope.USER, "durable", key="name")

    clock.advance(TTL + 1)

    assert await store.get(ALICE, Scope.SESSION, "task") is None
    assert await store.list(ALICE, Scope.SESSION) == []
    assert await store.count(ALICE, Scope.SESSION) == 0
    assert await store.list(ALICE, Scope.USER) == [durable]


async def test_activity_keeps_a_session_alive(store: SurrealMemoryStore, clock: FakeWallClock) -> None:
    await store.put(ALICE, Scope.SESSION, "one", key="a")
    for _ in range(5):
        clock.advance(TTL * 0.9)
        assert len(await store.list(ALICE, Scope.SESSION)) == 1

    clock.advance(TTL * 0.9)
    await store.put(ALICE, Scope.SESSION, "two", key="b")
    clock.advance(TTL * 0.9)

    assert [r.key for r in await store.list(ALICE, Scope.SESSION)] == ["b", "a"]


async def test_an_expired_session_starts_empty_when_written(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    await store.put(ALICE, Scope.SESSION, "old", key="a")
    await store.put(ALICE, Scope.SESSION, "old note")
    clock.advance(TTL + 1)

    fresh = await store.put(ALICE, Scope.SESSION, "new", key="b")

    assert await store.list(ALICE, Scope.SESSION) == [fresh]
    assert await store.count(ALICE, Scope.SESSION) == 1


async def test_forget_in_an_expired_session_finds_nothing(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    record = await store.put(ALICE, Scope.SESSION, "old", key="a")
    clock.advance(TTL + 1)

    assert await store.forget(ALICE, Scope.SESSION, record.handle) is None
    assert await store.forget_key(ALICE, Scope.SESSION, "a") is None


async def test_sweep_removes_sessions_never_seen_again(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    for i in range(3):
        await store.put(Owner(f"user{i}", "gone"), Scope.SESSION, "old", key="a")
    clock.advance(TTL / 2)
    await store.put(ALICE, Scope.SESSION, "recent", key="a")
    clock.advance(TTL / 2 + 1)

    assert await store.sweep_expired_sessions() == 3
    assert await store.sweep_expired_sessions() == 0
    assert await store.list_sessions("user0") == []
    assert await store.list_sessions("alice") == ["s1"]


async def test_list_sessions_names_the_users_live_sessions(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    await store.put(ALICE, Scope.SESSION, "first", key="a")
    clock.advance(TTL / 2)
    await store.put(ALICE_LATER, Scope.SESSION, "second", key="a")
    await store.put(Owner("bob", "b1"), Scope.SESSION, "bob's", key="a")
    await store.put(Owner("alice2", "x"), Scope.SESSION, "prefix neighbour", key="a")

    assert sorted(await store.list_sessions("alice")) == ["s1", "s2"]
    clock.advance(TTL / 2 + 1)
    assert await store.list_sessions("alice") == ["s2"]


async def test_user_memories_never_expire(store: SurrealMemoryStore, clock: FakeWallClock) -> None:
    durable = await store.put(ALICE, Scope.USER, "durable", key="name")
    clock.advance(TTL * 1000)

    assert await store.sweep_expired_sessions() == 0
    assert await store.get(ALICE_LATER, Scope.USER, "name") == durable


async def test_restoring_old_session_records_counts_as_activity_now(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    old = clock.now - timedelta(days=30)
    record = MemoryRecord(
        handle="x", scope=Scope.SESSION, key="a", content="old", created_at=old, updated_at=old
    )

    restored = await store.restore(ALICE, Scope.SESSION, record)
    clock.advance(TTL / 2)

    assert await store.list(ALICE, Scope.SESSION) == [restored]
    assert restored.updated_at == old
