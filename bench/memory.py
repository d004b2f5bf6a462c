"""Memory operations end to end: the `memory` tool and resources over stdio against `memory-router serve`.

For 0, 10k and 100k memories already stored for the user, measures record, forget, list
(`memory://user`) and preamble (`memory://preamble`) latency (p50/p99) through the SDK's stdio
client, and the store's size on disk. Goals: record p50 under 2 ms at 100k stored; preamble cost
independent of the number stored beyond the budget.

    python bench/memory.py [--sizes 0,10000,100000] [--ops 300]
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

import anyio
from mcp import Client, StdioServerParameters

from server.config import Settings
from server.memory.storage import Owner, Scope
from server.memory.store import open_store

USER = "bench-user"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def disk_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


async def seed(store_url: str, count: int) -> float:
    """Store `count` keyed memories directly (seeding is not what is measured)."""
    started = time.perf_counter()
    settings = Settings(store=store_url, user=USER, max_memories=10_000_000)
    owner = Owner(USER, "seed")
    async with open_store(settings) as store:
        already = await store.count(owner, Scope.USER)
        for i in range(already, count):
            await store.put(owner, Scope.USER, f"seeded fact number {i} about the user", key=f"seed-{i}")
    return time.perf_counter() - started


async def measure(store_dir: Path, ops: int) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_ROUTER_")}
    env.update(
        MEMORY_ROUTER_STORE=f"surrealkv://{store_dir}",
        MEMORY_ROUTER_USER=USER,
        MEMORY_ROUTER_MAX_MEMORIES="10000000",
    )
    params = StdioServerParameters(command=sys.executable, args=["-m", "server", "serve"], env=env)
    timings: dict[str, list[float]] = {"record": [], "forget": [], "list": [], "preamble": []}
    async with Client(params) as client:
        await client.call_tool("memory", {"op": "record", "scope": "user", "key": "warmup", "value": "w"})

        async def timed(name: str, call: Awaitable[object]) -> None:
            started = time.perf_counter()
            await call
            timings[name].append((time.perf_counter() - started) * 1000)

        for i in range(ops):
            args = {"op": "record", "scope": "user", "key": f"bench-{i}", "value": f"value {i}"}
            await timed("record", client.call_tool("memory", args))
        for i in range(ops):
            args = {"op": "forget", "scope": "user", "key": f"bench-{i}"}
            await timed("forget", client.call_tool("memory", args))
        for _ in range(max(ops // 10, 20)):
            await timed("list", client.read_resource("memory://user"))
            await timed("preamble", client.read_resource("memory://preamble"))
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="0,10000,100000")
    parser.add_argument("--ops", type=int, default=300)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[tuple[int, str, float, float, int]] = []
    baseline: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp) / "store"
        for size in sizes:
            took = await seed(f"surrealkv://{store_dir}", size)
            print(f"seeded {size} memories in {took:.1f}s", file=sys.stderr)
            timings = await measure(store_dir, args.ops)
            on_disk = disk_size(store_dir)
            for op, samples in timings.items():
                p50 = statistics.median(samples)
                baseline.setdefault(op, p50)
                rows.append((size, op, p50, percentile(samples, 0.99), on_disk))
    print(f"\n{'stored':>8} {'operation':<10} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs 0':>9} {'store MiB':>10}")
    for size, op, p50, p99, on_disk in rows:
        ratio = p50 / baseline[op] if baseline[op] else float("nan")
        print(f"{size:>8} {op:<10} {p50:>8.3f} {p99:>8.3f} {ratio:>8.2f}x {on_disk / 2**20:>10.1f}")


if __name__ == "__main__":
    anyio.run(main)
