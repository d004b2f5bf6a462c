"""What the routing tests share: calling `route_completion` as a host does, and reading its result."""

from __future__ import annotations

from typing import Any

import anyio
from fake_llm import KEY, FakeLLM, Recorded, signature
from mcp import Client, types
from mcp_helpers import text_of

QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def structured(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


async def route(
    client: Client, model: str, messages: list[dict[str, Any]], **extra: Any
) -> types.CallToolResult:
    return await client.call_tool("route_completion", {"model": model, "messages": messages, **extra})


class Progress:
    """A progress callback that keeps what it was told."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.messages: list[str] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.values.append(progress)
        self.messages.append(message or "")

    @property
    def text(self) -> str:
        return "".join(self.messages)


async def cancel_once_hung(
    client: Client, fake: FakeLLM, arguments: dict[str, Any], progress: Progress
) -> None:
    """Call route_completion, cancel the call once the fake hangs on it, and wait until the fake sees
    the client go away."""
    async with anyio.create_task_group() as tg:

        async def call() -> None:
            await client.call_tool("route_completion", arguments, progress_callback=progress)

        tg.start_soon(call)
        with anyio.fail_after(10):
            await fake.hung.wait()
        tg.cancel_scope.cancel()
    with anyio.fail_after(5):
        await fake.disconnected.wait()


def host_answers(result: dict[str, Any], answers: dict[str, str]) -> list[dict[str, Any]]:
    """What a host appends: the produced messages, then one `tool` message per host call it ran."""
    replies = [
        {"role": "tool", "tool_call_id": call["id"], "content": answers[call["name"]]}
        for call in result["tool_calls"]
    ]
    return [*result["messages"], *replies]


def answered(request: Recorded) -> list[tuple[str, str]]:
    """(tool name, result text) of the tool results that end `request`, in order, after checking that
    they sit where the provider expects them, right after the assistant turn that made the calls."""
    body = request.body
    match request.provider:
        case "anthropic":
            *_, assistant, results = body["messages"]
            assert assistant["role"] == "assistant" and results["role"] == "user"
            calls = [b for b in assistant["content"] if b["type"] == "tool_use"]
            # One user turn holds every tool_result, in the order of the calls.
            assert all(b["type"] == "tool_result" for b in results["content"])
            assert [b["tool_use_id"] for b in results["content"]] == [c["id"] for c in calls]
            return [(c["name"], b["content"]) for c, b in zip(calls, results["content"], strict=True)]
        case "openai":
            messages = body["messages"]
            assistant = next(m for m in reversed(messages) if m["role"] == "assistant")
            results = messages[messages.index(assistant) + 1 :]
            assert all(m["role"] == "tool" for m in results)
            calls = assistant["tool_calls"]
            assert [m["tool_call_id"] for m in results] == [c["id"] for c in calls]
            return [(c["function"]["name"], m["content"]) for c, m in zip(calls, results, strict=True)]
        case "gemini":
            *_, model_turn, results = body["contents"]
            assert model_turn["role"] == "model" and results["role"] == "user"
            calls = [p for p in model_turn["parts"] if "functionCall" in p]
            for part in calls:  # the signature comes back on the very part that carried it, ids stay absent
                assert part["thoughtSignature"] == signature(part["functionCall"]["name"])
                assert "id" not in part["functionCall"]
            responses = [p["functionResponse"] for p in results["parts"]]
            assert len(responses) == len(results["parts"])
            assert [r["name"] for r in responses] == [c["functionCall"]["name"] for c in calls]
            assert all("id" not in r for r in responses)
            return [(r["name"], r["response"]["result"]) for r in responses]
        case "ollama":
            messages = body["messages"]
            assistant = next(m for m in reversed(messages) if m["role"] == "assistant")
            results = messages[messages.index(assistant) + 1 :]
            assert all(m["role"] == "tool" for m in results)
            names = [c["function"]["name"] for c in assistant["tool_calls"]]
            assert [m["tool_name"] for m in results] == names
            return [(m["tool_name"], m["content"]) for m in results]
        case other:
            raise AssertionError(f"no such provider: {other}")


def provider_env(url: str) -> dict[str, str]:
    """The standard variables that point every provider at the fake, with dummy keys."""
    return {
        "ANTHROPIC_API_KEY": KEY,
        "OPENAI_API_KEY": KEY,
        "GEMINI_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": url,
        "OPENAI_BASE_URL": f"{url}/v1",
        "GEMINI_BASE_URL": url,
        "OLLAMA_HOST": url,
    }
