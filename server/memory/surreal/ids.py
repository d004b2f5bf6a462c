"""Record ids, the handles that name them, and the records rebuilt from query rows.

A handle names the whole record id (user, scope, session, kind, name), so it can be checked
against its owner. User scope stores session "".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from server.errors import MemoryInputError
from server.memory.storage import MemoryRecord, Owner, Scope, Source
from server.memory.surreal.sdk import RecordID

KEYED, KEYLESS = "k", "n"
"""Record kinds: a keyed record's name is its key; a keyless one's, a request id or a nonce."""
HANDLE_PREFIX: Final = "m1."
RANK_BASE: Final = 1 << 62
"""Timeline rank = RANK_BASE - updated_at in µs, so a forward range scan yields the newest first."""
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def encode_handle(parts: Sequence[str]) -> str:
    """The record id parts as base64url of a JSON array, behind a version prefix."""
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
    out: list[str] = []
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


def record_id(table: str, *parts: str | int) -> RecordID:
    return RecordID(table, [id_text(p) if isinstance(p, str) else p for p in parts])


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def session_of(owner: Owner, scope: Scope) -> str:
    return owner.session if scope is Scope.SESSION else ""


def record_from(
    parts: Sequence[str], key: str | None, content: str, created: int, updated: int, source: Any = None
) -> MemoryRecord:
    """A record from its id parts and a row's fields (timestamps in µs, source an object or None)."""
    return MemoryRecord(
        handle=encode_handle(parts),
        scope=Scope(parts[1]),
        key=key,
        content=content,
        created_at=EPOCH + timedelta(microseconds=created),
        updated_at=EPOCH + timedelta(microseconds=updated),
        source=None if source is None else Source.model_validate(source),
    )


def source_row(source: Source | None) -> dict[str, str] | None:
    """A source as stored: absent parts left out."""
    return None if source is None else source.model_dump(mode="json", exclude_none=True)


def entry_from(owner: Owner, scope: Scope, kind: str, name: str, row: Sequence[Any]) -> MemoryRecord:
    """A record from an entry row: [key, content, created µs, updated µs, source]."""
    key, content, created, updated, source = row
    return record_from(
        (owner.user, scope.value, session_of(owner, scope), kind, name),
        key,
        content,
        created,
        updated,
        source,
    )


def restore_row(kind: str, name: str, record: MemoryRecord) -> list[Any]:
    """One entry of a bulk restore (`queries.RESTORE_MANY`): plain values, which the SDK encodes far
    faster than ids and dates."""
    return [
        kind,
        id_text(name),
        record.key,
        record.content,
        micros(record.created_at.astimezone(UTC)),
        micros(record.updated_at.astimezone(UTC)),
        source_row(record.source),
    ]
