"""Where an embedded store's socket lives: a private (0700) directory of the user's own."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Final

from server.errors import StoreError

SUN_PATH_MAX: Final = 100
"""`sun_path` holds 108 bytes on Linux, 104 on macOS; stay under both."""


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
