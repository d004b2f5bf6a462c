"""Retries, the deadline, dropped streams, cancellation and secrets: the shared HTTP plumbing."""

from collections.abc import AsyncIterator
from contextlib import aclosing

import anyio
import httpx
import pytest
from provider_fakes import KEY, FakeClock, Upstream, json_reply, provider, sse, stream_reply

from server.errors import ProviderError, ProviderErrorCategory
from server.providers import PROVIDER_NAMES
from server.providers.types import CompletionRequest, TextDelta

TEXT = {
    "model": "gpt-4.1-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
}
STREAM = sse(
    {"model": "m", "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
    {"model": "m", "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
    "[DONE]",
)


def request() -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


def error(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return json_reply(status, {"error": {"message": f"status {status}", "type": "x"}}, headers)


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (500, ProviderErrorCategory.UNAVAILABLE),
        (503, ProviderErrorCategory.OVERLOADED),
        (529, ProviderErrorCategory.OVERLOADED),
        (408, ProviderErrorCategory.TIMEOUT),
        (409, ProviderErrorCategory.UNAVAILABLE),
        (429, ProviderErrorCategory.RATE_LIMIT),
    ],
)
async def test_retryable_statuses_are_retried_with_exponential_backoff(
    status: int, category: ProviderErrorCategory
) -> None:
    clock = FakeClock()
    upstream = Upstream(error(status))
    with pytest.raises(ProviderError) as caught:
        await provider("openai", upstream, clock).complete(request())
    assert caught.value.category is category
    assert caught.value.retryable
    assert len(upstream.requests) == 3
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (400, ProviderErrorCategory.INVALID_REQUEST),
        (401, ProviderErrorCategory.AUTHENTICATION),
        (403, ProviderErrorCategory.PERMISSION),
        (404, ProviderErrorCategory.NOT_FOUND),
    ],
)
async def test_client_errors_are_never_retried(status: int, category: ProviderErrorCategory) -> None:
    clock = FakeClock()
    upstream = Upstream(error(status))
    with pytest.raises(ProviderError) as caught:
        await provider("openai", upstream, clock).complete(request())
    assert (caught.value.category, caught.value.status, caught.value.retryable) == (category, status, False)
    assert len(upstream.requests) == 1
    assert clock.sleeps == []


async def test_retry_after_seconds_is_honoured_and_reported() -> None:
    clock = FakeClock()
    upstream = Upstream(error(429, {"retry-after": "7"}), json_reply(200, TEXT))
    await provider("openai", upstream, clock).complete(request())
    assert clock.sleeps == [7.0]


async def test_a_retry_after_beyond_the_cap_is_not_waited_for() -> None:
    clock = FakeClock()
    upstream = Upstream(error(429, {"retry-after": "3600"}))
    with pytest.raises(ProviderError) as caught:
        await provider("openai", upstream, clock).complete(request())
    assert caught.value.retry_after == 3600
    assert clock.sleeps == []


async def test_x_should_retry_false_stops_retries() -> None:
    upstream = Upstream(error(500, {"x-should-retry": "false"}))
    with pytest.raises(ProviderError):
        await provider("openai", upstream).complete(request())
    assert len(upstream.requests) == 1


async def test_the_deadline_bounds_retry_waits() -> None:
    clock = FakeClock()
    upstream = Upstream(error(429, {"retry-after": "20"}))
    with pytest.raises(ProviderError) as caught:
        await provider("openai", upstream, clock, request_timeout_seconds=30).complete(request())
    assert caught.value.category is ProviderErrorCategory.RATE_LIMIT
    assert clock.sleeps == [20.0]  # a second 20 s wait would pass the 30 s deadline
    assert len(upstream.requests) == 2


async def test_the_deadline_bounds_a_slow_stream() -> None:
    clock = FakeClock()

    async def trickle() -> AsyncIterator[bytes]:
        for piece in STREAM.encode().split(b"\n\n"):
            clock.time += 11
            yield piece + b"\n\n"

    upstream = Upstream(lambda _: httpx.Response(200, content=trickle()))
    events: list[object] = []
    with pytest.raises(ProviderError) as caught:
        async for event in provider("openai", upstream, clock, request_timeout_seconds=30).stream(request()):
            events.append(event)
    assert caught.value.category is ProviderErrorCategory.TIMEOUT
    assert "deadline" in caught.value.message
    assert len(upstream.requests) == 1


async def test_timeouts_are_retried_then_reported_as_timeouts() -> None:
    upstream = Upstream(httpx.ReadTimeout("timed out"), json_reply(200, TEXT))
    response = await provider("openai", upstream).complete(request())
    assert response.text == "Hi."
    assert len(upstream.requests) == 2


async def test_a_stream_is_retried_before_its_first_byte() -> None:
    clock = FakeClock()
    upstream = Upstream(error(503), httpx.ConnectError("refused"), stream_reply(STREAM))
    events = [e async for e in provider("openai", upstream, clock).stream(request())]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    assert len(upstream.requests) == 3


async def test_a_connection_dropped_mid_stream_is_not_replayed_but_stays_retryable_for_the_caller() -> None:
    half = STREAM[: STREAM.index("lo")]
    upstream = Upstream(stream_reply(half, then=httpx.RemoteProtocolError("peer closed connection")))
    received: list[object] = []
    with pytest.raises(ProviderError) as caught:
        async for event in provider("openai", upstream).stream(request()):
            received.append(event)
    assert caught.value.category is ProviderErrorCategory.UNAVAILABLE
    # The caller knows whether anything reached a person; it decides about trying again.
    assert caught.value.retryable
    assert "after the stream had started" in caught.value.message
    assert received == [TextDelta(text="Hel")]
    assert len(upstream.requests) == 1


async def test_a_stream_that_ends_early_is_an_error_not_a_short_answer() -> None:
    first_openai_chunk = STREAM.split("\n\n")[0] + "\n\n"
    cut_bodies = {
        "anthropic": sse({"type": "message_start", "message": {"model": "m", "content": []}}, named=True),
        "gemini": sse({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}),
        "openai": first_openai_chunk,
        "ollama": '{"message": {"content": "Hel"}, "done": false}\n',
    }
    for name, body in cut_bodies.items():
        with pytest.raises(ProviderError, match="ended before"):
            [e async for e in provider(name, Upstream(stream_reply(body))).stream(request())]


# One body per provider that is JSON, but not of the shape its API promises.
MISSHAPEN = {
    "anthropic": {"content": [{"type": "tool_use", "name": "weather", "input": {}}]},  # no id
    "openai": {"choices": "nope"},
    "gemini": {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": "x=1"}}]}}]},
    "ollama": {"message": {"tool_calls": [{"function": {"name": "f", "arguments": "x=1"}}]}},
}
MISSHAPEN_EVENTS = {
    "anthropic": sse({"type": "content_block_start", "index": "first", "content_block": {}}, named=True),
    "openai": sse({"choices": [{"delta": {"content": ["not", "text"]}}]}),
    "gemini": sse({"candidates": [{"content": {"parts": "Hel"}}]}),
    "ollama": '{"message": {"content": 7}, "done": false}\n',
}


@pytest.mark.parametrize("name", PROVIDER_NAMES)
async def test_a_body_that_is_not_json_is_an_invalid_response(name: str) -> None:
    reply = httpx.Response(200, content=b"<html>gateway</html>")
    with pytest.raises(ProviderError, match="not valid JSON") as caught:
        await provider(name, Upstream(reply)).complete(request())
    assert caught.value.category is ProviderErrorCategory.INVALID_RESPONSE


@pytest.mark.parametrize("name", PROVIDER_NAMES)
async def test_a_body_of_another_shape_is_one_invalid_response_naming_provider_and_model(name: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider(name, Upstream(json_reply(200, MISSHAPEN[name]))).complete(request())
    error = caught.value
    assert (error.category, error.provider, error.model) == (
        ProviderErrorCategory.INVALID_RESPONSE,
        name,
        "m",
    )
    assert not error.retryable
    assert "unexpected shape (at " in error.message
    assert f"invalid_response error from {name}/m" in str(error)


@pytest.mark.parametrize("name", PROVIDER_NAMES)
async def test_a_stream_event_of_another_shape_is_an_invalid_response(name: str) -> None:
    with pytest.raises(ProviderError) as caught:
        [e async for e in provider(name, Upstream(stream_reply(MISSHAPEN_EVENTS[name]))).stream(request())]
    assert (caught.value.category, caught.value.provider) == (ProviderErrorCategory.INVALID_RESPONSE, name)


async def test_a_stream_event_that_is_not_json_is_an_invalid_response() -> None:
    with pytest.raises(ProviderError, match="not valid JSON") as caught:
        [e async for e in provider("openai", Upstream(stream_reply("data: {oops\n\n"))).stream(request())]
    assert caught.value.category is ProviderErrorCategory.INVALID_RESPONSE


@pytest.mark.parametrize("name", PROVIDER_NAMES)
async def test_keys_are_absent_from_every_error_text_and_repr(name: str) -> None:
    echoed = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}
    for reply in (json_reply(401, echoed), httpx.ConnectError(f"failed for {KEY}")):
        adapter = provider(name, Upstream(reply), OLLAMA_API_KEY=KEY)
        with pytest.raises(ProviderError) as caught:
            await adapter.complete(request())
        texts = [str(caught.value), repr(caught.value), caught.value.message, repr(adapter)]
        assert all(KEY not in text for text in texts)


async def test_cancelling_the_caller_aborts_the_upstream_stream() -> None:
    closed = anyio.Event()

    async def stalls_after_one_event() -> AsyncIterator[bytes]:
        try:
            yield b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
            await anyio.sleep_forever()
        finally:
            closed.set()

    upstream = Upstream(lambda _: httpx.Response(200, content=stalls_after_one_event()))
    with anyio.CancelScope() as scope:
        async with aclosing(provider("openai", upstream).stream(request())) as events:
            async for _ in events:
                scope.cancel()  # the next read, waiting on upstream, is cancelled
    assert scope.cancelled_caught
    assert closed.is_set()


async def test_listing_models_sends_the_key_and_raises_when_it_is_rejected() -> None:
    upstream = Upstream(json_reply(200, {"data": []}))
    await provider("openai", upstream).list_models()
    assert str(upstream.requests[0].url) == "https://openai.test/v1/models"
    rejected = Upstream(error(401))
    with pytest.raises(ProviderError) as caught:
        await provider("anthropic", rejected).list_models()
    assert caught.value.category is ProviderErrorCategory.AUTHENTICATION
