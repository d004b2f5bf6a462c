"""Several `memory-router serve` processes on one embedded store: the cost of not being the owner.

Starts one server (it takes the lock and opens the engine: the owner) and then a second on the
same store (a peer: it sends each store call to the owner over the unix socket). Measures, through
the SDK's stdio client of each:

- record: the `memory` tool recording a keyed fact (p50/p99)
- list: reading `memory://user` with `--stored` memories in the store (p50/p99)
- start-up: from spawning `memory-router serve` to the end of the MCP handshake, for a first server
  (engine to open) and for a second one (connects to the owner), over `--starts` runs each
- store open: `open_store` alone, in this process: opening the engine versus attaching to an owner

    python -m bench.shared [--ops 300] [--stored 100] [--starts 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from server.config import Settings
from server.memory.store import open_store

USER = "bench-user"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def serve(store_dir: Path, session: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_ROUTER_")}
    env.update(
        MEMORY_ROUTER_STORE=f"surrealkv://{store_dir}",
        MEMORY_ROUTER_USER=USER,
        MEMORY_ROUTER_SESSION=session,
    )
    return StdioServerParameters(command=sys.executable, args=["-m", "server", "serve"], env=env)


async def timed(samples: list[float], call: Awaitable[Any]) -> None:
    started = time.perf_counter()
    await call
    samples.append((time.perf_counter() - started) * 1000)


async def latencies(client: Client, name: str, ops: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"record": [], "list": []}
    for i in range(ops):
        args = {"op": "record", "scope": "user", "key": f"{name}-{i % 50}", "value": f"value {i}"}
        await timed(timings["record"], client.call_tool("memory", args))
    for _ in range(max(ops // 5, 20)):
        await timed(timings["list"], client.read_resource("memory://user"))
    return timings


async def measure_calls(store_dir: Path, ops: int, stored: int) -> dict[tuple[str, str], list[float]]:
    results: dict[tuple[str, str], list[float]] = {}
    async with Client(serve(store_dir, "owner")) as owner, Client(serve(store_dir, "peer")) as peer:
        for i in range(stored):
            args = {"op": "record", "scope": "user", "key": f"seed-{i}", "value": f"seeded fact {i}"}
            await owner.call_tool("memory", args)
        for client in (owner, peer):
            await client.call_tool("memory", {"op": "record", "scope": "user", "key": "w", "value": "w"})
        # Alternate rounds, so drift in the machine's load does not favour one side.
        for _ in range(2):
            for role, client in (("owner", owner), ("peer", peer)):
                for op, samples in (await latencies(client, role, ops // 2)).items():
                    results.setdefault((op, role), []).extend(samples)
    return results


async def measure_starts(store_dir: Path, starts: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"first": [], "second": []}
    for _ in range(starts):
        started = time.perf_counter()
        async with Client(serve(store_dir, "first")):
            times["first"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            async with Client(serve(store_dir, "second")):
                times["second"].append((time.perf_counter() - started) * 1000)
    return times


async def measure_opens(store_dir: Path, starts: int) -> dict[str, list[float]]:
    settings = Settings(store=f"surrealkv://{store_dir}")
    times: dict[str, list[float]] = {"owner": [], "peer": []}
    for _ in range(starts * 4):
        started = time.perf_counter()
        async with open_store(settings):
            times["owner"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            async with open_store(settings):
                times["peer"].append((time.perf_counter() - started) * 1000)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--stored", type=int, default=100)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp) / "store"
        calls = await measure_calls(store_dir, args.ops, args.stored)
        starts = await measure_starts(store_dir, args.starts)
        opens = await measure_opens(store_dir, args.starts)
    print(f"\n{'operation':<10} {'through':<8} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs owner':>13}")
    for (op, role), samples in calls.items():
        p50 = statistics.median(samples)
        ratio = p50 / statistics.median(calls[(op, "owner")])
        print(f"{op:<10} {role:<8} {p50:>8.3f} {percentile(samples, 0.99):>8.3f} {ratio:>12.2f}x")
    print(f"\n{'phase':<10} {'which':<8} {'p50 ms':>8} {'max ms':>8}")
    for which, samples in starts.items():
        print(f"{'start-up':<10} {which:<8} {statistics.median(samples):>8.1f} {max(samples):>8.1f}")
    for which, samples in opens.items():
        print(f"{'open':<10} {which:<8} {statistics.median(samples):>8.1f} {max(samples):>8.1f}")


if __name__ == "__main__":
    anyio.run(main)
