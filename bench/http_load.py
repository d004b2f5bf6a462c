"""Memory tool calls over streamable HTTP: calls per second and p50/p99 latency by concurrency.

Starts `memory-router serve --transport http` in a subprocess (rate limit off, store `mem://` unless
--store says otherwise), opens N SDK clients (one MCP session each) and has each call the `memory`
tool in a loop for --seconds. Prints a Markdown table. --mode picks the client's protocol era.

    python -m bench.http_load                       # from the repo root: 1, 16 and 64 clients, 5 s each
    python -m bench.http_load --clients 1 8 --seconds 3 --store surrealkv:///tmp/bench-store

(Run it as a module: as a script, this file would shadow the standard library `http`.)
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


@dataclass
class Row:
    clients: int
    calls: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu: float | None  # seconds of CPU the server process spent on this row

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None where that is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(port: int, store: str, data_dir: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MEMORY_ROUTER_STORE": store,
        "MEMORY_ROUTER_RATE_LIMIT_PER_MINUTE": "0",
        "MEMORY_ROUTER_ALLOW_UNAUTHENTICATED": "1",  # a loopback run of one user's clients
        "MEMORY_ROUTER_MAX_SESSIONS_PER_USER": "1024",  # all of whose sessions stay open
        "MEMORY_ROUTER_USER": "bench",
        "XDG_DATA_HOME": data_dir,
    }
    for name in ("MEMORY_ROUTER_TOKENS_FILE", "MEMORY_ROUTER_JWT_ISSUER", "MEMORY_ROUTER_CONFIG"):
        env.pop(name, None)
    command = [sys.executable, "-m", "server", "--log-level", "WARNING", "serve", "--transport", "http"]
    return subprocess.Popen([*command, "--port", str(port)], env=env)


def wait_until_serving(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not start within 30 s")


async def run(url: str, clients: int, seconds: float, server_pid: int, mode: str = "legacy") -> Row:
    latencies: list[float] = []
    errors = 0
    async with AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(Client(streamable_http_client(url), mode=mode, cache=None))
            for _ in range(clients)
        ]
        cpu_before = cpu_seconds(server_pid)
        start = time.perf_counter()
        stop = start + seconds

        async def worker(number: int, client: Client) -> None:
            nonlocal errors
            i = 0
            while time.perf_counter() < stop:
                args = {
                    "op": "record",
                    "scope": "session",
                    "key": f"k{number}-{i % 50}",
                    "value": f"value {i}",
                }
                began = time.perf_counter()
                result = await client.call_tool("memory", args)
                latencies.append(time.perf_counter() - began)
                errors += result.is_error
                i += 1

        async with anyio.create_task_group() as tg:
            for number, client in enumerate(sessions):
                tg.start_soon(worker, number, client)
        elapsed = time.perf_counter() - start
        cpu_after = cpu_seconds(server_pid)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Row(clients, len(latencies), errors, elapsed, latencies, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--store", default="mem://")
    parser.add_argument(
        "--mode",
        default="legacy",
        help="the client's protocol era: legacy (initialize handshake, an MCP session per client) or "
        "auto (2026-07-28 where the server speaks it: sessionless, one exchange per request)",
    )
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(port, args.store, data_dir)
        try:
            wait_until_serving(url, server)
            rows = [anyio.run(run, url, n, args.seconds, server.pid, args.mode) for n in args.clients]
        finally:
            server.terminate()
            server.wait(timeout=10)

    print(
        f"memory tool calls over streamable HTTP, store {args.store}, client mode {args.mode}, "
        f"{args.seconds:g} s per row\n"
    )
    print("| clients | calls | errors | calls/s | p50 ms | p99 ms | mean ms | server CPU ms/call |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        cpu = (
            f"{row.server_cpu / row.calls * 1000:.1f}" if row.server_cpu is not None and row.calls else "n/a"
        )
        print(
            f"| {row.clients} | {row.calls} | {row.errors} | {row.per_second:.0f} | {row.percentile(0.50):.1f} "
            f"| {row.percentile(0.99):.1f} | {statistics.fmean(row.latencies) * 1000:.1f} | {cpu} |"
        )
    print(f"\n{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
