"""`SurrealMemoryStore`: the storage protocol on a SurrealDB connection.

Layout (all record ids are arrays, so every lookup and scan is a key-range operation):

    memory:[user, scope, session, kind, name]          one entry; kind "k" (name = key) or "n" (name = the
                                                       put's request id, or a fresh nonce)
    memory_order:[user, scope, session, rank, kind, name]  timeline of the entries (the id alone): rank =
                                                       RANK_BASE - updated_at in µs, so a forward
                                                       range scan with LIMIT yields the newest first
    memory_count:[user, scope, session]                maintained number of entries (limit check)
    memory_session:[user, session]                     last activity of a session (idle expiry)

User scope stores session "". Strings in ids go through `id_text` (the engine refuses NUL there).
The queries are in `queries.py`, record ids and handles in `ids.py`, SDK failures in `failures.py`.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from server.errors import MemoryInputError, StoreError
from server.memory.storage import (
    MemoryLimits,
    MemoryRecord,
    Owner,
    Scope,
    Source,
    WallClock,
    check_key,
    check_value,
    utc_now,
)
from server.memory.surreal import queries
from server.memory.surreal.failures import (
    LimitReached,
    SessionExpired,
    limit_reached,
)
from server.memory.surreal.ids import (
    KEYED,
    KEYLESS,
    RANK_BASE,
    check_text,
    decode_handle,
    entry_from,
    id_text,
    id_untext,
    micros,
    record_from,
    record_id,
    restore_row,
    session_of,
    source_row,
)
from server.memory.surreal.schema import repair_counters, upgrade_schema
from server.memory.surreal.sdk import RecordID
from server.memory.surreal.statements import Statements

logger = logging.getLogger(__name__)

SWEEP_EVERY_PUTS: Final = 500
RESTORE_BATCH: Final = 2_000
"""Entries per `restore_many` transaction (measured: ~6k entries/s in batches, ~360/s one at a time)."""
LIST_PAGE: Final = 256
"""`list` reads in pages this size, so a long listing never holds the event loop for long."""
HANDLE_NAMESPACE: Final = uuid.UUID("6f1c1f43-3d0e-4f59-9a43-1f1b8d3c1a7e")
"""Derives a stable nonce from an imported handle that is not ours, so a second import is a no-op."""


class SurrealMemoryStore:
    """`MemoryStorage` on an open SurrealDB connection (embedded or remote, same code path).

    The connection must already be signed in and `use`d, and is closed by its opener; `open_store`
    does both. The embedded engine runs queries on its own Tokio threads, off the event loop (measured:
    a 1.4 s query left the loop ticking every ms; asyncio only). The SDK then decodes each result on
    the loop in pure Python, so results are kept small and long listings are read in pages.
    """

    def __init__(
        self,
        db: Any,
        *,
        limits: MemoryLimits | None = None,
        session_ttl_seconds: float = 24 * 3600,
        clock: WallClock = utc_now,
    ) -> None:
        self._db = db
        self.limits = limits or MemoryLimits()
        self.session_ttl = timedelta(seconds=session_ttl_seconds)
        # Reads refresh a session's activity at most this often; writes always do.
        self.touch_interval = min(timedelta(seconds=60), self.session_ttl / 100)
        self._clock = clock
        self._puts_since_sweep = 0
        self._closed = False
        # The engine's optimistic transactions lose read-modify-write updates of the counter under
        # concurrency (measured: 200 concurrent puts, counter off by 1 on mem://, by ~75 on surrealkv://),
        # so `Statements` serializes this process's writes; conflicts from other processes are retried.
        self._statements = Statements(db, "memory store", closed=lambda: self._closed)

    async def define_schema(self) -> None:
        await upgrade_schema(self._statements)

    async def repair_counters(self) -> bool:
        """See `schema.repair_counters`: for a store no other process writes meanwhile."""
        return await repair_counters(self._statements)

    @property
    def connection(self) -> Any:
        """The open connection, which the task store (`task_store.py`) shares."""
        return self._db

    # -- MemoryStorage -------------------------------------------------------------------------

    async def put(
        self,
        owner: Owner,
        scope: Scope,
        content: str,
        key: str | None = None,
        request_id: str | None = None,
        source: Source | None = None,
    ) -> MemoryRecord:
        if key is not None:
            check_key(key, self.limits)
        check_text(key, content)
        check_value(content, self.limits)
        now = self._now()
        kind, name = (KEYED, key) if key is not None else (KEYLESS, request_id or uuid.uuid4().hex)
        record = await self._write(owner, scope, kind, name, key, content, source, now, created_at=None)
        self._puts_since_sweep += 1
        if self._puts_since_sweep >= SWEEP_EVERY_PUTS:
            self._puts_since_sweep = 0
            # Housekeeping after an acknowledged write: its failure must not turn the write into an error.
            try:
                await self.sweep_expired_sessions()
            except StoreError:
                logger.warning(
                    "sweeping expired sessions failed; the next sweep will try again", exc_info=True
                )
        return record

    async def get(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        if not await self._session_alive(owner, scope):
            return None
        row = await self._statements.one(
            queries.GET, {"rid": self._rid(owner, scope, KEYED, key)}, "reading a memory"
        )
        return entry_from(owner, scope, KEYED, key, row) if row else None

    async def list(self, owner: Owner, scope: Scope, limit: int | None = None) -> Sequence[MemoryRecord]:
        if limit is not None and limit <= 0:
            return []
        if not await self._session_alive(owner, scope):
            return []
        session = session_of(owner, scope)
        params: dict[str, Any] = {"uid": id_text(owner.user), "scp": scope.value, "sid": id_text(session)}
        records: builtins.list[MemoryRecord] = []
        query = queries.LIST_FIRST
        while limit is None or len(records) < limit:
            page = LIST_PAGE if limit is None else min(LIST_PAGE, limit - len(records))
            rows = await self._statements.one(query, {**params, "limit": page}, "listing memories") or []
            for kind, name, key, content, created, updated, source in rows:
                parts = (owner.user, scope.value, session, kind, key if kind == KEYED else name)
                records.append(record_from(parts, key, content, created, updated, source))
            if len(rows) < page:
                break
            last = records[-1]
            kind, name = rows[-1][0], rows[-1][1]
            params.update(rank=RANK_BASE - micros(last.updated_at), kind=kind, name=name)
            query = queries.LIST_AFTER
        return records

    async def count(self, owner: Owner, scope: Scope) -> int:
        if not await self._session_alive(owner, scope):
            return 0
        n = await self._statements.one(
            queries.COUNT, {"counter": self._counter(owner, scope)}, "counting memories"
        )
        return int(n or 0)

    async def forget(self, owner: Owner, scope: Scope, handle: str) -> MemoryRecord | None:
        decoded = decode_handle(handle)
        if decoded is None or decoded[:3] != (owner.user, scope.value, session_of(owner, scope)):
            return None
        return await self._forget(owner, scope, decoded[3], decoded[4])

    async def forget_key(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        return await self._forget(owner, scope, KEYED, key)

    async def restore(self, owner: Owner, scope: Scope, record: MemoryRecord) -> MemoryRecord:
        kind, name = self._restored_name(record)
        created = record.created_at.astimezone(UTC)
        updated = record.updated_at.astimezone(UTC)
        return await self._write(
            owner, scope, kind, name, record.key, record.content, record.source, updated, created
        )

    async def restore_many(
        self, owner: Owner, scope: Scope, records: Sequence[MemoryRecord], batch: int = RESTORE_BATCH
    ) -> int:
        """`restore` for many records, in transactions of `RESTORE_BATCH` (one fsync each); how many
        entries were written. Every record is checked before any is written; a record repeated (same
        key, or same handle when keyless) counts once, the last one winning. The record limit is
        checked per transaction: when it is reached, the transactions before stay, and importing
        again after making room completes it (restore is idempotent)."""
        entries: dict[tuple[str, str], MemoryRecord] = {}
        for record in records:
            entries[self._restored_name(record)] = record
        if scope is Scope.SESSION:
            await self._session_alive(owner, scope)  # an expired session is emptied before it is filled
        session = session_of(owner, scope)
        items = builtins.list(entries.items())
        for start in range(0, len(items), batch):
            params = {
                "rows": [
                    restore_row(kind, name, record) for (kind, name), record in items[start : start + batch]
                ],
                "rank_base": RANK_BASE,
                "counter": self._counter(owner, scope),
                "srec": self._sess(owner) if scope is Scope.SESSION else None,
                "max": self.limits.max_records_per_owner,
                "limit_mark": queries.LIMIT_MARK,
                "uid": id_text(owner.user),
                "scp": scope.value,
                "sid": id_text(session),
                "active": self._now(),
            }
            try:
                await self._statements.write(queries.RESTORE_MANY, params, "importing memories")
            except LimitReached:
                raise MemoryInputError(
                    f"Importing {len(items)} {scope.value} memories would pass the limit of "
                    f"{self.limits.max_records_per_owner} (MEMORY_ROUTER_MAX_MEMORIES); {start} were "
                    "imported. Forget some, or raise the limit, and import again: what is already "
                    "there is not duplicated."
                ) from None
        return len(items)

    async def aclose(self) -> None:
        """Refuse further calls. The connection belongs to whoever opened it (`open_store`)."""
        self._closed = True

    # -- beyond the protocol: sessions, for export and housekeeping ----------------------------

    async def list_sessions(self, user: str) -> Sequence[str]:
        """The user's sessions that are not idle past the TTL, for export."""
        cutoff = self._now() - self.session_ttl
        params = {"uid": id_text(user), "cutoff": cutoff}
        rows = await self._statements.one(queries.USER_SESSIONS, params, "listing sessions")
        return [id_untext(row["session"]) for row in rows or []]

    async def sweep_expired_sessions(self, batch: int = 100) -> int:
        """Remove every session idle longer than the TTL; return how many were removed."""
        removed = 0
        while True:
            cutoff = self._now() - self.session_ttl
            rows = await self._statements.one(
                queries.IDLE_SESSIONS, {"cutoff": cutoff, "limit": batch}, "finding idle sessions"
            )
            for row in rows or []:
                await self._purge(Owner(id_untext(row["user"]), id_untext(row["session"])), cutoff)
            removed += len(rows or [])
            if len(rows or []) < batch:
                if removed:
                    logger.info("Removed %d session(s) idle for longer than %s.", removed, self.session_ttl)
                return removed

    # -- internals -----------------------------------------------------------------------------

    def _restored_name(self, record: MemoryRecord) -> tuple[str, str]:
        """The kind and name a restored record is stored under, after checking it."""
        check_text(record.key, record.content)
        check_value(record.content, self.limits)
        if record.key is not None:
            check_key(record.key, self.limits)
            return KEYED, record.key
        decoded = decode_handle(record.handle)
        if decoded is not None and decoded[3] == KEYLESS:
            return KEYLESS, decoded[4]
        # A handle from elsewhere: derive a stable nonce so a second import is a no-op.
        return KEYLESS, uuid.uuid5(HANDLE_NAMESPACE, record.handle).hex

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("The store clock must return timezone-aware datetimes.")
        return now.astimezone(UTC)

    @staticmethod
    def _rid(owner: Owner, scope: Scope, kind: str, name: str) -> RecordID:
        return record_id("memory", owner.user, scope.value, session_of(owner, scope), kind, name)

    @staticmethod
    def _counter(owner: Owner, scope: Scope) -> RecordID:
        return record_id("memory_count", owner.user, scope.value, session_of(owner, scope))

    @staticmethod
    def _sess(owner: Owner) -> RecordID:
        return record_id("memory_session", owner.user, owner.session)

    async def _write(
        self,
        owner: Owner,
        scope: Scope,
        kind: str,
        name: str,
        key: str | None,
        content: str,
        source: Source | None,
        now: datetime,
        created_at: datetime | None,
    ) -> MemoryRecord:
        session = session_of(owner, scope)
        params: dict[str, Any] = {
            "rid": self._rid(owner, scope, kind, name),
            "order": record_id(
                "memory_order", owner.user, scope.value, session, RANK_BASE - micros(now), kind, name
            ),
            "counter": self._counter(owner, scope),
            "max": self.limits.max_records_per_owner,
            "limit_mark": queries.LIMIT_MARK,
            "uid": id_text(owner.user),
            "scp": scope.value,
            "sid": id_text(session),
            "key": key,
            "content": content,
            "source": source_row(source),
            "now": now,
            "created_at": created_at,
        }
        try:
            if scope is Scope.USER:
                created_us = await self._statements.write(queries.PUT_USER, params, "recording a memory")
            else:
                params.update(srec=self._sess(owner), expired_mark=queries.EXPIRED_MARK)
                try:
                    created_us = await self._statements.write(
                        queries.PUT_SESSION, self._activity(params), "recording a memory"
                    )
                except SessionExpired:
                    await self._purge(owner, self._now() - self.session_ttl)
                    created_us = await self._statements.write(
                        queries.PUT_SESSION, self._activity(params), "recording a memory"
                    )
        except LimitReached:
            raise limit_reached(scope, self.limits) from None
        parts = (owner.user, scope.value, session, kind, name)
        return record_from(parts, key, content, created_us, micros(now), source_row(source))

    async def _forget(self, owner: Owner, scope: Scope, kind: str, name: str) -> MemoryRecord | None:
        if not await self._session_alive(owner, scope):
            return None
        params = {"rid": self._rid(owner, scope, kind, name), "counter": self._counter(owner, scope)}
        row = await self._statements.write(queries.FORGET, params, "forgetting a memory")
        return entry_from(owner, scope, kind, name, row) if row else None

    async def _session_alive(self, owner: Owner, scope: Scope) -> bool:
        """For session scope: expire an idle session, refresh an active one's activity."""
        if scope is Scope.USER:
            return True
        now = self._now()
        row = await self._statements.one(queries.SESSION, {"srec": self._sess(owner)}, "reading a session")
        if not row:
            return True
        last: datetime = row["last_active"]
        if now - last > self.session_ttl:
            await self._purge(owner, now - self.session_ttl)
            return False
        if now - last >= self.touch_interval:
            params = {
                "srec": self._sess(owner),
                "uid": id_text(owner.user),
                "sid": id_text(owner.session),
                "now": now,
            }
            await self._statements.write(queries.TOUCH, params, "refreshing a session")
        return True

    def _activity(self, params: dict[str, Any]) -> dict[str, Any]:
        active = self._now()
        return {**params, "active": active, "cutoff": active - self.session_ttl}

    async def _purge(self, owner: Owner, cutoff: datetime) -> None:
        params = {
            "srec": self._sess(owner),
            "counter": self._counter(owner, Scope.SESSION),
            "uid": id_text(owner.user),
            "sid": id_text(owner.session),
            "cutoff": cutoff,
        }
        await self._statements.write(queries.PURGE_SESSION, params, "removing an expired session")
