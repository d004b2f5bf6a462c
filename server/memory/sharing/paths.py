"""Where an embedded store's socket lives: a private (0700) directory of the user's own.

The owner serves at `<store>.run/sock`. When that path is too long for a unix socket, it serves in
a fresh directory with a random name (`mkdtemp`, so no other user can create it first) under
`$XDG_RUNTIME_DIR`, else the temporary directory, and writes that socket's path into
`<store>.run/sock.path` for its peers.
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Final

from server import private_dirs
from server.errors import StoreError

logger = logging.getLogger(__name__)

SUN_PATH_MAX: Final = 100
"""`sun_path` holds 108 bytes on Linux, 104 on macOS; stay under both."""
FRESH_PREFIX: Final = "memory-router-"


def run_dir_for(store_dir: Path) -> Path:
    return store_dir.with_name(store_dir.name + ".run")


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= SUN_PATH_MAX


def _pointer(store_dir: Path) -> Path:
    return run_dir_for(store_dir) / "sock.path"


def socket_path_for(store_dir: Path) -> Path:
    """Where the owner of `store_dir` serves (see the module); `FileNotFoundError` when the
    socket path is too long and no owner has said where it serves."""
    beside = run_dir_for(store_dir) / "sock"
    if _fits(beside):
        return beside
    return Path(os.fsdecode(_pointer(store_dir).read_bytes()))


def claim_socket_path(store_dir: Path) -> Path:
    """The path this process, the store's new owner, serves at (see the module), in a private
    directory it created; a previous owner's fresh directory is removed first."""
    run = run_dir_for(store_dir)
    ensure_private_dir(run)
    beside = run / "sock"
    if _fits(beside):
        return beside
    release_socket_path(store_dir)
    fresh = Path(tempfile.mkdtemp(prefix=FRESH_PREFIX, dir=_short_base()))
    path = fresh / "sock"
    staged = run / "sock.path.new"
    staged.write_bytes(os.fsencode(path))
    os.replace(staged, _pointer(store_dir))
    return path


def release_socket_path(store_dir: Path) -> None:
    """Remove the fresh socket directory named in `<store>.run/sock.path`, and the pointer.
    Only the lock holder calls this; a directory that is not a private one of ours is left alone."""
    pointer = _pointer(store_dir)
    try:
        socket = Path(os.fsdecode(pointer.read_bytes()))
    except FileNotFoundError:
        return
    if socket.parent.name.startswith(FRESH_PREFIX):
        with suppress(OSError, StoreError):
            check_private_dir(socket.parent)
            socket.unlink(missing_ok=True)
            socket.parent.rmdir()
    pointer.unlink(missing_ok=True)


def _short_base() -> Path:
    """Where a fresh socket directory goes: `$XDG_RUNTIME_DIR` (private to the user by design),
    else the temporary directory (else /tmp when that path is too long)."""
    candidates: list[Path] = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        try:
            check_private_dir(Path(runtime))
            candidates.append(Path(runtime))
        except (OSError, StoreError) as e:
            logger.warning(
                "XDG_RUNTIME_DIR=%s is not a private directory of yours (%s); the memory store's "
                "socket goes in a fresh private directory under %s instead.",
                runtime,
                getattr(e, "strerror", None) or e,
                tempfile.gettempdir(),
            )
    candidates += [Path(tempfile.gettempdir()), Path("/tmp")]
    # room for "/memory-router-XXXXXXXX/sock"
    return next((c for c in candidates if _fits(c / (FRESH_PREFIX + "x" * 8) / "sock")), Path("/tmp"))


_SOCKET_DIR = "the memory store's socket directory"


def ensure_private_dir(directory: Path) -> None:
    """Create the socket directory 0700, or check that an existing one is ours and make it private."""
    private_dirs.ensure_private_dir(directory, what=_SOCKET_DIR, error=StoreError)


def check_private_dir(directory: Path, *, fix: bool = False) -> None:
    """Refuse a socket directory that another user owns or could enter: it could hold an impostor."""
    private_dirs.check_private_dir(directory, what=_SOCKET_DIR, error=StoreError, fix=fix)
