"""`search` and the in-memory cache in front of the store: relevance per owner, and every change
seen at once, whichever process made it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from fake_clock import FakeWallClock
from mcp import Client
from stdio_servers import cli, record, serve

from server.config import Settings
from server.memory.cached import MAX_CACHED_OWNERS, CachedStorage
from server.memory.sharing import open_shared
from server.memory.storage import MemoryStorage, Owner, Scope
from server.memory.store import open_cached, open_store

ALICE = Owner("alice", "s1")
BOB = Owner("bob", "s1")
TTL = 3600.0


@pytest.fixture
def clock() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture
async def store(clock: FakeWallClock) -> AsyncIterator[MemoryStorage]:
    settings = Settings(store="mem://", session_ttl_seconds=TTL)
    async with open_store(settings, clock=clock) as opened:
        yield opened


async def keys_found(
    store: MemoryStorage, owner: Owner, query: str, scope: Scope = Scope.USER
) -> list[str | None]:
    return [r.key for r, _ in await store.search(owner, scope, query, 10)]


async def test_an_old_relevant_fact_is_found_among_three_hundred_newer_unrelated_ones(
    store: MemoryStorage, clock: FakeWallClock
) -> None:
    await store.put(ALICE, Scope.USER, "My dog is named Biscuit", key="pet")
    for i in range(300):
        clock.advance()
        await store.put(ALICE, Scope.USER, f"meeting {i} with the finance team about budget", key=f"m{i}")

    hits = await store.search(ALICE, Scope.USER, "What is my dog's name?", 5)

    assert [r.key for r, _ in hits] == ["pet"]
    assert hits[0][0].content == "My dog is named Biscuit" and hits[0][1] > 0
    assert await store.search(ALICE, Scope.USER, "astronomy telescopes", 5) == []
    assert await store.search(ALICE, Scope.USER, "the and of", 5) == []  # nothing but stop words


async def test_results_are_best_first_and_limited(store: MemoryStorage) -> None:
    await store.put(ALICE, Scope.USER, "coffee in the morning", key="a")
    await store.put(ALICE, Scope.USER, "coffee, black coffee, strong coffee", key="coffee")
    await store.put(ALICE, Scope.USER, "tea at night", key="b")

    hits = await store.search(ALICE, Scope.USER, "coffee", 10)

    assert [r.key for r, _ in hits] == ["coffee", "a"]
    assert hits[0][1] > hits[1][1]
    assert len(await store.search(ALICE, Scope.USER, "coffee", 1)) == 1
    assert await store.search(ALICE, Scope.USER, "coffee", 0) == []


async def test_other_users_facts_never_appear_nor_change_the_scores(clock: FakeWallClock) -> None:
    async def alices_hits(with_bob: bool) -> list[tuple[str | None, float]]:
        async with open_store(Settings(store="mem://"), clock=clock) as store:
            await store.put(ALICE, Scope.USER, "my dog Biscuit likes walks", key="dog")
            await store.put(ALICE, Scope.USER, "a walk in the park on sunday", key="walk")
            if with_bob:
                for i in range(40):
                    await store.put(BOB, Scope.USER, f"dog walks dog walks {i}", key=f"bob-{i}")
                await store.put(BOB, Scope.SESSION, "dog", key="dog")
            await store.put(Owner("alice", "other"), Scope.SESSION, "dog dog dog", key="s")
            return [(r.key, score) for r, score in await store.search(ALICE, Scope.USER, "dog walks", 10)]

    alone, beside_bob = await alices_hits(False), await alices_hits(True)

    assert [key for key, _ in beside_bob] == ["dog", "walk"]
    assert beside_bob == alone


async def test_session_search_sees_only_that_sessions_facts(store: MemoryStorage) -> None:
    await store.put(ALICE, Scope.SESSION, "drafting the quarterly report", key="task")
    await store.put(Owner("alice", "s2"), Scope.SESSION, "quarterly report for s2", key="task2")
    await store.put(ALICE, Scope.USER, "quarterly report preferences", key="user-fact")

    assert await keys_found(store, ALICE, "quarterly report", Scope.SESSION) == ["task"]
    assert await keys_found(store, ALICE, "quarterly report") == ["user-fact"]


async def test_a_change_shows_in_search_list_and_count_at_once(
    store: MemoryStorage, clock: FakeWallClock
) -> None:
    await store.put(ALICE, Scope.USER, "likes tea", key="drink")
    assert await keys_found(store, ALICE, "coffee") == []
    assert [r.key for r in await store.list(ALICE, Scope.USER, limit=5)] == ["drink"]
    assert await store.count(ALICE, Scope.USER) == 1

    clock.advance()
    coffee = await store.put(ALICE, Scope.USER, "likes coffee now", key="drink")
    assert await keys_found(store, ALICE, "coffee") == ["drink"]
    assert await keys_found(store, ALICE, "tea") == []
    assert await store.list(ALICE, Scope.USER, limit=5) == [coffee]

    clock.advance()
    note = await store.put(ALICE, Scope.USER, "coffee beans from Kenya")
    assert await store.list(ALICE, Scope.USER, limit=5) == [note, coffee]
    assert await store.count(ALICE, Scope.USER) == 2
    assert set(await keys_found(store, ALICE, "coffee")) == {"drink", None}

    await store.forget(ALICE, Scope.USER, note.handle)
    assert await keys_found(store, ALICE, "coffee") == ["drink"]
    assert await store.list(ALICE, Scope.USER, limit=5) == [coffee]
    assert await store.count(ALICE, Scope.USER) == 1

    restored = await store.restore(ALICE, Scope.USER, note)
    assert await store.list(ALICE, Scope.USER, limit=1) == [restored]
    assert await store.count(ALICE, Scope.USER) == 2

    clock.advance()
    await store.forget_key(ALICE, Scope.USER, "drink")
    assert await keys_found(store, ALICE, "coffee") == [None]
    assert await store.list(ALICE, Scope.USER, limit=5) == [restored]
    assert await store.count(ALICE, Scope.USER) == 1


async def test_a_short_listing_then_a_longer_one_are_both_complete(
    store: MemoryStorage, clock: FakeWallClock
) -> None:
    written = []
    for i in range(12):
        clock.advance()
        written.append(await store.put(ALICE, Scope.USER, f"fact {i}", key=f"k{i}"))
    newest_first = written[::-1]

    assert await store.list(ALICE, Scope.USER, limit=3) == newest_first[:3]
    assert await store.list(ALICE, Scope.USER, limit=20) == newest_first
    assert await store.list(ALICE, Scope.USER, limit=5) == newest_first[:5]
    assert await store.list(ALICE, Scope.USER) == newest_first
    assert await store.count(ALICE, Scope.USER) == 12


async def test_facts_recorded_at_the_same_instant_are_listed_in_the_stores_order(
    store: MemoryStorage, clock: FakeWallClock
) -> None:
    assert isinstance(store, CachedStorage)
    await store.put(ALICE, Scope.USER, "first", key="m")
    assert len(await store.list(ALICE, Scope.USER, limit=10)) == 1
    for key in ("z", "a", "k"):  # the clock does not move: the store orders them by key
        await store.put(ALICE, Scope.USER, key, key=key)
        assert await store.list(ALICE, Scope.USER, limit=10) == await store.inner.list(ALICE, Scope.USER)
    clock.advance()
    await store.put(ALICE, Scope.USER, "later", key="m")
    assert await store.list(ALICE, Scope.USER, limit=10) == await store.inner.list(ALICE, Scope.USER)
    assert (await store.list(ALICE, Scope.USER, limit=1))[0].content == "later"


async def test_a_refused_write_leaves_search_and_listing_as_they_were(clock: FakeWallClock) -> None:
    async with open_store(Settings(store="mem://", max_memories=1), clock=clock) as store:
        kept = await store.put(ALICE, Scope.USER, "likes tea", key="drink")
        assert await keys_found(store, ALICE, "tea") == ["drink"]
        with pytest.raises(Exception, match="MEMORY_ROUTER_MAX_MEMORIES"):
            await store.put(ALICE, Scope.USER, "tea again", key="other")

        assert await keys_found(store, ALICE, "tea") == ["drink"]
        assert await store.list(ALICE, Scope.USER, limit=5) == [kept]


async def test_session_facts_vanish_from_search_and_lists_after_the_idle_ttl(
    store: MemoryStorage, clock: FakeWallClock
) -> None:
    await store.put(ALICE, Scope.SESSION, "working on the report", key="task")
    assert await keys_found(store, ALICE, "report", Scope.SESSION) == ["task"]
    assert len(await store.list(ALICE, Scope.SESSION, limit=5)) == 1

    clock.advance(TTL + 1)

    assert await store.search(ALICE, Scope.SESSION, "report", 5) == []
    assert await store.list(ALICE, Scope.SESSION, limit=5) == []
    assert await store.count(ALICE, Scope.SESSION) == 0


async def test_reading_through_the_cache_keeps_a_session_alive(
    store: MemoryStorage, clock: FakeWallClock
) -> None:
    await store.put(ALICE, Scope.SESSION, "working on the report", key="task")
    for _ in range(5):
        clock.advance(TTL * 0.9)
        assert len(await store.list(ALICE, Scope.SESSION, limit=5)) == 1
        assert await keys_found(store, ALICE, "report", Scope.SESSION) == ["task"]
    assert isinstance(store, CachedStorage)
    assert len(await store.inner.list(ALICE, Scope.SESSION)) == 1  # the store saw the reads as activity


async def test_more_owners_than_the_cache_holds_each_find_their_own_facts(store: MemoryStorage) -> None:
    owners = [Owner(f"user{i}", "s") for i in range(MAX_CACHED_OWNERS + 5)]
    for owner in owners:
        await store.put(owner, Scope.USER, f"{owner.user} likes sailing", key="hobby")
    for owner in owners:
        [(found, _)] = await store.search(owner, Scope.USER, "sailing", 5)
        assert found.content == f"{owner.user} likes sailing"
    for owner in owners[:5]:
        await store.put(owner, Scope.USER, f"{owner.user} likes sailing and chess", key="hobby")
        [(found, _)] = await store.search(owner, Scope.USER, "chess", 5)
        assert found.content.endswith("chess")


async def test_writes_while_the_index_is_first_built_are_not_lost(store: MemoryStorage) -> None:
    for i in range(200):
        await store.put(ALICE, Scope.USER, f"older fact {i}", key=f"old-{i}")

    async def write(i: int) -> None:
        await store.put(ALICE, Scope.USER, f"zebra fact {i}", key=f"zebra-{i}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(store.search, ALICE, Scope.USER, "older", 5)
        for i in range(5):
            tg.start_soon(write, i)

    assert sorted(map(str, await keys_found(store, ALICE, "zebra"))) == [f"zebra-{i}" for i in range(5)]


# -- across processes -----------------------------------------------------------------------------


async def test_a_peers_writes_are_searchable_through_the_owner_and_the_peer(tmp_path: Path) -> None:
    opener = lambda: open_cached(Settings(store="mem://"), "mem://")  # noqa: E731
    async with (
        open_shared(tmp_path / "store", opener) as owner,
        open_shared(tmp_path / "store", opener) as peer,
    ):
        await owner.put(ALICE, Scope.USER, "allergic to peanuts", key="allergy")
        assert await keys_found(peer, ALICE, "peanut allergy") == ["allergy"]

        await peer.put(ALICE, Scope.USER, "allergic to peanuts and shellfish", key="allergy")
        assert await keys_found(owner, ALICE, "shellfish") == ["allergy"]
        assert await keys_found(peer, ALICE, "shellfish") == ["allergy"]

        await peer.forget_key(ALICE, Scope.USER, "allergy")
        assert await owner.search(ALICE, Scope.USER, "peanuts", 5) == []
        assert await owner.list(ALICE, Scope.USER, limit=5) == []


async def test_a_write_by_another_process_is_searchable_at_once(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    with anyio.fail_after(60):
        async with Client(serve(store_dir)) as client:  # this server process owns the store
            await record(client, "pet", "My dog is named Biscuit")
            async with open_store(Settings(store=f"surrealkv://{store_dir}", user="alice")) as store:
                assert await keys_found(store, Owner("alice", "x"), "dog name") == ["pet"]
                await record(client, "pet", "My cat is named Pixel")
                assert await keys_found(store, Owner("alice", "x"), "cat") == ["pet"]
                assert await store.search(Owner("alice", "x"), Scope.USER, "dog", 5) == []


async def test_an_import_by_a_cli_process_is_searchable_in_the_owner_at_once(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    exported = tmp_path / "facts.jsonl"
    line = {
        "scope": "user",
        "handle": "imported-1",
        "key": "pet",
        "content": "My dog is named Biscuit",
        "created_at": "2025-01-01T00:00:00+00:00",
        "updated_at": "2025-01-01T00:00:00+00:00",
        "user": "alice",
    }
    exported.write_text(json.dumps(line) + "\n")
    with anyio.fail_after(60):
        async with open_store(Settings(store=f"surrealkv://{store_dir}")) as store:  # this process owns it
            assert await store.search(ALICE, Scope.USER, "dog", 5) == []

            done = await anyio.to_thread.run_sync(lambda: cli(store_dir, "memory", "import", str(exported)))
            assert done.returncode == 0, done.stderr

            assert await keys_found(store, ALICE, "dog") == ["pet"]
            assert [r.key for r in await store.list(ALICE, Scope.USER, limit=5)] == ["pet"]
