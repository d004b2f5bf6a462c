"""The uvicorn server of the HTTP transports, hardened against slow and numerous connections.

- Every request head (request line and headers) must arrive within `http_header_timeout_seconds`
  of the connection opening, or of the previous response: a client trickling its headers byte by
  byte is cut off when that deadline passes, whatever it sends meanwhile. (`BoundedBody` gives the
  body its own deadline.)
- At most `http_max_connections` connections are open (never more than a quarter of the process's
  file descriptor limit, and accepted in small batches): past that, the connection that has waited longest for its request head is
  closed (the new one when all the others are busy), so half-open connections cannot lock a normal
  client out nor run the process out of file descriptors.
- A warning or error that repeats is logged once per interval, with a count, not once per event.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.config import Settings

logger = logging.getLogger(__name__)

REPEAT_INTERVAL_SECONDS = 60.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on every request head and a cap on connections."""

    head_timeout: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 256

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self._waiting_since = 0.0
        super().connection_made(transport)
        self._await_head()
        # Closed connections stay in the set until the loop reports them lost: count the open ones.
        open_ = [
            c for c in self.connections if isinstance(c, GuardedH11Protocol) and not c.transport.is_closing()
        ]
        if len(open_) > self.max_connections:
            waiting = [c for c in open_ if c.awaits_head]
            oldest = min(waiting, key=lambda c: c._waiting_since, default=self)
            oldest.transport.close()

    @property
    def awaits_head(self) -> bool:
        return self._head_timer is not None

    def _await_head(self) -> None:
        self._cancel_head_timer()
        self._waiting_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


def connection_cap(configured: int) -> int:
    """`configured`, but at most a quarter of the soft limit on open files: the rest is for the
    store, and for the connections accepted but not yet shed (see `uvicorn_config`)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft // 4))


def listen_backlog(settings: Settings) -> int:
    """asyncio accepts up to `backlog` connections per loop iteration, and a few iterations pass
    before a connection can be shed: a quarter of the cap keeps those few batches within the
    quarters of the file limit left over."""
    return min(max(16, connection_cap(settings.http_max_connections) // 4), 128)


def uvicorn_config(app: ASGIApp, settings: Settings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration every HTTP server uses (`options`: host, port, ...)."""
    cap = connection_cap(settings.http_max_connections)
    protocol = type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"head_timeout": settings.http_header_timeout_seconds, "max_connections": cap},
    )
    return uvicorn.Config(
        app,
        http=protocol,
        log_config=None,
        server_header=False,
        lifespan="on",
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
        backlog=listen_backlog(settings),
        **options,
    )


class OncePerInterval(logging.Filter):
    """Lets a warning or error through once per `interval` seconds per (logger, message, exception
    type); the first one after the interval says how many like it were held back."""

    MAX_KEYS = 1024

    def __init__(
        self, interval: float = REPEAT_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic
    ):
        super().__init__()
        self.interval, self.clock = interval, clock
        self._seen: dict[tuple[str, str, str], tuple[float, int]] = {}  # key -> (last logged, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, str(record.msg).partition("\n")[0], exc_type)
        now = self.clock()
        last, held = self._seen.get(key, (None, 0))
        if last is not None and now - last < self.interval:
            self._seen[key] = (last, held + 1)
            return False
        if len(self._seen) >= self.MAX_KEYS:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.interval:.0f} s not logged)"
        return True


def quiet_repeated_logs(handlers: Iterable[logging.Handler] | None = None) -> OncePerInterval:
    """Install one `OncePerInterval` on `handlers` (default: the root logger's), so that it sees the
    records of every logger: asyncio's accept errors, uvicorn's, the SDK's, ours."""
    once = OncePerInterval()
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        handler.addFilter(once)
    return once
