"""Who is calling over HTTP: bearer tokens from the tokens file, and optionally JWTs.

The tokens file (`MEMORY_ROUTER_TOKENS_FILE`) holds one `USER SHA256-OF-TOKEN` line per token.
`memory-router token add USER` prints a new token once; only its hash is ever written. The
authenticated user becomes `AccessToken.client_id`, which `server.mcp.state.current_user` reads.
A JWT's user is `jwt:CLAIM`: token-file names cannot contain `:`, so an identity provider can never
issue a subject that is a token-file user (or the stdio user) by accident.
No token, hash or key is ever logged or put in an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier

from server.config import Settings
from server.errors import ConfigError

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "mr_"
JWT_USER_PREFIX = "jwt:"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _valid_user(user: str) -> bool:
    return bool(user) and not any(c.isspace() or c == ":" for c in user) and not user.startswith("#")


def _check_user(user: str) -> None:
    if not _valid_user(user):
        raise ConfigError(
            f"{user!r} is not a valid user name: it must be non-empty, without spaces, `:` (kept for "
            "JWT users, `jwt:SUBJECT`) or a leading #."
        )


@dataclass(frozen=True)
class TokenEntry:
    user: str
    digest: str


class TokensFile:
    """The `USER SHA256-OF-TOKEN` file: read (re-read when it changes), add, revoke."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._entries: list[TokenEntry] = []

    def entries(self) -> list[TokenEntry]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._entries = None, []
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._entries = self._parse(self.path.read_text(encoding="utf-8"))
            self._stamp = stamp
        return self._entries

    def _parse(self, text: str) -> list[TokenEntry]:
        entries = []
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            digest = fields[1].lower() if len(fields) == 2 else ""
            bad_digest = len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)
            if bad_digest or not _valid_user(fields[0]):
                logger.warning(
                    "%s:%d is not a `USER SHA256-OF-TOKEN` line (a user name has no spaces or `:`); ignored",
                    self.path,
                    number,
                )
                continue
            entries.append(TokenEntry(fields[0], digest))
        return entries

    def user_for(self, token: str) -> str | None:
        digest = hash_token(token)
        found = None
        for entry in self.entries():
            if hmac.compare_digest(entry.digest, digest):
                found = entry.user
        return found

    def add(self, user: str) -> str:
        """Store the hash of a new token for `user` and return the token (shown once, never stored)."""
        _check_user(user)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._write([*self.entries(), TokenEntry(user, hash_token(token))])
        return token

    def revoke(self, user: str) -> int:
        """Remove every token of `user`; returns how many there were."""
        entries = self.entries()
        kept = [e for e in entries if e.user != user]
        if len(kept) != len(entries):
            self._write(kept)
        return len(entries) - len(kept)

    def users(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.entries():
            counts[entry.user] = counts.get(entry.user, 0) + 1
        return counts

    def _write(self, entries: list[TokenEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{e.user} {e.digest}\n" for e in entries)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None


class TokensFileVerifier(TokenVerifier):
    def __init__(self, tokens: TokensFile) -> None:
        self.tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        user = self.tokens.user_for(token)
        if user is None:
            return None
        return AccessToken(token=token, client_id=user, scopes=[])


class JwtVerifier(TokenVerifier):
    """JWTs signed by a JWKS endpoint, a PEM public key or a shared secret; issuer and audience checked."""

    def __init__(self, settings: Settings) -> None:
        if not settings.jwt_issuer or not settings.jwt_audience:
            raise ConfigError(
                "JWT verification needs both MEMORY_ROUTER_JWT_ISSUER and MEMORY_ROUTER_JWT_AUDIENCE."
            )
        self.issuer, self.audience = settings.jwt_issuer, settings.jwt_audience
        self.user_claim = settings.jwt_user_claim
        self.algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
        self._key: Any = None
        if settings.jwt_public_key_file is not None:
            try:
                self._key = settings.jwt_public_key_file.read_text(encoding="utf-8")
            except OSError as e:
                message = f"MEMORY_ROUTER_JWT_PUBLIC_KEY_FILE cannot be read: {e.strerror}."
                raise ConfigError(message) from None
        elif settings.jwt_secret is not None:
            self._key = settings.jwt_secret.get_secret_value()
            self.algorithms = [a for a in self.algorithms if a.startswith("HS")] or ["HS256"]
        if self._jwks is None and self._key is None:
            raise ConfigError(
                "JWT verification needs signing keys: set MEMORY_ROUTER_JWT_JWKS_URL, "
                "MEMORY_ROUTER_JWT_PUBLIC_KEY_FILE or MEMORY_ROUTER_JWT_SECRET."
            )

    async def verify_token(self, token: str) -> AccessToken | None:
        if token.count(".") != 2:
            return None
        try:
            key = self._key
            if self._jwks is not None:
                signing_key = await anyio.to_thread.run_sync(self._jwks.get_signing_key_from_jwt, token)
                key = signing_key.key
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", self.user_claim]},
            )
        except jwt.PyJWTError as e:
            logger.info("rejected a JWT: %s", type(e).__name__)
            return None
        user = claims.get(self.user_claim)
        if not isinstance(user, str) or not user:
            return None
        return AccessToken(
            token=token,
            client_id=JWT_USER_PREFIX + user,
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=self.audience,
            subject=str(claims.get("sub")) if claims.get("sub") is not None else None,
            claims={"iss": claims.get("iss")},
        )


class AnyOfVerifier(TokenVerifier):
    """The first verifier that accepts the token decides who the caller is."""

    def __init__(self, verifiers: list[TokenVerifier]) -> None:
        self.verifiers = verifiers

    async def verify_token(self, token: str) -> AccessToken | None:
        for verifier in self.verifiers:
            if (access := await verifier.verify_token(token)) is not None:
                return access
        return None


def build_token_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier the settings ask for, or None when HTTP authentication is not configured."""
    verifiers: list[TokenVerifier] = []
    if settings.tokens_file is not None:
        verifiers.append(TokensFileVerifier(TokensFile(settings.tokens_file)))
    if settings.jwt_issuer or settings.jwt_audience:
        verifiers.append(JwtVerifier(settings))
    if not verifiers:
        return None
    return verifiers[0] if len(verifiers) == 1 else AnyOfVerifier(verifiers)


def token_command(action: str, user: str | None, settings: Settings) -> int:
    """`memory-router token add USER | list | revoke USER`."""
    if settings.tokens_file is None:
        raise ConfigError(
            "Set MEMORY_ROUTER_TOKENS_FILE to the file that holds the token hashes "
            "(for example ~/.config/memory-router/tokens), then run this again."
        )
    tokens = TokensFile(settings.tokens_file)
    match action:
        case "add":
            assert user is not None
            token = tokens.add(user)
            print(token)
            print(
                f"Added a token for {user} to {tokens.path}. It is shown only this once; "
                "clients send it as `Authorization: Bearer TOKEN`.",
                file=sys.stderr,
            )
        case "list":
            for name, count in sorted(tokens.users().items()):
                print(f"{name}\t{count} token{'s' if count != 1 else ''}")
        case "revoke":
            assert user is not None
            removed = tokens.revoke(user)
            if not removed:
                print(f"{user} has no token in {tokens.path}.", file=sys.stderr)
                return 1
            print(f"Revoked {removed} token{'s' if removed != 1 else ''} of {user}.", file=sys.stderr)
        case _:
            raise ValueError(action)
    return 0
