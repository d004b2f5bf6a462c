"""A provider clock for tests: time moves only when slept through or pushed, so deadlines and backoff
are tested without waiting."""

from __future__ import annotations

from server.providers import Clock


class FakeClock:
    """Time that moves only when slept through (or pushed); jitter pinned to its maximum."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep, random=lambda: 1.0)
