"""Choosing a turn's facts in process: relevance (`search`) next to newest first, at 1k-100k facts.

One user per size is seeded into an embedded store on disk (`restore_many`, one commit per 1,000),
then, through the in-memory cache the server puts in front of the engine (`CachedStorage`), with
every size measured in turn in one loop so that a busy machine slows them alike:

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


def owner_of(size: int) -> Owner:
    return Owner(f"bench-{size}", "bench-session")


async def select_relevance(store: MemoryStorage, owner: Owner, turn: str) -> str:
    hits = await store.search(owner, Scope.USER, turn, BUDGET.max_items)
    total = await store.count(owner, Scope.USER)
    chosen = [record for record, _ in hits]
    return compose_preamble(chosen, [], BUDGET, user_total=total, selection="relevance").text


async def select_newest(store: RecordStorage, owner: Owner) -> str:
    newest = list(await store.list(owner, Scope.USER, limit=BUDGET.max_items + 1))
    total = await store.count(owner, Scope.USER)
    return compose_preamble(newest[: BUDGET.max_items], [], BUDGET, user_total=total).text


async def interleaved(ops: dict[tuple[int, str], Op], runs: int) -> dict[tuple[int, str], list[float]]:
    """Each op in turn, `runs` times: a busy machine then slows them all alike."""
    samples: dict[tuple[int, str], list[float]] = {name: [] for name in ops}
    for _ in range(runs):
        for name, op in ops.items():
            started = time.perf_counter()
            await op()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


async def measure(
    cached: CachedStorage, engine: RecordStorage, sizes: list[int], ops: int
) -> dict[tuple[int, str], list[float]]:
    """Every operation at every size, interleaved."""
    turns = iter(TURNS * (len(sizes) * ops // len(TURNS) + 1))
    puts = iter(range(10**9))

    def put(store: RecordStorage, owner: Owner) -> Op:
        return lambda: store.put(owner, Scope.USER, f"bench fact {next(puts)} about tea", key="bench")

    def each_size(make: Callable[[Owner], Op], name: str) -> dict[tuple[int, str], Op]:
        return {(size, name): make(owner_of(size)) for size in sizes}

    timings = await interleaved(
        {
            **each_size(lambda o: lambda: select_relevance(cached, o, next(turns)), "select relevance"),
            **each_size(lambda o: lambda: select_newest(cached, o), "select newest"),
            **each_size(lambda o: lambda: select_newest(engine, o), "select newest, engine"),
        },
        ops,
    )
    timings |= await interleaved(
        {
            **each_size(lambda o: lambda: cached.list(o, Scope.USER, limit=1000), "list 1000"),
            **each_size(lambda o: lambda: engine.list(o, Scope.USER, limit=1000), "list 1000, engine"),
        },
        max(ops // 5, 20),
    )
    timings |= await interleaved(
        {
            **each_size(lambda o: put(cached, o), "record"),
            **each_size(lambda o: put(engine, o), "record, engine"),
        },
        ops,
    )
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--ops", type=int, default=300)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"surrealkv://{Path(tmp) / 'store'}"
        settings = Settings(store=url, max_memories=10_000_000)
        async with open_engine(settings, url) as engine:
            for size in sizes:
                started = time.perf_counter()
                await engine.restore_many(owner_of(size), Scope.USER, facts(0, size))
                print(f"seeded {size} facts in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            cached = CachedStorage(
                engine, exclusive=True, session_ttl=engine.session_ttl, recheck=engine.touch_interval
            )
            for size in sizes:
                before, started = resident_mib(), time.perf_counter()
                await cached.search(owner_of(size), Scope.USER, TURNS[0], 1)
                built, grown = time.perf_counter() - started, resident_mib() - before
                print(f"index of {size} facts built in {built:.2f}s, +{grown:.0f} MiB", file=sys.stderr)
            timings = await measure(cached, engine, sizes, args.ops)
    p50 = {name: statistics.median(samples) for name, samples in timings.items()}
    print(f"\n{'facts':>7} {'operation':<22} {'p50 ms':>8} {'p99 ms':>8} {'vs first':>9} {'vs engine':>10}")
    order = {op: i for i, (_, op) in enumerate(timings)}
    for (size, op), samples in sorted(timings.items(), key=lambda item: (item[0][0], order[item[0][1]])):
        engine_p50 = p50.get((size, f"{op}, engine"))
        versus = f"{p50[size, op] / engine_p50:>9.2f}x" if engine_p50 else f"{'':>10}"
        print(
            f"{size:>7} {op:<22} {p50[size, op]:>8.3f} {percentile(samples, 0.99):>8.3f} "
            f"{p50[size, op] / p50[sizes[0], op]:>8.2f}x {versus}"
        )


if __name__ == "__main__":
    anyio.run(main)
