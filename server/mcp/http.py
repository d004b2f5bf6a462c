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

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import parse_qs

import httpx
import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from mcp.server.auth.provider import TokenVerifier
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import serve_dual_era_loop
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import (
    RequestBodyLimitMiddleware,
    TransportSecurityMiddleware,
    TransportSecuritySettings,
)
from starlette.applications import Starlette
from starlette.authentication import AuthenticationError
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from server.config import HTTP_DEFAULT_HOST, HTTP_DEFAULT_PORT, Settings
from server.errors import ConfigError
from server.mcp.auth import build_token_verifier
from server.mcp.quick_json import QuickJsonAnswers
from server.mcp.sdk import lowlevel_server
from server.mcp.server import build_server
from server.mcp.state import AppState
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


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Loopback Host / Origin values (any port), plus the configured extras."""
    hosts = [*LOOPBACK_NAMES, *(f"{name}:*" for name in LOOPBACK_NAMES)]
    origins = [
        f"{scheme}://{name}{port}"
        for scheme in ("http", "https")
        for name in LOOPBACK_NAMES
        for port in ("", ":*")
    ]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*hosts, *_split(settings.allowed_hosts)],
        allowed_origins=[*origins, *_split(settings.allowed_origins)],
    )


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


class HostOriginGuard:
    """DNS-rebinding protection for every path: bad Host 421, bad Origin 403, before anything runs."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self.app = app
        self.check = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = await self.check.validate_request(Request(scope), is_post=False)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


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


def _sse_app(mcp: MCPServer[AppState], security: TransportSecuritySettings, max_body: int) -> Starlette:
    # The SDK's sse_app enters the lifespan (opening the store) per connection; here it is entered once.
    lowlevel = lowlevel_server(mcp)
    sse = SseServerTransport(MESSAGES_PATH, security_settings=security, max_request_body_size=max_body)
    state: dict[str, Any] = {}

    class HandleSse:  # a class, so Starlette routes it as a plain ASGI app
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async with sse.connect_sse(scope, receive, send) as (read, write):
                await serve_dual_era_loop(
                    lowlevel,
                    read,
                    write,
                    lifespan_state=state["app"],
                    init_options=lowlevel.create_initialization_options(),
                )

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


def build_http_app(
    settings: Settings,
    *,
    transport: Transport = "http",
    verifier: TokenVerifier | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> Starlette:
    """The ASGI app for `transport`, with rebinding protection, body limit, auth and rate limit.
    `http_client` is the providers' client (the seam for tests)."""
    mcp = build_server(settings, http_client=http_client, over_http=True)
    security = transport_security(settings)
    if transport == "http":
        inner = mcp.streamable_http_app(
            streamable_http_path=MCP_PATH,
            transport_security=security,
            max_request_body_size=settings.max_body_bytes,
        )
    else:
        inner = _sse_app(mcp, security, settings.max_body_bytes)
    middleware = [
        Middleware(HostOriginGuard, security=security),
        Middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_body_bytes),
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

    return Starlette(routes=[Mount("/", app=inner)], middleware=middleware, lifespan=lifespan)


async def serve_http(
    settings: Settings,
    *,
    transport: Transport,
    host: str = HTTP_DEFAULT_HOST,
    port: int = HTTP_DEFAULT_PORT,
) -> None:
    """Serve until stopped. Refuses a non-loopback address when no authentication is configured."""
    verifier = build_token_verifier(settings)
    check_bind(host, verifier)
    if not is_loopback(host) and not _split(settings.allowed_hosts):
        logger.warning(
            "Listening on %s, but only loopback Host headers are accepted: set MEMORY_ROUTER_ALLOWED_HOSTS "
            "to the name clients use to reach this server.",
            host,
        )
    app = build_http_app(settings, transport=transport, verifier=verifier)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    path = MCP_PATH if transport == "http" else SSE_PATH
    logger.info(
        "memory-router on http://%s:%d%s (%s, authentication %s)",
        host,
        port,
        path,
        "streamable HTTP" if transport == "http" else "SSE",
        "on" if verifier else "off",
    )
    if transport == "http":
        logger.info("memory view: http://%s:%d%s", host, port, APP_PATH)
    await server.serve()
