"""Streaming as MCP progress notifications, and cancellation reaching the provider, for each provider.

The server streams only when the request carries a progress token; the in-memory client puts one in
`_meta` in legacy (handshake) mode, so these tests use it there.
"""

from __future__ import annotations

import anyio
import httpx
import pytest
from fake_llm import PROVIDERS, Call, FakeLLM, Turn
from mcp import Client
from mcp_helpers import text_of
from provider_clock import FakeClock
from routing_helpers import (
    QUESTION,
    WEATHER_TOOL,
    Progress,
    answered,
    cancel_once_hung,
    host_answers,
    route,
    structured,
)

from server.config import Settings
from server.mcp.server import build_server
from server.memory.service import MemoryService
from server.memory.storage import Owner
from server.memory.store import open_store
from server.providers.types import Message
from server.routing.router import Router, RouteRequest, RouteResult

pytestmark = pytest.mark.parametrize("provider", PROVIDERS)

RECORD_CITY = Call("memory", {"op": "record", "scope": "user", "key": "city", "value": "lives in Paris"})


async def test_streamed_text_arrives_as_progress_and_streamed_tool_calls_are_assembled(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    fake.script(
        Turn.calling(RECORD_CITY, text="Noting where you live. "),
        Turn.calling(Call("get_weather", {"city": "Paris", "units": "metric"})),
        Turn(text="It is sunny and 18 degrees in Paris today."),
    )
    model = f"{provider}/model-a"
    first_progress, second_progress = Progress(), Progress()
    async with Client(build_server(settings), mode="legacy") as client:
        first = structured(
            await client.call_tool(
                "route_completion",
                {"model": model, "messages": QUESTION, "tools": [WEATHER_TOOL]},
                progress_callback=first_progress,
            )
        )
        history = QUESTION + host_answers(first, {"get_weather": "18°C and sunny"})
        second = structured(
            await client.call_tool(
                "route_completion",
                {"model": model, "messages": history, "tools": [WEATHER_TOOL]},
                progress_callback=second_progress,
            )
        )
    assert all(r.streamed for r in fake.requests) and len(fake.requests) == 3
    assert all(r.query == ("alt=sse" if provider == "gemini" else "") for r in fake.requests)
    assert first_progress.text == "Noting where you live. "
    assert first["status"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in first["tool_calls"]] == [
        ("get_weather", {"city": "Paris", "units": "metric"})
    ]
    assert first["memory_ops"] == [{"op": "record", "scope": "user", "key": "city", "outcome": "recorded"}]
    assert first["usage"] == {"input_tokens": 22, "output_tokens": 14}
    assert second_progress.text == second["text"] == "It is sunny and 18 degrees in Paris today."
    assert second_progress.values == sorted(set(second_progress.values))  # progress only grows
    assert answered(fake.requests[2]) == [("get_weather", "18°C and sunny")]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_cancelling_the_call_aborts_the_upstream_request(
    settings: Settings, fake: FakeLLM, provider: str, mode: str
) -> None:
    fake.script(Turn(text="Once upon a time", hang=True), Turn(text="Still here."))
    model = f"{provider}/model-a"
    async with Client(build_server(settings), mode=mode) as client:
        await cancel_once_hung(client, fake, {"model": model, "messages": QUESTION}, Progress())
        after = structured(await route(client, model, QUESTION))
    assert fake.disconnects == 1
    assert fake.requests[0].streamed == (mode == "legacy")
    assert after["text"] == "Still here."


async def test_a_provider_error_while_streaming_is_a_tool_error_naming_category_and_provider(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    fake.script(Turn(error=(429, "Rate limit reached for requests.")))
    async with Client(build_server(settings), mode="legacy") as client:
        result = await client.call_tool(
            "route_completion",
            {"model": f"{provider}/model-a", "messages": QUESTION},
            progress_callback=Progress(),
        )
    assert result.is_error
    assert fake.requests[0].streamed
    text = text_of(result)
    for part in (
        "rate_limit",
        f"{provider}/model-a",
        "HTTP 429",
        "retryable",
        "Rate limit reached for requests.",
    ):
        assert part in text


async def test_a_stream_that_stalls_before_any_text_falls_back_to_the_next_model(
    settings: Settings, fake: FakeLLM, provider: str
) -> None:
    # The first model sends its opening event, then only a keep-alive once its deadline has passed on
    # the fake clock: the deadline ends it with no text shown, so the next model answers.
    clock = FakeClock()
    other = "anthropic" if provider == "openai" else "openai"
    fake.script(Turn(hang=True), Turn(text="From model b."))
    request = RouteRequest(
        model=f"{provider}/model-a",
        fallbacks=[f"{other}/model-b"],
        messages=[Message.model_validate(m) for m in QUESTION],
    )
    shown: list[str] = []
    answers: list[RouteResult] = []

    async def show(text: str) -> None:
        shown.append(text)

    async with open_store(settings) as store, httpx.AsyncClient() as http:
        router = Router(settings, http, MemoryService(store), clock=clock.clock())

        async def answer() -> None:
            answers.append(await router.route(request, Owner("alice", "s1"), show))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(answer)
                await fake.hung.wait()
                clock.time += settings.request_timeout_seconds + 1
                fake.keep_alive.set()
    [answer_] = answers
    assert (answer_.provider, answer_.model, answer_.text) == (other, "model-b", "From model b.")
    assert "".join(shown) == "From model b."
    assert fake.disconnects == 1
