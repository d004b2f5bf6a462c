"""Unauthenticated HTTP is an explicit choice.

Without a tokens file or JWT, a loopback HTTP server still requires a bearer token: a random one,
kept in a 0600 file in a 0700 directory of the user's own (`$XDG_RUNTIME_DIR/memory-router`, else
the user config directory), so only this OS user's processes can read it. The token is made on the
first start and kept until the file is deleted, so a host configured with it keeps working across
restarts. It acts as the configured user (`MEMORY_ROUTER_USER`), as stdio does.
`MEMORY_ROUTER_ALLOW_UNAUTHENTICATED=1` opens a loopback server to every local process instead.
"""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mcp.server.auth.provider import AccessToken, TokenVerifier
from platformdirs import user_config_dir

from server.config import Settings
from server.errors import ConfigError
from server.private_dirs import ensure_private_dir

LOCAL_TOKEN_PREFIX = "mr_local_"
TOKEN_FILE_NAME = "http-token"


def local_token_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "memory-router"
    return Path(user_config_dir("memory-router", appauthor=False))


def _read_token(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    valid = text.startswith(LOCAL_TOKEN_PREFIX) and len(text) > len(LOCAL_TOKEN_PREFIX) + 32
    return text if valid and text.isprintable() and " " not in text else None


def load_or_create_token(directory: Path) -> tuple[str, Path]:
    """The local token and its file: the one already there, else a new one (two servers starting
    at once agree on one, since the file is only ever created by a hard link, which cannot replace)."""
    ensure_private_dir(directory, what="where memory-router keeps its local HTTP token", error=ConfigError)
    path = directory / TOKEN_FILE_NAME
    if (token := _read_token(path)) is not None:
        os.chmod(path, 0o600)
        return token, path
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".http-token-")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(LOCAL_TOKEN_PREFIX + secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:  # another server won the race, or the file there is unusable
            if _read_token(path) is None:
                os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    token = _read_token(path)
    if token is None:
        raise ConfigError(f"{path} does not hold a memory-router token; remove it and start again.")
    return token, path


class LocalTokenVerifier(TokenVerifier):
    """Accepts only the local token, as the configured user."""

    def __init__(self, token: str, user: str) -> None:
        self._token, self._user = token, user

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            return None
        return AccessToken(token=token, client_id=self._user, scopes=[])


@dataclass(frozen=True)
class HttpAccess:
    """Who may use a served HTTP server, and what to tell the person starting it."""

    verifier: TokenVerifier | None
    notice: str | None = None
    warning: str | None = None


def local_access(settings: Settings, *, show_token: bool) -> HttpAccess:
    """Access to a loopback server without configured authentication: open when the settings say
    so, else the local token. `show_token`: put the token itself in the notice (on a terminal),
    rather than only where it is (in a log)."""
    if settings.allow_unauthenticated:
        return HttpAccess(
            None,
            warning=(
                "MEMORY_ROUTER_ALLOW_UNAUTHENTICATED=1: every process of every user on this machine can "
                f"read and change {settings.user}'s memories through this server."
            ),
        )
    token, path = load_or_create_token(local_token_dir())
    header = f"Authorization: Bearer {token}" if show_token else f"Authorization: Bearer $(cat {path})"
    return HttpAccess(
        LocalTokenVerifier(token, settings.user),
        notice=(
            f"HTTP clients must send the header `{header}`. The token is in {path} (readable only by you; "
            "delete the file to make a new one). For tokens per user set MEMORY_ROUTER_TOKENS_FILE; on a "
            "single-user machine MEMORY_ROUTER_ALLOW_UNAUTHENTICATED=1 turns this off."
        ),
    )
