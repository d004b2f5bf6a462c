"""`route_completion` over stdio, with `memory-router serve` (`python -m server serve`) as a subprocess
reaching the fake providers over loopback through the standard variables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fake_llm import FORMATS, PROVIDERS, Call, FakeLLM, Turn
from mcp import Client, StdioServerParameters
from mcp_helpers import read_json
from routing_helpers import (
    QUESTION,
    WEATHER_TOOL,
    Progress,
    answered,
    cancel_once_hung,
    host_answers,
    provider_env,
    route,
    structured,
)


@pytest.fixture
def serve(fake: FakeLLM, tmp_path: Path) -> StdioServerParameters:
    env = {
        **provider_env(fake.url),
        "MEMORY_ROUTER_STORE": f"surrealkv://{tmp_path / 'store'}",
        "MEMORY_ROUTER_USER": "alice",
        "MEMORY_ROUTER_MAX_RETRIES": "0",
    }
    return StdioServerParameters(command=sys.executable, args=["-m", "server", "serve"], env=env)


async def test_over_stdio_every_provider_records_a_memory_and_completes_a_host_tool_round_trip(
    serve: StdioServerParameters, fake: FakeLLM
) -> None:
    async with Client(serve) as client:
        for provider in PROVIDERS:
            model = f"{provider}/model-a"
            record = Call(
                "memory", {"op": "record", "scope": "user", "key": provider, "value": f"uses {provider}"}
            )
            fake.script(
                Turn.calling(record),
                Turn(text="Noted."),
                Turn.calling(Call("get_weather", {"city": "Paris"})),
                Turn(text="18°C in Paris."),
            )
            start = len(fake.requests)
            noted = structured(
                await route(client, model, [{"role": "user", "content": f"I use {provider}."}])
            )
            asked = structured(await route(client, model, QUESTION, tools=[WEATHER_TOOL]))
            history = QUESTION + host_answers(asked, {"get_weather": "18°C and sunny"})
            final = structured(await route(client, model, history, tools=[WEATHER_TOOL]))
            stored = {m["key"]: m["content"] for m in await read_json(client, "memory://user")}

            assert noted["text"] == "Noted." and noted["memory_ops"][0]["outcome"] == "recorded"
            assert stored[provider] == f"uses {provider}"
            system = FORMATS[provider].system(fake.requests[start + 2].body)
            assert system is not None and f"uses {provider}" in system
            assert asked["status"] == "tool_calls" and final["text"] == "18°C in Paris."
            assert answered(fake.requests[start + 3]) == [("get_weather", "18°C and sunny")]


async def test_over_stdio_text_streams_as_progress_and_cancelling_reaches_the_provider(
    serve: StdioServerParameters, fake: FakeLLM
) -> None:
    fake.script(
        Turn(text="A long and streamed answer."), Turn(text="Once upon", hang=True), Turn(text="Still here.")
    )
    progress = Progress()
    async with Client(serve) as client:
        arguments = {"model": "anthropic/model-a", "messages": QUESTION}
        result = structured(await client.call_tool("route_completion", arguments, progress_callback=progress))
        assert progress.text == result["text"] == "A long and streamed answer."
        assert fake.requests[0].streamed

        await cancel_once_hung(client, fake, arguments, progress)
        after = structured(await route(client, "anthropic/model-a", QUESTION))
    assert after["text"] == "Still here."
