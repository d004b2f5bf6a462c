"""The SurrealDB store behind `MemoryStorage`.

Layout (all record ids are arrays, so every lookup and scan is a key-range operation):

    memory:[user, scope, session, kind, name]          one entry; kind "k" (name = key) or "n" (name = the
                                                       put's request id, or a fresh nonce)
    memory_order:[user, scope, session, rank, kind, name]  timeline copy of each entry: rank =
                                                       RANK_BASE - updated_at in µs, so a forward
                                                       range scan with LIMIT yields the newest first
    memory_count:[user, scope, session]                maintained number of entries (limit check)
    memory_session:[user, session]                     last activity of a session (idle expiry)

User scope stores session "". Strings in ids go through `id_text` (the engine refuses NUL there).
Every query is a constant string with parameters; record ids are
passed as `RecordID` values, never spliced into SurrealQL.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import logging
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp
import anyio
from surrealdb import RecordID, SurrealError
from websockets.exceptions import WebSocketException

from server.errors import MemoryInputError, StoreConflictError, StoreError
from server.memory.storage import (
    MemoryLimits,
    MemoryRecord,
    Owner,
    Scope,
    WallClock,
    check_key,
    check_value,
    utc_now,
)

logger = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
RANK_BASE: Final = 1 << 62
MAX_ATTEMPTS: Final = 8
SWEEP_EVERY_PUTS: Final = 500
KEYED, KEYLESS = "k", "n"
_LIMIT_MARK: Final = "memory-router:limit"
_EXPIRED_MARK: Final = "memory-router:session-expired"
_HANDLE_NAMESPACE: Final = uuid.UUID("6f1c1f43-3d0e-4f59-9a43-1f1b8d3c1a7e")

SCHEMA: Final = """
DEFINE TABLE IF NOT EXISTS memory SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON memory TYPE string;
DEFINE FIELD IF NOT EXISTS scope ON memory TYPE string;
DEFINE FIELD IF NOT EXISTS session ON memory TYPE string;
DEFINE FIELD IF NOT EXISTS key ON memory TYPE option<string>;
DEFINE FIELD IF NOT EXISTS content ON memory TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON memory TYPE datetime;
DEFINE FIELD IF NOT EXISTS updated_at ON memory TYPE datetime;
DEFINE FIELD IF NOT EXISTS ordered ON memory TYPE record<memory_order>;
DEFINE TABLE IF NOT EXISTS memory_order SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS key ON memory_order TYPE option<string>;
DEFINE FIELD IF NOT EXISTS content ON memory_order TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON memory_order TYPE datetime;
DEFINE FIELD IF NOT EXISTS updated_at ON memory_order TYPE datetime;
DEFINE TABLE IF NOT EXISTS memory_count SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS n ON memory_count TYPE int;
DEFINE TABLE IF NOT EXISTS memory_session SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON memory_session TYPE string;
DEFINE FIELD IF NOT EXISTS session ON memory_session TYPE string;
DEFINE FIELD IF NOT EXISTS last_active ON memory_session TYPE datetime;
DEFINE INDEX IF NOT EXISTS memory_session_idle ON memory_session FIELDS last_active;
"""

# Rows come back as small arrays, not objects: the SDK's CBOR decoder is pure Python and its cost
# grows with every string it decodes (field names, the owner parts of record ids).
#   entry row: [key, content, created µs, updated µs]
#   timeline row: [kind, name, key, content, created µs, updated µs]

# Writes one entry (and its timeline copy, which `list` reads without fetching the entry).
# New entries are counted against the limit; a replaced entry moves in the timeline.
_PUT: Final = """
BEGIN TRANSACTION;
IF $srec != NONE AND ((SELECT VALUE last_active FROM ONLY $srec) ?? $active) < $cutoff {
    THROW $expired_mark;
};
LET $old = SELECT ordered, created_at FROM ONLY $rid;
IF $old = NONE {
    IF (SELECT VALUE n FROM ONLY $counter) ?? 0 >= $max { THROW $limit_mark; };
    UPSERT $counter SET n = (n ?? 0) + 1;
} ELSE {
    DELETE $old.ordered;
};
IF $srec != NONE { UPSERT $srec SET user = $uid, session = $sid, last_active = $active; };
LET $created = $created_at ?? $old.created_at ?? $now;
UPSERT $order CONTENT { key: $key, content: $content, created_at: $created, updated_at: $now } RETURN NONE;
UPSERT $rid CONTENT {
    user: $uid, scope: $scp, session: $sid, key: $key, content: $content,
    created_at: $created, updated_at: $now, ordered: $order
} RETURN NONE;
RETURN time::micros($created);
COMMIT TRANSACTION;
"""

_GET: Final = (
    "SELECT VALUE [key, content, time::micros(created_at), time::micros(updated_at)] FROM ONLY $rid;"
)

_FORGET: Final = """
BEGIN TRANSACTION;
LET $old = SELECT * FROM ONLY $rid;
IF $old != NONE {
    DELETE $rid;
    DELETE $old.ordered;
    UPSERT $counter SET n = math::max([(n ?? 1) - 1, 0]);
};
RETURN IF $old = NONE THEN NONE
    ELSE [$old.key, $old.content, time::micros($old.created_at), time::micros($old.updated_at)] END;
COMMIT TRANSACTION;
"""

_TIMELINE_ROW: Final = (
    "SELECT VALUE [record::id(id)[4], record::id(id)[5], key, content, "
    "time::micros(created_at), time::micros(updated_at)] "
)
_LIST_FIRST: Final = (
    _TIMELINE_ROW + "FROM memory_order:[$uid, $scp, $sid, NONE]..[$uid, $scp, $sid, {}] LIMIT $limit;"
)
# The page after `$after` (the timeline id parts of the last row seen), exclusive.
_LIST_AFTER: Final = (
    _TIMELINE_ROW + "FROM memory_order:[$uid, $scp, $sid, $rank, $kind, $name]>..[$uid, $scp, $sid, {}] "
    "LIMIT $limit;"
)
LIST_PAGE: Final = 256
"""`list` reads in pages this size, so a long listing never holds the event loop for long."""

_COUNT: Final = "SELECT VALUE n FROM ONLY $counter;"

_SESSION: Final = "SELECT * FROM ONLY $srec;"
_TOUCH: Final = "UPSERT $srec SET user = $uid, session = $sid, last_active = $now;"

# Removes a session's entries only if it is still idle (a concurrent write may have revived it).
_PURGE_SESSION: Final = """
BEGIN TRANSACTION;
LET $last = SELECT VALUE last_active FROM ONLY $srec;
IF $last = NONE OR $last < $cutoff {
    DELETE memory:[$uid, 'session', $sid, NONE]..[$uid, 'session', $sid, {}];
    DELETE memory_order:[$uid, 'session', $sid, NONE]..[$uid, 'session', $sid, {}];
    DELETE $counter;
    DELETE $srec;
};
COMMIT TRANSACTION;
"""

_IDLE_SESSIONS: Final = "SELECT user, session FROM memory_session WHERE last_active < $cutoff LIMIT $limit;"
_USER_SESSIONS: Final = (
    "SELECT session, last_active FROM memory_session:[$uid, NONE]..[$uid, {}] WHERE last_active >= $cutoff;"
)


def _conflict(message: str) -> bool:
    lowered = message.lower()
    return "conflict" in lowered or "can be retried" in lowered


# What the SDK raises: the embedded engine reports failures as RuntimeError, remote ones come from the
# transport, and a name holding a lone surrogate cannot be encoded.
SDK_ERRORS: Final = (
    SurrealError,
    OSError,
    RuntimeError,
    UnicodeEncodeError,
    aiohttp.ClientError,
    WebSocketException,
)


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """The one boundary where SDK errors become ours."""
    try:
        yield
    except SDK_ERRORS as e:
        raise StoreError(f"The memory store failed while {action}: {e}") from e


class _Retry(Exception):
    """A transaction conflicted and may be retried."""


HANDLE_PREFIX: Final = "m1."


def encode_handle(parts: Sequence[str]) -> str:
    """A handle names the whole record id (user, scope, session, kind, name), so it can be
    checked against its owner: base64url of a JSON array, behind a version prefix."""
    raw = json.dumps(list(parts), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return HANDLE_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_handle(handle: str) -> tuple[str, str, str, str, str] | None:
    """The record id parts, or None for anything that is not a handle we issued."""
    if not handle.startswith(HANDLE_PREFIX):
        return None
    body = handle[len(HANDLE_PREFIX) :]
    try:
        parts = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8"))
    except (binascii.Error, ValueError):
        return None
    if not (isinstance(parts, list) and len(parts) == 5 and all(isinstance(p, str) for p in parts)):
        return None
    user, scope, session, kind, name = parts
    if kind not in (KEYED, KEYLESS) or not name or encode_handle(parts) != handle:
        return None
    return user, scope, session, kind, name


def id_text(text: str) -> str:
    """User and session names made safe for the engine, injectively: it refuses NUL in record ids,
    and the embedded SDK cannot return a string holding one. Used in ids and in the fields that
    hold those names; keys and values with NUL are refused instead (`check_text`)."""
    return text.replace("\x01", "\x01\x01").replace("\x00", "\x01\x02")


def id_untext(text: str) -> str:
    out: builtins.list[str] = []
    chars = iter(text)
    for char in chars:
        out.append({"\x01": "\x01", "\x02": "\x00"}[next(chars)] if char == "\x01" else char)
    return "".join(out)


def check_text(key: str | None, content: str) -> None:
    for what, text in (("key", key), ("value", content)):
        if text is None:
            continue
        if "\x00" in text:
            raise MemoryInputError(f"The {what} contains a NUL character (U+0000), which cannot be stored.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise MemoryInputError(
                f"The {what} is not valid Unicode text (it holds a lone surrogate), so it cannot be stored."
            ) from None


def _id(table: str, *parts: str | int) -> RecordID:
    return RecordID(table, [id_text(p) if isinstance(p, str) else p for p in parts])


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


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
        self._touch_interval = min(timedelta(seconds=60), self.session_ttl / 100)
        self._clock = clock
        self._puts_since_sweep = 0
        self._closed = False
        # The engine's optimistic transactions lose read-modify-write updates of the counter under
        # concurrency (measured: 200 concurrent puts, counter off by 1 on mem://, by ~75 on surrealkv://),
        # so this process serializes its writes; conflicts from other processes are still retried.
        self._write_lock = anyio.Lock()

    async def define_schema(self) -> None:
        await self._run(SCHEMA, {}, "defining the schema")

    # -- MemoryStorage -------------------------------------------------------------------------

    async def put(
        self, owner: Owner, scope: Scope, content: str, key: str | None = None, request_id: str | None = None
    ) -> MemoryRecord:
        if key is not None:
            check_key(key, self.limits)
        check_text(key, content)
        check_value(content, self.limits)
        now = self._now()
        kind, name = (KEYED, key) if key is not None else (KEYLESS, request_id or uuid.uuid4().hex)
        record = await self._write(owner, scope, kind, name, key, content, now, created_at=None)
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
        row = await self._one(_GET, {"rid": self._rid(owner, scope, KEYED, key)}, "reading a memory")
        return _entry(owner, scope, KEYED, key, row) if row else None

    async def list(self, owner: Owner, scope: Scope, limit: int | None = None) -> Sequence[MemoryRecord]:
        if limit is not None and limit <= 0:
            return []
        if not await self._session_alive(owner, scope):
            return []
        session = _session(owner, scope)
        params: dict[str, Any] = {"uid": id_text(owner.user), "scp": scope.value, "sid": id_text(session)}
        records: builtins.list[MemoryRecord] = []
        query = _LIST_FIRST
        while limit is None or len(records) < limit:
            page = LIST_PAGE if limit is None else min(LIST_PAGE, limit - len(records))
            rows = await self._one(query, {**params, "limit": page}, "listing memories") or []
            for kind, name, key, content, created, updated in rows:
                parts = (owner.user, scope.value, session, kind, key if kind == KEYED else name)
                records.append(_record(parts, key, content, created, updated))
            if len(rows) < page:
                break
            last = records[-1]
            kind, name = rows[-1][0], rows[-1][1]
            params.update(rank=RANK_BASE - _micros(last.updated_at), kind=kind, name=name)
            query = _LIST_AFTER
        return records

    async def count(self, owner: Owner, scope: Scope) -> int:
        if not await self._session_alive(owner, scope):
            return 0
        n = await self._one(_COUNT, {"counter": self._counter(owner, scope)}, "counting memories")
        return int(n or 0)

    async def forget(self, owner: Owner, scope: Scope, handle: str) -> MemoryRecord | None:
        decoded = decode_handle(handle)
        if decoded is None or decoded[:3] != (owner.user, scope.value, _session(owner, scope)):
            return None
        return await self._forget(owner, scope, decoded[3], decoded[4])

    async def forget_key(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        return await self._forget(owner, scope, KEYED, key)

    async def restore(self, owner: Owner, scope: Scope, record: MemoryRecord) -> MemoryRecord:
        if record.key is not None:
            check_key(record.key, self.limits)
            kind, name = KEYED, record.key
        else:
            decoded = decode_handle(record.handle)
            if decoded is not None and decoded[3] == KEYLESS:
                name = decoded[4]
            else:
                # A handle from elsewhere: derive a stable nonce so a second import is a no-op.
                name = uuid.uuid5(_HANDLE_NAMESPACE, record.handle).hex
            kind = KEYLESS
        check_text(record.key, record.content)
        check_value(record.content, self.limits)
        created = record.created_at.astimezone(UTC)
        updated = record.updated_at.astimezone(UTC)
        return await self._write(owner, scope, kind, name, record.key, record.content, updated, created)

    async def aclose(self) -> None:
        """Refuse further calls. The connection belongs to whoever opened it (`open_store`)."""
        self._closed = True

    # -- beyond the protocol: sessions, for export and housekeeping ----------------------------

    async def list_sessions(self, user: str) -> Sequence[str]:
        """The user's sessions that are not idle past the TTL, for export."""
        cutoff = self._now() - self.session_ttl
        params = {"uid": id_text(user), "cutoff": cutoff}
        rows = await self._one(_USER_SESSIONS, params, "listing sessions")
        return [id_untext(row["session"]) for row in rows or []]

    async def sweep_expired_sessions(self, batch: int = 100) -> int:
        """Remove every session idle longer than the TTL; return how many were removed."""
        removed = 0
        while True:
            cutoff = self._now() - self.session_ttl
            rows = await self._one(
                _IDLE_SESSIONS, {"cutoff": cutoff, "limit": batch}, "finding idle sessions"
            )
            for row in rows or []:
                await self._purge(Owner(id_untext(row["user"]), id_untext(row["session"])), cutoff)
            removed += len(rows or [])
            if len(rows or []) < batch:
                if removed:
                    logger.info("Removed %d session(s) idle for longer than %s.", removed, self.session_ttl)
                return removed

    # -- internals -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("The store clock must return timezone-aware datetimes.")
        return now.astimezone(UTC)

    @staticmethod
    def _rid(owner: Owner, scope: Scope, kind: str, name: str) -> RecordID:
        return _id("memory", owner.user, scope.value, _session(owner, scope), kind, name)

    @staticmethod
    def _counter(owner: Owner, scope: Scope) -> RecordID:
        return _id("memory_count", owner.user, scope.value, _session(owner, scope))

    @staticmethod
    def _sess(owner: Owner) -> RecordID:
        return _id("memory_session", owner.user, owner.session)

    async def _write(
        self,
        owner: Owner,
        scope: Scope,
        kind: str,
        name: str,
        key: str | None,
        content: str,
        now: datetime,
        created_at: datetime | None,
    ) -> MemoryRecord:
        session = _session(owner, scope)
        params: dict[str, Any] = {
            "rid": self._rid(owner, scope, kind, name),
            "order": _id(
                "memory_order", owner.user, scope.value, session, RANK_BASE - _micros(now), kind, name
            ),
            "counter": self._counter(owner, scope),
            "srec": self._sess(owner) if scope is Scope.SESSION else None,
            "max": self.limits.max_records_per_owner,
            "limit_mark": _LIMIT_MARK,
            "expired_mark": _EXPIRED_MARK,
            "uid": id_text(owner.user),
            "scp": scope.value,
            "sid": id_text(session),
            "key": key,
            "content": content,
            "now": now,
            "created_at": created_at,
        }
        try:
            try:
                created_us = await self._transaction(_PUT, self._activity(params), "recording a memory")
            except _SessionExpired:
                await self._purge(owner, self._now() - self.session_ttl)
                created_us = await self._transaction(_PUT, self._activity(params), "recording a memory")
        except _LimitReached:
            who = "user" if scope is Scope.USER else "session"
            raise MemoryInputError(
                f"This {who} already has {self.limits.max_records_per_owner} {scope.value} memories, "
                "the limit (MEMORY_ROUTER_MAX_MEMORIES). "
                "Forget some, or record under an existing key to replace it."
            ) from None
        parts = (owner.user, scope.value, session, kind, name)
        return _record(parts, key, content, created_us, _micros(now))

    async def _forget(self, owner: Owner, scope: Scope, kind: str, name: str) -> MemoryRecord | None:
        if not await self._session_alive(owner, scope):
            return None
        params = {"rid": self._rid(owner, scope, kind, name), "counter": self._counter(owner, scope)}
        row = await self._transaction(_FORGET, params, "forgetting a memory")
        return _entry(owner, scope, kind, name, row) if row else None

    async def _session_alive(self, owner: Owner, scope: Scope) -> bool:
        """For session scope: expire an idle session, refresh an active one's activity."""
        if scope is Scope.USER:
            return True
        now = self._now()
        row = await self._one(_SESSION, {"srec": self._sess(owner)}, "reading a session")
        if not row:
            return True
        last: datetime = row["last_active"]
        if now - last > self.session_ttl:
            await self._purge(owner, now - self.session_ttl)
            return False
        if now - last >= self._touch_interval:
            params = {
                "srec": self._sess(owner),
                "uid": id_text(owner.user),
                "sid": id_text(owner.session),
                "now": now,
            }
            await self._transaction(_TOUCH, params, "refreshing a session")
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
        await self._transaction(_PURGE_SESSION, params, "removing an expired session")

    async def _one(self, query: str, params: Mapping[str, Any], action: str) -> Any:
        results = await self._run(query, params, action)
        return results[-1] if results else None

    async def _transaction(self, query: str, params: Mapping[str, Any], action: str) -> Any:
        """Run a transactional query, retrying write conflicts a bounded number of times."""
        async with self._write_lock:
            for attempt in range(MAX_ATTEMPTS):
                try:
                    return await self._one(query, params, action)
                except _Retry:
                    if attempt + 1 < MAX_ATTEMPTS:
                        await anyio.sleep(random.uniform(0, 0.001 * 2**attempt))
        raise StoreConflictError(
            f"The memory store kept reporting conflicting writes while {action} "
            f"({MAX_ATTEMPTS} attempts). Try again."
        )

    async def _run(self, query: str, params: Mapping[str, Any], action: str) -> builtins.list[Any]:
        if self._closed:
            raise StoreError(f"The memory store is closed (while {action}).")
        with translated_errors(action):
            response = await self._db.query_raw(query, dict(params))
        if response.get("error") is not None:
            message = str(response["error"].get("message", response["error"]))
            if _conflict(message):
                raise _Retry
            raise StoreError(f"The memory store failed while {action}: {message}")
        statements: builtins.list[dict[str, Any]] = response.get("result") or []
        failures = [str(s.get("result")) for s in statements if s.get("status") == "ERR"]
        if failures:
            if any(_LIMIT_MARK in f for f in failures):
                raise _LimitReached
            if any(_EXPIRED_MARK in f for f in failures):
                raise _SessionExpired
            if any(_conflict(f) for f in failures):
                raise _Retry
            raise StoreError(f"The memory store failed while {action}: {failures[0]}")
        return [s.get("result") for s in statements]


class _LimitReached(Exception):
    """The per-owner record limit would be exceeded."""


class _SessionExpired(Exception):
    """The session was idle past the TTL: its entries must go before it is written again."""


def _session(owner: Owner, scope: Scope) -> str:
    return owner.session if scope is Scope.SESSION else ""


def _record(parts: Sequence[str], key: str | None, content: str, created: int, updated: int) -> MemoryRecord:
    return MemoryRecord(
        handle=encode_handle(parts),
        scope=Scope(parts[1]),
        key=key,
        content=content,
        created_at=_EPOCH + timedelta(microseconds=created),
        updated_at=_EPOCH + timedelta(microseconds=updated),
    )


def _entry(owner: Owner, scope: Scope, kind: str, name: str, row: Sequence[Any]) -> MemoryRecord:
    key, content, created, updated = row
    return _record(
        (owner.user, scope.value, _session(owner, scope), kind, name), key, content, created, updated
    )
