"""Streamed completion text as MCP progress notifications: throttled, with a heartbeat.

A fast stream is coalesced so the host is not flooded; a slow one still
sends a notification every few seconds, which keeps hosts that time out silent tool calls waiting.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

Report = Callable[[float, str], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


class ProgressStream:
    """Coalesces deltas into at most one notification per `interval`; beats after `heartbeat` of silence."""

    def __init__(
        self,
        report: Report,
        *,
        interval: float = 0.1,
        heartbeat: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self._report = report
        self._interval = interval
        self._heartbeat = heartbeat
        self._clock = clock
        self._sleep = sleep
        self._pending = ""
        self._progress = 0.0
        self._last_sent = clock()
        self._lock = anyio.Lock()

    async def __call__(self, delta: str) -> None:
        self._pending += delta
        if self._clock() - self._last_sent >= self._interval:
            await self.flush()

    async def flush(self, *, beat: bool = False) -> None:
        async with self._lock:
            if not self._pending and not beat:
                return
            message, self._pending = self._pending, ""
            # `progress` must grow with every notification: characters streamed, plus one per beat.
            self._progress += len(message) if message else 1
            self._last_sent = self._clock()
            await self._report(self._progress, message)

    async def beat_forever(self) -> None:
        """Sends text left waiting by a pause once `interval` has passed, and a beat after `heartbeat`
        of silence. Ticks every `interval`: cheap, and never later than a host would notice."""
        while True:
            await self._sleep(self._interval)
            idle = self._clock() - self._last_sent
            if self._pending and idle >= self._interval:
                await self.flush()
            elif idle >= self._heartbeat:
                await self.flush(beat=True)


@asynccontextmanager
async def progress_stream(report: Report, **options: Any) -> AsyncIterator[ProgressStream]:
    stream = ProgressStream(report, **options)
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(stream.beat_forever)
        try:
            yield stream
            await stream.flush()
        except Exception as e:
            failure = e  # re-raised as itself below, not wrapped in the task group's ExceptionGroup
        finally:
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
