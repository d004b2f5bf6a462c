"""Choosing a turn's facts in process: relevance (`search`) next to newest first, at 1k-100k facts.

One user's facts are seeded into an embedded store on disk (`restore_many`, one commit per 1,000),
then, through the in-memory cache the server puts in front of the engine (`CachedStorage`):

- select relevance: `search` for the turn's words (50 facts), the count, and the preamble composed
- select newest: the newest 51 facts, the count, and the preamble composed (today's preamble)
- list 1000: the newest 1,000 facts (`memory://user`)
- record: a keyed put, with the owner's index kept up to date

and, for comparison, `select newest`, `list 1000` and `record` on the bare engine (no cache).
The first search of an owner builds its index from the store: its time and the process's resident
memory growth are printed per size. Ratios: p50 against the smallest size (flat is 1.0x), and
against the same operation on the bare engine.

Goals (issues 11 and 13): select relevance p50 under 5 ms at 100k and flat from 10k to 100k;
record p50 at most 10% slower with the index kept; list 1000 of 100k under 15 ms.

    python -m bench.relevance [--sizes 1000,10000,100000] [--ops 300]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from server.config import Settings
from server.memory.cached import CachedStorage
from server.memory.preamble import PreambleBudget, compose_preamble
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, RecordStorage, Scope
from server.memory.store import open_engine

OWNER = Owner("bench-user", "bench-session")
BUDGET = PreambleBudget()
WORDS = [
    "dog",
    "cat",
    "garden",
    "coffee",
    "tea",
    "budget",
    "meeting",
    "flight",
    "hotel",
    "allergy",
    "peanut",
    "doctor",
    "sister",
    "brother",
    "birthday",
    "python",
    "rust",
    "project",
    "deadline",
    "report",
    "invoice",
    "train",
    "bicycle",
    "marathon",
    "piano",
    "guitar",
    "novel",
    "recipe",
    "pasta",
    "curry",
    "vegan",
    "gym",
    "yoga",
    "dentist",
    "passport",
    "visa",
    "wedding",
    "anniversary",
    "mortgage",
    "car",
    "insurance",
    "laptop",
    "phone",
    "password",
    "server",
    "database",
    "cloud",
    "holiday",
    "beach",
    "mountain",
    "ski",
    "paris",
    "tokyo",
    "berlin",
    "london",
    "lisbon",
    "daughter",
    "son",
    "school",
    "teacher",
    "exam",
    "football",
    "tennis",
    "chess",
    "painting",
]
TURNS = [
    "What is my dog's name again?",
    "Book a hotel in Lisbon for the marathon",
    "Remind me about the project deadline and the report",
    "Which recipe did I like, the curry or the pasta?",
    "When is my sister's birthday?",
    "Any allergy I should tell the doctor about?",
]

Op = Callable[[], Awaitable[object]]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def resident_mib() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def facts(start: int, stop: int) -> list[MemoryRecord]:
    rng = random.Random(start)
    epoch = datetime(2024, 1, 1, tzinfo=UTC)
    out = []
    for i in range(start, stop):
        at = epoch + timedelta(seconds=i)
        words = " ".join(rng.choice(WORDS) for _ in range(8))
        out.append(
            MemoryRecord(
                handle=f"seed-{i}",
                scope=Scope.USER,
                key=f"fact-{i}",
                content=f"{words} (note {i})",
                created_at=at,
                updated_at=at,
            )
        )
    return out


async def select_relevance(store: MemoryStorage, turn: str) -> str:
    hits = await store.search(OWNER, Scope.USER, turn, BUDGET.max_items)
    total = await store.count(OWNER, Scope.USER)
    chosen = [record for record, _ in hits]
    return compose_preamble(chosen, [], BUDGET, user_total=total, selection="relevance").text


async def select_newest(store: RecordStorage) -> str:
    newest = list(await store.list(OWNER, Scope.USER, limit=BUDGET.max_items + 1))
    total = await store.count(OWNER, Scope.USER)
    return compose_preamble(newest[: BUDGET.max_items], [], BUDGET, user_total=total).text


async def timed(op: Op, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await op()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def interleaved(ops: dict[str, Op], runs: int) -> dict[str, list[float]]:
    """Each op in turn, `runs` times: a busy machine then slows them alike."""
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(runs):
        for name, op in ops.items():
            samples[name] += await timed(op, 1)
    return samples


async def measure(cached: CachedStorage, engine: RecordStorage, ops: int) -> dict[str, list[float]]:
    turns = iter(TURNS * (ops // len(TURNS) + 1))
    puts = iter(range(10**9))

    def put(store: RecordStorage) -> Op:
        return lambda: store.put(OWNER, Scope.USER, f"bench fact {next(puts)} about tea", key="bench")

    return {
        "select relevance": await timed(lambda: select_relevance(cached, next(turns)), ops),
        **await interleaved(
            {
                "select newest": lambda: select_newest(cached),
                "select newest, engine": lambda: select_newest(engine),
            },
            ops,
        ),
        **await interleaved(
            {
                "list 1000": lambda: cached.list(OWNER, Scope.USER, limit=1000),
                "list 1000, engine": lambda: engine.list(OWNER, Scope.USER, limit=1000),
            },
            max(ops // 5, 20),
        ),
        **await interleaved({"record": put(cached), "record, engine": put(engine)}, ops),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--ops", type=int, default=300)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[tuple[int, str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"surrealkv://{Path(tmp) / 'store'}"
        settings = Settings(store=url, max_memories=10_000_000)
        async with open_engine(settings, url) as engine:
            seeded = 0
            for size in sizes:
                started = time.perf_counter()
                await engine.restore_many(OWNER, Scope.USER, facts(seeded, size))
                seeded = size
                print(f"seeded {size} facts in {time.perf_counter() - started:.1f}s", file=sys.stderr)
                cached = CachedStorage(
                    engine, exclusive=True, session_ttl=engine.session_ttl, recheck=engine.touch_interval
                )
                before, started = resident_mib(), time.perf_counter()
                await cached.search(OWNER, Scope.USER, TURNS[0], 1)
                built, grown = time.perf_counter() - started, resident_mib() - before
                print(f"  index of {size} facts built in {built:.2f}s, +{grown:.0f} MiB", file=sys.stderr)
                for op, samples in (await measure(cached, engine, args.ops)).items():
                    rows.append((size, op, statistics.median(samples), percentile(samples, 0.99)))
                await cached.forget_key(OWNER, Scope.USER, "bench")
                seeded = await engine.count(OWNER, Scope.USER)
    first = {op: p50 for size, op, p50, _ in rows if size == sizes[0]}
    by_size_op = {(size, op): p50 for size, op, p50, _ in rows}
    print(f"\n{'facts':>7} {'operation':<22} {'p50 ms':>8} {'p99 ms':>8} {'vs first':>9} {'vs engine':>10}")
    for size, op, p50, p99 in rows:
        engine_p50 = by_size_op.get((size, f"{op}, engine"))
        versus = f"{p50 / engine_p50:>9.2f}x" if engine_p50 else f"{'':>10}"
        print(f"{size:>7} {op:<22} {p50:>8.3f} {p99:>8.3f} {p50 / first[op]:>8.2f}x {versus}")


if __name__ == "__main__":
    anyio.run(main)
