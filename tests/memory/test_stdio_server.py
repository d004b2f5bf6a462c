"""`memory-router serve` as a real subprocess, driven over stdio by the SDK's client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters, types

from server.memory.lock import lock_path_for


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def server_env(store_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_ROUTER_")}
    env.update(
        MEMORY_ROUTER_STORE=f"surrealkv://{store_dir}",
        MEMORY_ROUTER_USER="alice",
        MEMORY_ROUTER_SESSION="stdio-session",
        **extra,
    )
    return env


def serve(store_dir: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "server", "serve"], env=server_env(store_dir)
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


async def record(client: Client, key: str, value: str, scope: str = "user") -> str:
    result = await client.call_tool("memory", {"op": "record", "scope": scope, "key": key, "value": value})
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


async def test_records_survive_a_server_restart(store_dir: Path) -> None:
    with anyio.fail_after(60):
        async with Client(serve(store_dir)) as client:
            assert await record(client, "name", "Alice") == 'Recorded user memory "name".'
            await record(client, "task", "write the talk", scope="session")
        async with Client(serve(store_dir)) as client:
            assert [(m["key"], m["content"]) for m in await user_memories(client)] == [("name", "Alice")]
            session = await client.read_resource("memory://session")
            assert isinstance(session.contents[0], types.TextResourceContents)
            assert "write the talk" in session.contents[0].text


def holder_pid(store_dir: Path) -> int:
    return int(lock_path_for(store_dir).read_text().strip())


async def test_an_acknowledged_record_survives_kill_9_right_after_the_reply(store_dir: Path) -> None:
    with anyio.fail_after(60):
        async with Client(serve(store_dir)) as client:
            for i in range(5):
                await record(client, f"k{i}", f"v{i}")
            # Kill the server the moment the last reply arrived: no clean shutdown, no flush.
            os.kill(holder_pid(store_dir), signal.SIGKILL)
            with pytest.raises(Exception):  # noqa: B017 - any failure: the server is gone
                await record(client, "after", "death")
        async with Client(serve(store_dir)) as client:
            keys = {m["key"] for m in await user_memories(client)}
    assert keys == {f"k{i}" for i in range(5)}


async def test_a_second_server_on_the_same_store_fails_fast_and_the_first_keeps_working(
    store_dir: Path,
) -> None:
    with anyio.fail_after(60):
        async with Client(serve(store_dir)) as client:
            await record(client, "before", "1")
            started = time.monotonic()
            second = await anyio.to_thread.run_sync(lambda: cli(store_dir, "serve", input=""))
            elapsed = time.monotonic() - started
            assert second.returncode == 1
            message = second.stderr
            assert str(store_dir) in message
            assert f"process {holder_pid(store_dir)}" in message
            assert "MEMORY_ROUTER_STORE" in message
            assert second.stdout == ""  # stdout is the protocol's, even when failing
            assert elapsed < 30
            await record(client, "after", "2")
            assert {m["key"] for m in await user_memories(client)} == {"before", "after"}


def test_export_then_import_round_trips_and_importing_twice_changes_nothing(
    store_dir: Path, tmp_path: Path
) -> None:
    export = tmp_path / "memories.jsonl"
    for key, value in [("name", "Alice"), ("city", "Lyon")]:

        async def add(key: str = key, value: str = value) -> None:
            async with Client(serve(store_dir)) as client:
                await record(client, key, value)

        anyio.run(add)
    done = cli(store_dir, "memory", "export", str(export))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert {(line["key"], line["content"]) for line in lines} == {("name", "Alice"), ("city", "Lyon")}

    other = tmp_path / "other-store"
    for _ in range(2):
        done = cli(other, "memory", "import", str(export))
        assert done.returncode == 0, done.stderr
    listed = cli(other, "memory", "list")
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.strip().splitlines()
    assert len(rows) == 2
    assert any("Alice" in row for row in rows) and any("Lyon" in row for row in rows)
    assert cli(other, "memory", "forget", "city").returncode == 0
    assert "Lyon" not in cli(other, "memory", "list").stdout
