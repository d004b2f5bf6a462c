"""The embedded surrealkv:// store on disk: reopening, durability after SIGKILL, one engine per store."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from surrealdb import AsyncSurreal, RecordID

from server.config import Settings
from server.errors import ConfigError, StoreLockedError
from server.memory.sharing.lock import StoreLock, lock_path_for
from server.memory.storage import Owner, Scope
from server.memory.store import display_url, open_store

ALICE = Owner("alice", "s1")
REPO = Path(__file__).resolve().parents[2]

# Opens the store, records, says "ack" and then waits to be killed.
PUT_AND_WAIT = textwrap.dedent(
    """
    import sys, anyio
    from server.config import Settings
    from server.memory.storage import Owner, Scope
    from server.memory.store import open_store

    async def main() -> None:
        async with open_store(Settings(store=sys.argv[1])) as store:
            for i in range(20):
                await store.put(Owner("alice", "s1"), Scope.USER, f"value {i}", key=f"k{i}")
            await store.put(Owner("alice", "s1"), Scope.SESSION, "keyless session note")
            print("ack", flush=True)
            await anyio.sleep_forever()

    anyio.run(main)
    """
)

# Opens the store while another process has it, records through it, prints what it sees.
OPEN_AS_PEER = textwrap.dedent(
    """
    import sys, anyio
    from server.config import Settings
    from server.memory.storage import Owner, Scope
    from server.memory.store import open_store

    async def main() -> None:
        async with open_store(Settings(store=sys.argv[1])) as store:
            await store.put(Owner("alice", "s1"), Scope.USER, "from the child", key="child")
            print(sorted(r.key for r in await store.list(Owner("alice", "s1"), Scope.USER)), flush=True)

    anyio.run(main)
    """
)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SURREAL_SYNC_DATA"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def store_url(tmp_path: Path) -> str:
    return f"surrealkv://{tmp_path / 'data' / 'store'}"


async def test_records_survive_a_clean_close_and_reopen(tmp_path: Path) -> None:
    settings = Settings(store=store_url(tmp_path))
    async with open_store(settings) as store:
        keyed = await store.put(ALICE, Scope.USER, "tea", key="drink")
        keyless = await store.put(ALICE, Scope.USER, "likes hiking")

    async with open_store(settings) as store:
        assert await store.list(ALICE, Scope.USER) == [keyless, keyed]
        assert await store.forget(ALICE, Scope.USER, keyless.handle) == keyless
        assert await store.count(ALICE, Scope.USER) == 1


async def test_an_acknowledged_record_survives_sigkill(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    with anyio.fail_after(20):
        process = await anyio.open_process(
            [sys.executable, "-c", PUT_AND_WAIT, url], env=child_env(), cwd=REPO, stderr=subprocess.PIPE
        )
        async with process:
            assert process.stdout is not None
            output = b""
            async for chunk in process.stdout:
                output += chunk
                if b"ack\n" in output:
                    break
            process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL
        assert output == b"ack\n"

    async with open_store(Settings(store=url)) as store:
        records = await store.list(ALICE, Scope.USER)
        assert [r.content for r in records] == [f"value {i}" for i in reversed(range(20))]
        assert [r.content for r in await store.list(ALICE, Scope.SESSION)] == ["keyless session note"]


async def test_a_second_process_shares_the_store_while_the_first_keeps_it_open(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    store_dir = tmp_path / "data" / "store"
    async with open_store(Settings(store=url)) as store:
        await store.put(ALICE, Scope.USER, "before", key="a")

        with anyio.fail_after(20):
            result = await anyio.run_process(
                [sys.executable, "-c", OPEN_AS_PEER, url], env=child_env(), cwd=REPO, check=False
            )

        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode() == "['a', 'child']\n"
        assert lock_path_for(store_dir).read_text().strip() == str(os.getpid())
        await store.put(ALICE, Scope.USER, "after", key="b")
        assert [r.key for r in await store.list(ALICE, Scope.USER)] == ["b", "child", "a"]

    async with open_store(Settings(store=url)) as store:
        assert await store.count(ALICE, Scope.USER) == 3


async def test_the_same_store_opened_twice_in_one_process_is_one_engine(tmp_path: Path) -> None:
    settings = Settings(store=store_url(tmp_path))
    async with open_store(settings) as store:
        async with open_store(settings) as again:
            await again.put(ALICE, Scope.USER, "through the second opening", key="b")
        with pytest.raises(StoreLockedError, match=f"process {os.getpid()}"):
            StoreLock(tmp_path / "data" / "store").acquire()
        await store.put(ALICE, Scope.USER, "still fine", key="a")
        assert await store.count(ALICE, Scope.USER) == 2


async def test_a_deleted_or_replaced_lock_file_does_not_let_a_second_process_open_the_engine(
    tmp_path: Path,
) -> None:
    store_dir = tmp_path / "data" / "store"
    async with open_store(Settings(store=store_url(tmp_path))) as store:
        await store.put(ALICE, Scope.USER, "before", key="a")
        lock_path_for(store_dir).unlink()
        assert not StoreLock(store_dir).try_acquire()
        lock_path_for(store_dir).write_text("")
        assert not StoreLock(store_dir).try_acquire()
        with anyio.fail_after(20):
            result = await anyio.run_process(
                [sys.executable, "-c", OPEN_AS_PEER, store_url(tmp_path)],
                env=child_env(),
                cwd=REPO,
                check=False,
            )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode() == "['a', 'child']\n"
        assert await store.count(ALICE, Scope.USER) == 2


async def raw_query(settings: Settings, query: str, params: dict[str, Any]) -> list[Any]:
    """Run SurrealQL on the closed store as another program (or an older version) would, under its lock."""
    lock = StoreLock(tmp_store_dir(settings))
    lock.acquire()
    try:
        db: Any = AsyncSurreal(settings.store)
        await db.connect()
        try:
            await db.use(settings.store_namespace, settings.store_database)
            response = await db.query_raw(query, params)
        finally:
            await db.close()
    finally:
        lock.release()
    assert response.get("error") is None, response
    return [statement["result"] for statement in response["result"]]


def tmp_store_dir(settings: Settings) -> Path:
    return Path(settings.store.removeprefix("surrealkv://"))


async def test_a_store_whose_timeline_copies_every_memory_is_upgraded_on_open_and_lists_the_same(
    tmp_path: Path,
) -> None:
    settings = Settings(store=store_url(tmp_path))
    async with open_store(settings) as store:
        for key in "abc":
            await store.put(ALICE, Scope.USER, f"value {key}", key=key)
        await store.put(ALICE, Scope.SESSION, "a note")
        listed = {scope: await store.list(ALICE, scope) for scope in Scope}
    # The layout before: each timeline record held a copy of its entry.
    await raw_query(
        settings,
        "DEFINE FIELD content ON memory_order TYPE string; DEFINE FIELD key ON memory_order TYPE option<string>;"
        "UPDATE memory_order SET content = 'the copy', key = 'copied';",
        {},
    )

    async with open_store(settings) as store:
        assert {scope: await store.list(ALICE, scope) for scope in Scope} == listed
    *_, rows = await raw_query(settings, "SELECT * FROM memory_order;", {})
    assert len(rows) == 4 and all(set(row) == {"id"} for row in rows)


async def test_counters_that_disagree_with_the_entries_are_recounted_when_the_store_opens(
    tmp_path: Path,
) -> None:
    settings = Settings(store=store_url(tmp_path))
    async with open_store(settings) as store:
        for key in "abc":
            await store.put(ALICE, Scope.USER, "v", key=key)
        await store.put(ALICE, Scope.SESSION, "a note")
    # What an engine opened twice (by an older version) left behind: counters off from the entries.
    await raw_query(
        settings,
        "UPSERT $user_counter SET n = 9; DELETE $session_counter;",
        {
            "user_counter": RecordID("memory_count", ["alice", "user", ""]),
            "session_counter": RecordID("memory_count", ["alice", "session", "s1"]),
        },
    )

    async with open_store(settings) as store:
        assert await store.count(ALICE, Scope.USER) == 3
        assert await store.count(ALICE, Scope.SESSION) == 1
        await store.forget_key(ALICE, Scope.USER, "a")
        assert await store.count(ALICE, Scope.USER) == 2


async def test_the_lock_file_sits_beside_the_store_and_names_its_holder(tmp_path: Path) -> None:
    store_dir = tmp_path / "data" / "store"
    lock_file = lock_path_for(store_dir)
    async with open_store(Settings(store=store_url(tmp_path))):
        assert lock_file == tmp_path / "data" / "store.lock"
        assert lock_file.read_text().strip() == str(os.getpid())
    assert lock_file.read_text() == ""


async def test_the_store_directory_is_0700_and_its_files_0600_whatever_the_umask(tmp_path: Path) -> None:
    store_dir = tmp_path / "data" / "store"
    previous = os.umask(0o022)
    try:
        async with open_store(Settings(store=store_url(tmp_path))) as store:
            await store.put(ALICE, Scope.USER, "private", key="a")
            modes = {path: stat.S_IMODE(path.lstat().st_mode) for path in [store_dir, *store_dir.rglob("*")]}
    finally:
        os.umask(previous)
    assert any(path.is_file() for path in modes)
    assert {path: mode for path, mode in modes.items() if mode != (0o700 if path.is_dir() else 0o600)} == {}


async def test_an_existing_store_open_to_others_is_made_private_when_opened(tmp_path: Path) -> None:
    store_dir = tmp_path / "data" / "store"
    async with open_store(Settings(store=store_url(tmp_path))):
        pass
    for path in [store_dir, *store_dir.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    async with open_store(Settings(store=store_url(tmp_path))):
        assert stat.S_IMODE(store_dir.stat().st_mode) == 0o700
        assert {stat.S_IMODE(p.stat().st_mode) for p in store_dir.rglob("*") if p.is_file()} == {0o600}


async def test_open_store_sets_fsync_on_commit_for_embedded_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SURREAL_SYNC_DATA", raising=False)
    async with open_store(Settings(store=store_url(tmp_path))):
        assert os.environ["SURREAL_SYNC_DATA"] == "true"


@pytest.mark.parametrize("url", ["surrealkv://", "postgres://localhost/db", "store"])
async def test_an_unusable_store_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="MEMORY_ROUTER_STORE"):
        async with open_store(Settings(store=url)):
            pass


def test_store_urls_in_messages_never_show_credentials() -> None:
    assert display_url("wss://root:s3cret@db.example:8000/rpc") == "wss://db.example:8000/rpc"
    assert display_url("surrealkv:///tmp/store") == "surrealkv:///tmp/store"


def test_settings_load_without_importing_the_memory_package() -> None:
    probe = (
        "import sys, server.config; print(sorted(m for m in sys.modules if m.startswith('server.memory')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
