"""The ASGI layers in front of every HTTP path: exact Host / Origin allow-lists (DNS-rebinding
protection)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import ConfigError

# name[:port]: a DNS name or IPv4 address, or a bracketed IPv6 address; nothing else (no userinfo,
# path or second port), so `127.0.0.1:1@evil.com` is no loopback host.
_NAME = r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
_HOST = re.compile(_NAME + r"(?::(?P<port>[0-9]{1,5}|\*))?")
_ORIGIN = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://" + _HOST.pattern)


@dataclass(frozen=True)
class Authority:
    scheme: str | None
    name: str
    port: str | None  # digits; "*" in an allow-list entry means any port


def parse_authority(value: str, *, origin: bool) -> Authority | None:
    """`value` as a Host (`name[:port]`) or an Origin (`scheme://name[:port]`), else None."""
    found = (_ORIGIN if origin else _HOST).fullmatch(value.strip())
    if found is None:
        return None
    scheme = found.group("scheme").lower() if origin else None
    return Authority(scheme, found.group("name").lower(), found.group("port"))


class AllowList:
    """Host or Origin values matched exactly (case-insensitive names); `name:*` allows any port."""

    def __init__(self, entries: list[str], *, origin: bool, variable: str) -> None:
        self.origin = origin
        self.entries: list[Authority] = []
        for entry in entries:
            parsed = parse_authority(entry, origin=origin)
            if parsed is None:
                form = "scheme://name[:port]" if origin else "name[:port]"
                raise ConfigError(f"{variable}: {entry!r} is not of the form {form} (port may be *).")
            self.entries.append(parsed)

    def allows(self, value: str) -> bool:
        sent = parse_authority(value, origin=self.origin)
        if sent is None or sent.port == "*":
            return False
        return any(
            entry.scheme == sent.scheme
            and entry.name == sent.name
            and (entry.port == sent.port or (entry.port == "*" and sent.port is not None))
            for entry in self.entries
        )


class HostOriginGuard:
    """DNS-rebinding protection for every path, before anything runs: a Host header not in the
    allow-list gets 421, an Origin header (when sent) not in its allow-list 403."""

    def __init__(self, app: ASGIApp, hosts: AllowList, origins: AllowList) -> None:
        self.app, self.hosts, self.origins = app, hosts, origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if not self.hosts.allows(headers.get("host", "")):
                await PlainTextResponse("Invalid Host header", status_code=421)(scope, receive, send)
                return
            if origin is not None and not self.origins.allows(origin):
                await PlainTextResponse("Invalid Origin header", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
