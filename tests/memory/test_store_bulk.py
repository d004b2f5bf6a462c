"""Bulk import (`restore_many`): the same entries as one `restore` per record, in far fewer commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.config import Settings
from server.errors import MemoryInputError
from server.memory.sharing import open_shared
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope
from server.memory.store import open_cached, open_engine, open_store
from server.memory.surreal import SurrealMemoryStore
from server.memory.surreal.ids import encode_handle
from server.memory.surreal.store import RESTORE_BATCH

ALICE = Owner("alice", "s1")
START = datetime(2024, 3, 1, tzinfo=UTC)


def record(i: int, *, key: str | None = None, handle: str | None = None, content: str = "") -> MemoryRecord:
    return MemoryRecord(
        handle=handle or f"elsewhere-{i}",
        scope=Scope.USER,
        key=key,
        content=content or f"fact {i}",
        created_at=START + timedelta(seconds=i),
        updated_at=START + timedelta(seconds=i, milliseconds=500),
    )


def mixed(count: int) -> list[MemoryRecord]:
    """Keyed records, keyless ones from elsewhere, and keyless ones with a handle of ours."""
    ours = (ALICE.user, "user", "", "n", "request-7")
    return [
        record(i, key=f"k{i}") if i % 3 == 0 else record(i, handle=encode_handle(ours) if i == 1 else None)
        for i in range(count)
    ]


@pytest.fixture
async def store() -> AsyncIterator[SurrealMemoryStore]:
    async with open_engine(Settings(store="mem://", max_memories=20), "mem://") as opened:
        yield opened


async def test_restore_many_stores_what_one_restore_per_record_would_and_again_changes_nothing(
    store: SurrealMemoryStore,
) -> None:
    records = mixed(12)
    async with open_engine(Settings(store="mem://"), "mem://") as one_by_one:
        for r in records:
            await one_by_one.restore(ALICE, Scope.USER, r)
        expected = await one_by_one.list(ALICE, Scope.USER)

    assert await store.restore_many(ALICE, Scope.USER, records) == 12
    assert await store.list(ALICE, Scope.USER) == expected
    assert await store.restore_many(ALICE, Scope.USER, records) == 12
    assert await store.list(ALICE, Scope.USER) == expected
    assert await store.count(ALICE, Scope.USER) == 12


async def test_restore_many_across_transactions_lists_everything_newest_first() -> None:
    count = RESTORE_BATCH + 7
    async with open_engine(Settings(store="mem://"), "mem://") as store:
        assert (
            await store.restore_many(ALICE, Scope.USER, [record(i, key=f"k{i}") for i in range(count)])
            == count
        )
        listed = await store.list(ALICE, Scope.USER)
        assert await store.count(ALICE, Scope.USER) == count
    assert [r.key for r in listed] == [f"k{i}" for i in reversed(range(count))]


async def test_a_record_repeated_in_one_import_is_one_entry_the_last_one(store: SurrealMemoryStore) -> None:
    records = [record(1, key="drink", content="tea"), record(2, key="drink", content="coffee")]

    assert await store.restore_many(ALICE, Scope.USER, records) == 1

    assert [r.content for r in await store.list(ALICE, Scope.USER)] == ["coffee"]
    assert await store.count(ALICE, Scope.USER) == 1


async def test_restore_many_past_the_limit_is_refused_but_replacing_existing_keys_is_not(
    store: SurrealMemoryStore,
) -> None:
    await store.restore_many(ALICE, Scope.USER, [record(i, key=f"k{i}") for i in range(20)])

    with pytest.raises(MemoryInputError, match=r"limit of 20 .*MEMORY_ROUTER_MAX_MEMORIES"):
        await store.restore_many(ALICE, Scope.USER, [record(20, key="one more")])
    replaced = [record(i, key=f"k{i}", content="newer") for i in range(20)]
    assert await store.restore_many(ALICE, Scope.USER, replaced) == 20

    assert await store.count(ALICE, Scope.USER) == 20
    assert {r.content for r in await store.list(ALICE, Scope.USER)} == {"newer"}


@pytest.mark.parametrize(
    "bad",
    [record(5, key="k" * 300), record(5, content="nul\x00"), record(5, content="x" * 20_000)],
    ids=["long key", "NUL", "large value"],
)
async def test_one_invalid_record_refuses_the_whole_import_before_anything_is_written(
    store: SurrealMemoryStore, bad: MemoryRecord
) -> None:
    with pytest.raises(MemoryInputError):
        await store.restore_many(ALICE, Scope.USER, [*mixed(5), bad])
    assert await store.count(ALICE, Scope.USER) == 0


async def test_restore_many_in_session_scope_fills_that_session_only(store: SurrealMemoryStore) -> None:
    assert await store.restore_many(ALICE, Scope.SESSION, mixed(4)) == 4

    assert await store.count(ALICE, Scope.SESSION) == 4
    assert await store.count(Owner("alice", "s2"), Scope.SESSION) == 0
    assert await store.count(ALICE, Scope.USER) == 0
    assert await store.list_sessions("alice") == ["s1"]


async def test_a_peer_imports_through_the_owner_in_parts_with_the_same_result(tmp_path: Path) -> None:
    records = mixed(30)
    settings = Settings(store="mem://")
    opener = lambda: open_cached(settings, "mem://")  # noqa: E731
    async with (
        open_shared(tmp_path / "store", opener) as owner,
        open_shared(tmp_path / "store", opener) as peer,
    ):
        stores: tuple[MemoryStorage, ...] = (owner, peer)
        assert await peer.restore_many(ALICE, Scope.USER, records) == 30
        assert await peer.restore_many(ALICE, Scope.USER, records) == 30
        assert [await s.count(ALICE, Scope.USER) for s in stores] == [30, 30]
        assert await peer.list(ALICE, Scope.USER) == await owner.list(ALICE, Scope.USER)
        with pytest.raises(MemoryInputError, match="NUL"):
            await peer.restore_many(ALICE, Scope.USER, [record(99, content="\x00")])


async def test_an_embedded_store_on_disk_imports_in_bulk_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(store=f"surrealkv://{tmp_path / 'store'}")
    async with open_store(settings) as store:
        assert await store.restore_many(ALICE, Scope.USER, mixed(50)) == 50
    async with open_store(settings) as store:
        assert await store.count(ALICE, Scope.USER) == 50
        assert len(await store.list(ALICE, Scope.USER)) == 50
