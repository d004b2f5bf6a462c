"""Write conflicts reported by the engine are retried a bounded number of times, then reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from surrealdb import AsyncSurreal

from server.errors import StoreConflictError, StoreError
from server.memory.storage import Owner, Scope
from server.memory.surreal import SurrealMemoryStore
from server.memory.surreal.statements import MAX_ATTEMPTS

ALICE = Owner("alice", "s1")
CONFLICT = "Failed to commit transaction due to a read or write conflict. This transaction can be retried"


class ConflictingConnection:
    """A real embedded connection whose next `conflicts` transactions fail as conflicting."""

    def __init__(self, db: Any, conflicts: int) -> None:
        self.db = db
        self.conflicts = conflicts
        self.transactions = 0

    async def query_raw(self, query: str, params: dict[str, Any]) -> dict[str, Any]:
        if "BEGIN TRANSACTION" in query:
            self.transactions += 1
            if self.conflicts > 0:
                self.conflicts -= 1
                return {"result": [{"status": "ERR", "result": CONFLICT}]}
        result: dict[str, Any] = await self.db.query_raw(query, params)
        return result

    async def close(self) -> None:
        await self.db.close()


@pytest.fixture
async def db() -> AsyncIterator[Any]:
    connection: Any = AsyncSurreal("mem://")
    await connection.connect()
    await connection.use("test", "test")
    await SurrealMemoryStore(connection).define_schema()
    yield connection
    await connection.close()


async def test_a_few_conflicts_are_retried_until_the_write_lands(db: Any) -> None:
    connection = ConflictingConnection(db, conflicts=MAX_ATTEMPTS - 1)
    store = SurrealMemoryStore(connection)

    record = await store.put(ALICE, Scope.USER, "tea", key="drink")

    assert connection.transactions == MAX_ATTEMPTS
    assert await store.get(ALICE, Scope.USER, "drink") == record
    assert await store.count(ALICE, Scope.USER) == 1


async def test_endless_conflicts_become_a_store_conflict_error(db: Any) -> None:
    connection = ConflictingConnection(db, conflicts=MAX_ATTEMPTS)
    store = SurrealMemoryStore(connection)

    with pytest.raises(StoreConflictError, match="conflicting writes while recording a memory"):
        await store.put(ALICE, Scope.USER, "tea", key="drink")

    assert connection.transactions == MAX_ATTEMPTS
    assert await store.get(ALICE, Scope.USER, "drink") is None


async def test_a_closed_store_refuses_with_a_store_error() -> None:
    connection: Any = AsyncSurreal("mem://")
    await connection.connect()
    await connection.use("test", "test")
    store = SurrealMemoryStore(connection)
    await store.define_schema()
    await store.aclose()
    await store.aclose()

    with pytest.raises(StoreError, match="closed"):
        await store.get(ALICE, Scope.USER, "drink")
