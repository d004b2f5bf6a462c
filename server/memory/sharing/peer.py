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
from server.memory.sharing.paths import check_private_dir
from server.memory.sharing.wire import (
    CONNECTION_LOST,
    PROTOCOL_VERSION,
    receive_message,
    send_message,
    unwrap,
)

IDLE_CONNECTIONS: Final = 8


class OwnerGone(Exception):
    """The owner closed the connection or cannot be reached."""


class Connection:
    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.receive = BufferedByteReceiveStream(stream)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            await send_message(self.stream, message)
            reply = await receive_message(self.receive)
        except (*CONNECTION_LOST, ValueError) as e:
            raise OwnerGone(str(e) or type(e).__name__) from e
        if reply is None:
            raise OwnerGone("the owner closed the connection")
        return reply

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()


class OwnerLink:
    """A peer's connections to the owner at `socket_path`: a few are kept open for reuse."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.owner_pid: int | None = None
        """The owner's PID, as it said in its hello."""
        self._idle: list[Connection] = []

    async def open(self) -> None:
        """Connect (and keep the connection for the next call); `OwnerGone` when there is no owner."""
        self._idle.append(await self._connect())

    async def exchange(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its reply; `OwnerGone` when the owner went away meanwhile."""
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

    async def drop(self) -> None:
        """Close the idle connections (the owner they lead to is gone, or we are closing)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.aclose()

    async def _connect(self) -> Connection:
        """A connection to the owner that said hello; `OwnerGone` when there is none (yet)."""
        try:
            check_private_dir(self.socket_path.parent)
        except FileNotFoundError as e:
            raise OwnerGone("no socket directory yet") from e
        try:
            stream = await anyio.connect_unix(self.socket_path)
        except OSError as e:
            raise OwnerGone(f"connecting to {self.socket_path}: {e.strerror or e}") from e
        connection = Connection(stream)
        try:
            uid = peer_uid(stream.extra(SocketAttribute.raw_socket))
            if uid is not None and uid != os.geteuid():
                raise StoreError(
                    f"{self.socket_path} is served by uid {uid}, not by you; refusing to send memories there."
                )
            hello = unwrap(await connection.request({"op": "hello", "version": PROTOCOL_VERSION}))
        except BaseException:
            await connection.aclose()
            raise
        self.owner_pid = int(hello["pid"])
        return connection
