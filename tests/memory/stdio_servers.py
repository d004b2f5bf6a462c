"""Helpers for tests that run `memory-router serve` and the CLI as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters, types

from server.memory.sharing import lock


def server_env(store_dir: Path, session: str = "stdio-session") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_ROUTER_")}
    env.update(
        MEMORY_ROUTER_STORE=f"surrealkv://{store_dir}",
        MEMORY_ROUTER_USER="alice",
        MEMORY_ROUTER_SESSION=session,
    )
    return env


def serve(store_dir: Path, session: str = "stdio-session") -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "server", "serve"], env=server_env(store_dir, session)
    )


def cli(store_dir: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=server_env(store_dir),
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def call_memory(client: Client, key: str, value: str, scope: str = "user") -> types.CallToolResult:
    return await client.call_tool("memory", {"op": "record", "scope": scope, "key": key, "value": value})


async def record(client: Client, key: str, value: str, scope: str = "user") -> str:
    result = await call_memory(client, key, value, scope)
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def user_memories(client: Client) -> list[dict[str, Any]]:
    result = await client.read_resource("memory://user")
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents)
    data: list[dict[str, Any]] = json.loads(content.text)
    return data


async def user_keys(client: Client) -> set[str]:
    return {m["key"] for m in await user_memories(client)}


def holder_pid(store_dir: Path) -> int:
    """The process that has the engine open, as the lock file names it."""
    pid = lock.holder_pid(store_dir)
    assert pid is not None, f"no process holds the lock of {store_dir}"
    return pid


def processes_with_files_open_in(store_dir: Path) -> set[int]:
    """PIDs (from /proc) that hold a file of the engine's directory open."""
    holders: set[int] = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:
            continue
        if any(link.startswith(f"{store_dir}/") for link in links):
            holders.add(int(fd_dir.parent.name))
    return holders


OWNER = """
import sys, anyio
from server.config import Settings
from server.memory.store import open_store

async def main() -> None:
    async with open_store(Settings(store="surrealkv://" + sys.argv[1])) as store:
        assert store.is_owner
        print("owner", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)

anyio.run(main)
"""


@contextmanager
def owner_process(store_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """A second process that opens the store (it must be the first) and holds it until the block ends;
    stopped or not, it is resumed and ended on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(store_dir)],
        env=server_env(store_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "owner\n"
        yield process
    finally:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait(timeout=30)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
