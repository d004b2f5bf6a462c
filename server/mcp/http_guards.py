"""The ASGI layers in front of every HTTP path: exact Host / Origin allow-lists (DNS-rebinding
protection), and a request body that must fit in a size limit and arrive within a deadline."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

import anyio
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class BoundedBody:
    """Reads the whole request body before the app runs: over `max_bytes` it is answered 413 (declared
    or streamed), not complete within `deadline` seconds 408, so a client that sends its body slowly
    holds no more than one connection for `deadline` seconds. The app then reads the body as sent,
    and anything after it (the disconnect) from the connection."""

    def __init__(self, app: ASGIApp, max_bytes: int, deadline: float) -> None:
        self.app, self.max_bytes, self.deadline = app, max_bytes, deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(scope, receive, send)
            return
        pending: deque[Message] = deque()
        with anyio.move_on_after(self.deadline):
            pending = await self._read_body(receive)
        if not pending:
            response = PlainTextResponse(
                "The request body did not arrive in time.", status_code=408, headers={"Connection": "close"}
            )
            await response(scope, receive, send)
            return
        if pending[0]["type"] != "http.request":  # the client went away
            return
        if len(pending[0]["body"]) > self.max_bytes:
            await _too_large(scope, receive, send)
            return

        async def replay() -> Message:
            return pending.popleft() if pending else await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> deque[Message]:
        """The body as one message (cut short past the limit), or the disconnect that came first."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return deque([message])
            body += message.get("body", b"")
            if not message.get("more_body", False) or len(body) > self.max_bytes:
                return deque([{"type": "http.request", "body": bytes(body), "more_body": False}])


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("Request body too large", status_code=413)(scope, receive, send)
