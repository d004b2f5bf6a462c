"""Memory records, who owns them, and the storage protocol every backend implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from server.errors import MemoryInputError

WallClock = Callable[[], datetime]
"""The date and time stored on records (timezone-aware); tests pass a fake one that moves when told."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scope(StrEnum):
    USER = "user"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a memory belongs to. User scope ignores `session`; session scope is bound to both."""

    user: str
    session: str


class Via(StrEnum):
    """The path a memory came in by."""

    TOOL = "tool"
    ROUTE_COMPLETION = "route_completion"
    CLI = "cli"
    IMPORT = "import"


class Source(BaseModel):
    """Where a memory came from; kept with it, replaced when it is recorded again."""

    model_config = ConfigDict(frozen=True)

    via: Via
    client: str | None = None
    """The MCP client's "name/version", when the connection said."""
    session: str | None = None
    model: str | None = None
    """"provider/model" of the completion that asked to record it (`route_completion` only)."""


class MemoryRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    handle: str
    """Opaque, backend-defined; passing it back to `forget` removes exactly this entry."""
    scope: Scope
    key: str | None
    content: str
    created_at: datetime
    updated_at: datetime
    source: Source | None = None
    """None for memories recorded before provenance was kept."""


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    max_key_chars: int = 256
    max_value_bytes: int = 16 * 1024
    max_records_per_owner: int = 100_000
    """Per user (user scope) or per session (session scope)."""


def check_key(key: str, limits: MemoryLimits) -> None:
    if not key:
        raise MemoryInputError("The key must not be empty.")
    if len(key) > limits.max_key_chars:
        raise MemoryInputError(
            f"The key is {len(key)} characters long; the limit is {limits.max_key_chars} "
            "(MEMORY_ROUTER_MAX_KEY_CHARS). Use a shorter key."
        )


def check_value(content: str, limits: MemoryLimits) -> None:
    size = len(content.encode("utf-8"))
    if size > limits.max_value_bytes:
        raise MemoryInputError(
            f"The value is {size} bytes; the limit is {limits.max_value_bytes} bytes "
            "(MEMORY_ROUTER_MAX_VALUE_BYTES). Record a shorter value or split it under several keys."
        )


class RecordStorage(Protocol):
    """What every memory backend offers. All methods are owner-checked: a handle or key of another
    user or session behaves exactly like one that never existed.

    Keyed records upsert on (user, scope, session, key); keyless records accumulate.
    Session-scope records of a session idle longer than the configured TTL are never returned
    and are removed.
    """

    async def put(
        self,
        owner: Owner,
        scope: Scope,
        content: str,
        key: str | None = None,
        request_id: str | None = None,
        source: Source | None = None,
    ) -> MemoryRecord:
        """Record `content` (from `source`); with a key, replace whatever was under it. Validates limits.

        `request_id` makes a keyless put idempotent: repeated with the same id, it lands on the same
        entry (same handle, same `created_at`) instead of adding another. Ignored with a key.
        """
        ...

    async def get(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None: ...

    async def list(self, owner: Owner, scope: Scope, limit: int | None = None) -> Sequence[MemoryRecord]:
        """Newest first (by `updated_at`)."""
        ...

    async def count(self, owner: Owner, scope: Scope) -> int:
        """How many live records this owner has in this scope."""
        ...

    async def forget(self, owner: Owner, scope: Scope, handle: str) -> MemoryRecord | None:
        """Remove the entry with this handle; return it, or None when there is none (for this owner)."""
        ...

    async def forget_key(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        """Remove the entry under this key; return it, or None when there is none."""
        ...

    async def restore(self, owner: Owner, scope: Scope, record: MemoryRecord) -> MemoryRecord:
        """Idempotent import: keyed records upsert on their key, keyless ones on their handle;
        timestamps and source are kept."""
        ...

    async def restore_many(self, owner: Owner, scope: Scope, records: Sequence[MemoryRecord]) -> int:
        """`restore` for many records at once (bulk import), far fewer commits; how many entries were
        written (a record repeated in `records` counts once). Checks every record before writing."""
        ...

    async def aclose(self) -> None: ...


class MemoryStorage(RecordStorage, Protocol):
    """What the server uses: a backend's records, and the facts most relevant to a text."""

    async def search(
        self, owner: Owner, scope: Scope, query: str, limit: int
    ) -> Sequence[tuple[MemoryRecord, float]]:
        """The `limit` facts of this owner and scope most relevant to `query`, best first, with
        their scores; only facts sharing a term with it. Other owners' facts never weigh in."""
        ...
