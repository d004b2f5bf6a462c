"""Where each memory came from (`source`): kept by the store, across processes, and in older stores."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_clock import FakeWallClock

from server.config import Settings
from server.memory.sharing import SharedStore, open_shared
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope, Source, Via
from server.memory.store import open_cached, open_store
from server.memory.surreal import SurrealMemoryStore, queries
from server.memory.surreal.sdk import embedded_connection

ALICE = Owner("alice", "s1")
FROM_TOOL = Source(via=Via.TOOL, client="claude-desktop/1.2", session="s1")
FROM_ROUTE = Source(via=Via.ROUTE_COMPLETION, client="host/0.1", session="s1", model="openai/gpt-4o-mini")


@pytest.fixture
async def store() -> AsyncIterator[MemoryStorage]:
    async with open_store(Settings(store="mem://"), clock=FakeWallClock()) as opened:
        yield opened


async def test_a_source_comes_back_from_put_get_list_and_forget(store: MemoryStorage) -> None:
    recorded = await store.put(ALICE, Scope.USER, "tea", key="drink", source=FROM_TOOL)
    keyless = await store.put(ALICE, Scope.SESSION, "a note", source=FROM_ROUTE)

    assert recorded.source == FROM_TOOL and keyless.source == FROM_ROUTE
    assert await store.get(ALICE, Scope.USER, "drink") == recorded
    assert await store.list(ALICE, Scope.USER) == [recorded]
    assert await store.list(ALICE, Scope.SESSION) == [keyless]
    assert await store.forget_key(ALICE, Scope.USER, "drink") == recorded
    assert await store.forget(ALICE, Scope.SESSION, keyless.handle) == keyless


async def test_recording_again_replaces_the_source_and_no_source_reads_as_none(store: MemoryStorage) -> None:
    await store.put(ALICE, Scope.USER, "tea", key="drink", source=FROM_TOOL)
    again = await store.put(ALICE, Scope.USER, "coffee", key="drink", source=FROM_ROUTE)
    bare = await store.put(ALICE, Scope.USER, "no provenance", key="bare")

    assert again.source == FROM_ROUTE
    assert (await store.get(ALICE, Scope.USER, "drink")) == again
    assert bare.source is None and (await store.get(ALICE, Scope.USER, "bare")) == bare


async def test_restore_keeps_the_records_source(store: MemoryStorage) -> None:
    original = await store.put(ALICE, Scope.USER, "tea", key="drink", source=FROM_ROUTE)
    await store.forget(ALICE, Scope.USER, original.handle)

    restored = await store.restore(ALICE, Scope.USER, original)

    assert restored == original
    assert await store.list(ALICE, Scope.USER) == [original]


async def test_restore_many_keeps_each_records_source(tmp_path: Path) -> None:
    settings = Settings(store="mem://")
    async with open_cached(settings, "mem://") as store:
        engine = store.inner
        assert isinstance(engine, SurrealMemoryStore)
        first = await store.put(ALICE, Scope.USER, "tea", key="drink", source=FROM_TOOL)
        second = await store.put(ALICE, Scope.USER, "a note", source=None)
        copied = [r.model_copy(update={"content": r.content + "!"}) for r in (first, second)]
        await store.forget(ALICE, Scope.USER, second.handle)

        assert await engine.restore_many(ALICE, Scope.USER, copied) == 2

        assert await engine.list(ALICE, Scope.USER) == copied[::-1]
        assert await engine.count(ALICE, Scope.USER) == 2


async def test_a_source_crosses_between_a_peer_and_the_owner(tmp_path: Path) -> None:
    settings = Settings(store="mem://")
    opener = lambda: open_cached(settings, "mem://")  # noqa: E731
    async with (
        open_shared(tmp_path / "store", opener) as owner,
        open_shared(tmp_path / "store", opener) as peer,
    ):
        assert isinstance(owner, SharedStore) and owner.is_owner and not peer.is_owner
        recorded = await peer.put(ALICE, Scope.USER, "tea", key="drink", source=FROM_ROUTE)

        assert recorded.source == FROM_ROUTE
        assert await owner.get(ALICE, Scope.USER, "drink") == recorded
        assert await peer.list(ALICE, Scope.USER) == [recorded]
        assert await peer.search(ALICE, Scope.USER, "drink", 5) == await owner.search(
            ALICE, Scope.USER, "drink", 5
        )
        restored = await peer.restore(ALICE, Scope.USER, recorded.model_copy(update={"content": "milk"}))
        assert restored.source == FROM_ROUTE
        assert await peer.forget_key(ALICE, Scope.USER, "drink") == restored


def _without_source(schema: str) -> str:
    """The schema as it was before sources were kept."""
    return "\n".join(line for line in schema.splitlines() if " source" not in line)


async def test_a_store_written_before_sources_were_kept_still_reads_and_takes_sources(
    tmp_path: Path,
) -> None:
    url = f"surrealkv://{tmp_path / 'store'}"
    settings = Settings(store=url)
    db = embedded_connection(url)
    await db.connect()
    try:
        await db.use(settings.store_namespace, settings.store_database)
        await db.query_raw(_without_source(queries.SCHEMA), {})
        old = await SurrealMemoryStore(db).put(ALICE, Scope.USER, "tea", key="drink", source=FROM_TOOL)
    finally:
        await db.close()
    assert old.source == FROM_TOOL  # what put answered; the old schema had nowhere to keep it

    async with open_store(settings) as store:
        read = await store.get(ALICE, Scope.USER, "drink")
        assert read is not None and read.source is None
        assert read.model_dump(exclude={"source"}) == old.model_dump(exclude={"source"})
        assert await store.list(ALICE, Scope.USER) == [read]
        newer = await store.put(ALICE, Scope.USER, "a fact with a source", key="new", source=FROM_TOOL)
        assert await store.get(ALICE, Scope.USER, "new") == newer
        assert [record for record, _ in await store.search(ALICE, Scope.USER, "tea", 3)] == [read]


async def test_a_forget_is_logged_with_user_scope_key_and_source(
    store: MemoryStorage, caplog: pytest.LogCaptureFixture
) -> None:
    await store.put(ALICE, Scope.USER, "tea", key="drink", source=FROM_TOOL)

    with caplog.at_level(logging.INFO, logger="server.memory"):
        await store.forget_key(ALICE, Scope.USER, "drink")
        await store.forget_key(ALICE, Scope.USER, "never recorded")

    [message] = [r.getMessage() for r in caplog.records if "Forgot" in r.getMessage()]
    assert "'alice'" in message and "user memory" in message and "'drink'" in message
    assert "tool" in message and "claude-desktop/1.2" in message


def test_a_record_without_a_source_field_validates_as_before() -> None:
    data = {
        "handle": "h",
        "scope": "user",
        "key": "k",
        "content": "c",
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    assert MemoryRecord.model_validate(data).source is None
