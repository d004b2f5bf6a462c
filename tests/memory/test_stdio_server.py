"""`memory-router serve` as a real subprocess, driven over stdio by the SDK's client."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, types
from stdio_servers import (
    cli,
    holder_pid,
    processes_with_files_open_in,
    record,
    serve,
    user_keys,
    user_memories,
)

from server.errors import StoreLockedError
from server.memory.sharing.lock import StoreLock


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


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


async def test_a_second_server_on_the_same_store_starts_while_the_first_runs_and_shares_it(
    store_dir: Path,
) -> None:
    with anyio.fail_after(60):
        async with Client(serve(store_dir)) as first:
            await record(first, "before", "1")
            # It does not wait for the first to exit: it becomes a peer of the lock holder.
            async with Client(serve(store_dir, session="second")) as second:
                await record(second, "from the second", "2")
                await record(first, "after", "3")
                assert (
                    await user_keys(first)
                    == await user_keys(second)
                    == {"before", "from the second", "after"}
                )
                listed = await anyio.to_thread.run_sync(lambda: cli(store_dir, "memory", "list"))
                assert listed.returncode == 0, listed.stderr
                assert len(listed.stdout.splitlines()) == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_only_the_lock_holder_ever_has_the_engine_open(store_dir: Path) -> None:
    with anyio.fail_after(60):
        async with Client(serve(store_dir)) as first, Client(serve(store_dir, session="second")) as second:
            await record(first, "a", "1")
            await record(second, "b", "2")
            owner = holder_pid(store_dir)
            with pytest.raises(StoreLockedError, match=f"process {owner}"):
                StoreLock(store_dir).acquire()
            assert processes_with_files_open_in(store_dir) == {owner}


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
