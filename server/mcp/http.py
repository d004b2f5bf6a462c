"""The HTTP transports: streamable HTTP at `/mcp`, legacy SSE at `/sse` + `/messages/`.

Every request passes, outermost first:
  1. the Host / Origin check (DNS-rebinding protection, always on): bad Host 421, bad Origin 403;
  2. the body limit (413 before anything parses the body);
  3. bearer authentication, when a tokens file or JWT is configured: 401 with `WWW-Authenticate`;
then reaches the MCP transport, which runs the tool or resource as the authenticated user.

Sessions: a handshake-era client's MCP session (streamable HTTP `Mcp-Session-Id`, or the SSE
connection) is its session; the SDK binds it to the credential that opened it, so another user's
session id answers 404. Sessionless (2026) clients pass `session_id`; sessions are always keyed by
user too, so the same id under two users names two different sessions.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import parse_qs

import anyio
import httpx
import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from mcp.server.auth.provider import TokenVerifier
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import serve_dual_era_loop
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.authentication import AuthenticationError
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.config import HTTP_DEFAULT_HOST, HTTP_DEFAULT_PORT, Settings
from server.errors import ConfigError
from server.mcp.auth import build_token_verifier
from server.mcp.http_guards import AllowList, BoundedBody, HostOriginGuard
from server.mcp.http_server import listen_backlog, quiet_repeated_logs, uvicorn_config
from server.mcp.local_token import local_access
from server.mcp.quick_json import QuickJsonAnswers
from server.mcp.ratelimit import ToolCallRateLimit
from server.mcp.sdk import lowlevel_server
from server.mcp.server import announce_ready, build_server
from server.mcp.sessions import SessionLedger, StreamableSessionGate, too_many_requests
from server.mcp.state import AppState, current_user
from server.mcp.view.page import APP_PATH, ViewPage

logger = logging.getLogger(__name__)

Transport = Literal["http", "sse"]
MCP_PATH = "/mcp"
SSE_PATH = "/sse"
MESSAGES_PATH = "/messages/"
REALM = "memory-router"
INVALID = "The bearer token is not valid or has expired."
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _loopback_hosts() -> list[str]:
    return [*LOOPBACK_NAMES, *(f"{name}:*" for name in LOOPBACK_NAMES)]


def _loopback_origins() -> list[str]:
    return [
        f"{scheme}://{name}{port}"
        for scheme in ("http", "https")
        for name in LOOPBACK_NAMES
        for port in ("", ":*")
    ]


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Loopback Host / Origin values (any port), plus the configured extras, for the SDK's own
    (prefix-matching) checks; `HostOriginGuard` in front matches the same lists exactly."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*_loopback_hosts(), *_split(settings.allowed_hosts)],
        allowed_origins=[*_loopback_origins(), *_split(settings.allowed_origins)],
    )


def host_guard(settings: Settings) -> Middleware:
    hosts = AllowList(
        [*_loopback_hosts(), *_split(settings.allowed_hosts)],
        origin=False,
        variable="MEMORY_ROUTER_ALLOWED_HOSTS",
    )
    origins = AllowList(
        [*_loopback_origins(), *_split(settings.allowed_origins)],
        origin=True,
        variable="MEMORY_ROUTER_ALLOWED_ORIGINS",
    )
    return Middleware(HostOriginGuard, hosts=hosts, origins=origins)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, verifier: TokenVerifier | None) -> None:
    """Refuse to expose an unauthenticated server beyond this machine."""
    if verifier is None and not is_loopback(host):
        raise ConfigError(
            f"Refusing to listen on {host}: without authentication anyone who can reach this address could "
            "read and change every memory. Create a token with `memory-router token add USER` and set "
            "MEMORY_ROUTER_TOKENS_FILE (or configure MEMORY_ROUTER_JWT_ISSUER / _AUDIENCE and signing keys), "
            "or bind a loopback address such as 127.0.0.1."
        )


# ---- ASGI layers -------------------------------------------------------------------------------


def _unauthorized(token_sent: bool) -> JSONResponse:
    """401 with an RFC 6750 challenge: an error code only when a token came and was refused."""
    if token_sent:
        challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{INVALID}"'
        body = {"error": "invalid_token", "error_description": INVALID}
    else:
        challenge = f'Bearer realm="{REALM}"'
        body = {"error": "unauthorized", "error_description": "Send Authorization: Bearer TOKEN."}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": challenge})


class RequireBearer:
    """401 unless the request was authenticated."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if scope["type"] != "http" or (user is not None and user.is_authenticated):
            await self.app(scope, receive, send)
            return
        sent_token = HTTPConnection(scope).headers.get("authorization", "").lower().startswith("bearer ")
        await _unauthorized(sent_token)(scope, receive, send)


def _auth_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    return _unauthorized(token_sent=True)


def _sse_session_header(app: ASGIApp) -> ASGIApp:
    """Expose the SSE connection id as `mcp-session-id`, so an SSE connection is one MCP session."""

    async def with_header(scope: Scope, receive: Receive, send: Send) -> None:
        ids = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_id", [])
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"mcp-session-id"]
        if ids:
            headers.append((b"mcp-session-id", ids[0].encode("latin-1")))
        await app({**scope, "headers": headers}, receive, send)

    return with_header


def _until(ended: anyio.Event, receive: Receive) -> Receive:
    """`receive`, until `ended` is set: then the client seems to hang up, and the SSE transport
    winds the connection down as it does for a real disconnect."""

    async def receive_until_ended() -> Message:
        message: Message = {"type": "http.disconnect"}
        async with anyio.create_task_group() as race:

            async def from_client() -> None:
                nonlocal message
                message = await receive()
                race.cancel_scope.cancel()

            race.start_soon(from_client)
            await ended.wait()
            race.cancel_scope.cancel()
        return message

    return receive_until_ended


def _sse_app(mcp: MCPServer[AppState], settings: Settings, ledger: SessionLedger) -> Starlette:
    # The SDK's sse_app enters the lifespan (opening the store) per connection; here it is entered once.
    lowlevel = lowlevel_server(mcp)
    security = transport_security(settings)
    sse = SseServerTransport(
        MESSAGES_PATH, security_settings=security, max_request_body_size=settings.max_body_bytes
    )
    state: dict[str, Any] = {}

    class HandleSse:  # a class, so Starlette routes it as a plain ASGI app
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            # One SSE connection is one MCP session: counted, and ended to make room, like any other.
            user = current_user(settings)
            if (wait := ledger.retry_after(user)) > 0:
                await too_many_requests(wait)(scope, receive, send)
                return
            await ledger.make_room(user)
            key, ended = uuid.uuid4().hex, anyio.Event()

            async def end() -> None:
                ended.set()

            ledger.opened(key, user, end, alive=lambda: True)
            ledger.begin(key)
            try:
                async with sse.connect_sse(scope, _until(ended, receive), send) as (read, write):
                    await serve_dual_era_loop(
                        lowlevel,
                        read,
                        write,
                        lifespan_state=state["app"],
                        init_options=lowlevel.create_initialization_options(),
                    )
            finally:
                ledger.closed(key)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with lowlevel.lifespan(lowlevel) as app_state:
            state["app"] = app_state
            yield

    return Starlette(
        routes=[
            Route(SSE_PATH, endpoint=HandleSse(), methods=["GET"]),
            Mount(MESSAGES_PATH, app=_sse_session_header(sse.handle_post_message)),
        ],
        lifespan=lifespan,
    )


def _rate_limit(mcp: MCPServer[AppState]) -> ToolCallRateLimit | None:
    return next((m for m in mcp.middleware if isinstance(m, ToolCallRateLimit)), None)


def build_http_app(
    settings: Settings,
    *,
    transport: Transport = "http",
    verifier: TokenVerifier | None = None,
    http_client: httpx.AsyncClient | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> Starlette:
    """The ASGI app for `transport`, with rebinding protection, body limit, auth and rate limit.
    `http_client` is the providers' client (the seam for tests); `on_ready` as for `build_server`.
    Without a `verifier` the app is open to whoever reaches it, which the settings must allow
    explicitly."""
    if verifier is None and not settings.allow_unauthenticated:
        raise ConfigError(
            "An HTTP server without authentication needs MEMORY_ROUTER_ALLOW_UNAUTHENTICATED=1; "
            "otherwise configure MEMORY_ROUTER_TOKENS_FILE or JWT, or use the local token."
        )
    mcp = build_server(settings, http_client=http_client, over_http=True, on_ready=on_ready)
    ledger = SessionLedger(settings.max_sessions_per_user, settings.max_sessions, _rate_limit(mcp))
    inner: Starlette
    app: ASGIApp
    if transport == "http":
        inner = mcp.streamable_http_app(
            streamable_http_path=MCP_PATH,
            transport_security=transport_security(settings),
            max_request_body_size=settings.max_body_bytes,
            session_idle_timeout=settings.mcp_session_idle_seconds,
            max_sessions=None,  # the ledger caps sessions, per user and in all
        )
        app = StreamableSessionGate(inner, mcp.session_manager, ledger, lambda: current_user(settings))
    else:
        inner = app = _sse_app(mcp, settings, ledger)
    middleware = [
        host_guard(settings),
        Middleware(
            BoundedBody, max_bytes=settings.max_body_bytes, deadline=settings.http_body_timeout_seconds
        ),
    ]
    if transport == "http":  # the page talks to /mcp; before authentication, as it holds no data
        middleware.append(Middleware(ViewPage))
    if verifier is not None:
        middleware += [
            Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(verifier), on_error=_auth_error),
            Middleware(RequireBearer),
            Middleware(AuthContextMiddleware),
        ]
    if transport == "http":  # innermost: after every check above
        middleware.append(Middleware(QuickJsonAnswers, manager=mcp.session_manager, path=MCP_PATH))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with inner.router.lifespan_context(inner):
            yield

    return Starlette(routes=[Mount("/", app=app)], middleware=middleware, lifespan=lifespan)


def listening_socket(host: str, port: int, *, backlog: int) -> socket.socket:
    """Bind and listen before anything starts, so a taken port is reported as such, first."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        return socket.create_server((address, port), family=family, backlog=backlog)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"Port {port} on {host} is already in use (another memory-router serve?): stop that "
                "process or pick another port with --port."
            ) from None
        raise ConfigError(
            f"Cannot listen on {host}:{port} ({e.strerror}): check --host and --port."
        ) from None


def http_url(host: str, port: int, transport: Transport) -> str:
    return f"http://{host}:{port}{MCP_PATH if transport == 'http' else SSE_PATH}"


async def serve_http(
    settings: Settings,
    *,
    transport: Transport,
    host: str = HTTP_DEFAULT_HOST,
    port: int = HTTP_DEFAULT_PORT,
) -> None:
    """Serve until stopped. Refuses a non-loopback address when no authentication is configured, and
    a taken port; on loopback without authentication, requires the local token unless unauthenticated
    access is allowed. Logs one line once the store is open and the port listens."""
    verifier = build_token_verifier(settings)
    check_bind(host, verifier)
    if not is_loopback(host) and not _split(settings.allowed_hosts):
        logger.warning(
            "Listening on %s, but only loopback Host headers are accepted: set MEMORY_ROUTER_ALLOWED_HOSTS "
            "to the name clients use to reach this server.",
            host,
        )
    configured = verifier is not None
    access = local_access(settings, show_token=sys.stderr.isatty()) if verifier is None else None
    if access is not None:
        verifier = access.verifier
    # Bound before anything else: a taken port is reported first, and once the ready line is out,
    # connections queue until served.
    with listening_socket(host, port, backlog=listen_backlog(settings)) as sock:
        port = sock.getsockname()[1]  # --port 0 picks a free one
        kind = "streamable HTTP" if transport == "http" else "SSE"
        where = f"{http_url(host, port, transport)} ({kind}, authentication {'on' if verifier else 'off'})"
        if transport == "http":
            where += f"; memory view at http://{host}:{port}{APP_PATH}"
        announce = announce_ready(settings, where, users_from_tokens=configured)

        def ready(session: str) -> None:
            announce(session)
            if access is not None and access.warning:
                logger.warning("%s", access.warning)
            if access is not None and access.notice:
                print(f"memory-router: {access.notice}", file=sys.stderr, flush=True)

        app = build_http_app(settings, transport=transport, verifier=verifier, on_ready=ready)
        quiet_repeated_logs()
        config = uvicorn_config(app, settings, host=host, port=port, timeout_graceful_shutdown=5)
        await uvicorn.Server(config).serve(sockets=[sock])
