"""The store alone, in process (no MCP): durable `put` latency and bulk import throughput.

Opens the embedded engine (fsync on commit, as served) in a temporary directory and measures, p50/p99:
put in user scope with a new key, in session scope with a new key, and replacing a key; then a
listing of the newest 1,000 (of `--stored`); then `restore_many` of `--import` memories if the store
has it. Prints one table.

    python -m bench.store [--ops 300] [--stored 5000] [--import 100000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import anyio

from server.config import Settings
from server.memory.storage import MemoryRecord, Owner, RecordStorage, Scope
from server.memory.store import open_engine

OWNER = Owner("bench-user", "bench-session")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(ops: int, call: Callable[[int], Awaitable[object]]) -> tuple[list[float], float]:
    """Wall ms per call, and CPU ms per call of the whole process (the engine's threads included:
    steadier than wall time on a shared machine)."""
    samples = []
    cpu = time.process_time()
    for i in range(ops):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples, (time.process_time() - cpu) * 1000 / ops


def put_numbered(store: RecordStorage, scope: Scope, prefix: str, i: int) -> Awaitable[MemoryRecord]:
    return store.put(OWNER, scope, f"value {i} {prefix}", key=f"{prefix}{i}")


def imported(count: int) -> list[MemoryRecord]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        MemoryRecord(
            handle=f"import-{i}",
            scope=Scope.USER,
            key=f"import-{i}",
            content=f"imported fact number {i} about the user",
            created_at=start + timedelta(milliseconds=i),
            updated_at=start + timedelta(milliseconds=i),
        )
        for i in range(count)
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--stored", type=int, default=5000)
    parser.add_argument("--import", dest="bulk", type=int, default=100_000)
    args = parser.parse_args()
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"surrealkv://{Path(tmp) / 'store'}"
        async with open_engine(Settings(store=url, max_memories=10_000_000), url) as store:
            for name, scope, prefix in (
                ("put user, new key", Scope.USER, "u"),
                ("put session, new key", Scope.SESSION, "s"),
                ("put user, replacing", Scope.USER, "u"),
            ):
                samples, cpu = await timed(args.ops, partial(put_numbered, store, scope, prefix))
                rows.append((name, statistics.median(samples), percentile(samples, 0.99), cpu))
            for i in range(args.ops, args.stored):
                await store.put(OWNER, Scope.USER, f"value {i}", key=f"u{i}")
            samples, cpu = await timed(20, lambda _: store.list(OWNER, Scope.USER, limit=1000))
            listing = f"list newest 1000 of {args.stored}"
            rows.append((listing, statistics.median(samples), percentile(samples, 0.99), cpu))
            bulk = getattr(store, "restore_many", None)
            if bulk is not None and args.bulk:
                records = imported(args.bulk)
                other = Owner("importer", "s")
                started, cpu_started = time.perf_counter(), time.process_time()
                await bulk(other, Scope.USER, records)
                took, cpu_took = time.perf_counter() - started, time.process_time() - cpu_started
                rows.append((f"restore_many {args.bulk} (s, total)", took, took, cpu_took))
    print(f"{'operation':<34} {'p50 ms':>9} {'p99 ms':>9} {'cpu ms':>9}")
    for name, p50, p99, cpu in rows:
        print(f"{name:<34} {p50:>9.3f} {p99:>9.3f} {cpu:>9.3f}")


if __name__ == "__main__":
    anyio.run(main)
