"""Quick 2026 requests over streamable HTTP answered with one JSON body instead of a response stream.

The SDK's 2026 path runs each request as a sibling task beside a disconnect watcher and holds a
stream open in case the handler sends a notification; for a `memory` call that machinery costs a
third of the server's CPU (bench/http_load.py: 2.5 ms per call against 1.8 ms as JSON). A request
gets the stream only when it may use it: it carries a progress token, or it may run long (a
`route_completion`, whose cancellation is the client closing the stream), or it is a listen.
Handshake-era (2025) sessions are left alone: their transport chooses per session, and their
notifications ride on the request's stream.
"""

from __future__ import annotations

import json
from typing import Any, Final

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.mcp.recall_tool import RECALL_TOOL_NAME
from server.mcp.sdk import answer_modern_request_as_json
from server.memory.tool import MEMORY_TOOL_NAME

QUICK_TOOLS: Final = frozenset({MEMORY_TOOL_NAME, RECALL_TOOL_NAME})
QUICK_METHODS: Final = frozenset(
    {
        "server/discover",
        "ping",
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "prompts/list",
        "prompts/get",
        "completion/complete",
    }
)
PROTOCOL_HEADER: Final = b"mcp-protocol-version"


def is_quick(message: Any) -> bool:
    """A single request that cannot use a response stream: a quick method or tool, no progress token."""
    if not isinstance(message, dict) or "id" not in message:
        return False
    params = message.get("params")
    params = params if isinstance(params, dict) else {}
    meta = params.get("_meta")
    if isinstance(meta, dict) and "progressToken" in meta:
        return False
    method = message.get("method")
    return method in QUICK_METHODS or (method == "tools/call" and params.get("name") in QUICK_TOOLS)


def _modern(scope: Scope) -> bool:
    """What the session manager serves as a single exchange: a protocol version header, not of the
    handshake era."""
    version = next((v for k, v in scope["headers"] if k == PROTOCOL_HEADER), None)
    return version is not None and version.decode("latin-1") not in HANDSHAKE_PROTOCOL_VERSIONS


class QuickJsonAnswers:
    """ASGI middleware, innermost (after authentication), for streamable HTTP at `path`."""

    def __init__(self, app: ASGIApp, manager: StreamableHTTPSessionManager, path: str) -> None:
        self.app = app
        self.manager = manager
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or not _modern(scope)
        ):
            await self.app(scope, receive, send)
            return
        body, replay = await _read_body(receive)  # the outer body limit has bounded it
        try:
            quick = is_quick(json.loads(body))
        except (ValueError, RecursionError):
            quick = False  # the SDK answers a parse error in its own words
        if quick:
            await answer_modern_request_as_json(self.manager, scope, replay, send)
        else:
            await self.app(scope, replay, send)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a `receive` that hands it out again, then goes on to the client."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # The client went away: nothing to parse, and whoever reads next must see it.
            first: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            first = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
            break

    async def replay() -> Message:
        return first.pop() if first else await receive()

    body = first[0].get("body", b"") if first and first[0]["type"] == "http.request" else b""
    return body, replay
