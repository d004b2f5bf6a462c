"""Streamed text as progress notifications: coalesced when fast, a heartbeat when silent."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from server.mcp.progress import ProgressStream, progress_stream


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await anyio.lowlevel.checkpoint()


async def test_a_fast_stream_is_coalesced_into_one_notification_per_interval() -> None:
    time = FakeTime()
    sent: list[tuple[float, str]] = []

    async def report(progress: float, message: str) -> None:
        sent.append((progress, message))

    stream = ProgressStream(report, interval=0.1, clock=time.clock, sleep=time.sleep)
    time.now = 0.05
    await stream("Hel")
    await stream("lo")
    assert sent == []
    time.now = 0.2
    await stream(", ")
    time.now = 0.25
    await stream("world")
    await stream.flush()
    assert sent == [(7.0, "Hello, "), (12.0, "world")]


async def test_a_silent_model_still_sends_a_growing_heartbeat() -> None:
    time = FakeTime()
    sent: list[tuple[float, float, str]] = []
    three = anyio.Event()

    async def report(progress: float, message: str) -> None:
        sent.append((time.now, progress, message))
        if len(sent) == 3:
            three.set()

    stream = ProgressStream(report, heartbeat=10.0, clock=time.clock, sleep=time.sleep)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stream.beat_forever)
            await three.wait()
            tg.cancel_scope.cancel()
    times = [at for at, _, _ in sent[:3]]
    assert [(progress, message) for _, progress, message in sent[:3]] == [(1.0, ""), (2.0, ""), (3.0, "")]
    assert all(abs(at - 10.0 * (i + 1)) < 0.5 for i, at in enumerate(times))


async def test_text_left_waiting_by_a_pause_is_sent_without_waiting_for_more() -> None:
    time = FakeTime()
    sent: list[tuple[float, str]] = []
    got = anyio.Event()

    async def report(progress: float, message: str) -> None:
        sent.append((time.now, message))
        got.set()

    stream = ProgressStream(report, interval=0.1, heartbeat=10.0, clock=time.clock, sleep=time.sleep)
    await stream("thinking...")  # too soon to send; then the model pauses
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stream.beat_forever)
            await got.wait()
            tg.cancel_scope.cancel()
    [(at, message)] = sent
    assert message == "thinking..." and at < 0.5


async def test_an_error_in_the_body_comes_out_as_itself() -> None:
    async def report(progress: float, message: str) -> None:
        pass

    class Boom(Exception):
        pass

    try:
        async with progress_stream(report) as stream:
            await stream("partial")
            raise Boom("provider failed")
    except Boom as e:
        assert str(e) == "provider failed"
    else:
        raise AssertionError("the error was swallowed")
