"""Open the memory store named by MEMORY_ROUTER_STORE, for the server's lifespan and for CLI commands."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from surrealdb import AsyncSurreal

from server.config import Settings
from server.errors import ConfigError, StoreError
from server.memory.cached import CachedStorage
from server.memory.sharing import open_shared
from server.memory.sharing.lock import store_refused
from server.memory.storage import MemoryLimits, MemoryStorage, WallClock, utc_now
from server.memory.surreal import SDK_ERRORS, SurrealMemoryStore, translated_errors
from server.memory.surreal.task_store import SurrealTaskStore

EMBEDDED_SCHEMES = ("surrealkv", "mem", "memory")
REMOTE_SCHEMES = ("ws", "wss", "http", "https")
STATELESS_SCHEMES = ("http", "https")  # the SDK opens a session per request: nothing to connect or close


def display_url(url: str) -> str:
    """The store URL without any user:password@ part, for messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return parts._replace(netloc=host).geturl()


def limits_from(settings: Settings) -> MemoryLimits:
    return MemoryLimits(
        max_key_chars=settings.max_key_chars,
        max_value_bytes=settings.max_value_bytes,
        max_records_per_owner=settings.max_memories,
    )


async def _close(db: Any, shown: str) -> None:
    with translated_errors(f"closing {shown}"):
        await db.close()


def embedded_path(url: str) -> Path | None:
    """The directory of a `surrealkv://PATH` store; None for `mem://` and remote stores."""
    scheme, sep, rest = url.partition("://")
    if scheme != "surrealkv":
        return None
    if not sep or not rest:
        raise ConfigError(f"MEMORY_ROUTER_STORE={url!r} names no path; use surrealkv:///absolute/path.")
    return Path(rest).expanduser()


@asynccontextmanager
async def open_store(settings: Settings, *, clock: WallClock = utc_now) -> AsyncIterator[MemoryStorage]:
    """The store named by MEMORY_ROUTER_STORE.

    An embedded store on disk is shared by every memory-router process that opens it (`sharing/`):
    the one holding its lock opens the engine and serves the others, and when it exits another takes
    over. The process with the engine keeps indexes and lists in memory in front of it (`cached.py`). On exit this process's part is closed, and the lock released if it held it.
    """
    path = embedded_path(settings.store)
    if path is None:
        async with open_cached(settings, settings.store, clock=clock) as store:
            yield store
        return
    path = path.resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError as e:
        raise store_refused(path, e) from e
    url = f"surrealkv://{path}"
    async with open_shared(path, lambda: open_cached(settings, url, clock=clock)) as shared:
        yield shared


@asynccontextmanager
async def open_cached(
    settings: Settings, url: str, *, clock: WallClock = utc_now
) -> AsyncIterator[CachedStorage]:
    """The engine at `url` behind the in-memory cache that search and the preamble read from."""
    async with open_engine(settings, url, clock=clock) as engine:
        yield CachedStorage(
            engine,
            exclusive=urlsplit(url).scheme in EMBEDDED_SCHEMES,
            session_ttl=engine.session_ttl,
            recheck=engine.touch_interval,
            clock=clock,
        )


@asynccontextmanager
async def open_engine(
    settings: Settings, url: str, *, clock: WallClock = utc_now
) -> AsyncIterator[SurrealMemoryStore]:
    """Connect to `url`, sign in (remote), select namespace/database, define the schema.

    Takes no lock: for `surrealkv://` the caller must hold the store's `StoreLock` (`open_shared` does).
    """
    scheme = urlsplit(url).scheme
    shown = display_url(url)
    if scheme not in EMBEDDED_SCHEMES + REMOTE_SCHEMES:
        raise ConfigError(
            f"MEMORY_ROUTER_STORE={shown!r} is not a store URL: use surrealkv://PATH, mem://, "
            "ws://, wss://, http:// or https://."
        )
    path = embedded_path(url)
    if scheme in EMBEDDED_SCHEMES:
        # Acknowledged writes must survive a crash: fsync on commit (read when the engine opens).
        os.environ.setdefault("SURREAL_SYNC_DATA", "true")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):
            path.mkdir(mode=0o700)
    async with AsyncExitStack() as stack:
        db: Any = AsyncSurreal(url)
        if scheme not in STATELESS_SCHEMES:
            with translated_errors(f"opening {shown}"):
                await db.connect()
            stack.push_async_callback(_close, db, shown)
        store = SurrealMemoryStore(
            db, limits=limits_from(settings), session_ttl_seconds=settings.session_ttl_seconds, clock=clock
        )
        stack.push_async_callback(store.aclose)
        if scheme in REMOTE_SCHEMES:
            await _sign_in(db, settings)
        with translated_errors(f"selecting namespace {settings.store_namespace!r}"):
            await db.use(settings.store_namespace, settings.store_database)
        await store.define_schema()
        await SurrealTaskStore(db).define_schema()
        await store.sweep_expired_sessions()
        if path is not None:
            await store.repair_counters()
            keep_private(path)
        yield store


def keep_private(store_dir: Path) -> None:
    """Make the engine's directories 0700 and its files 0600, whatever the umask (it creates them
    0755 and 0644). Files the engine adds later follow the umask but sit in 0700 directories."""
    for root, _dirs, files in os.walk(store_dir):
        with suppress(FileNotFoundError):
            os.chmod(root, 0o700)
        for name in files:
            file = Path(root, name)
            if not file.is_symlink():
                with suppress(FileNotFoundError):
                    os.chmod(file, 0o600)


async def _sign_in(db: Any, settings: Settings) -> None:
    if settings.store_username is None or settings.store_password is None:
        return
    credentials = {
        "username": settings.store_username,
        "password": settings.store_password.get_secret_value(),
    }
    try:
        await db.signin(credentials)
    except SDK_ERRORS as e:
        where = display_url(settings.store)
        raise StoreError(
            f"Signing in to the memory store at {where} as {settings.store_username!r} failed "
            f"({type(e).__name__}). Check MEMORY_ROUTER_STORE_USERNAME and MEMORY_ROUTER_STORE_PASSWORD."
        ) from e
