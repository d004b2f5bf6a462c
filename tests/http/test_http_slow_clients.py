"""Slow and numerous connections: request heads and bodies have deadlines, half-open connections
cannot lock a normal client out or exhaust file descriptors, and repeated errors are logged once
per interval."""

from __future__ import annotations

import asyncio
import errno
import logging
from contextlib import AsyncExitStack

import anyio
import httpx
import pytest
from anyio.abc import SocketStream
from http_helpers import INITIALIZE, MCP_HEADERS, running, served

from server.config import Settings
from server.mcp.http_server import OncePerInterval, quiet_repeated_logs


async def cut_off(stream: SocketStream) -> bool:
    """Whether the server closed `stream` (waiting at most a moment for it)."""
    with anyio.move_on_after(0.02):
        try:
            await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            return True
    return False


async def test_a_client_trickling_its_headers_is_cut_off_at_the_header_deadline(settings: Settings) -> None:
    quick = settings.model_copy(update={"http_header_timeout_seconds": 0.3})
    head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
        f"X-Pad-{i}: {'a' * 20}\r\n".encode() for i in range(10_000)
    )
    sent = 0
    with anyio.fail_after(10):
        async with running(quick) as base:
            port = int(base.rsplit(":", 1)[1])
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                for byte in head:
                    try:
                        await stream.send(bytes([byte]))
                    except (anyio.BrokenResourceError, ConnectionError):
                        break
                    sent += 1
                    if await cut_off(stream):
                        break
    assert 0 < sent < len(head)


async def test_a_body_that_does_not_arrive_in_time_is_answered_408(settings: Settings) -> None:
    quick = settings.model_copy(update={"http_body_timeout_seconds": 0.3})
    head = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n"
    )
    with anyio.fail_after(10):
        async with running(quick) as base:
            port = int(base.rsplit(":", 1)[1])
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(head + b'{"jsonrpc":')
                answer = await stream.receive()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_half_open_connections_neither_lock_out_a_normal_client_nor_exhaust_file_descriptors() -> None:
    env = {"MEMORY_ROUTER_STORE": "mem://", "MEMORY_ROUTER_ALLOW_UNAUTHENTICATED": "1"}
    with anyio.fail_after(60):
        async with served(env, fd_limit=128) as (base, _), AsyncExitStack() as stack:
            port = int(base.rsplit(":", 1)[1])
            for _ in range(160):  # more than the server may open files
                stream = await stack.enter_async_context(await anyio.connect_tcp("127.0.0.1", port))
                await stream.send(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            async with httpx.AsyncClient(timeout=30) as http:  # a busy test machine is slow, not stuck
                normal = await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert normal.status_code == 200


async def test_a_repeated_accept_error_is_logged_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    caplog.set_level(logging.INFO)
    once = OncePerInterval(interval=60, clock=lambda: now[0])
    caplog.handler.addFilter(once)
    loop = asyncio.get_running_loop()
    out_of_files = OSError(errno.EMFILE, "Too many open files")

    def accept_fails() -> None:  # what asyncio's accept loop logs when accept() hits EMFILE
        loop.default_exception_handler(
            {"message": "socket.accept() out of system resource", "exception": out_of_files}
        )

    for _ in range(1000):
        accept_fails()
    first = len(caplog.records)
    now[0] += 61
    accept_fails()
    assert first == 1
    assert len(caplog.records) == 2
    assert "999 more like this in the last 60 s not logged" in caplog.records[1].getMessage()


def test_the_repeat_filter_goes_on_the_root_handlers_so_it_sees_every_logger() -> None:
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    once = quiet_repeated_logs()
    try:
        assert all(once in h.filters for h in root.handlers)
    finally:  # the test session's own handlers must not keep it
        root.removeHandler(handler)
        for other in root.handlers:
            other.removeFilter(once)
