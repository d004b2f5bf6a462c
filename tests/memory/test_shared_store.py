"""Several processes on one embedded store: the lock holder serves it, the others go through it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from stdio_servers import call_memory, cli, holder_pid, owner_process, serve, server_env, user_keys

from server.config import Settings
from server.errors import MemoryInputError, StoreError, StoreLockedError
from server.memory.sharing import SharedStore, open_shared
from server.memory.sharing.credentials import peer_uid
from server.memory.sharing.lock import StoreLock, lock_path_for
from server.memory.sharing.owner import answer
from server.memory.sharing.paths import check_private_dir, ensure_private_dir, socket_path_for
from server.memory.sharing.wire import PROTOCOL_VERSION, receive_message, send_message, unwrap
from server.memory.storage import MemoryRecord, Owner, Scope
from server.memory.store import open_cached, open_store

ALICE = Owner("alice", "s1")
BOB = Owner("bob", "s1")


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


# -- several `memory-router serve` processes ------------------------------------------------------


async def test_servers_on_one_store_see_each_others_writes_and_outlive_the_owner_killed_midway(
    store_dir: Path,
) -> None:
    writes_each = 12
    kill_after = 12  # acknowledged writes in all, before the owner is killed
    acked: dict[str, list[str]] = {name: [] for name in "abc"}
    failed: dict[str, list[str]] = {name: [] for name in "abc"}
    enough = anyio.Event()

    async def write(name: str, client: Client) -> None:
        for i in range(writes_each):
            key = f"{name}-{i}"
            try:
                result = await call_memory(client, key, f"written by {name}")
            except Exception as e:  # the killed owner's own host loses its server
                failed[name].append(f"{key}: {e!r}")
                return
            if result.is_error:
                failed[name].append(f"{key}: {result.content}")
                continue
            acked[name].append(key)
            if sum(map(len, acked.values())) >= kill_after:
                enough.set()

    with anyio.fail_after(60):
        async with AsyncExitStack() as stack:
            # One after the other, so the first is the one that opened the engine.
            clients = {
                name: await stack.enter_async_context(Client(serve(store_dir, name))) for name in "abc"
            }
            owner = holder_pid(store_dir)
            async with anyio.create_task_group() as tg:
                for name, client in clients.items():
                    tg.start_soon(write, name, client)
                await enough.wait()
                os.kill(owner, signal.SIGKILL)

            assert failed["b"] == [] and failed["c"] == []
            assert len(acked["b"]) == len(acked["c"]) == writes_each
            new_owner = holder_pid(store_dir)
            assert new_owner != owner
            everything = {key for keys in acked.values() for key in keys}
            assert acked["a"], "the owner was killed before its own host wrote anything"
            assert await user_keys(clients["b"]) >= everything
            assert await user_keys(clients["c"]) >= everything

    # Every server is gone: the store opens again, with every acknowledged write in it.
    listed = cli(store_dir, "memory", "list", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    keys = {line.split("\t")[2] for line in listed.stdout.splitlines()}
    assert keys >= everything
    assert lock_path_for(store_dir).read_text() == ""


# -- the owner and its peers, in this process ----------------------------------------------------


@pytest.fixture
async def pair(store_dir: Path) -> AsyncIterator[tuple[SharedStore, SharedStore]]:
    settings = Settings(store="mem://", max_memories=3)
    opener = lambda: open_cached(settings, "mem://")  # noqa: E731
    async with open_shared(store_dir, opener) as owner, open_shared(store_dir, opener) as peer:
        assert owner.is_owner and not peer.is_owner
        yield owner, peer


async def test_a_peer_offers_every_storage_call_with_the_owners_results(
    pair: tuple[SharedStore, SharedStore],
) -> None:
    owner, peer = pair
    keyed = await peer.put(ALICE, Scope.USER, "tea", key="drink")
    keyless = await peer.put(ALICE, Scope.SESSION, "a keyless note")
    assert await owner.get(ALICE, Scope.USER, "drink") == keyed == await peer.get(ALICE, Scope.USER, "drink")
    assert await peer.get(BOB, Scope.USER, "drink") is None
    assert await peer.list(ALICE, Scope.SESSION) == [keyless] == await owner.list(ALICE, Scope.SESSION)
    assert await peer.list(ALICE, Scope.USER, limit=0) == []
    assert await peer.count(ALICE, Scope.USER) == 1
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    imported = MemoryRecord(
        handle="elsewhere-1", scope=Scope.USER, key=None, content="old", created_at=moment, updated_at=moment
    )
    restored = await peer.restore(ALICE, Scope.USER, imported)
    assert await peer.restore(ALICE, Scope.USER, imported) == restored
    assert restored.created_at == moment
    assert await peer.forget(BOB, Scope.USER, restored.handle) is None
    assert await peer.forget(ALICE, Scope.USER, restored.handle) == restored
    assert await peer.forget_key(ALICE, Scope.USER, "drink") == keyed
    assert await peer.forget_key(ALICE, Scope.USER, "drink") is None
    assert await owner.count(ALICE, Scope.USER) == 0


@pytest.mark.parametrize(
    ("content", "key"),
    [("v", ""), ("v", "k" * 300), ("x" * 20_000, None), ("one too many", "d")],
    ids=["empty key", "long key", "large value", "over the limit"],
)
async def test_a_peer_raises_the_owners_errors_with_the_same_messages(
    pair: tuple[SharedStore, SharedStore], content: str, key: str | None
) -> None:
    owner, peer = pair
    for existing in ("a", "b", "c"):
        await owner.put(ALICE, Scope.USER, "v", key=existing)
    messages = []
    for store in (owner, peer):
        with pytest.raises(MemoryInputError) as raised:
            await store.put(ALICE, Scope.USER, content, key=key)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    ("who", "content"),
    [(ALICE, "half a pair \ud800"), (Owner("\udfff", "s1"), "fine")],
    ids=["value", "user name"],
)
async def test_text_that_is_not_unicode_fails_a_peers_call_as_the_owners_without_reconnecting(
    pair: tuple[SharedStore, SharedStore], who: Owner, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    owner, peer = pair
    failures = []
    for store in (owner, peer):
        with pytest.raises((MemoryInputError, StoreError)) as raised:
            await store.put(who, Scope.USER, content, key="k")
        failures.append((type(raised.value), str(raised.value)))
    assert failures[0] == failures[1]
    assert "not valid Unicode" in failures[0][1] and "codec" not in failures[0][1]
    assert "went away" not in caplog.text
    assert await peer.put(ALICE, Scope.USER, "still served", key="after")


async def test_the_owner_answers_a_malformed_request_with_an_error_and_keeps_the_connection(
    pair: tuple[SharedStore, SharedStore],
) -> None:
    owner, _ = pair
    assert owner.socket_path is not None
    async with await anyio.connect_unix(owner.socket_path) as stream:
        receive = BufferedByteReceiveStream(stream)
        for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
            await stream.send(struct.pack(">I", len(body)) + body)
            reply = await receive_message(receive)
            assert reply is not None
            with pytest.raises(StoreError, match="malformed request"):
                unwrap(reply)
        await send_message(stream, {"op": "hello", "version": PROTOCOL_VERSION})
        assert (await receive_message(receive) or {})["ok"]["pid"] == os.getpid()


async def test_a_peers_keyless_put_sent_twice_is_stored_once(store_dir: Path) -> None:
    async with open_cached(Settings(store="mem://"), "mem://") as store:
        request = {
            "op": "put",
            "user": "alice",
            "session": "s1",
            "scope": "user",
            "content": "said once",
            "key": None,
            "request_id": "5f0c",
            "source": {"via": "tool", "client": "host/1.0"},
        }
        first = await answer(store, request)
        again = await answer(store, request)
        assert again["handle"] == first["handle"] and again["created_at"] == first["created_at"]
        assert again["source"] == {"via": "tool", "client": "host/1.0", "session": None, "model": None}
        assert await store.count(ALICE, Scope.USER) == 1


async def test_when_the_owner_closes_a_peer_takes_over_with_all_the_data(store_dir: Path) -> None:
    settings = Settings(store=f"surrealkv://{store_dir}")
    opened, close = anyio.Event(), anyio.Event()

    async def first_owner() -> None:
        async with open_store(settings) as store:
            await store.put(ALICE, Scope.USER, "from the first owner", key="first")
            opened.set()
            await close.wait()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first_owner)
            await opened.wait()
            async with open_store(settings) as store:
                assert isinstance(store, SharedStore) and not store.is_owner
                await store.put(ALICE, Scope.USER, "from the peer", key="second")
                close.set()
                await store.put(ALICE, Scope.USER, "after the takeover", key="third")
                assert store.is_owner
                assert holder_pid(store_dir) == os.getpid()
                assert [r.key for r in await store.list(ALICE, Scope.USER)] == ["third", "second", "first"]


async def test_a_lock_holder_that_does_not_serve_is_named_after_the_wait(store_dir: Path) -> None:
    lock = StoreLock(store_dir)
    lock.acquire()
    try:
        opener = lambda: open_cached(Settings(store="mem://"), "mem://")  # noqa: E731
        with anyio.fail_after(10), pytest.raises(StoreLockedError, match=f"process {os.getpid()}"):
            async with open_shared(store_dir, opener, owner_timeout=0.2):
                pass
    finally:
        lock.release()


async def test_a_stopped_owner_fails_peer_calls_within_the_timeout_naming_it_and_recovers_on_resume(
    store_dir: Path,
) -> None:
    opener = lambda: open_cached(Settings(store="mem://"), "mem://")  # noqa: E731  never opened here
    with owner_process(store_dir) as owner:
        async with open_shared(store_dir, opener, owner_timeout=0.5) as peer:
            assert not peer.is_owner
            await peer.put(ALICE, Scope.USER, "before the stop", key="k")
            os.kill(owner.pid, signal.SIGSTOP)
            expected = f"process {owner.pid}, did not answer within 0.5 s.*kill -CONT {owner.pid}"
            for call in (peer.get(ALICE, Scope.USER, "k"), peer.put(ALICE, Scope.USER, "during", key="d")):
                with anyio.fail_after(10), pytest.raises(StoreError, match=expected):
                    await call
            # A process starting now is refused just as fast: the stopped owner still holds the lock.
            with (
                anyio.fail_after(10),
                pytest.raises(StoreError, match=expected.replace("0.5 s", r"0.5 s \(connecting\)")),
            ):
                async with open_shared(store_dir, opener, owner_timeout=0.5):
                    pass
            os.kill(owner.pid, signal.SIGCONT)
            with anyio.fail_after(10):
                got = await peer.get(ALICE, Scope.USER, "k")
            assert got is not None and got.content == "before the stop"


async def test_a_closed_shared_store_refuses_calls(store_dir: Path) -> None:
    async with open_store(Settings(store=f"surrealkv://{store_dir}")) as store:
        await store.aclose()
        with pytest.raises(StoreError, match="closed"):
            await store.count(ALICE, Scope.USER)


# -- only the user's own processes ----------------------------------------------------------------


async def test_the_socket_is_0600_in_a_0700_directory_beside_the_store(store_dir: Path) -> None:
    async with open_store(Settings(store=f"surrealkv://{store_dir}")) as store:
        assert isinstance(store, SharedStore)
        assert store.socket_path == socket_path_for(store_dir) == store_dir.with_name("store.run") / "sock"
        assert stat.S_IMODE(store.socket_path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(store.socket_path.stat().st_mode) == 0o600
        assert stat.S_ISSOCK(store.socket_path.stat().st_mode)
    assert not socket_path_for(store_dir).exists()


@pytest.fixture
def deep_store(tmp_path: Path) -> Path:
    """A store whose `<store>.run/sock` is too long for a unix socket."""
    return tmp_path / ("d" * 120) / "store"


async def test_a_store_path_too_long_for_a_socket_is_served_from_a_fresh_private_runtime_directory(
    deep_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    opener = lambda: open_cached(Settings(store="mem://"), "mem://")  # noqa: E731
    async with open_shared(deep_store, opener) as owner, open_shared(deep_store, opener) as peer:
        assert owner.socket_path is not None and not peer.is_owner
        assert owner.socket_path.parent.parent == runtime
        assert owner.socket_path.parent.name.startswith("memory-router-")
        assert stat.S_IMODE(owner.socket_path.parent.stat().st_mode) == 0o700
        assert socket_path_for(deep_store) == owner.socket_path
        await peer.put(ALICE, Scope.USER, "reached", key="k")
        assert await owner.count(ALICE, Scope.USER) == 1
    assert list(runtime.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        socket_path_for(deep_store)


async def test_a_runtime_directory_that_is_not_private_is_passed_over_with_a_warning(
    deep_store: Path, open_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(open_dir))
    opener = lambda: open_cached(Settings(store="mem://"), "mem://")  # noqa: E731
    async with open_shared(deep_store, opener) as owner:
        assert owner.socket_path is not None and owner.socket_path.parent.parent != open_dir
        assert stat.S_IMODE(owner.socket_path.parent.stat().st_mode) == 0o700
    assert f"XDG_RUNTIME_DIR={open_dir} is not a private directory of yours" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
async def test_a_socket_directory_name_squatted_by_another_user_does_not_stop_the_store(
    deep_store: Path, open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(open_dir))
    squatted = open_dir / f"memory-router-{os.geteuid()}"
    squatted.mkdir(mode=0o777)
    os.chown(squatted, 65534, 65534)
    opener = lambda: open_cached(Settings(store="mem://"), "mem://")  # noqa: E731
    async with open_shared(deep_store, opener) as owner, open_shared(deep_store, opener) as peer:
        assert owner.socket_path is not None and owner.socket_path.parent.parent == open_dir
        assert owner.socket_path.parent != squatted
        await peer.put(ALICE, Scope.USER, "reached", key="k")


def test_a_socket_directory_open_to_others_is_refused_by_peers_and_closed_by_the_owner(
    tmp_path: Path,
) -> None:
    run = tmp_path / "store.run"
    run.mkdir(mode=0o755)
    os.chmod(run, 0o755)
    with pytest.raises(StoreError, match="chmod 700"):
        check_private_dir(run)
    ensure_private_dir(run)
    assert stat.S_IMODE(run.stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_a_socket_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "store.run"
    run.mkdir(mode=0o700)
    os.chown(run, 65534, 65534)
    for check in (check_private_dir, ensure_private_dir):
        with pytest.raises(StoreError, match="not a directory of yours"):
            check(run)


def test_the_peer_credentials_of_a_unix_socket_name_its_user() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert peer_uid(left) == os.geteuid()


async def test_an_owner_refuses_a_process_of_another_uid(store_dir: Path) -> None:
    settings = Settings(store="mem://")
    opener = lambda: open_cached(settings, "mem://")  # noqa: E731
    async with open_shared(store_dir, opener, allowed_uid=os.geteuid() + 1) as owner:
        await owner.put(ALICE, Scope.USER, "private", key="secret")
        with anyio.fail_after(10), pytest.raises(StoreError, match="belongs to another user"):
            async with open_shared(store_dir, opener):
                pass


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may enter (tmp_path is private to us)."""
    path = Path(tempfile.mkdtemp())
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


CONNECT = """
import socket, sys
try:
    socket.socket(socket.AF_UNIX).connect(sys.argv[1])
    print("connected")
except OSError as e:
    print(type(e).__name__)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="needs root")
async def test_another_os_user_cannot_reach_the_socket(open_dir: Path) -> None:
    async with open_store(Settings(store=f"surrealkv://{open_dir / 'store'}")) as store:
        assert isinstance(store, SharedStore)
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                ["/usr/bin/python3", "-c", CONNECT, str(store.socket_path)],
                user=65534,
                capture_output=True,
                text=True,
                timeout=20,
            )
        )
        assert done.stdout.strip() == "PermissionError", done.stderr
        # The same program as this user gets through: the directory is the barrier.
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                ["/usr/bin/python3", "-c", CONNECT, str(store.socket_path)],
                capture_output=True,
                text=True,
                timeout=20,
            )
        )
        assert done.stdout.strip() == "connected", done.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_a_store_of_another_os_user_is_refused_with_a_clear_message(open_dir: Path) -> None:
    store_dir = open_dir / "store"
    created = cli(store_dir, "memory", "list")
    assert created.returncode == 0, created.stderr
    for path in [open_dir, *open_dir.rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    # uid 0 without capabilities: file permissions bind it as any user who does not own the files.
    done = subprocess.run(
        [
            "setpriv",
            "--bounding-set=-all",
            "--inh-caps=-all",
            sys.executable,
            "-m",
            "server",
            "memory",
            "list",
        ],
        env=server_env(store_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert "belongs to another OS user" in done.stderr and "MEMORY_ROUTER_STORE" in done.stderr


def test_the_engine_lock_refuses_a_second_holder_while_the_store_is_open(store_dir: Path) -> None:
    lock = StoreLock(store_dir)
    lock.acquire()
    try:
        with pytest.raises(StoreError, match=f"process {os.getpid()}"):
            StoreLock(store_dir).acquire()
    finally:
        lock.release()
