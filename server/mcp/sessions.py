"""MCP sessions over HTTP: a quota per user, a global cap that nobody can pin, `initialize` counted
against the rate limit, and a request cancelled when its client hangs up.

A handshake-era session (a streamable HTTP `Mcp-Session-Id`, or one SSE connection) costs memory
until it ends. Each user may hold `max_sessions_per_user`; opening one more ends that user's least
recently active session (idle ones first). When all users together hold `max_sessions`, a new
session ends the least recently active one of the user holding the most. So one user can neither
fill the server nor keep it full: a user's sessions only ever displace their own, or those of a
heavier user. Sessions idle for `session_idle_seconds` end anyway (the SDK's idle timer).

Opening a session spends one call of the user's rate limit (`MEMORY_ROUTER_RATE_LIMIT_PER_MINUTE`);
over it, the answer is 429 with `Retry-After`, before any session exists.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.mcp.ratelimit import ToolCallRateLimit
from server.mcp.sdk import streamable_http_sessions

logger = logging.getLogger(__name__)

SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"


@dataclass
class _Session:
    user: str
    end: Callable[[], Awaitable[None]]
    alive: Callable[[], bool]
    last_active: float
    busy: int = 0

    def eviction_order(self) -> tuple[bool, float]:
        return (self.busy > 0, self.last_active)


class SessionLedger:
    """Which user holds which MCP session, and which session makes room for a new one."""

    def __init__(
        self,
        per_user: int,
        total: int,
        rate_limit: ToolCallRateLimit | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_user, self.total, self.rate_limit, self.clock = per_user, total, rate_limit, clock
        self._sessions: dict[str, _Session] = {}

    def retry_after(self, user: str) -> float:
        """Spend one call of `user`'s rate limit on opening a session: 0, or seconds to wait."""
        return self.rate_limit.try_acquire(user) if self.rate_limit is not None else 0.0

    def sessions_of(self, user: str) -> int:
        return sum(1 for s in self._live().values() if s.user == user)

    def _live(self) -> dict[str, _Session]:
        self._sessions = {key: s for key, s in self._sessions.items() if s.alive()}
        return self._sessions

    async def make_room(self, user: str) -> None:
        """End sessions until `user` may open one more: theirs over their quota, else the heaviest
        user's over the global cap."""
        while True:
            live = self._live()
            mine = [key for key, s in live.items() if s.user == user]
            if len(mine) >= self.per_user:
                candidates = mine
            elif len(live) >= self.total:
                counts: dict[str, int] = {}
                for s in live.values():
                    counts[s.user] = counts.get(s.user, 0) + 1
                heaviest = max(counts, key=lambda u: counts[u])
                candidates = [key for key, s in live.items() if s.user == heaviest]
            else:
                return
            key = min(candidates, key=lambda k: live[k].eviction_order())
            session = self._sessions.pop(key)
            logger.info("ending an MCP session of %s to make room for a new one", session.user)
            await session.end()

    def opened(
        self, key: str, user: str, end: Callable[[], Awaitable[None]], alive: Callable[[], bool]
    ) -> None:
        self._sessions[key] = _Session(user, end, alive, self.clock())

    def closed(self, key: str) -> None:
        self._sessions.pop(key, None)

    def begin(self, key: str) -> None:
        if (session := self._sessions.get(key)) is not None:
            session.busy += 1
            session.last_active = self.clock()

    def end(self, key: str) -> None:
        if (session := self._sessions.get(key)) is not None:
            session.busy -= 1
            session.last_active = self.clock()


def too_many_requests(wait: float) -> JSONResponse:
    seconds = math.ceil(wait)
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32000,
            "message": f"Rate limit reached: try opening a session again in {seconds} s.",
        },
    }
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(seconds)})


def request_ids(body: bytes) -> list[Any]:
    """The ids of the JSON-RPC requests (not notifications or responses) in a POST body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return []
    messages = parsed if isinstance(parsed, list) else [parsed]
    return [m["id"] for m in messages if isinstance(m, dict) and "method" in m and m.get("id") is not None]


class StreamableSessionGate:
    """In front of the SDK's streamable HTTP session manager: the quota and rate limit on opening
    a session, activity bookkeeping, and `notifications/cancelled` for the requests of a POST whose
    client hung up before their answer (as if the client had cancelled them)."""

    def __init__(
        self,
        app: ASGIApp,
        manager: StreamableHTTPSessionManager,
        ledger: SessionLedger,
        current_user: Callable[[], str],
    ) -> None:
        self.app, self.manager, self.ledger, self.current_user = app, manager, ledger, current_user

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        session_id = headers.get(SESSION_HEADER)
        version = headers.get(VERSION_HEADER)
        if session_id is None:
            opening = scope["method"] == "POST" and (
                version is None or version in HANDSHAKE_PROTOCOL_VERSIONS
            )
            if opening:
                await self._open(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        self.ledger.begin(session_id)
        try:
            await self._serve_cancelling_on_disconnect(scope, receive, send)
        finally:
            self.ledger.end(session_id)

    async def _open(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = self.current_user()
        if (wait := self.ledger.retry_after(user)) > 0:
            await too_many_requests(wait)(scope, receive, send)
            return
        await self.ledger.make_room(user)
        session_id: str | None = None

        async def note_session(message: Message) -> None:
            nonlocal session_id
            if message["type"] == "http.response.start" and message["status"] < 400:
                session_id = Headers(raw=message.get("headers", [])).get(SESSION_HEADER)
                if session_id is not None:
                    self._opened(session_id, user)
            await send(message)

        await self.app(scope, receive, note_session)

    def _opened(self, session_id: str, user: str) -> None:
        sessions = streamable_http_sessions(self.manager)

        async def end() -> None:
            if (transport := sessions.get(session_id)) is not None:
                await transport.terminate()

        def alive() -> bool:
            transport = sessions.get(session_id)
            return transport is not None and not transport.is_terminated

        self.ledger.opened(session_id, user, end, alive)

    async def _serve_cancelling_on_disconnect(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        first = await receive()  # the whole body: BoundedBody read it
        ids = request_ids(first.get("body", b"")) if first["type"] == "http.request" else []
        replayed = False
        hung_up = answered = False

        async def watched_receive() -> Message:
            nonlocal replayed, hung_up
            if not replayed:
                replayed = True
                return first
            message = await receive()
            hung_up = hung_up or message["type"] == "http.disconnect"
            return message

        async def watched_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        await self.app(scope, watched_receive, watched_send)
        if ids and hung_up and not answered:
            with anyio.CancelScope(shield=True):
                for request_id in ids:
                    await self._cancel(scope, request_id)

    async def _cancel(self, scope: Scope, request_id: Any) -> None:
        """Tell the session the client cancelled `request_id`, through the transport, as a client would."""
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": request_id, "reason": "The client closed the connection."},
            }
        ).encode()
        kept = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length", b"accept")
        ]
        headers = [
            *kept,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"accept", b"application/json, text/event-stream"),
        ]
        sent = False

        async def receive_body() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def discard(_: Message) -> None:
            return None

        await self.app({**scope, "headers": headers}, receive_body, discard)
