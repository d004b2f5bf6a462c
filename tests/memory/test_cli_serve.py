"""`memory-router serve` by hand: what it says on stderr when ready, and how it ends when it cannot go on."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream
from stdio_servers import run_cli, server_env

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


async def test_serve_logs_one_ready_line_on_stderr_and_writes_nothing_on_stdout(store_dir: Path) -> None:
    done = await run_cli(store_dir, "serve", input="")  # the host closes stdin at once
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    ready = [line for line in done.stderr.splitlines() if "memory-router ready on" in line]
    assert len(ready) == 1
    assert ready[0].endswith(
        f"memory-router ready on stdio; store surrealkv://{store_dir}; user 'alice'; session stdio-session"
    )


async def test_serve_takes_log_level_after_the_command(store_dir: Path) -> None:
    done = await run_cli(store_dir, "serve", "--log-level", "WARNING", input="")
    assert (done.returncode, done.stderr) == (0, "")


async def test_a_host_that_stops_reading_stdout_ends_serve_quietly(store_dir: Path) -> None:
    # The host sends its request and goes away: its end of stdout is closed, then stdin. (While stdin
    # stays open the SDK's stdin reader, a blocking read in a worker thread, holds the process.)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = await run_cli(store_dir, "serve", input=json.dumps(INITIALIZE) + "\n", stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert "Traceback" not in done.stderr and "ExceptionGroup" not in done.stderr
    assert done.stderr.splitlines()[-1].endswith("stdout was closed by whoever read it; stopping.")


async def test_a_port_in_use_is_reported_before_anything_claims_to_listen(store_dir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = await run_cli(store_dir, "serve", "--transport", "http", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr == (
        f"memory-router: Port {port} on 127.0.0.1 is already in use (another memory-router serve?): "
        "stop that process or pick another port with --port.\n"
    )


async def test_serve_over_http_says_where_it_listens_once_ready(store_dir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with anyio.fail_after(60):
        process = await anyio.open_process(
            [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", str(port)],
            env={**server_env(store_dir), "MEMORY_ROUTER_ALLOW_UNAUTHENTICATED": "1"},
        )
        async with process:
            assert process.stderr is not None
            seen = ""
            async for chunk in TextReceiveStream(process.stderr):
                seen += chunk
                if "memory-router ready on" in seen and seen.endswith("\n"):
                    break
            process.terminate()
    line = next(line for line in seen.splitlines() if "memory-router ready on" in line)
    assert line.endswith(
        f"memory-router ready on http://127.0.0.1:{port}/mcp (streamable HTTP, authentication off); "
        f"memory view at http://127.0.0.1:{port}/app; store surrealkv://{store_dir}; user 'alice'; session stdio-session"
    )
