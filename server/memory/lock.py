"""An exclusive, non-blocking OS lock that keeps an embedded store to one process."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from server.errors import StoreLockedError


def lock_path_for(store_dir: Path) -> Path:
    """The lock file lives beside the store directory, never inside the engine's files."""
    return store_dir.with_name(store_dir.name + ".lock")


class StoreLock:
    """Holds `flock(LOCK_EX)` on `<store>.lock` for as long as the store is open.

    The holder's PID is written into the file so a second process can say who holds it.
    The OS drops the lock when the holder dies, even on SIGKILL.
    """

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.path = lock_path_for(store_dir)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise StoreLockedError(
                f"The embedded engine of the memory store at {self.store_dir} is open in {who} "
                f"(lock file {self.path}). Only the lock holder may open it; other memory-router "
                "processes share the store through that one. Close the other process, or set "
                "MEMORY_ROUTER_STORE to another surrealkv:// path or to a SurrealDB server (ws://...)."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)


def _read_holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
