"""Directories only this OS user may enter: the store's socket directory, the local HTTP token's."""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from pathlib import Path

from server.errors import MemoryRouterError


def ensure_private_dir(directory: Path, *, what: str, error: type[MemoryRouterError]) -> None:
    """Create `directory` 0700, or check that an existing one is ours and make it private.
    `what` names it in the message of `error`."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    check_private_dir(directory, what=what, error=error, fix=True)


def check_private_dir(
    directory: Path, *, what: str, error: type[MemoryRouterError], fix: bool = False
) -> None:
    """Refuse a directory another user owns (it could hold an impostor), or, unless `fix`, one other
    users could enter."""
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise error(
            f"{directory} ({what}) is not a directory of yours; remove it and start memory-router again."
        )
    if info.st_mode & 0o077:
        if not fix:
            raise error(f"{directory} ({what}) is open to other users; run `chmod 700 {directory}`.")
        os.chmod(directory, 0o700)
