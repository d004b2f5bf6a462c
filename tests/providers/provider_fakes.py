"""Fakes at the HTTP boundary for the provider tests: a scripted MockTransport and a fake clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from provider_clock import FakeClock

from server.config import Settings
from server.providers import Provider, make_provider

KEY = "sk-test-SECRET-0123456789abcdef"
BASE_URLS = {
    "anthropic": "https://anthropic.test",
    "openai": "https://openai.test/v1",
    "gemini": "https://gemini.test",
    "ollama": "http://ollama.test:11434",
}

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Upstream:
    """Answers requests with scripted replies in order and records what was sent."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ANTHROPIC_API_KEY": KEY,
        "OPENAI_API_KEY": KEY,
        "GEMINI_API_KEY": KEY,
        "OLLAMA_API_KEY": None,
        "ANTHROPIC_BASE_URL": BASE_URLS["anthropic"],
        "OPENAI_BASE_URL": BASE_URLS["openai"],
        "GEMINI_BASE_URL": BASE_URLS["gemini"],
        "OLLAMA_HOST": BASE_URLS["ollama"],
        "request_timeout_seconds": 60.0,
        "max_retries": 2,
    }
    values.update(overrides)
    return Settings(**values)


def provider(name: str, upstream: Upstream, clock: FakeClock | None = None, **overrides: Any) -> Provider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    return make_provider(name, settings(**overrides), client, clock=(clock or FakeClock()).clock())


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


async def _pieces(data: bytes, size: int, then: Exception | None) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
    if then is not None:
        raise then


def stream_reply(
    data: bytes | str,
    *,
    size: int = 7,
    content_type: str = "text/event-stream",
    then: Exception | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    """A streamed 200 whose body arrives in `size`-byte pieces, cut anywhere; a fresh body per request."""
    raw = data.encode() if isinstance(data, str) else data
    return lambda request: httpx.Response(
        200, headers={"content-type": content_type}, content=_pieces(raw, size, then)
    )


def sse(*events: Any, named: bool = False, newline: str = "\n") -> str:
    """SSE text for JSON events; `named` adds Anthropic's `event:` lines from each event's type."""
    out = []
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        name = f"event: {event['type']}{newline}" if named and isinstance(event, dict) else ""
        out.append(f"{name}data: {data}{newline}{newline}")
    return "".join(out)
