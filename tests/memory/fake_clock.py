"""A store clock that moves only when told to, so expiry and ordering tests never sleep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeWallClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)
