"""What the provider adapters add per call, over a bare httpx POST of the same body.

A fake server in a child process answers every request instantly with a canned, realistic body
for each provider format (JSON for `complete`, SSE or NDJSON for `stream`). For each format we time
`complete` and a full `stream` through our adapter, and a bare `client.post` / `client.stream` of
the very same request body, sequentially and 100 at a time, in client CPU time per call.

    python -m bench.providers [--calls 300] [--rounds 3]   (from the repository root)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import httpx

from server.config import Settings
from server.providers import Provider, make_provider
from server.providers.base import HttpProvider
from server.providers.types import CompletionRequest

TEXT = "The capital of France is Paris. " * 4
TOOL = {"name": "weather", "arguments": {"city": "Paris", "units": "metric"}}


def _sse(events: list[Any], newline: str = "\n") -> bytes:
    return "".join(f"data: {json.dumps(e)}{newline}{newline}" for e in events).encode()


def _bodies() -> dict[str, tuple[bytes, bytes, bytes]]:
    """Per route: (complete JSON, streamed body, stream content type)."""
    words = TEXT.split(" ")
    anthropic_json: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": TEXT},
            {"type": "tool_use", "id": "toolu_1", "name": TOOL["name"], "input": TOOL["arguments"]},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 20, "output_tokens": 30},
    }
    args = json.dumps(TOOL["arguments"])
    anthropic_events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**anthropic_json, "content": [], "stop_reason": None}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *[
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w + " "}}
            for w in words
        ],
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}},
        },
        *[
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
            for p in (args[:10], args[10:])
        ],
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}},
        {"type": "message_stop"},
    ]
    anthropic_stream = "".join(
        f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in anthropic_events
    ).encode()
    openai_json = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4.1-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": TEXT,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": args},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 30},
    }

    def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "object": "chat.completion.chunk",
            "model": "gpt-4.1-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    openai_stream = (
        _sse(
            [
                openai_chunk({"role": "assistant", "content": ""}),
                *[openai_chunk({"content": w + " "}) for w in words],
                openai_chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "weather"}}]}),
                *[
                    openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
                    for p in (args[:10], args[10:])
                ],
                openai_chunk({}, "tool_calls"),
                {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 30}},
            ]
        )
        + b"data: [DONE]\n\n"
    )
    gemini_json: dict[str, Any] = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": TEXT}, {"functionCall": TOOL, "thoughtSignature": "c2ln"}],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 30},
        "modelVersion": "gemini-2.5-flash",
    }
    gemini_stream = _sse(
        [
            *[{"candidates": [{"content": {"role": "model", "parts": [{"text": w + " "}]}}]} for w in words],
            {
                **gemini_json,
                "candidates": [
                    {
                        **gemini_json["candidates"][0],
                        "content": {
                            "role": "model",
                            "parts": [{"functionCall": TOOL, "thoughtSignature": "c2ln"}],
                        },
                    }
                ],
            },
        ],
        newline="\r\n",
    )
    ollama_json = {
        "model": "llama3.2",
        "message": {"role": "assistant", "content": TEXT, "tool_calls": [{"function": TOOL}]},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 20,
        "eval_count": 30,
    }
    ollama_stream = "".join(
        json.dumps(line) + "\n"
        for line in [
            *[
                {"model": "llama3.2", "message": {"role": "assistant", "content": w + " "}, "done": False}
                for w in words
            ],
            {
                "model": "llama3.2",
                "message": {"role": "assistant", "content": "", "tool_calls": [{"function": TOOL}]},
                "done": False,
            },
            {**ollama_json, "message": {"role": "assistant", "content": ""}},
        ]
    ).encode()
    return {
        "/v1/messages": (json.dumps(anthropic_json).encode(), anthropic_stream, b"text/event-stream"),
        "/v1/chat/completions": (json.dumps(openai_json).encode(), openai_stream, b"text/event-stream"),
        "/v1beta/models/gemini-2.5-flash": (
            json.dumps(gemini_json).encode(),
            gemini_stream,
            b"text/event-stream",
        ),
        "/api/chat": (json.dumps(ollama_json).encode(), ollama_stream, b"application/x-ndjson"),
    }


async def _serve(port: int) -> None:
    bodies = _bodies()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode().split("\r\n")
                path = request_line.split(" ")[1]
                length = 0
                for header in header_lines:
                    name, _, value = header.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                route = next(r for r in bodies if path.startswith(r))
                complete, streamed, stream_type = bodies[route]
                is_stream = b'"stream":true' in body or "alt=sse" in path
                payload, kind = (streamed, stream_type) if is_stream else (complete, b"application/json")
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: "
                    + kind
                    + b"\r\ncontent-length: "
                    + str(len(payload)).encode()
                    + b"\r\n\r\n"
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


def _run_server(port: int) -> None:
    asyncio.run(_serve(port))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(model: str) -> CompletionRequest:
    return CompletionRequest.model_validate(
        {
            "model": model,
            "system": "Answer briefly.",
            "messages": [
                {"role": "user", "content": "What is the capital of France, and the weather there?"},
            ],
            "tools": [
                {
                    "name": "weather",
                    "description": "Current weather",
                    "input_schema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "units": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ],
            "parameters": {"temperature": 0.2, "max_tokens": 256},
        }
    )


Call = Callable[[], Coroutine[Any, Any, None]]


async def _per_call_us(call: Call, calls: int, concurrency: int) -> float:
    """Mean CPU time of this process per call in µs, `concurrency` calls in flight at once.

    CPU time rather than wall time: the fake server runs in another process, so waiting on it (and
    on whatever else the machine is doing) is not counted, and what is left is our client's work.
    """
    started = time.process_time()
    if concurrency == 1:
        for _ in range(calls):
            await call()
    else:
        for _ in range(calls // concurrency):
            async with anyio.create_task_group() as group:
                for _ in range(concurrency):
                    group.start_soon(call)
    return (time.process_time() - started) / calls * 1e6


def _calls(
    client: httpx.AsyncClient, adapter: HttpProvider[Any], request: CompletionRequest
) -> dict[str, Call]:
    complete_wire = adapter.build_request(request, stream=False)
    stream_wire = adapter.build_request(request, stream=True)

    async def bare_complete() -> None:
        response = await client.post(
            complete_wire.url, headers=complete_wire.headers, content=complete_wire.content()
        )
        response.raise_for_status()

    async def bare_stream() -> None:
        content = stream_wire.content()
        async with client.stream(
            "POST", stream_wire.url, headers=stream_wire.headers, content=content
        ) as response:
            async for _ in response.aiter_bytes():
                pass

    async def ours_complete() -> None:
        await adapter.complete(request)

    async def ours_stream() -> None:
        async for _ in adapter.stream(request):
            pass

    return {
        "bare complete": bare_complete,
        "bare stream": bare_stream,
        "complete": ours_complete,
        "stream": ours_stream,
    }


async def _bench(port: int, calls: int, rounds: int) -> None:
    base = f"http://127.0.0.1:{port}"
    settings = Settings.model_validate(
        {
            **dict.fromkeys(("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"), "bench"),
            **dict.fromkeys(("ANTHROPIC_BASE_URL", "GEMINI_BASE_URL", "OLLAMA_HOST"), base),
            "OPENAI_BASE_URL": f"{base}/v1",
        }
    )
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    mapping: dict[str, tuple[float, float]] = {}
    print(f"{calls} calls per measurement, best of {rounds} rounds; client CPU µs per call")
    print(f"{'format':<10} {'verb':<9} {'mode':<9} {'bare':>8} {'ours':>8} {'added':>8} {'ratio':>6}")
    async with httpx.AsyncClient(limits=limits) as client:
        for name, model in (
            ("anthropic", "claude-sonnet-4-5"),
            ("openai", "gpt-4.1-mini"),
            ("gemini", "gemini-2.5-flash"),
            ("ollama", "llama3.2"),
        ):
            adapter: Provider = make_provider(name, settings, client)
            assert isinstance(adapter, HttpProvider)
            runs = _calls(client, adapter, _request(model))
            mapping[name] = _mapping_us(adapter, _request(model))
            for verb in ("complete", "stream"):
                for mode, concurrency in (("serial", 1), ("100 conc", 100)):
                    bare_times, our_times = [], []
                    for _ in range(rounds):  # interleaved, so drift hits both sides alike
                        bare_times.append(await _per_call_us(runs[f"bare {verb}"], calls, concurrency))
                        our_times.append(await _per_call_us(runs[verb], calls, concurrency))
                    bare, ours = min(bare_times), min(our_times)
                    print(
                        f"{name:<10} {verb:<9} {mode:<9} {bare:8.0f} {ours:8.0f} {ours - bare:8.0f} "
                        f"{ours / bare:6.2f}"
                    )
    print("\nadapter work alone (build + encode the request, decode + map the answer), µs per call")
    for name, (complete_us, stream_us) in mapping.items():
        print(f"{name:<10} complete {complete_us:6.1f}   stream {stream_us:6.1f}")


def _mapping_us(
    adapter: HttpProvider[Any], request: CompletionRequest, calls: int = 5000
) -> tuple[float, float]:
    """The CPU the adapter spends on one call, with the network taken out."""
    complete_body, stream_body, _ = next(
        bodies
        for route, bodies in _bodies().items()
        if route in adapter.build_request(request, stream=False).url
    )
    chunks = [stream_body[i : i + 512] for i in range(0, len(stream_body), 512)]
    started = time.perf_counter()
    for _ in range(calls):
        adapter.build_request(request, stream=False).content()
        adapter.read_payload(json.loads(complete_body), request)
    complete_us = (time.perf_counter() - started) / calls * 1e6
    started = time.perf_counter()
    for _ in range(calls):
        adapter.build_request(request, stream=True).content()
        decoder = adapter.decoder(request)
        for chunk in chunks:
            decoder.feed(chunk)
        decoder.close()
    return complete_us, (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = _free_port()
    server = multiprocessing.Process(target=_run_server, args=(port,), daemon=True)
    server.start()
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        anyio.run(_bench, port, args.calls, args.rounds)
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
