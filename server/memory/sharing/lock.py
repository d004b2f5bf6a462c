"""The store lock: an exclusive, non-blocking OS lock that keeps an embedded store's engine to one
process, and the one place that says why a store cannot be opened (locked by whom, or not yours)."""

from __future__ import annotations

import fcntl
import os
from contextlib import suppress
from pathlib import Path

from server.errors import StoreError, StoreLockedError


def lock_path_for(store_dir: Path) -> Path:
    """The lock file lives beside the store directory, never inside the engine's files."""
    return store_dir.with_name(store_dir.name + ".lock")


def holder_pid(store_dir: Path) -> int | None:
    """The PID the lock holder wrote into the lock file; None when there is none (or it is unreadable)."""
    with suppress(OSError):
        text = lock_path_for(store_dir).read_text(encoding="ascii", errors="replace").strip()
        return int(text) if text.isdigit() else None
    return None


def store_locked(store_dir: Path, *, not_shared: str | None = None) -> StoreLockedError:
    """The error for a store whose lock another process holds, naming that process.

    `not_shared` says why the holder could not be reached, when it was asked to share the store.
    """
    pid = holder_pid(store_dir)
    who = f"process {pid}" if pid else "another process"
    if not_shared is None:
        situation = (
            "Only the lock holder may open its engine; other memory-router processes share the store "
            "through that one. Close the other process"
        )
    else:
        situation = (
            f"That process does not share the store ({not_shared}). Close it (an older memory-router?)"
        )
    return StoreLockedError(
        f"The memory store at {store_dir} is open in {who} (lock file {lock_path_for(store_dir)}). "
        f"{situation}, or set MEMORY_ROUTER_STORE to another surrealkv:// path or to a SurrealDB server "
        "(ws://...)."
    )


def store_refused(store_dir: Path, error: PermissionError) -> StoreError:
    """The error for a store this OS user may not open (another user's, or in a directory not theirs)."""
    return StoreError(
        f"You may not open the memory store at {store_dir}: access to {error.filename} was refused "
        f"({error.strerror}). The store belongs to another OS user, or sits in a directory you cannot "
        "write to. Each user needs a store of their own: set MEMORY_ROUTER_STORE to a surrealkv:// path "
        "of yours, or unset it for the default one in your data directory."
    )


class StoreLock:
    """Holds `flock(LOCK_EX)` on `<store>.lock` and on the store directory itself for as long as the
    store is open.

    The holder's PID is written into the lock file so a second process can say who holds it. The
    directory's lock is the one that cannot be lost: deleting or replacing `<store>.lock` while the
    store is open gives a second process a fresh file to lock, but not the directory (it cannot be
    removed while the engine's files are in it, and a directory renamed away keeps its lock).
    The OS drops both locks when the holder dies, even on SIGKILL.
    """

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.path = lock_path_for(store_dir)
        self._fds: tuple[int, int] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise `StoreLockedError` naming its holder."""
        if not self.try_acquire():
            raise store_locked(self.store_dir)

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another process (or opening) holds it.
        A lock file this user may not open raises `StoreError` (`store_refused`)."""
        fds: list[int] = []
        try:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with suppress(FileExistsError):
                    self.store_dir.mkdir(mode=0o700)
                fds.append(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
                fds.append(os.open(self.store_dir, os.O_RDONLY | os.O_DIRECTORY))
            except PermissionError as e:
                raise store_refused(self.store_dir, e) from e
            for fd in fds:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            for fd in fds:
                os.close(fd)
            return False
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        file_fd, dir_fd = fds
        os.ftruncate(file_fd, 0)
        os.write(file_fd, f"{os.getpid()}\n".encode())
        self._fds = (file_fd, dir_fd)
        return True

    def release(self) -> None:
        if self._fds is None:
            return
        (file_fd, dir_fd), self._fds = self._fds, None
        try:
            os.ftruncate(file_fd, 0)
        finally:
            os.close(file_fd)
            os.close(dir_fd)
