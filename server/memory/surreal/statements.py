"""Running SurrealQL on one connection: SDK errors translated at one boundary, each statement's
result checked, and writes serialized and retried on the engine's conflict reports."""

from __future__ import annotations

import builtins
import random
from collections.abc import Callable, Mapping
from typing import Any, Final

import anyio

from server.errors import StoreConflictError, StoreError
from server.memory.surreal.failures import Retry, statement_results, translated_errors

MAX_ATTEMPTS: Final = 8
"""Tries of a write the engine reports as conflicting, with a jittered backoff between them."""


class Statements:
    """The queries of one store (`what`: "memory store", "task store") on connection `db`."""

    def __init__(self, db: Any, what: str, closed: Callable[[], bool] = lambda: False) -> None:
        self._db = db
        self._what = what
        self._closed = closed
        # One write at a time from this process: the embedded engine reports concurrent writes to the
        # same records as conflicts (or loses one), and a queue costs less than the retries.
        self._write_lock = anyio.Lock()

    async def run(self, query: str, params: Mapping[str, Any], action: str) -> builtins.list[Any]:
        """Every statement's result, in order."""
        if self._closed():
            raise StoreError(f"The {self._what} is closed (while {action}).")
        with translated_errors(action):
            response = await self._db.query_raw(query, dict(params))
        return statement_results(response, action)

    async def one(self, query: str, params: Mapping[str, Any], action: str) -> Any:
        """The last statement's result."""
        results = await self.run(query, params, action)
        return results[-1] if results else None

    async def write(self, query: str, params: Mapping[str, Any], action: str) -> Any:
        """A transactional write, rerun while the engine reports a conflict (a bounded number of times)."""
        async with self._write_lock:
            for attempt in range(MAX_ATTEMPTS):
                try:
                    return await self.one(query, params, action)
                except Retry:
                    if attempt + 1 < MAX_ATTEMPTS:
                        await anyio.sleep(random.uniform(0, 0.001 * 2**attempt))
        raise StoreConflictError(
            f"The {self._what} kept reporting conflicting writes while {action} ({MAX_ATTEMPTS} attempts). "
            "Try again."
        )
