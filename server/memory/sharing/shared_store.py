"""`MemoryStorage` for an embedded store shared between processes, with takeover when the owner goes."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
from anyio.abc import TaskGroup

from server.errors import StoreError
from server.memory.sharing.lock import StoreLock, holder_pid, store_locked
from server.memory.sharing.owner import serve
from server.memory.sharing.paths import claim_socket_path, release_socket_path, run_dir_for
from server.memory.sharing.peer import OwnerGone, OwnerLink, OwnerSilent
from server.memory.sharing.wire import hits_in, record_in, records_in, source_out, unwrap
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope, Source

logger = logging.getLogger(__name__)

T = TypeVar("T")
EngineOpener = Callable[[], AbstractAsyncContextManager[MemoryStorage]]

OWNER_TIMEOUT: Final = 20.0
"""The longest one store call of a peer waits on other processes (README, "One store, several
hosts"): for the owner's answer, and for a new owner after one went away (it may be recovering the
engine). Then the call fails, naming the owner. Opening the engine in this process, on a takeover,
is not cut short."""
ATTACH_POLL: Final = 0.01
RESTORE_PART: Final = 2_000
"""Records per `restore_many` call to the owner (one transaction there, well under a second)."""


class SharedStore:
    """The engine itself when this process owns the store, else calls to the owner over its socket.
    Made by `open_shared`."""

    def __init__(
        self,
        store_dir: Path,
        open_engine: EngineOpener,
        *,
        task_group: TaskGroup,
        exit_stack: AsyncExitStack,
        allowed_uid: int | None = None,
        owner_timeout: float = OWNER_TIMEOUT,
    ) -> None:
        self.store_dir = store_dir
        self.socket_path: Path | None = None
        """Where this process serves the store, while it owns it."""
        self._open_engine = open_engine
        self._tg = task_group
        self._stack = exit_stack
        self._allowed_uid = os.geteuid() if allowed_uid is None else allowed_uid
        self._timeout = owner_timeout
        self._local: MemoryStorage | None = None
        self._owner = OwnerLink(store_dir)
        self._generation = 0
        self._attach_lock = anyio.Lock()
        self._closed = False

    @property
    def is_owner(self) -> bool:
        return self._local is not None

    @property
    def engine(self) -> MemoryStorage | None:
        """The engine when this process owns the store, else None."""
        return self._local

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
        if key is None and request_id is None:
            request_id = uuid.uuid4().hex  # the retry after a takeover must land on the same entry
        request = {
            "op": "put",
            "content": content,
            "key": key,
            "request_id": request_id,
            "source": source_out(source),
        }
        return _present(
            await self._call(
                owner,
                scope,
                request,
                lambda s: s.put(owner, scope, content, key=key, request_id=request_id, source=source),
                record_in,
            )
        )

    async def get(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        request = {"op": "get", "key": key}
        return await self._call(owner, scope, request, lambda s: s.get(owner, scope, key), record_in)

    async def list(self, owner: Owner, scope: Scope, limit: int | None = None) -> Sequence[MemoryRecord]:
        request = {"op": "list", "limit": limit}
        return await self._call(
            owner, scope, request, lambda s: s.list(owner, scope, limit=limit), records_in
        )

    async def count(self, owner: Owner, scope: Scope) -> int:
        return await self._call(owner, scope, {"op": "count"}, lambda s: s.count(owner, scope), int)

    async def search(
        self, owner: Owner, scope: Scope, query: str, limit: int
    ) -> Sequence[tuple[MemoryRecord, float]]:
        request = {"op": "search", "query": query, "limit": limit}
        return await self._call(
            owner, scope, request, lambda s: s.search(owner, scope, query, limit), hits_in
        )

    async def forget(self, owner: Owner, scope: Scope, handle: str) -> MemoryRecord | None:
        request = {"op": "forget", "handle": handle}
        return await self._call(owner, scope, request, lambda s: s.forget(owner, scope, handle), record_in)

    async def forget_key(self, owner: Owner, scope: Scope, key: str) -> MemoryRecord | None:
        request = {"op": "forget_key", "key": key}
        return await self._call(owner, scope, request, lambda s: s.forget_key(owner, scope, key), record_in)

    async def restore(self, owner: Owner, scope: Scope, record: MemoryRecord) -> MemoryRecord:
        request = {"op": "restore", "record": record.model_dump(mode="json")}
        return _present(
            await self._call(owner, scope, request, lambda s: s.restore(owner, scope, record), record_in)
        )

    async def restore_many(self, owner: Owner, scope: Scope, records: Sequence[MemoryRecord]) -> int:
        # In parts, so each call to the owner stays far inside the owner timeout.
        written = 0
        for start in range(0, len(records), RESTORE_PART):
            written += await self._restore_part(owner, scope, records[start : start + RESTORE_PART])
        return written

    async def _restore_part(self, owner: Owner, scope: Scope, part: Sequence[MemoryRecord]) -> int:
        request = {"op": "restore_many", "records": [r.model_dump(mode="json") for r in part]}
        return await self._call(owner, scope, request, lambda s: s.restore_many(owner, scope, part), int)

    async def aclose(self) -> None:
        """Refuse further calls; `open_shared` closes the engine, the socket and the lock."""
        self._closed = True

    # -- calls ---------------------------------------------------------------------------------

    async def _call(
        self,
        owner: Owner,
        scope: Scope,
        request: dict[str, Any],
        local: Callable[[MemoryStorage], Awaitable[T]],
        decode: Callable[[Any], T],
    ) -> T:
        """Run on the engine when we own it, else at the owner; when the owner goes away during the
        call, take over or reconnect, and retry once (every call is safe to retry, see the package)."""
        message = {**request, "user": owner.user, "session": owner.session, "scope": scope.value}
        deadline = anyio.current_time() + self._timeout
        for attempt in (1, 2):
            if self._closed:
                raise StoreError(f"The memory store is closed (while calling {request['op']}).")
            if self._local is not None:
                return await local(self._local)
            generation = self._generation
            try:
                reply = await self._owner.exchange(message, deadline)
            except OwnerSilent:
                raise self._silent(request["op"]) from None
            except OwnerGone as e:
                if attempt == 2:
                    raise StoreError(
                        f"The memory store's owner process went away twice during one call "
                        f"({request['op']}); try again. ({e})"
                    ) from e
                logger.info("memory store owner went away (%s); reattaching", e)
                await self._reattach(generation, deadline)
                continue
            return decode(unwrap(reply))
        raise AssertionError("unreachable")

    async def drop_connections(self) -> None:
        await self._owner.drop()

    # -- owning and taking over ----------------------------------------------------------------

    def _silent(self, op: str) -> StoreError:
        pid = holder_pid(self.store_dir) or self._owner.owner_pid
        who = f"memory-router process {pid}" if pid else "a memory-router process"
        resume = f"`kill -CONT {pid}`" if pid else "`kill -CONT PID`"
        return StoreError(
            f"The memory store's owner, {who}, did not answer within {self._timeout:g} s ({op}). "
            f"It is alive but stopped or blocked (suspended with Ctrl-Z or kill -STOP, or a command "
            f"waiting on its pager). Resume it ({resume}) or end it, then try again; a write sent to "
            "it may still be applied when it resumes."
        )

    async def attach(self, deadline: float | None = None) -> None:
        """Become the owner when the lock is free, else connect to the owner; wait for an owner
        that is still opening the engine, until `deadline` (by default the timeout from now)."""
        if deadline is None:
            deadline = anyio.current_time() + self._timeout
        while True:
            lock = StoreLock(self.store_dir)
            if lock.try_acquire():
                await self._own(lock)
                return
            try:
                await self._owner.open(deadline)
                return
            except OwnerSilent:
                raise self._silent("connecting") from None
            except OwnerGone as e:
                reason = str(e)
            if anyio.current_time() >= deadline:
                raise store_locked(
                    self.store_dir, not_shared=f"not at {run_dir_for(self.store_dir)}: {reason}"
                )
            await anyio.sleep(ATTACH_POLL)

    async def _reattach(self, generation: int, deadline: float) -> None:
        async with self._attach_lock:
            if generation != self._generation:
                return  # another call of this process already reattached
            await self._owner.drop()
            await self.attach(deadline)
            self._generation += 1

    async def _own(self, lock: StoreLock) -> None:
        """Open the engine under the lock we hold, then serve it."""
        async with AsyncExitStack() as opening:
            # Exit order (last in, first out): stop serving, close the engine, release the lock.
            opening.callback(lock.release)
            store = await opening.enter_async_context(self._open_engine())
            socket_path = claim_socket_path(self.store_dir)
            opening.callback(release_socket_path, self.store_dir)
            listener = await anyio.create_unix_listener(socket_path, mode=0o600)
            self._stack.push_async_callback(opening.pop_all().aclose)
        self._local = store
        self.socket_path = socket_path
        self._tg.start_soon(
            lambda: serve(listener, store, allowed_uid=self._allowed_uid, socket_path=socket_path)
        )
        logger.info("memory store %s is open here; serving it at %s", self.store_dir, socket_path)


def _present(record: MemoryRecord | None) -> MemoryRecord:
    if record is None:
        raise StoreError("The memory store's owner returned no record for a write.")
    return record


@asynccontextmanager
async def open_shared(
    store_dir: Path,
    open_engine: EngineOpener,
    *,
    allowed_uid: int | None = None,
    owner_timeout: float = OWNER_TIMEOUT,
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
            owner_timeout=owner_timeout,
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
