"""The peer's side: connections to the owner's socket, checked, greeted and reused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from server.errors import StoreError
from server.memory.sharing.credentials import peer_uid
from server.memory.sharing.paths import check_private_dir, socket_path_for
from server.memory.sharing.wire import (
    CONNECTION_LOST,
    PROTOCOL_VERSION,
    MalformedMessage,
    receive_message,
    send_message,
    unwrap,
)

IDLE_CONNECTIONS: Final = 8


class OwnerGone(Exception):
    """The owner closed the connection or cannot be reached."""


class OwnerSilent(Exception):
    """The owner accepted the connection but did not answer by the deadline: it is alive (it still
    holds the lock) but stopped or blocked, so taking over is not possible."""


class Connection:
    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.receive = BufferedByteReceiveStream(stream)

    async def request(self, message: dict[str, Any], deadline: float) -> dict[str, Any]:
        """The reply, by `deadline` (`anyio.current_time()` clock) or `OwnerSilent`."""
        with anyio.move_on_after(deadline - anyio.current_time()):
            try:
                await send_message(self.stream, message)
                reply = await receive_message(self.receive)
            except MalformedMessage as e:
                raise StoreError(
                    f"The memory store's owner process sent a reply this process cannot read ({e}); "
                    "restart every memory-router on this store after an upgrade."
                ) from None
            except CONNECTION_LOST as e:
                raise OwnerGone(str(e) or type(e).__name__) from e
            if reply is None:
                raise OwnerGone("the owner closed the connection")
            return reply
        raise OwnerSilent

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()


class OwnerLink:
    """A peer's connections to the owner of the store at `store_dir`: a few are kept open for reuse."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.owner_pid: int | None = None
        """The owner's PID, as it said in its hello."""
        self._idle: list[Connection] = []

    async def open(self, deadline: float) -> None:
        """Connect (and keep the connection for the next call); `OwnerGone` when there is no owner,
        `OwnerSilent` when it does not say hello by `deadline`."""
        self._idle.append(await self._connect(deadline))

    async def exchange(self, message: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Send one request and return its reply; `OwnerGone` when the owner went away meanwhile,
        `OwnerSilent` when it did not answer by `deadline` (the connection is then closed: a late
        reply must not be read as the answer to the next request)."""
        connection = self._idle.pop() if self._idle else await self._connect(deadline)
        done = False
        try:
            reply = await connection.request(message, deadline)
            done = True
            return reply
        finally:
            if done and len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(connection)
            else:
                await connection.aclose()

    async def drop(self) -> None:
        """Close the idle connections (the owner they lead to is gone, or we are closing)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.aclose()

    async def _connect(self, deadline: float) -> Connection:
        """A connection to the owner that said hello; `OwnerGone` when there is none (yet)."""
        try:
            socket_path = socket_path_for(self.store_dir)
            check_private_dir(socket_path.parent)
        except FileNotFoundError as e:
            raise OwnerGone("no socket yet") from e
        stream: SocketStream | None = None
        with anyio.move_on_after(deadline - anyio.current_time()):
            try:
                stream = await anyio.connect_unix(socket_path)
            except OSError as e:
                raise OwnerGone(f"connecting to {socket_path}: {e.strerror or e}") from e
        if stream is None:
            raise OwnerSilent  # a full backlog: the owner stopped accepting
        connection = Connection(stream)
        try:
            uid = peer_uid(stream.extra(SocketAttribute.raw_socket))
            if uid is not None and uid != os.geteuid():
                raise StoreError(
                    f"{socket_path} is served by uid {uid}, not by you; refusing to send memories there."
                )
            hello = unwrap(await connection.request({"op": "hello", "version": PROTOCOL_VERSION}, deadline))
        except BaseException:
            await connection.aclose()
            raise
        self.owner_pid = int(hello["pid"])
        return connection
