"""`GET /app`: the memory view for a plain browser, served next to streamable HTTP's `/mcp`.

The page holds no data: it asks for the bearer token and sends it on every `/mcp` request, where
authentication and per-user isolation apply unchanged. So it answers after the Host / Origin check
and before authentication.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.mcp.view import memories_html, page_policy

APP_PATH = "/app"


def page_headers() -> dict[str, str]:
    # `frame-ancestors` only works as a header: no other site may frame the page.
    return {
        "Content-Security-Policy": f"{page_policy()}; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


class ViewPage:
    """Answers `GET /app` with the view; every other request goes on to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != APP_PATH:
            await self.app(scope, receive, send)
            return
        response: Response
        if scope["method"] == "GET":
            response = Response(
                memories_html(), media_type="text/html; charset=utf-8", headers=page_headers()
            )
        else:
            response = PlainTextResponse(
                f"{APP_PATH} answers GET only.", status_code=405, headers={"Allow": "GET"}
            )
        await response(scope, receive, send)
