"""The owner's side: serve the engine to peers, one request at a time per connection."""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from server.errors import MemoryRouterError, StoreError
from server.memory.sharing.credentials import peer_allowed
from server.memory.sharing.wire import (
    CONNECTION_LOST,
    PROTOCOL_VERSION,
    MalformedMessage,
    error_reply,
    hits_out,
    receive_message,
    record_out,
    send_message,
    source_in,
)
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope

logger = logging.getLogger(__name__)


async def serve(
    listener: SocketListener, store: MemoryStorage, *, allowed_uid: int, socket_path: Path
) -> None:
    """Answer peers on `listener` until cancelled; then remove the socket file."""
    try:
        async with listener:
            await listener.serve(partial(_handle, store=store, allowed_uid=allowed_uid))
    except OSError:
        # This process keeps its own calls working; the peers report the store as not shared.
        logger.exception("the memory store stopped accepting other memory-router processes")
    finally:
        # Only the lock holder binds this path, and it still holds the lock.
        with suppress(FileNotFoundError):
            os.unlink(socket_path)


async def answer(store: MemoryStorage, request: dict[str, Any]) -> Any:
    """Run one peer request on the engine; the JSON result."""
    owner = Owner(user=str(request["user"]), session=str(request["session"]))
    scope = Scope(request["scope"])
    match request["op"]:
        case "put":
            content, key, request_id = request["content"], request["key"], request["request_id"]
            source = source_in(request["source"])
            return record_out(
                await store.put(owner, scope, content, key=key, request_id=request_id, source=source)
            )
        case "get":
            return record_out(await store.get(owner, scope, request["key"]))
        case "list":
            return [record_out(r) for r in await store.list(owner, scope, limit=request["limit"])]
        case "count":
            return await store.count(owner, scope)
        case "forget":
            return record_out(await store.forget(owner, scope, request["handle"]))
        case "forget_key":
            return record_out(await store.forget_key(owner, scope, request["key"]))
        case "search":
            return hits_out(await store.search(owner, scope, str(request["query"]), int(request["limit"])))
        case "restore":
            record = MemoryRecord.model_validate(request["record"])
            return record_out(await store.restore(owner, scope, record))
        case "restore_many":
            records = [MemoryRecord.model_validate(r) for r in request["records"]]
            return await store.restore_many(owner, scope, records)
    raise ValueError(f"unknown op {request['op']!r}")


async def reply_to(store: MemoryStorage, request: dict[str, Any]) -> dict[str, Any]:
    """The reply to one request: its result, or the error it raised."""
    if request.get("op") == "hello":
        if request.get("version") != PROTOCOL_VERSION:
            return error_reply(
                StoreError(
                    f"The memory store is served by memory-router process {os.getpid()} speaking "
                    f"protocol {PROTOCOL_VERSION}, not {request.get('version')}: "
                    "restart every memory-router on this store after an upgrade."
                )
            )
        return {"ok": {"version": PROTOCOL_VERSION, "pid": os.getpid()}}
    try:
        return {"ok": await answer(store, request)}
    except MemoryRouterError as e:
        return error_reply(e)
    except (KeyError, TypeError, ValueError) as e:
        return error_reply(StoreError(f"A memory-router peer sent a malformed request ({e!r})."))
    except Exception as e:  # the boundary of one peer call: report it there, keep serving
        logger.exception("a memory store call from a peer failed")
        return error_reply(StoreError(f"The memory store failed in its owner process: {e!r}"))


async def _handle(stream: SocketStream, *, store: MemoryStorage, allowed_uid: int) -> None:
    async with stream:
        try:
            await _converse(stream, store, allowed_uid)
        except Exception:  # one peer's connection: it must never take the owner down
            logger.exception("a connection from a memory-router peer failed")


async def _converse(stream: SocketStream, store: MemoryStorage, allowed_uid: int) -> None:
    if not peer_allowed(stream.extra(SocketAttribute.raw_socket), allowed_uid):
        logger.warning("refused a connection to the memory store from another user")
        refusal = StoreError("This memory store belongs to another user.")
        with anyio.move_on_after(1):
            await send_message(stream, error_reply(refusal))
        return
    receive = BufferedByteReceiveStream(stream)
    while True:
        try:
            request = await receive_message(receive)
        except MalformedMessage as e:
            reply = error_reply(StoreError(f"A memory-router peer sent a malformed request ({e})."))
        except CONNECTION_LOST:
            return
        else:
            if request is None:
                return
            # A call the engine started is finished and answered even when this owner is exiting.
            with anyio.CancelScope(shield=True):
                reply = await reply_to(store, request)
        try:
            await send_message(stream, reply)
        except CONNECTION_LOST:
            return
