"""One scriptable fake model server that speaks the four real wire formats on their real paths.

    POST /v1/messages                                  Anthropic (JSON, or named SSE events)
    POST /v1/chat/completions                          OpenAI (JSON, or `data:` SSE ending in [DONE])
    POST /v1beta/models/{model}:generateContent        Gemini (JSON)
    POST /v1beta/models/{model}:streamGenerateContent  Gemini (`?alt=sse`, CRLF framing)
    POST /api/chat                                     Ollama (JSON, or NDJSON; streams by default)

Every request takes the next `Turn` of one shared script, whatever its format, and is rendered in
that format: text and/or tool calls, an error status with that provider's error body, a hang
(the first chunk of a stream, then nothing until the client disconnects, which is recorded), or a
gated answer (half of it, then the rest once the test sets `fake.release`). Gemini
calls carry a `thoughtSignature` and no id, as Gemini 2.x sends them. Every request is recorded.

Serve it in the current event loop with `async with FakeLLM().serving() as fake:`. For benchmarks,
`python tests/routing/fake_llm.py` serves the same formats from a bare asyncio server that answers
every request at once with one text turn (it prints its base URL).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

KEY = "sk-test-SECRET-0123456789abcdef"
PROVIDERS = ("anthropic", "openai", "gemini", "ollama")
CREATED = 1747163251


@dataclass(frozen=True)
class Call:
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One model answer; `error` is (HTTP status, message); `hang` streams one chunk and waits;
    `gated` streams half its chunks and the rest once `fake.release` is set."""

    text: str = ""
    calls: tuple[Call, ...] = ()
    error: tuple[int, str] | None = None
    hang: bool = False
    gated: bool = False
    usage: tuple[int, int] = (11, 7)

    @classmethod
    def calling(cls, *calls: Call, text: str = "") -> Turn:
        return cls(text=text, calls=calls)


@dataclass
class Recorded:
    provider: str
    path: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any]
    streamed: bool
    model: str


def fragments(text: str, n: int = 3) -> list[str]:
    """`text` cut into up to `n` pieces, as streams deliver it."""
    if not text:
        return []
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)]


# ---- rendering, one block of functions per format -----------------------------------------------

_ids = itertools.count(1)


def _call_ids(turn: Turn, prefix: str) -> list[str]:
    return [f"{prefix}{next(_ids):04d}" for _ in turn.calls]


# Anthropic

_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_message(turn: Turn, model: str, ids: list[str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
    content += [
        {"type": "tool_use", "id": i, "name": c.name, "input": c.args}
        for i, c in zip(ids, turn.calls, strict=True)
    ]
    return {
        "id": "msg_01Fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if turn.calls else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": turn.usage[0],
            "output_tokens": turn.usage[1],
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


def anthropic_complete(turn: Turn, model: str) -> dict[str, Any]:
    return anthropic_message(turn, model, _call_ids(turn, "toolu_01"))


def anthropic_stream(turn: Turn, model: str) -> list[bytes]:
    ids = _call_ids(turn, "toolu_01")
    start = {**anthropic_message(turn, model, ids), "content": [], "stop_reason": None}
    start["usage"] = {**start["usage"], "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    index = 0
    if turn.text:
        events.append(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        )
        events += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            for piece in fragments(turn.text)
        ]
        events.append({"type": "content_block_stop", "index": 0})
        index = 1
    for i, (call_id, call) in enumerate(zip(ids, turn.calls, strict=True), start=index):
        block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
        events.append({"type": "content_block_start", "index": i, "content_block": block})
        for piece in ["", *fragments(json.dumps(call.args), 4)]:
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append({"type": "content_block_delta", "index": i, "delta": delta})
        events.append({"type": "content_block_stop", "index": i})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use" if turn.calls else "end_turn", "stop_sequence": None},
            "usage": {"input_tokens": turn.usage[0], "output_tokens": turn.usage[1]},
        }
    )
    events.append({"type": "message_stop"})
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_ERRORS.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011Fake"}


def anthropic_system(body: dict[str, Any]) -> str | None:
    return body.get("system")


def anthropic_tools(body: dict[str, Any]) -> list[str]:
    return [t["name"] for t in body.get("tools", [])]


# OpenAI


def openai_complete(turn: Turn, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": turn.text or None,
        "refusal": None,
        "annotations": [],
    }
    if turn.calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.args)}}
            for i, c in zip(_call_ids(turn, "call_"), turn.calls, strict=True)
        ]
    return {
        "id": "chatcmpl-Fake",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if turn.calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": turn.usage[0],
            "completion_tokens": turn.usage[1],
            "total_tokens": sum(turn.usage),
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def openai_stream(turn: Turn, model: str) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-Fake",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None,
        }

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in fragments(turn.text)]
    for index, (call_id, call) in enumerate(zip(_call_ids(turn, "call_"), turn.calls, strict=True)):
        first = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [first]}))
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in fragments(json.dumps(call.args), 5)
        ]
    chunks.append(chunk({}, "tool_calls" if turn.calls else "stop"))
    usage = {
        "prompt_tokens": turn.usage[0],
        "completion_tokens": turn.usage[1],
        "total_tokens": sum(turn.usage),
    }
    chunks.append({**chunk({}), "choices": [], "usage": usage})
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


def openai_error(status: int, message: str) -> dict[str, Any]:
    code = {401: "invalid_api_key", 429: "rate_limit_exceeded", 404: "model_not_found"}.get(status)
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def openai_system(body: dict[str, Any]) -> str | None:
    first = body["messages"][0]
    return first["content"] if first["role"] in ("system", "developer") else None


def openai_tools(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]


# Gemini

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def signature(name: str) -> str:
    """The thought signature the fake Gemini puts on a call to `name`."""
    return f"sig-{name}-CiQB0e2Kb7"


def gemini_response(parts: list[dict[str, Any]], model: str, turn: Turn, finish: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": turn.usage[0],
            "candidatesTokenCount": turn.usage[1],
            "totalTokenCount": sum(turn.usage),
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": turn.usage[0]}],
        },
        "modelVersion": model,
        "responseId": "resp-Fake",
    }


def _gemini_call(call: Call) -> dict[str, Any]:
    return {"functionCall": {"name": call.name, "args": call.args}, "thoughtSignature": signature(call.name)}


def gemini_complete(turn: Turn, model: str) -> dict[str, Any]:
    parts = ([{"text": turn.text}] if turn.text else []) + [_gemini_call(c) for c in turn.calls]
    return gemini_response(parts, model, turn, finish=True)


def gemini_stream(turn: Turn, model: str) -> list[bytes]:
    chunks = [gemini_response([{"text": piece}], model, turn, finish=False) for piece in fragments(turn.text)]
    chunks += [gemini_response([_gemini_call(c)], model, turn, finish=False) for c in turn.calls]
    chunks.append(gemini_response([{"text": ""}], model, turn, finish=True))
    return [f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks]


def gemini_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _GEMINI_STATUS.get(status, "UNKNOWN")}}


def gemini_system(body: dict[str, Any]) -> str | None:
    instruction = body.get("systemInstruction")
    return "".join(p["text"] for p in instruction["parts"]) if instruction else None


def gemini_tools(body: dict[str, Any]) -> list[str]:
    return [d["name"] for group in body.get("tools", []) for d in group["functionDeclarations"]]


# Ollama


def _ollama_line(model: str, message: dict[str, Any], done: bool) -> dict[str, Any]:
    return {"model": model, "created_at": "2025-05-13T20:47:31.452Z", "message": message, "done": done}


def _ollama_done(turn: Turn, model: str, message: dict[str, Any]) -> dict[str, Any]:
    return {
        **_ollama_line(model, message, True),
        "done_reason": "stop",
        "total_duration": 412_000_000,
        "load_duration": 21_000_000,
        "prompt_eval_count": turn.usage[0],
        "prompt_eval_duration": 90_000_000,
        "eval_count": turn.usage[1],
        "eval_duration": 300_000_000,
    }


def _ollama_calls(turn: Turn) -> list[dict[str, Any]]:
    return [
        {"id": call_id, "function": {"index": i, "name": c.name, "arguments": c.args}}
        for i, (call_id, c) in enumerate(zip(_call_ids(turn, "call_o"), turn.calls, strict=True))
    ]


def ollama_complete(turn: Turn, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text}
    if turn.calls:
        message["tool_calls"] = _ollama_calls(turn)
    return _ollama_done(turn, model, message)


def ollama_stream(turn: Turn, model: str) -> list[bytes]:
    lines = [
        _ollama_line(model, {"role": "assistant", "content": piece}, False) for piece in fragments(turn.text)
    ]
    lines += [
        _ollama_line(model, {"role": "assistant", "content": "", "tool_calls": [call]}, False)
        for call in _ollama_calls(turn)
    ]
    lines.append(_ollama_done(turn, model, {"role": "assistant", "content": ""}))
    return [(json.dumps(line) + "\n").encode() for line in lines]


def ollama_error(status: int, message: str) -> dict[str, Any]:
    return {"error": message}


def ollama_system(body: dict[str, Any]) -> str | None:
    first = body["messages"][0]
    return first["content"] if first["role"] == "system" else None


def ollama_tools(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]


@dataclass(frozen=True)
class Format:
    provider: str
    complete: Callable[[Turn, str], dict[str, Any]]
    stream: Callable[[Turn, str], list[bytes]]
    error: Callable[[int, str], dict[str, Any]]
    system: Callable[[dict[str, Any]], str | None]  # the system prompt a request carried
    tools: Callable[[dict[str, Any]], list[str]]  # the tool names a request offered
    media_type: str
    stream_by_default: bool = False


FORMATS = {
    f.provider: f
    for f in (
        Format(
            "anthropic",
            anthropic_complete,
            anthropic_stream,
            anthropic_error,
            anthropic_system,
            anthropic_tools,
            "text/event-stream; charset=utf-8",
        ),
        Format(
            "openai",
            openai_complete,
            openai_stream,
            openai_error,
            openai_system,
            openai_tools,
            "text/event-stream",
        ),
        Format(
            "gemini",
            gemini_complete,
            gemini_stream,
            gemini_error,
            gemini_system,
            gemini_tools,
            "text/event-stream",
        ),
        Format(
            "ollama",
            ollama_complete,
            ollama_stream,
            ollama_error,
            ollama_system,
            ollama_tools,
            "application/x-ndjson",
            stream_by_default=True,
        ),
    )
}


def classify(provider: str, path: str, body: dict[str, Any]) -> tuple[str, bool]:
    """The model a request names, and whether it asks for a stream."""
    if provider == "gemini":
        model, _, action = path.removeprefix("/v1beta/models/").partition(":")
        return model, action == "streamGenerateContent"
    return body.get("model", ""), bool(body.get("stream", FORMATS[provider].stream_by_default))


# The list-models bodies, as each provider sends them (Gemini's embedding model cannot be routed to).
LISTINGS: dict[str, dict[str, Any]] = {
    "anthropic": {
        "data": [
            {
                "type": "model",
                "id": "model-a",
                "display_name": "Model A",
                "created_at": "2025-09-29T00:00:00Z",
            },
            {
                "type": "model",
                "id": "model-b",
                "display_name": "Model B",
                "created_at": "2025-05-22T00:00:00Z",
            },
        ],
        "has_more": False,
        "first_id": "model-a",
        "last_id": "model-b",
    },
    "openai": {
        "object": "list",
        "data": [
            {"id": "model-a", "object": "model", "created": CREATED, "owned_by": "system"},
            {"id": "model-b", "object": "model", "created": CREATED, "owned_by": "system"},
        ],
    },
    "gemini": {
        "models": [
            {
                "name": "models/model-a",
                "displayName": "Model A",
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            },
            {"name": "models/embedding-a", "supportedGenerationMethods": ["embedContent"]},
        ],
        "nextPageToken": "",
    },
    "ollama": {
        "models": [
            {
                "name": "model-a:latest",
                "model": "model-a:latest",
                "modified_at": "2025-05-13T20:47:31.452Z",
                "size": 2019393189,
                "digest": "a80c4f17acd5",
                "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B"},
            }
        ]
    },
}


PATHS = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai", "/api/chat": "ollama"}


# ---- the server ---------------------------------------------------------------------------------


class HangResponse(Response):
    """Streams the first chunk (if any), then waits for the client to go away and records that. While
    waiting, a stream sends one keep-alive (an SSE comment, an empty NDJSON line) when `fake.keep_alive`
    is set, so a client checking its own clock sees time has passed."""

    def __init__(self, fake: FakeLLM, first: bytes | None, media_type: str) -> None:
        super().__init__(media_type=media_type)
        self.fake = fake
        self.first = first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.first is not None:
            headers = [(b"content-type", self.media_type.encode())] if self.media_type else []
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": self.first, "more_body": True})
        self.fake.hung.set()
        async with anyio.create_task_group() as tg:
            if self.first is not None:
                tg.start_soon(self._keep_alive, send)
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()
        self.fake.disconnects += 1
        self.fake.disconnected.set()

    async def _keep_alive(self, send: Send) -> None:
        await self.fake.keep_alive.wait()
        chunk = b": keep-alive\n\n" if self.media_type == "text/event-stream" else b"\n"
        await send({"type": "http.response.body", "body": chunk, "more_body": True})


class GatedResponse(Response):
    """Sends the first half of an answer's chunks, records that it is waiting (`fake.gated`), and
    sends the rest once the test sets `fake.release`."""

    def __init__(self, fake: FakeLLM, chunks: list[bytes], media_type: str) -> None:
        super().__init__(media_type=media_type)
        self.fake = fake
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", self.media_type.encode())] if self.media_type else []
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        half = len(self.chunks) // 2
        for chunk in self.chunks[:half]:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        self.fake.gated.set()
        await self.fake.release.wait()
        for chunk in self.chunks[half:]:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class FakeLLM:
    def __init__(self, default: Turn | None = None) -> None:
        self.turns: list[Turn] = []
        self.default = default
        self.requests: list[Recorded] = []
        self.reset()
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._handler("anthropic"), methods=["POST"]),
                Route("/v1/chat/completions", self._handler("openai"), methods=["POST"]),
                Route("/v1beta/models/{target:path}", self._handler("gemini"), methods=["POST"]),
                Route("/api/chat", self._handler("ollama"), methods=["POST"]),
                # The model listings (`router://models`), also the cheap authenticated requests of `doctor`.
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1beta/models", self._models, methods=["GET"]),
                Route("/api/tags", self._models, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget the script, the requests, the disconnects and listing errors, as if just started."""
        self.listing_errors: dict[str, tuple[int, str]] = {}
        self.disconnects = 0
        self.turns.clear()
        self.requests.clear()
        self.hung = anyio.Event()
        self.keep_alive = anyio.Event()
        self.disconnected = anyio.Event()
        self.gated = anyio.Event()
        self.release = anyio.Event()

    def script(self, *turns: Turn) -> None:
        self.turns.extend(turns)

    def bodies(self, provider: str | None = None) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if provider is None or r.provider == provider]

    def _next(self) -> Turn:
        if self.turns:
            return self.turns.pop(0)
        if self.default is None:
            raise AssertionError("the fake model was called more often than its script says")
        return self.default

    def _handler(self, provider: str) -> Callable[[Request], Any]:
        form = FORMATS[provider]

        async def handle(request: Request) -> Response:
            body = await request.json()
            model, streamed = classify(provider, request.url.path, body)
            headers = dict(request.headers)
            self.requests.append(
                Recorded(provider, request.url.path, request.url.query, headers, body, streamed, model)
            )
            turn = self._next()
            if turn.error is not None:
                status, message = turn.error
                return JSONResponse(form.error(status, message), status_code=status)
            if turn.gated:
                if streamed:
                    return GatedResponse(self, form.stream(turn, model), form.media_type)
                return GatedResponse(
                    self, [b"", json.dumps(form.complete(turn, model)).encode()], "application/json"
                )
            if turn.hang:
                first = form.stream(Turn(text=turn.text), model)[0] if streamed else None
                return HangResponse(self, first, form.media_type)
            if streamed:
                return StreamingResponse(iter(form.stream(turn, model)), media_type=form.media_type)
            return JSONResponse(form.complete(turn, model))

        return handle

    async def _models(self, request: Request) -> Response:
        """The provider's model listing (LISTINGS) when the request carries KEY the provider's way, else
        its 401; or the error `listing_errors` names for that provider."""
        headers = request.headers
        path = request.url.path
        provider = {"/v1beta/models": "gemini", "/api/tags": "ollama"}.get(path)
        provider = provider or ("anthropic" if "x-api-key" in headers else "openai")
        sent = {
            "anthropic": headers.get("x-api-key"),
            "openai": headers.get("authorization", "").removeprefix("Bearer "),
            "gemini": headers.get("x-goog-api-key"),
            "ollama": KEY,  # a local Ollama needs no key
        }[provider]
        self.requests.append(Recorded(provider, path, request.url.query, dict(headers), {}, False, ""))
        if sent != KEY:
            return JSONResponse(FORMATS[provider].error(401, "invalid api key"), status_code=401)
        if provider in self.listing_errors:
            status, message = self.listing_errors[provider]
            return JSONResponse(FORMATS[provider].error(status, message), status_code=status)
        return JSONResponse(LISTINGS[provider])

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FakeLLM]:
        """Serve on 127.0.0.1 (an OS-assigned port) in the current event loop until the block ends."""
        with bound_socket() as sock:
            host, port = sock.getsockname()[:2]
            self.url = f"http://{host}:{port}"
            config = uvicorn.Config(
                self.app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
            )
            server = uvicorn.Server(config)
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, [sock])
                try:
                    yield self
                finally:
                    server.should_exit = True


@contextmanager
def bound_socket() -> Iterator[socket.socket]:
    """A listening loopback socket: clients may connect before the server starts accepting."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and without it every
    # response on a kept-alive connection waits ~40 ms for a delayed ACK (headers and body are two writes).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    with sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield sock


async def serve_instantly(turn: Turn) -> None:
    """Standalone, for benchmarks: a bare asyncio HTTP/1.1 server that answers every request at once
    with `turn` in the request's format, records nothing, and prints its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                path = head[0].split(" ")[1].partition("?")[0]
                fields = (line.partition(":") for line in head[1:] if line)
                length = int({k.strip().lower(): v.strip() for k, _, v in fields}.get("content-length", 0))
                body = json.loads(await reader.readexactly(length) or b"{}")
                provider = "gemini" if path.startswith("/v1beta/models/") else PATHS[path]
                form = FORMATS[provider]
                model, streamed = classify(provider, path, body)
                if streamed:
                    payload, media_type = b"".join(form.stream(turn, model)), form.media_type
                else:
                    payload, media_type = json.dumps(form.complete(turn, model)).encode(), "application/json"
                status = (
                    f"HTTP/1.1 200 OK\r\ncontent-type: {media_type}\r\ncontent-length: {len(payload)}\r\n\r\n"
                )
                writer.write(status.encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve_instantly(Turn(text="The capital of France is Paris.")))
