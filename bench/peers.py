"""memory-router against the official memory server, same client, same run, same machine.

The peer is `@modelcontextprotocol/server-memory` (the reference MCP memory server, Node). Both servers
are spawned over stdio and driven by ONE client: the Python SDK's `mcp.Client` in `legacy` mode (the
`initialize` handshake, which both speak; `auto` would first probe `server/discover`, which the Node
server does not know, and charge it a failed round trip) with its resource cache off. The issue's first
numbers came from the TypeScript SDK client; what matters is that both servers see the same client, so
the client's own cost cancels out of the ratios.

For each size (stored memories, default 0, 10k and 100k) it measures, for both servers:

- ready: from spawning the process to the end of the handshake (`--starts` runs, p50)
- write p50/p99: official `create_entities` (one new entity, one observation); memory-router the
  `memory` tool, `record` of a new user-scope key (one durable commit)
- read-all p50: official `read_graph` (the whole graph); memory-router `memory://user` (the newest
  MEMORY_ROUTER_LIST_LIMIT, 1,000 by default: what it serves as "all")

Seeding is not measured. The official server's store is one JSON-lines file (`MEMORY_FILE_PATH`), written
here directly in its format (`{"type": "entity", "name", "entityType", "observations"}` per line, joined
by newlines, as its `saveGraph` writes it). memory-router's store is seeded in process through the
store's bulk import, `restore_many` (what `memory-router memory import` uses), `SEED_CHUNK` records
per call.

The Node server is launched as `node <its bin>`, resolved once through `npx -y` (which installs it from
the npm registry when missing): spawning through npx costs seconds of npx's own work per start, which is
not the server's start-up. Without node/npx the official column is skipped with a message.

Every call has a timeout (`--timeout`) and every phase a time budget (`--budget`): a server that is too
slow at a size shows how many calls it finished, and a failing one shows why, instead of hanging the run.

    python -m bench.peers                          # 0, 10k and 100k stored
    python -m bench.peers --sizes 0 10000 --ops 100 --starts 3   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from server.config import Settings
from server.memory.storage import MemoryRecord, Owner, Scope
from server.memory.store import open_store

USER = "bench-user"
OFFICIAL_PACKAGE = "@modelcontextprotocol/server-memory"
SEED_CHUNK = 10_000
SEED_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def fact(i: int) -> str:
    return f"seeded fact number {i} about the user"


# ---- seeding -------------------------------------------------------------------------------------


async def seed_router(store_dir: Path, start: int, stop: int) -> None:
    """Keyed user memories `seed-<start>` .. `seed-<stop - 1>`, oldest first, through the store's bulk
    import (`restore_many`: one durable transaction per few thousand records)."""
    settings = Settings(store=f"surrealkv://{store_dir}", user=USER, max_memories=10_000_000)
    owner = Owner(USER, "seed")
    async with open_store(settings) as store:
        for first in range(start, stop, SEED_CHUNK):
            records = []
            for i in range(first, min(stop, first + SEED_CHUNK)):
                at = SEED_EPOCH + timedelta(milliseconds=i)
                records.append(
                    MemoryRecord(
                        handle=f"seed-{i}",
                        scope=Scope.USER,
                        key=f"seed-{i}",
                        content=fact(i),
                        created_at=at,
                        updated_at=at,
                    )
                )
            await store.restore_many(owner, Scope.USER, records)
        stored = await store.count(owner, Scope.USER)
    if stored < stop:
        raise SystemExit(f"seeding memory-router left {stored} memories, expected {stop}")


def official_seed(memory_file: Path, start: int, stop: int) -> None:
    """Append entities `seed-<start>` .. to the official server's JSON-lines file, in its format."""
    lines = (
        json.dumps({"type": "entity", "name": f"seed-{i}", "entityType": "fact", "observations": [fact(i)]})
        for i in range(start, stop)
    )
    text = "\n".join(lines)
    if not text:
        return
    existing = memory_file.read_text(encoding="utf-8") if memory_file.exists() else ""
    memory_file.write_text(f"{existing}\n{text}" if existing.strip() else text, encoding="utf-8")


# ---- the two servers -----------------------------------------------------------------------------


@dataclass
class Peer:
    name: str
    params: StdioServerParameters
    write: Callable[[Client, int], Awaitable[None]]
    read_all: Callable[[Client], Awaitable[int]]
    """Returns how many items the read returned, to show what "all" means for each."""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMORY_ROUTER_", "MEMORY_FILE_PATH"))}
    env.update(extra)
    return env


def router_peer(store_dir: Path) -> Peer:
    env = clean_env(
        MEMORY_ROUTER_STORE=f"surrealkv://{store_dir}",
        MEMORY_ROUTER_USER=USER,
        MEMORY_ROUTER_SESSION="bench",
        MEMORY_ROUTER_MAX_MEMORIES="10000000",
    )
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "server", "--log-level", "WARNING", "serve"], env=env
    )

    async def write(client: Client, i: int) -> None:
        args = {"op": "record", "scope": "user", "key": f"bench-{i}", "value": f"written fact {i}"}
        result = await client.call_tool("memory", args)
        if result.is_error:
            raise RuntimeError(f"memory record failed: {result.content}")

    async def read_all(client: Client) -> int:
        result = await client.read_resource("memory://user")
        text = getattr(result.contents[0], "text", "[]")
        return len(json.loads(text))

    return Peer("memory-router", params, write, read_all)


def official_bin() -> str | None:
    """The Node server's entry point, installed through npx when missing; None without node/npx."""
    if shutil.which("node") is None or shutil.which("npx") is None:
        return None
    command = ["npx", "-y", "-p", OFFICIAL_PACKAGE, "-c", "command -v mcp-server-memory"]
    try:
        found = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    except (subprocess.SubprocessError, OSError) as e:
        print(
            f"official server: could not install or find {OFFICIAL_PACKAGE} through npx ({e}).",
            file=sys.stderr,
        )
        return None
    path = found.stdout.strip().splitlines()[-1:] or [""]
    return os.path.realpath(path[0]) if path[0] else None


def official_peer(entry: str, memory_file: Path) -> Peer:
    params = StdioServerParameters(
        command="node", args=[entry], env=clean_env(MEMORY_FILE_PATH=str(memory_file))
    )

    async def write(client: Client, i: int) -> None:
        entity = {"name": f"bench-{i}", "entityType": "fact", "observations": [f"written fact {i}"]}
        result = await client.call_tool("create_entities", {"entities": [entity]})
        if result.is_error:
            raise RuntimeError(f"create_entities failed: {result.content}")

    async def read_all(client: Client) -> int:
        result = await client.call_tool("read_graph", {})
        if result.is_error:
            raise RuntimeError(f"read_graph failed: {result.content}")
        return len((result.structured_content or {}).get("entities", []))

    return Peer("official", params, write, read_all)


# ---- measuring -----------------------------------------------------------------------------------


@dataclass
class Sample:
    """The timings of one server at one size, in ms; `failed` says why a phase stopped early."""

    ready: list[float] = field(default_factory=list[float])
    write: list[float] = field(default_factory=list[float])
    read_all: list[float] = field(default_factory=list[float])
    read_items: int = 0
    failed: list[str] = field(default_factory=list[str])


def connect(peer: Peer, timeout: float) -> Client:
    return Client(peer.params, mode="legacy", cache=None, read_timeout_seconds=timeout)


async def measure(peer: Peer, args: argparse.Namespace, written_from: int) -> Sample:
    sample = Sample()
    for _ in range(args.starts):
        started = time.perf_counter()
        with anyio.fail_after(args.timeout):
            async with connect(peer, args.timeout):
                sample.ready.append((time.perf_counter() - started) * 1000)
    async with connect(peer, args.timeout) as client:

        async def phase(
            what: str, calls: int, call: Callable[[int], Awaitable[Any]], into: list[float]
        ) -> None:
            deadline = time.perf_counter() + args.budget
            for i in range(calls):
                if time.perf_counter() > deadline:
                    sample.failed.append(f"{what}: {args.budget:g} s budget spent after {i} calls")
                    return
                started = time.perf_counter()
                try:
                    with anyio.fail_after(args.timeout):
                        await call(i)
                except Exception as e:  # a peer failing at a size is a result, not a crash of the bench
                    sample.failed.append(f"{what}: call {i + 1} failed: {type(e).__name__}: {e}"[:300])
                    return
                into.append((time.perf_counter() - started) * 1000)

        await phase("warm-up", 1, lambda i: peer.write(client, written_from - 1), [])

        async def read(_: int) -> None:
            sample.read_items = await peer.read_all(client)

        await phase("write", args.ops, lambda i: peer.write(client, written_from + i), sample.write)
        await phase("read-all", args.reads, read, sample.read_all)
    return sample


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def show(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def report(size: int, results: dict[str, Sample]) -> None:
    router, official = results["memory-router"], results.get("official")

    def stat(sample: Sample | None, what: str) -> float | None:
        if sample is None:
            return None
        samples = {"ready": sample.ready, "write": sample.write, "read-all": sample.read_all}[what.split()[0]]
        if not samples:
            return None
        return percentile(samples, 0.99) if what.endswith("p99") else statistics.median(samples)

    print(f"\n{size} stored")
    print(f"{'measure':<16} {'official ms':>12} {'memory-router ms':>17} {'router/official':>16}")
    for what in ("ready p50", "write p50", "write p99", "read-all p50"):
        ours, theirs = stat(router, what), stat(official, what)
        ratio = f"{ours / theirs:.2f}x" if ours is not None and theirs else "-"
        print(f"{what:<16} {show(theirs):>12} {show(ours):>17} {ratio:>16}")
    items = f"official {official.read_items}, " if official is not None else ""
    print(f"read-all returned: {items}memory-router {router.read_items} (memory://user is the newest 1,000)")
    for name, sample in results.items():
        for problem in sample.failed:
            print(f"  {name}: {problem}")


async def run(args: argparse.Namespace) -> None:
    entry = None if args.no_official else official_bin()
    if entry is None and not args.no_official:
        print("official server: skipped (node and npx are needed: https://nodejs.org).", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        store_dir, memory_file = Path(tmp) / "store", Path(tmp) / "memory.jsonl"
        peers = [router_peer(store_dir)]
        if entry is not None:
            peers.insert(0, official_peer(entry, memory_file))
        seeded = 0
        for round_number, size in enumerate(sorted(args.sizes)):
            if size > seeded:
                started = time.perf_counter()
                await seed_router(store_dir, seeded, size)
                took = time.perf_counter() - started
                started = time.perf_counter()
                if entry is not None:
                    official_seed(memory_file, seeded, size)
                print(
                    f"seeded {size - seeded} memories: memory-router {took:.1f} s, "
                    f"official {time.perf_counter() - started:.1f} s",
                    file=sys.stderr,
                )
                seeded = size
            results: dict[str, Sample] = {}
            # Alternate who goes first, so drift in the machine's load does not favour one side.
            for peer in peers if round_number % 2 == 0 else peers[::-1]:
                results[peer.name] = await measure(peer, args, written_from=1_000_000 * (round_number + 1))
                print(f"  measured {peer.name} at {size}", file=sys.stderr)
            report(size, results)
    print(f"\n{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 10_000, 100_000], help="memories stored")
    parser.add_argument("--ops", type=int, default=200, help="writes per server and size")
    parser.add_argument("--reads", type=int, default=20, help="read-alls per server and size")
    parser.add_argument("--starts", type=int, default=5, help="start-ups per server and size")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for any one call or start")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds for each phase's calls")
    parser.add_argument("--no-official", action="store_true", help="measure memory-router alone")
    args = parser.parse_args()
    if any(size < 0 or size > 1_000_000 for size in args.sizes):
        parser.error("sizes must be between 0 and 1,000,000")
    anyio.run(run, args)


if __name__ == "__main__":
    main()
