"""The wire between owner and peers: length-prefixed JSON messages, errors and records in them.

A message is a 4-byte big-endian length, then a UTF-8 JSON object.

    request  {"op": "hello", "version": 2}                      first on each connection
             {"op": "put" | "get" | ..., "user", "session", "scope", ...the call's arguments}
    reply    {"ok": result} | {"error": {"type": "StoreError", "message": "..."}}

Errors keep their class (from `server.errors`) and message, so a peer fails exactly as the owner.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any, Final

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from server.errors import (
    ConfigError,
    MemoryInputError,
    MemoryRouterError,
    StoreConflictError,
    StoreError,
    StoreLockedError,
)
from server.memory.storage import MemoryRecord, Source

PROTOCOL_VERSION: Final = 4
"""4: records and puts carry `source`, and `search` is asked; 3: `restore_many`; 2: a keyless put
carries `request_id` (1 sent a nonce and a timestamp)."""
MAX_FRAME: Final = 256 * 1024 * 1024

CONNECTION_LOST: Final = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)
"""What sending or receiving raises when the other side is gone."""

_ERRORS: Final[dict[str, type[MemoryRouterError]]] = {
    cls.__name__: cls
    for cls in (StoreError, StoreLockedError, StoreConflictError, MemoryInputError, ConfigError)
}


class MalformedMessage(ValueError):
    """A whole message arrived but is not a JSON object: the sender is alive and the connection
    still in step, so this is answered or reported, never taken for the other side going away."""


async def send_message(stream: SocketStream, message: dict[str, Any]) -> None:
    # ASCII escapes: text that is not valid Unicode (a lone surrogate) still travels, and the owner
    # refuses it with the same error as for a call of its own.
    body = json.dumps(message, separators=(",", ":")).encode("ascii")
    await stream.send(struct.pack(">I", len(body)) + body)


async def receive_message(stream: BufferedByteReceiveStream) -> dict[str, Any] | None:
    """The next message, or None when the other side closed the connection between messages.

    A message that is not a JSON object raises `MalformedMessage`; an oversized one,
    `BrokenResourceError` (the rest of it is not read, so the connection is lost).
    """
    try:
        header = await stream.receive_exactly(4)
    except anyio.IncompleteRead:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME:
        raise anyio.BrokenResourceError(f"a {size}-byte message is over the {MAX_FRAME}-byte limit")
    body = await stream.receive_exactly(size)
    try:
        message = json.loads(body)
    except ValueError as e:
        raise MalformedMessage(f"a message is not JSON: {e}") from None
    if not isinstance(message, dict):
        raise MalformedMessage("a message is not a JSON object")
    return message


def error_reply(error: MemoryRouterError) -> dict[str, Any]:
    name = type(error).__name__ if type(error).__name__ in _ERRORS else StoreError.__name__
    return {"error": {"type": name, "message": str(error)}}


def unwrap(reply: dict[str, Any]) -> Any:
    """The result of a reply, or its error raised as the owner raised it."""
    if "error" in reply:
        error = reply["error"]
        raise _ERRORS.get(error.get("type"), StoreError)(str(error.get("message")))
    return reply["ok"]


def record_out(record: MemoryRecord | None) -> dict[str, Any] | None:
    return None if record is None else record.model_dump(mode="json")


def record_in(data: Any) -> MemoryRecord | None:
    return None if data is None else MemoryRecord.model_validate(data)


def records_in(rows: Any) -> list[MemoryRecord]:
    return [MemoryRecord.model_validate(row) for row in rows]


def source_out(source: Source | None) -> dict[str, Any] | None:
    return None if source is None else source.model_dump(mode="json")


def source_in(data: Any) -> Source | None:
    return None if data is None else Source.model_validate(data)


def hits_out(hits: Sequence[tuple[MemoryRecord, float]]) -> list[list[Any]]:
    return [[record.model_dump(mode="json"), score] for record, score in hits]


def hits_in(rows: Any) -> list[tuple[MemoryRecord, float]]:
    return [(MemoryRecord.model_validate(record), float(score)) for record, score in rows]
