"""One embedded store shared by every memory-router process of the user that opens it.

The embedded engine must never be open in two processes, so the process holding the store lock
(`<store>.lock`) is its *owner*: it opens the engine and serves it on a unix socket in a private
(0700) directory. Every other process is a *peer*: it sends each `MemoryStorage` call there and waits
for the reply. When the owner exits or dies, a peer's next call finds the socket closed; the peers
race for the lock, the winner opens the engine (which recovers from the crash) and serves, the
others reconnect, and the call is retried once.

Every call is safe to retry: reads are, keyed writes upsert on their key, forgets are idempotent,
restore is idempotent by contract, and a peer's keyless put carries a request id of its own, so a
retried one lands on the same entry instead of adding a second. The owner replies only after the engine
committed (with fsync), so an acknowledged write is durable whoever dies next.

Wire: a 4-byte big-endian length, then a UTF-8 JSON object.

    request  {"op": "hello", "version": 2}                      first on each connection
             {"op": "put" | "get" | ..., "user", "session", "scope", ...the call's arguments}
    reply    {"ok": result} | {"error": {"type": "StoreError", "message": "..."}}

Errors keep their class (from `server.errors`) and message, so a peer fails exactly as the owner.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import socket
import stat
import struct
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from server.errors import (
    ConfigError,
    MemoryInputError,
    MemoryRouterError,
    StoreConflictError,
    StoreError,
    StoreLockedError,
)
from server.memory.lock import StoreLock, lock_path_for
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope

logger = logging.getLogger(__name__)

T = TypeVar("T")
EngineOpener = Callable[[], AbstractAsyncContextManager[MemoryStorage]]

PROTOCOL_VERSION: Final = 2
MAX_FRAME: Final = 256 * 1024 * 1024
SUN_PATH_MAX: Final = 100
"""`sun_path` holds 108 bytes on Linux, 104 on macOS; stay under both."""
ATTACH_TIMEOUT: Final = 20.0
"""How long a process waits for an owner to answer (a new owner may be recovering the engine)."""
ATTACH_POLL: Final = 0.01
IDLE_CONNECTIONS: Final = 8

_ERRORS: Final[dict[str, type[MemoryRouterError]]] = {
    cls.__name__: cls
    for cls in (StoreError, StoreLockedError, StoreConflictError, MemoryInputError, ConfigError)
}
_GONE: Final = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)


# -- where the socket lives, and who may use it --------------------------------------------------


def socket_path_for(store_dir: Path) -> Path:
    """`<store>.run/sock` beside the store; when that path is too long for a unix socket,
    `/tmp/memory-router-UID/<hash of the store path>.sock`."""
    beside = store_dir.with_name(store_dir.name + ".run") / "sock"
    if len(os.fsencode(beside)) <= SUN_PATH_MAX:
        return beside
    digest = hashlib.sha256(os.fsencode(store_dir)).hexdigest()[:32]
    return Path(tempfile.gettempdir()) / f"memory-router-{os.geteuid()}" / f"{digest}.sock"


def ensure_private_dir(directory: Path) -> None:
    """Create `directory` 0700, or check that an existing one is ours and make it private."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    check_private_dir(directory, fix=True)


def check_private_dir(directory: Path, *, fix: bool = False) -> None:
    """Refuse a socket directory that another user owns or could enter: it could hold an impostor."""
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise StoreError(
            f"{directory} (the memory store's socket directory) is not a directory of yours; "
            "remove it and start memory-router again."
        )
    if info.st_mode & 0o077:
        if not fix:
            raise StoreError(
                f"{directory} (the memory store's socket directory) is open to other users; "
                f"run `chmod 700 {directory}`."
            )
        os.chmod(directory, 0o700)


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a unix socket; None where the OS cannot say."""
    if sys.platform.startswith("linux"):
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return int(uid)
    if sys.platform == "darwin":
        # LOCAL_PEERCRED (SOL_LOCAL 0, option 1) returns a struct xucred: version, uid, ...
        creds = sock.getsockopt(0, 1, 76)
        _version, uid = struct.unpack_from("2I", creds)
        return int(uid)
    return None


def peer_allowed(sock: socket.socket, allowed_uid: int) -> bool:
    uid = peer_uid(sock)
    return uid is None or uid == allowed_uid


# -- framing --------------------------------------------------------------------------------------


async def send_message(stream: SocketStream, message: dict[str, Any]) -> None:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    await stream.send(struct.pack(">I", len(body)) + body)


async def receive_message(stream: BufferedByteReceiveStream) -> dict[str, Any] | None:
    """The next message, or None when the other side closed the connection between messages."""
    try:
        header = await stream.receive_exactly(4)
    except anyio.IncompleteRead:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME:
        raise anyio.BrokenResourceError(f"a {size}-byte message is over the {MAX_FRAME}-byte limit")
    message = json.loads(await stream.receive_exactly(size))
    if not isinstance(message, dict):
        raise anyio.BrokenResourceError("a message is not a JSON object")
    return message


def _error_reply(error: MemoryRouterError) -> dict[str, Any]:
    name = type(error).__name__ if type(error).__name__ in _ERRORS else StoreError.__name__
    return {"error": {"type": name, "message": str(error)}}


def _unwrap(reply: dict[str, Any]) -> Any:
    if "error" in reply:
        error = reply["error"]
        raise _ERRORS.get(error.get("type"), StoreError)(str(error.get("message")))
    return reply["ok"]


def _record_out(record: MemoryRecord | None) -> dict[str, Any] | None:
    return None if record is None else record.model_dump(mode="json")


def _record_in(data: Any) -> MemoryRecord | None:
    return None if data is None else MemoryRecord.model_validate(data)


# -- the owner's side -----------------------------------------------------------------------------


async def answer(store: MemoryStorage, request: dict[str, Any]) -> Any:
    """Run one peer request on the engine; the JSON result."""
    owner = Owner(user=str(request["user"]), session=str(request["session"]))
    scope = Scope(request["scope"])
    match request["op"]:
        case "put":
            content, key, request_id = request["content"], request["key"], request["request_id"]
            return _record_out(await store.put(owner, scope, content, key=key, request_id=request_id))
        case "get":
            return _record_out(await store.get(owner, scope, request["key"]))
        case "list":
            return [_record_out(r) for r in await store.list(owner, scope, limit=request["limit"])]
        case "count":
            return await store.count(owner, scope)
        case "forget":
            return _record_out(await store.forget(owner, scope, request["handle"]))
        case "forget_key":
            return _record_out(await store.forget_key(owner, scope, request["key"]))
        case "restore":
            record = MemoryRecord.model_validate(request["record"])
            return _record_out(await store.restore(owner, scope, record))
    raise ValueError(f"unknown op {request['op']!r}")


async def _reply_to(store: MemoryStorage, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("op") == "hello":
        if request.get("version") != PROTOCOL_VERSION:
            return _error_reply(
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
        return _error_reply(e)
    except (KeyError, TypeError, ValueError) as e:
        return _error_reply(StoreError(f"A memory-router peer sent a malformed request ({e!r})."))


# -- the store every process gets -----------------------------------------------------------------


class _OwnerGone(Exception):
    """The owner closed the connection or cannot be reached."""


class _Connection:
    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.receive = BufferedByteReceiveStream(stream)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            await send_message(self.stream, message)
            reply = await receive_message(self.receive)
        except (*_GONE, ValueError) as e:
            raise _OwnerGone(str(e) or type(e).__name__) from e
        if reply is None:
            raise _OwnerGone("the owner closed the connection")
        return reply

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()


class SharedStore:
    """`MemoryStorage` for an embedded store shared between processes: the engine itself when this
    process owns it, else calls to the owner over its socket. Made by `open_shared`."""

    def __init__(
        self,
        store_dir: Path,
        open_engine: EngineOpener,
        *,
        task_group: TaskGroup,
        exit_stack: AsyncExitStack,
        allowed_uid: int | None = None,
        attach_timeout: float = ATTACH_TIMEOUT,
    ) -> None:
        self.store_dir = store_dir
        self.socket_path = socket_path_for(store_dir)
        self._open_engine = open_engine
        self._tg = task_group
        self._stack = exit_stack
        self._allowed_uid = os.geteuid() if allowed_uid is None else allowed_uid
        self._attach_timeout = attach_timeout
        self._local: MemoryStorage | None = None
        self._idle: builtins.list[_Connection] = []
        self._generation = 0
        self._attach_lock = anyio.Lock()
        self._closed = False
        self.owner_pid: int | None = None

    @property
    def is_owner(self) -> bool:
        return self._local is not None

    # -- MemoryStorage -------------------------------------------------------------------------

    async def put(
        self, owner: Owner, scope: Scope, content: str, key: str | None = None, request_id: str | None = None
    ) -> MemoryRecord:
        if key is None and request_id is None:
            request_id = uuid.uuid4().hex  # the retry after a takeover must land on the same entry
        request = {"op": "put", "content": content, "key": key, "request_id": request_id}
        return _present(
            await self._call(
                owner, scope, request, lambda s: s.put(owner, scope, content, key=key, request_id=request_id)
            )
        )

    async def get(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        return await self._call(owner, scope, {"op": "get", "key": key}, lambda s: s.get(owner, scope, key))

    async def list(self, owner: Owner, scope: Scope, limit: int | None = None) -> Sequence[MemoryRecord]:
        request = {"op": "list", "limit": limit}
        return await self._call_many(owner, scope, request, lambda s: s.list(owner, scope, limit=limit))

    async def count(self, owner: Owner, scope: Scope) -> int:
        return await self._call_raw(owner, scope, {"op": "count"}, lambda s: s.count(owner, scope), int)

    async def forget(self, owner: Owner, scope: Scope, handle: str) -> MemoryRecord | None:
        request = {"op": "forget", "handle": handle}
        return await self._call(owner, scope, request, lambda s: s.forget(owner, scope, handle))

    async def forget_key(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        request = {"op": "forget_key", "key": key}
        return await self._call(owner, scope, request, lambda s: s.forget_key(owner, scope, key))

    async def restore(self, owner: Owner, scope: Scope, record: MemoryRecord) -> MemoryRecord:
        request = {"op": "restore", "record": record.model_dump(mode="json")}
        return _present(await self._call(owner, scope, request, lambda s: s.restore(owner, scope, record)))

    async def aclose(self) -> None:
        """Refuse further calls; `open_shared` closes the engine, the socket and the lock."""
        self._closed = True

    # -- calls ---------------------------------------------------------------------------------

    async def _call(
        self,
        owner: Owner,
        scope: Scope,
        request: dict[str, Any],
        local: Callable[[MemoryStorage], Awaitable[MemoryRecord | None]],
    ) -> MemoryRecord | None:
        return await self._call_raw(owner, scope, request, local, _record_in)

    async def _call_many(
        self,
        owner: Owner,
        scope: Scope,
        request: dict[str, Any],
        local: Callable[[MemoryStorage], Awaitable[Sequence[MemoryRecord]]],
    ) -> Sequence[MemoryRecord]:
        return await self._call_raw(
            owner, scope, request, local, lambda rows: [MemoryRecord.model_validate(r) for r in rows]
        )

    async def _call_raw(
        self,
        owner: Owner,
        scope: Scope,
        request: dict[str, Any],
        local: Callable[[MemoryStorage], Awaitable[T]],
        decode: Callable[[Any], T],
    ) -> T:
        """Run on the engine when we own it, else at the owner; when the owner goes away during the
        call, take over or reconnect, and retry once (every call is safe to retry, see above)."""
        message = {**request, "user": owner.user, "session": owner.session, "scope": scope.value}
        for attempt in (1, 2):
            if self._closed:
                raise StoreError(f"The memory store is closed (while calling {request['op']}).")
            if self._local is not None:
                return await local(self._local)
            generation = self._generation
            try:
                reply = await self._exchange(message)
            except _OwnerGone as e:
                if attempt == 2:
                    raise StoreError(
                        f"The memory store's owner process went away twice during one call "
                        f"({request['op']}); try again. ({e})"
                    ) from e
                logger.info("memory store owner went away (%s); reattaching", e)
                await self._reattach(generation)
                continue
            return decode(_unwrap(reply))
        raise AssertionError("unreachable")

    async def _exchange(self, message: dict[str, Any]) -> dict[str, Any]:
        connection = self._idle.pop() if self._idle else await self._connect()
        done = False
        try:
            reply = await connection.request(message)
            done = True
            return reply
        finally:
            if done and len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(connection)
            else:
                await connection.aclose()

    async def _connect(self) -> _Connection:
        """A connection to the owner that said hello; `_OwnerGone` when there is none (yet)."""
        try:
            check_private_dir(self.socket_path.parent)
        except FileNotFoundError as e:
            raise _OwnerGone("no socket directory yet") from e
        try:
            stream = await anyio.connect_unix(self.socket_path)
        except OSError as e:
            raise _OwnerGone(f"connecting to {self.socket_path}: {e.strerror or e}") from e
        connection = _Connection(stream)
        try:
            uid = peer_uid(stream.extra(SocketAttribute.raw_socket))
            if uid is not None and uid != os.geteuid():
                raise StoreError(
                    f"{self.socket_path} is served by uid {uid}, not by you; refusing to send memories there."
                )
            hello = _unwrap(await connection.request({"op": "hello", "version": PROTOCOL_VERSION}))
        except BaseException:
            await connection.aclose()
            raise
        self.owner_pid = int(hello["pid"])
        return connection

    async def drop_connections(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.aclose()

    # -- owning and taking over ----------------------------------------------------------------

    async def attach(self) -> None:
        """Become the owner when the lock is free, else connect to the owner; wait for an owner
        that is still opening the engine, for at most the attach timeout."""
        deadline = anyio.current_time() + self._attach_timeout
        while True:
            lock = _try_lock(self.store_dir)
            if lock is not None:
                await self._own(lock)
                return
            try:
                self._idle.append(await self._connect())
                return
            except _OwnerGone as e:
                reason = str(e)
            if anyio.current_time() >= deadline:
                holder = lock_path_for(self.store_dir)
                pid = _read_pid(holder)
                who = f"process {pid}" if pid else "another process"
                raise StoreLockedError(
                    f"The memory store at {self.store_dir} is open in {who} (lock file {holder}), "
                    f"which does not share it at {self.socket_path} ({reason}). Close that process "
                    "(an older memory-router?), or set MEMORY_ROUTER_STORE to another surrealkv:// path "
                    "or to a SurrealDB server (ws://...)."
                )
            await anyio.sleep(ATTACH_POLL)

    async def _reattach(self, generation: int) -> None:
        async with self._attach_lock:
            if generation != self._generation:
                return  # another call of this process already reattached
            await self.drop_connections()
            await self.attach()
            self._generation += 1

    async def _own(self, lock: StoreLock) -> None:
        """Open the engine under the lock we hold, then serve it."""
        async with AsyncExitStack() as opening:
            # Exit order (last in, first out): stop serving, close the engine, release the lock.
            opening.callback(lock.release)
            store = await opening.enter_async_context(self._open_engine())
            ensure_private_dir(self.socket_path.parent)
            listener = await anyio.create_unix_listener(self.socket_path, mode=0o600)
            self._stack.push_async_callback(opening.pop_all().aclose)
        self._local = store
        self.owner_pid = os.getpid()
        self._tg.start_soon(self._serve, listener)
        logger.info("memory store %s is open here; serving it at %s", self.store_dir, self.socket_path)

    async def _serve(self, listener: SocketListener) -> None:
        try:
            async with listener:
                await listener.serve(self._handle)
        except OSError:
            # This process keeps its own calls working; the peers report the store as not shared.
            logger.exception("the memory store stopped accepting other memory-router processes")
        finally:
            # Only the lock holder binds this path, and we still hold the lock.
            with suppress(FileNotFoundError):
                os.unlink(self.socket_path)

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            try:
                await self._converse(stream)
            except Exception:  # one peer's connection: it must never take the owner down
                logger.exception("a connection from a memory-router peer failed")

    async def _converse(self, stream: SocketStream) -> None:
        if not peer_allowed(stream.extra(SocketAttribute.raw_socket), self._allowed_uid):
            logger.warning("refused a connection to the memory store from another user")
            refusal = StoreError("This memory store belongs to another user.")
            with anyio.move_on_after(1):
                await send_message(stream, _error_reply(refusal))
            return
        receive = BufferedByteReceiveStream(stream)
        while True:
            try:
                request = await receive_message(receive)
            except (*_GONE, ValueError):
                return
            if request is None:
                return
            # A call the engine started is finished and answered even when this owner is exiting.
            with anyio.CancelScope(shield=True):
                reply = await self._reply(request)
            try:
                await send_message(stream, reply)
            except _GONE:
                return

    async def _reply(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._local is not None
        try:
            return await _reply_to(self._local, request)
        except Exception as e:  # the boundary of one peer call: report it there, keep serving
            logger.exception("a memory store call from a peer failed")
            return _error_reply(StoreError(f"The memory store failed in its owner process: {e!r}"))


def _present(record: MemoryRecord | None) -> MemoryRecord:
    if record is None:
        raise StoreError("The memory store's owner returned no record for a write.")
    return record


def _try_lock(store_dir: Path) -> StoreLock | None:
    lock = StoreLock(store_dir)
    try:
        lock.acquire()
    except StoreLockedError:
        return None
    return lock


def _read_pid(path: Path) -> int | None:
    with suppress(FileNotFoundError):
        text = path.read_text().strip()
        return int(text) if text.isdigit() else None
    return None


@asynccontextmanager
async def open_shared(
    store_dir: Path,
    open_engine: EngineOpener,
    *,
    allowed_uid: int | None = None,
    attach_timeout: float = ATTACH_TIMEOUT,
) -> AsyncIterator[SharedStore]:
    """The store at `store_dir`, owned here or reached through its owner.

    `open_engine` opens the engine; it is called only while this process holds the lock.
    On exit this process stops serving (finishing started calls), closes the engine and releases
    the lock, and its peers take over.
    """
    # Errors are raised after the task group, so callers see them as they are, not grouped.
    error: Exception | None = None
    async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
        shared = SharedStore(
            store_dir,
            open_engine,
            task_group=tg,
            exit_stack=stack,
            allowed_uid=allowed_uid,
            attach_timeout=attach_timeout,
        )
        try:
            try:
                await shared.attach()
            except Exception as e:
                error = e
            else:
                try:
                    yield shared
                except Exception as e:
                    error = e
        finally:
            await shared.aclose()
            await shared.drop_connections()
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
