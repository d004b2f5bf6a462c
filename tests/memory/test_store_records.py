"""SurrealMemoryStore on the embedded in-memory engine: records, keys, owners, limits, restore."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from fake_clock import FakeWallClock

from server.config import Settings
from server.errors import MemoryInputError
from server.memory.storage import MemoryRecord, Owner, RecordStorage, Scope
from server.memory.store import open_engine, open_store
from server.memory.surreal import SurrealMemoryStore
from server.memory.surreal.ids import decode_handle, encode_handle
from server.memory.surreal.store import LIST_PAGE

ALICE = Owner("alice", "s1")
BOB = Owner("bob", "s1")
ALICE_OTHER_SESSION = Owner("alice", "s2")

NASTY_KEYS = [
    "it's",
    'say "hi"',
    "a:b:c",
    "memory:x",
    "⟩",
    "⟨x⟩",
    "a)b",
    "`tick`",
    "12345",
    "0",
    '"; DELETE memory; --',
    "'); REMOVE TABLE memory; --",
    "$uid",
    "[1, 2]",
    "{}",
    "NONE",
    " leading and trailing ",
    "line\nbreak\ttab",
    "🧠 emoji ✨",
    "\x01\x02",
    "k" * 256,
]


@pytest.fixture
def clock() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture
async def store(clock: FakeWallClock) -> AsyncIterator[SurrealMemoryStore]:
    async with open_engine(Settings(store="mem://", max_memories=20), "mem://", clock=clock) as opened:
        yield opened


async def test_keyed_put_replaces_and_keyless_puts_accumulate(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    first = await store.put(ALICE, Scope.USER, "tea", key="drink")
    clock.advance()
    second = await store.put(ALICE, Scope.USER, "coffee", key="drink")
    clock.advance()
    await store.put(ALICE, Scope.USER, "likes hiking")
    await store.put(ALICE, Scope.USER, "likes hiking")

    assert second.handle == first.handle
    assert second.created_at == first.created_at
    assert second.updated_at == first.updated_at + timedelta(seconds=1)
    records = await store.list(ALICE, Scope.USER)
    assert [r.content for r in records] == ["likes hiking", "likes hiking", "coffee"]
    assert len({r.handle for r in records}) == 3
    assert await store.count(ALICE, Scope.USER) == 3


async def test_a_keyless_put_repeated_with_its_request_id_lands_on_the_same_entry(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    first = await store.put(ALICE, Scope.SESSION, "said once", request_id="req-1")
    clock.advance()
    again = await store.put(ALICE, Scope.SESSION, "said once", request_id="req-1")
    other = await store.put(ALICE, Scope.SESSION, "said once", request_id="req-2")

    assert again.handle == first.handle != other.handle
    assert again.created_at == first.created_at
    await store.put(BOB, Scope.SESSION, "said once", request_id="req-1")
    assert await store.count(ALICE, Scope.SESSION) == 2 == 1 + await store.count(BOB, Scope.SESSION)
    assert await store.forget(ALICE, Scope.SESSION, first.handle) == again


async def test_get_returns_the_record_with_utc_timestamps(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    put = await store.put(ALICE, Scope.USER, "blue", key="colour")

    got = await store.get(ALICE, Scope.USER, "colour")

    assert got == put
    assert got.created_at == clock.now
    assert got.created_at.utcoffset() == timedelta(0)


async def test_fifty_concurrent_puts_of_one_key_leave_one_entry(store: SurrealMemoryStore) -> None:
    values = [f"value {i}" for i in range(50)]

    async with anyio.create_task_group() as tg:
        for value in values:
            tg.start_soon(store.put, ALICE, Scope.USER, value, "contended")

    records = await store.list(ALICE, Scope.USER)
    assert len(records) == 1
    assert records[0].content in values
    assert (await store.get(ALICE, Scope.USER, "contended")) == records[0]
    assert await store.count(ALICE, Scope.USER) == 1


@pytest.mark.parametrize("key", NASTY_KEYS)
async def test_nasty_keys_round_trip_and_touch_nothing_else(store: SurrealMemoryStore, key: str) -> None:
    bystander = await store.put(ALICE, Scope.USER, "bystander", key="plain")
    bobs = await store.put(BOB, Scope.USER, "bob's", key=key)

    put = await store.put(ALICE, Scope.USER, f"value of {key}", key=key)

    assert put.key == key
    assert (await store.get(ALICE, Scope.USER, key)) == put
    assert {r.key for r in await store.list(ALICE, Scope.USER)} == {key, "plain"}
    forgotten = await store.forget_key(ALICE, Scope.USER, key)
    assert forgotten == put
    assert await store.get(ALICE, Scope.USER, key) is None
    assert await store.list(ALICE, Scope.USER) == [bystander]
    assert await store.list(BOB, Scope.USER) == [bobs]


async def test_handles_of_another_user_or_session_are_not_found(store: SurrealMemoryStore) -> None:
    user_fact = await store.put(ALICE, Scope.USER, "durable", key="k")
    session_fact = await store.put(ALICE, Scope.SESSION, "working", key="k")
    keyless = await store.put(ALICE, Scope.SESSION, "note")

    for handle in (user_fact.handle, session_fact.handle, keyless.handle):
        assert await store.forget(BOB, Scope.USER, handle) is None
        assert await store.forget(BOB, Scope.SESSION, handle) is None
    assert await store.forget(ALICE_OTHER_SESSION, Scope.SESSION, session_fact.handle) is None
    assert await store.forget(ALICE_OTHER_SESSION, Scope.SESSION, keyless.handle) is None
    assert await store.forget(ALICE, Scope.USER, session_fact.handle) is None
    assert await store.get(BOB, Scope.USER, "k") is None
    assert await store.get(ALICE_OTHER_SESSION, Scope.SESSION, "k") is None
    assert await store.forget_key(ALICE_OTHER_SESSION, Scope.SESSION, "k") is None
    assert await store.list(ALICE_OTHER_SESSION, Scope.SESSION) == []
    assert await store.list(BOB, Scope.USER) == []

    assert len(await store.list(ALICE, Scope.SESSION)) == 2
    assert await store.list(ALICE, Scope.USER) == [user_fact]
    # User scope ignores the session.
    assert await store.get(ALICE_OTHER_SESSION, Scope.USER, "k") == user_fact


@pytest.mark.parametrize(
    "handle",
    [
        "",
        "m1.",
        "m1.!!!",
        "m1.W10",  # []
        "m1.WyJhbGljZSIsInVzZXIiLCIiLCJrIl0",  # four parts
        "m1.WyJhbGljZSIsInVzZXIiLCIiLCJ4IiwiayJd",  # unknown kind
        "m1.WyJhbGljZSIsInVzZXIiLCIiLCJrIiwxXQ",  # a number for the key
        "memory:1",
        "k",
    ],
)
async def test_malformed_handles_are_simply_not_found(store: SurrealMemoryStore, handle: str) -> None:
    await store.put(ALICE, Scope.USER, "x", key="k")

    assert await store.forget(ALICE, Scope.USER, handle) is None
    assert await store.count(ALICE, Scope.USER) == 1


async def test_forget_by_handle_removes_exactly_that_entry(store: SurrealMemoryStore) -> None:
    first = await store.put(ALICE, Scope.USER, "one")
    second = await store.put(ALICE, Scope.USER, "two")
    keyed = await store.put(ALICE, Scope.USER, "three", key="k")

    assert await store.forget(ALICE, Scope.USER, first.handle) == first
    assert await store.forget(ALICE, Scope.USER, first.handle) is None
    assert await store.forget(ALICE, Scope.USER, keyed.handle) == keyed
    assert await store.list(ALICE, Scope.USER) == [second]
    assert await store.count(ALICE, Scope.USER) == 1


async def test_forget_unknown_key_reports_nothing_found(store: SurrealMemoryStore) -> None:
    assert await store.forget_key(ALICE, Scope.USER, "never recorded") is None
    assert await store.count(ALICE, Scope.USER) == 0


async def test_list_is_newest_first_with_a_limit(store: SurrealMemoryStore, clock: FakeWallClock) -> None:
    for i in range(5):
        await store.put(ALICE, Scope.USER, f"v{i}", key=f"k{i}")
        clock.advance()
    await store.put(ALICE, Scope.USER, "v1 again", key="k1")

    assert [r.key for r in await store.list(ALICE, Scope.USER)] == ["k1", "k4", "k3", "k2", "k0"]
    assert [r.key for r in await store.list(ALICE, Scope.USER, limit=2)] == ["k1", "k4"]
    assert await store.list(ALICE, Scope.USER, limit=0) == []


async def test_key_and_value_limits_are_clear_errors(store: SurrealMemoryStore) -> None:
    with pytest.raises(MemoryInputError, match="MEMORY_ROUTER_MAX_KEY_CHARS"):
        await store.put(ALICE, Scope.USER, "v", key="k" * 257)
    with pytest.raises(MemoryInputError, match="must not be empty"):
        await store.put(ALICE, Scope.USER, "v", key="")
    with pytest.raises(MemoryInputError, match="MEMORY_ROUTER_MAX_VALUE_BYTES"):
        await store.put(ALICE, Scope.USER, "é" * (8 * 1024 + 1), key="big")
    await store.put(ALICE, Scope.USER, "x" * 16 * 1024, key="exactly the limit")
    assert await store.count(ALICE, Scope.USER) == 1


async def test_record_count_limit_applies_per_owner_to_new_entries_only(store: SurrealMemoryStore) -> None:
    for i in range(20):
        await store.put(ALICE, Scope.USER, "v", key=f"k{i}")

    with pytest.raises(MemoryInputError, match="already has 20 user memories"):
        await store.put(ALICE, Scope.USER, "one too many", key="new")
    with pytest.raises(MemoryInputError, match="MEMORY_ROUTER_MAX_MEMORIES"):
        await store.put(ALICE, Scope.USER, "keyless too")
    await store.put(ALICE, Scope.USER, "replacing is fine", key="k3")
    await store.put(ALICE, Scope.SESSION, "another scope has its own count", key="new")
    await store.put(BOB, Scope.USER, "another user too", key="new")
    await store.forget_key(ALICE, Scope.USER, "k0")
    await store.put(ALICE, Scope.USER, "room again", key="new")
    assert await store.count(ALICE, Scope.USER) == 20


async def test_restore_is_idempotent_and_keeps_timestamps(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    created = datetime(2025, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    exported = [
        MemoryRecord(
            handle="m1.anything",
            scope=Scope.USER,
            key="drink",
            content="tea",
            created_at=created,
            updated_at=created + timedelta(days=1),
        ),
        MemoryRecord(
            handle=encode_handle(["carol", "user", "", "n", "ab" * 16]),
            scope=Scope.USER,
            key=None,
            content="keyless",
            created_at=created,
            updated_at=created + timedelta(days=2),
        ),
        MemoryRecord(
            handle="some-other-backend-7",
            scope=Scope.USER,
            key=None,
            content="foreign",
            created_at=created,
            updated_at=created + timedelta(days=3),
        ),
    ]

    first = [await store.restore(ALICE, Scope.USER, r) for r in exported]
    after_first = await store.list(ALICE, Scope.USER)
    clock.advance(3600)
    second = [await store.restore(ALICE, Scope.USER, r) for r in exported]

    assert second == first
    assert await store.list(ALICE, Scope.USER) == after_first
    assert [r.content for r in after_first] == ["foreign", "keyless", "tea"]
    assert first[0].created_at == created
    assert first[0].updated_at == created + timedelta(days=1)
    assert decode_handle(first[1].handle) == ("alice", "user", "", "n", "ab" * 16)
    assert await store.count(ALICE, Scope.USER) == 3


async def test_restore_of_a_keyed_record_replaces_the_entry_under_its_key(store: SurrealMemoryStore) -> None:
    await store.put(ALICE, Scope.USER, "coffee", key="drink")
    old = datetime(2025, 1, 1, tzinfo=UTC)
    record = MemoryRecord(
        handle="ignored", scope=Scope.USER, key="drink", content="tea", created_at=old, updated_at=old
    )

    restored = await store.restore(ALICE, Scope.USER, record)

    assert await store.list(ALICE, Scope.USER) == [restored]
    assert restored.content == "tea"
    assert restored.updated_at == old


async def test_long_listings_are_complete_and_ordered_across_pages(clock: FakeWallClock) -> None:
    async with open_store(Settings(store="mem://"), clock=clock) as store:
        await _long_listing(store, clock)


async def _long_listing(store: RecordStorage, clock: FakeWallClock) -> None:
    many = Owner("many", "s1")
    for i in range(LIST_PAGE + 50):
        await store.restore(
            many,
            Scope.SESSION,
            MemoryRecord(
                handle=f"import-{i}",
                scope=Scope.SESSION,
                key=None,
                content=str(i),
                created_at=clock.now,
                # Pairs share a timestamp, so pages also break between equal times.
                updated_at=clock.now + timedelta(seconds=i // 2),
            ),
        )

    everything = await store.list(many, Scope.SESSION)
    some = await store.list(many, Scope.SESSION, limit=LIST_PAGE + 3)

    assert len(everything) == LIST_PAGE + 50
    assert len({r.handle for r in everything}) == LIST_PAGE + 50
    assert [r.updated_at for r in everything] == sorted((r.updated_at for r in everything), reverse=True)
    assert some == everything[: LIST_PAGE + 3]


async def test_users_and_sessions_with_nul_are_stored_apart_from_look_alikes(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    # "\x01\x02" is how a NUL is written inside record ids: the two owners must not meet.
    nul_owner = Owner("al\x00ice", "s\x00")
    escaped_owner = Owner("al\x01\x02ice", "s\x01\x02")
    record = await store.put(nul_owner, Scope.SESSION, "nul owner", key="k")
    await store.put(escaped_owner, Scope.SESSION, "other owner", key="k")

    assert await store.list(nul_owner, Scope.SESSION) == [record]
    assert [r.content for r in await store.list(escaped_owner, Scope.SESSION)] == ["other owner"]
    assert await store.list_sessions("al\x00ice") == ["s\x00"]
    assert await store.forget(escaped_owner, Scope.SESSION, record.handle) is None
    assert await store.forget(nul_owner, Scope.SESSION, record.handle) == record
    clock.advance(48 * 3600)
    assert await store.sweep_expired_sessions() == 2


@pytest.mark.parametrize(("key", "value"), [("nul\x00key", "v"), ("k", "nul\x00value")])
async def test_nul_in_keys_and_values_is_refused_clearly(
    store: SurrealMemoryStore, key: str, value: str
) -> None:
    with pytest.raises(MemoryInputError, match="NUL"):
        await store.put(ALICE, Scope.USER, value, key=key)
    assert await store.count(ALICE, Scope.USER) == 0


async def test_restore_many_upserts_in_batches_and_refuses_a_batch_over_the_limit(
    store: SurrealMemoryStore, clock: FakeWallClock
) -> None:
    at = clock.now
    records = [
        MemoryRecord(
            handle=f"h{i}", scope=Scope.USER, key=f"k{i}", content=f"v{i}", created_at=at, updated_at=at
        )
        for i in range(25)
    ]
    assert await store.restore_many(ALICE, Scope.USER, records[:15], batch=4) == 15
    assert await store.restore_many(ALICE, Scope.USER, records[:15], batch=4) == 15  # again: no new entries
    assert await store.count(ALICE, Scope.USER) == 15

    with pytest.raises(MemoryInputError, match="MEMORY_ROUTER_MAX_MEMORIES"):
        await store.restore_many(ALICE, Scope.USER, records[15:], batch=10)  # limit is 20

    assert await store.count(ALICE, Scope.USER) == 15
    assert len(await store.list(ALICE, Scope.USER)) == 15
