"""`CachedStorage`: what the process holding the store keeps in memory in front of it.

Per owner and scope (user, or user and session): a relevance index over every fact with the facts
themselves (`search`), the newest facts as last listed, and the count. The preamble of an owner
whose facts did not change then costs no store query, and a selection is a lookup in memory.

Kept true by seeing every write: the process that has the engine open wraps it in this, and the
other processes on the same store reach it through that process (`sharing/`). Each write updates
the owner's index and newest list (a restore drops the list: its place is the store's to say) and
drops the count; a failed write drops all the owner keeps.

Session facts expire in the store without a write (idle past the TTL, and `put` sweeps other idle
sessions); so what a session keeps is checked against the store again once `recheck` has passed
since the store last saw the session (which also keeps reads counting as the session's activity),
and whatever an owner keeps is dropped after a session TTL without use.

A remote store (ws://, http://) may be written by other processes this one never hears of: there
lists and counts are always read from the store, and an index older than `REMOTE_MAX_AGE` is
rebuilt, so a search may miss (or still return) a fact changed elsewhere for up to that long.
"""

from __future__ import annotations

import builtins
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, TypeVar

import anyio

from server.errors import MemoryInputError
from server.memory.relevance import RelevanceIndex, query_terms
from server.memory.storage import MemoryRecord, Owner, RecordStorage, Scope, Source, WallClock, utc_now

logger = logging.getLogger(__name__)

R = TypeVar("R")

MAX_CACHED_OWNERS: Final = 64
"""Owners (user or session, per scope) kept at most; the least recently used go first."""
MAX_CACHED_FACTS: Final = 200_000
"""Facts held with their indexes over all owners at most (measured: about 2.3 KB each for facts of
~60 characters, 230 MiB at 100k); least recently used owners are dropped past it, never the one
just used."""
MAX_CACHED_LIST: Final = 1000
"""Longest newest-first listing kept (the default `memory://` listing); longer ones are read."""
REMOTE_MAX_AGE: Final = timedelta(seconds=30)

_Key = tuple[str, Scope, str]


@dataclass
class _Facts:
    """Every fact of one owner and scope, and their relevance index."""

    index: RelevanceIndex = field(default_factory=RelevanceIndex)
    records: dict[str, MemoryRecord] = field(default_factory=dict[str, MemoryRecord])

    @classmethod
    def of(cls, oldest_first: Iterable[MemoryRecord]) -> _Facts:
        facts = cls()
        for record in oldest_first:  # newer facts get later slots, which the index prefers
            facts.add(record)
        return facts

    def add(self, record: MemoryRecord) -> None:
        self.index.add(record.handle, record.key, record.content)
        self.records[record.handle] = record

    def remove(self, record: MemoryRecord | None) -> None:
        if record is not None and self.records.pop(record.handle, None) is not None:
            self.index.remove(record.handle)


@dataclass
class _Entry:
    checked_at: datetime
    """When the store last saw this owner through us (or, remote, when this entry was made)."""
    used_at: datetime
    version: int = 0
    """Bumped by every write: a read that began before it must not be kept."""
    facts: _Facts | None = None
    newest: list[MemoryRecord] | None = None
    newest_complete: bool = False
    count: int | None = None
    building: anyio.Lock = field(default_factory=anyio.Lock)

    def put(self, record: MemoryRecord) -> None:
        """A put: its record is the newest, unless the clock says otherwise (then the store's order
        among equal times is not ours to guess, and the list is read again)."""
        self._changed()
        if self.facts is not None:
            self.facts.add(record)
        if self.newest is not None:
            rest = [r for r in self.newest if r.handle != record.handle]
            if rest and record.updated_at <= rest[0].updated_at:
                self.newest = None
            else:
                self.newest = [record, *rest][:MAX_CACHED_LIST]
                self.newest_complete = self.newest_complete and len(rest) < MAX_CACHED_LIST

    def restore(self, record: MemoryRecord) -> None:
        """A restore keeps its timestamps: where it goes in the list is the store's to say."""
        self._changed()
        self.newest = None
        if self.facts is not None:
            self.facts.add(record)

    def forget(self, record: MemoryRecord | None) -> None:
        if record is None:
            return
        self._changed()
        if self.facts is not None:
            self.facts.remove(record)
        if self.newest is not None:  # still the newest ones, one fewer
            self.newest = [r for r in self.newest if r.handle != record.handle]

    def _changed(self) -> None:
        self.version += 1
        self.count = None


class CachedStorage:
    """`MemoryStorage` over a backend, keeping each owner's index, newest facts and count in memory.

    `exclusive`: every write to the store goes through this object (an embedded engine); False for a
    remote store. `recheck`: how long session facts are served without asking the store (at most
    the store's session touch interval). `session_ttl`: the store's idle session expiry.
    """

    def __init__(
        self,
        inner: RecordStorage,
        *,
        exclusive: bool,
        session_ttl: timedelta,
        recheck: timedelta,
        clock: WallClock = utc_now,
    ) -> None:
        self.inner = inner
        self._exclusive = exclusive
        self._session_ttl = session_ttl
        self._recheck = recheck
        self._clock = clock
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()

    # -- reads ---------------------------------------------------------------------------------

    async def search(
        self, owner: Owner, scope: Scope, query: str, limit: int
    ) -> Sequence[tuple[MemoryRecord, float]]:
        terms = query_terms(query)
        if not terms or limit <= 0:
            return []
        facts = await self._facts(owner, scope)
        return [(facts.records[handle], score) for handle, score in facts.index.search(terms, limit)]

    async def list(self, owner: Owner, scope: Scope, limit: int | None = None) -> Sequence[MemoryRecord]:
        if not self._exclusive or limit is None or limit > MAX_CACHED_LIST:
            return await self.inner.list(owner, scope, limit=limit)
        if limit <= 0:
            return []
        entry = self._entry(owner, scope)
        if entry.newest is not None and (limit <= len(entry.newest) or entry.newest_complete):
            return entry.newest[:limit]
        version = entry.version
        records = builtins.list(await self.inner.list(owner, scope, limit=limit))
        if entry.version == version:
            entry.newest, entry.newest_complete = records, len(records) < limit
        return records

    async def count(self, owner: Owner, scope: Scope) -> int:
        if not self._exclusive:
            return await self.inner.count(owner, scope)
        entry = self._entry(owner, scope)
        if entry.facts is not None:
            return len(entry.facts.records)
        if entry.newest is not None and entry.newest_complete:
            return len(entry.newest)
        if entry.count is None:
            version = entry.version
            count = await self.inner.count(owner, scope)
            if entry.version != version:
                return count
            entry.count = count
        return entry.count

    async def get(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        return await self.inner.get(owner, scope, key)

    # -- writes --------------------------------------------------------------------------------

    async def put(
        self,
        owner: Owner,
        scope: Scope,
        content: str,
        key: str | None = None,
        request_id: str | None = None,
        source: Source | None = None,
    ) -> MemoryRecord:
        return await self._write(
            owner,
            scope,
            lambda: self.inner.put(owner, scope, content, key=key, request_id=request_id, source=source),
            _Entry.put,
        )

    async def restore(self, owner: Owner, scope: Scope, record: MemoryRecord) -> MemoryRecord:
        return await self._write(
            owner, scope, lambda: self.inner.restore(owner, scope, record), _Entry.restore
        )

    async def restore_many(self, owner: Owner, scope: Scope, records: Sequence[MemoryRecord]) -> int:
        """A bulk import drops what this owner keeps: the next read builds it again from the store."""
        try:
            return await self.inner.restore_many(owner, scope, records)
        finally:
            self._entries.pop(_key(owner, scope), None)

    async def forget(self, owner: Owner, scope: Scope, handle: str) -> MemoryRecord | None:
        forgotten = await self._write(
            owner, scope, lambda: self.inner.forget(owner, scope, handle), _Entry.forget
        )
        _log_forget(owner, scope, forgotten)
        return forgotten

    async def forget_key(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        forgotten = await self._write(
            owner, scope, lambda: self.inner.forget_key(owner, scope, key), _Entry.forget
        )
        _log_forget(owner, scope, forgotten)
        return forgotten

    async def aclose(self) -> None:
        self._entries.clear()
        await self.inner.aclose()

    # -- internals -----------------------------------------------------------------------------

    async def _write(
        self,
        owner: Owner,
        scope: Scope,
        write: Callable[[], Awaitable[R]],
        change: Callable[[_Entry, R], None],
    ) -> R:
        entry = self._entry(owner, scope)
        try:
            result = await write()
        except MemoryInputError:
            raise  # refused before anything was written
        except BaseException:
            self._entries.pop(_key(owner, scope), None)  # it may or may not have been written
            raise
        if self._exclusive:
            entry.checked_at = self._clock()
        change(entry, result)
        return result

    async def _facts(self, owner: Owner, scope: Scope) -> _Facts:
        """The owner's facts and index, built from the store on first need (once, whoever asks)."""
        entry = self._entry(owner, scope)
        async with entry.building:
            if entry.facts is not None:
                return entry.facts
            version = entry.version
            newest_first = await self.inner.list(owner, scope)
            facts = _Facts.of(reversed(newest_first))
            if entry.version == version and self._entries.get(_key(owner, scope)) is entry:
                entry.facts = facts
                self._trim_facts(keep=entry)
            return facts

    def _entry(self, owner: Owner, scope: Scope) -> _Entry:
        now = self._clock()
        self._drop_unused(now)
        key = _key(owner, scope)
        entry = self._entries.get(key)
        if entry is not None and self._stale(entry, scope, now):
            del self._entries[key]
            entry = None
        if entry is None:
            entry = self._entries[key] = _Entry(checked_at=now, used_at=now)
            while len(self._entries) > MAX_CACHED_OWNERS:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
            entry.used_at = now
        return entry

    def _stale(self, entry: _Entry, scope: Scope, now: datetime) -> bool:
        if not self._exclusive:
            return now - entry.checked_at >= REMOTE_MAX_AGE
        return scope is Scope.SESSION and now - entry.checked_at >= self._recheck

    def _drop_unused(self, now: datetime) -> None:
        while self._entries:
            key, oldest = next(iter(self._entries.items()))
            if now - oldest.used_at <= self._session_ttl:
                return
            del self._entries[key]

    def _trim_facts(self, keep: _Entry) -> None:
        held = sum(len(e.facts.records) for e in self._entries.values() if e.facts is not None)
        for key, entry in builtins.list(self._entries.items()):
            if held <= MAX_CACHED_FACTS:
                return
            if entry is not keep and entry.facts is not None:
                held -= len(entry.facts.records)
                del self._entries[key]


def _key(owner: Owner, scope: Scope) -> _Key:
    return owner.user, scope, owner.session if scope is Scope.SESSION else ""


def _log_forget(owner: Owner, scope: Scope, record: MemoryRecord | None) -> None:
    if record is None:
        return
    where = "user" if scope is Scope.USER else f"session {owner.session!r} of user"
    source = record.source.model_dump(exclude_none=True) if record.source is not None else "unknown"
    logger.info(
        "Forgot %s memory %s of %s %r (source: %s).",
        scope.value,
        f"key {record.key!r}" if record.key is not None else f"handle {record.handle}",
        where,
        owner.user,
        source,
    )
