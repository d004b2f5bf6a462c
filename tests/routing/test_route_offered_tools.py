"""The host-facing tools (`recall`, the longer `memory` description) stay outside `route_completion`:
its models are offered exactly the `memory` tool of the contract."""

from __future__ import annotations

from fake_llm import FakeLLM, Turn
from mcp import Client
from routing_helpers import QUESTION, route, structured

from server.config import Settings
from server.mcp.server import build_server
from server.memory.tool import MEMORY_TOOL_DESCRIPTION, MEMORY_TOOL_INPUT_SCHEMA


async def test_models_inside_route_completion_get_only_the_memory_tool_with_its_own_text(
    settings: Settings, fake: FakeLLM
) -> None:
    fake.script(Turn(text="Hello."))
    async with Client(build_server(settings)) as client:
        host_tools = {tool.name for tool in (await client.list_tools()).tools}
        structured(await route(client, "anthropic/model-a", QUESTION))
    assert {"memory", "recall", "route_completion"} <= host_tools
    assert fake.requests[0].body["tools"] == [
        {"name": "memory", "description": MEMORY_TOOL_DESCRIPTION, "input_schema": MEMORY_TOOL_INPUT_SCHEMA}
    ]
