"""Who is at the other end of a unix socket (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS)."""

from __future__ import annotations

import socket
import struct
import sys


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
    """Whether a connection may use the store: its process runs as `allowed_uid`, or the OS cannot say
    (the 0700 socket directory is then the only barrier)."""
    uid = peer_uid(sock)
    return uid is None or uid == allowed_uid
