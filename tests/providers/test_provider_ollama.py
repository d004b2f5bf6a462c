import json
from typing import Any

import httpx
import pytest
from provider_fakes import Upstream, json_reply, provider, stream_reply

from server.errors import ProviderError, ProviderErrorCategory
from server.providers.types import CompletionRequest, FinalResponse, FinishReason, TextDelta, ToolCallEvent

DONE = {
    "done": True,
    "done_reason": "stop",
    "total_duration": 1,
    "load_duration": 1,
    "prompt_eval_count": 42,
    "prompt_eval_duration": 1,
    "eval_count": 177,
    "eval_duration": 1,
}
CALLS: dict[str, Any] = {
    "model": "qwen3:4b",
    "created_at": "2025-01-01T00:00:00Z",
    "message": {
        "role": "assistant",
        "content": "",
        "thinking": "Repeat it.",
        "tool_calls": [
            {"function": {"index": 0, "name": "repeat_text", "arguments": {"text": "banana", "times": 3}}},
            {"id": "call_x", "function": {"index": 1, "name": "count", "arguments": {}}},
        ],
    },
    **DONE,
}


def request(**extra: object) -> CompletionRequest:
    return CompletionRequest.model_validate(
        {"model": "qwen3:4b", "messages": [{"role": "user", "content": "repeat banana"}], **extra}
    )


def line(content: str = "", tool_calls: list[object] | None = None, **extra: object) -> str:
    message: dict[str, object] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return (
        json.dumps({"model": "qwen3:4b", "created_at": "t", "message": message, "done": False, **extra})
        + "\n"
    )


def streamed_calls() -> str:
    calls = CALLS["message"]["tool_calls"]
    final = json.dumps(
        {"model": "qwen3:4b", "created_at": "t", "message": {"role": "assistant", "content": ""}, **DONE}
    )
    return line(tool_calls=[calls[0]]) + line(tool_calls=[calls[1]]) + final + "\n"


async def test_request_has_system_images_options_tool_names_and_no_streaming_for_complete() -> None:
    upstream = Upstream(json_reply(200, CALLS))
    history = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what"},
                {"type": "image", "data": "iVBO", "media_type": "image/png"},
            ],
        },
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "name": "get_temperature", "arguments": {"city": "Oslo"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "22°C"},
    ]
    tools = [{"name": "get_temperature", "description": "Temp", "input_schema": {"type": "object"}}]
    await provider("ollama", upstream).complete(
        request(
            system="Be brief.", messages=history, tools=tools, parameters={"temperature": 0, "max_tokens": 9}
        )
    )
    assert str(upstream.requests[0].url) == "http://ollama.test:11434/api/chat"
    assert "authorization" not in upstream.requests[0].headers
    body = upstream.body()
    assert body["stream"] is False
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "what", "images": ["iVBO"]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_temperature", "arguments": {"city": "Oslo"}}}],
        },
        {"role": "tool", "tool_name": "get_temperature", "content": "22°C"},
    ]
    assert body["options"] == {"temperature": 0, "num_predict": 9}
    assert body["tools"][0]["function"]["name"] == "get_temperature"


async def test_tool_calls_finish_as_tool_calls_though_done_reason_says_stop() -> None:
    response = await provider("ollama", Upstream(json_reply(200, CALLS))).complete(request())
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.raw_finish_reason == "stop"
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("repeat_text", {"text": "banana", "times": 3}),
        ("count", {}),
    ]
    assert response.tool_calls[1].id == "call_x"
    assert response.tool_calls[0].id.startswith("ollama_")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (42, 177)


async def test_ndjson_stream_split_awkwardly_ends_with_the_complete_response() -> None:
    complete = await provider("ollama", Upstream(json_reply(200, CALLS))).complete(request())
    for size in (1, 11):
        upstream = Upstream(stream_reply(streamed_calls(), size=size, content_type="application/x-ndjson"))
        events = [e async for e in provider("ollama", upstream).stream(request())]
        assert [e.tool_call.name for e in events if isinstance(e, ToolCallEvent)] == ["repeat_text", "count"]
        assert isinstance(events[-1], FinalResponse)
        assert events[-1].response == complete
        assert upstream.body()["stream"] is True


async def test_streamed_text_arrives_as_deltas() -> None:
    final = json.dumps({"model": "qwen3:4b", "message": {"role": "assistant", "content": ""}, **DONE})
    body = line("Hel") + line("lo ✓") + final  # no trailing newline on the last line
    events = [
        e async for e in provider("ollama", Upstream(stream_reply(body.encode(), size=3))).stream(request())
    ]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo ✓"]
    assert isinstance(events[-1], FinalResponse)
    assert events[-1].response.text == "Hello ✓"


async def test_error_line_mid_stream_raises() -> None:
    body = line("Hel") + json.dumps({"error": "an error was encountered while running the model"}) + "\n"
    with pytest.raises(ProviderError) as caught:
        [e async for e in provider("ollama", Upstream(stream_reply(body))).stream(request())]
    assert caught.value.message == "an error was encountered while running the model"


async def test_missing_model_is_not_found() -> None:
    reply = json_reply(404, {"error": "model 'llama3' not found, try pulling it first"})
    with pytest.raises(ProviderError) as caught:
        await provider("ollama", Upstream(reply)).complete(request())
    assert caught.value.category is ProviderErrorCategory.NOT_FOUND
    assert "try pulling it" in caught.value.message


async def test_tool_choice_none_withholds_tools() -> None:
    upstream = Upstream(json_reply(200, CALLS))
    tools = [{"name": "t", "input_schema": {"type": "object"}}]
    await provider("ollama", upstream).complete(request(tools=tools, tool_choice="none"))
    assert "tools" not in upstream.body()


async def test_image_urls_are_refused_before_sending() -> None:
    upstream = Upstream(json_reply(200, CALLS))
    with pytest.raises(ProviderError):
        await provider("ollama", upstream).complete(
            request(messages=[{"role": "user", "content": [{"type": "image", "url": "https://x/i.png"}]}])
        )
    assert upstream.requests == []


async def test_connection_refused_is_unavailable_and_retried() -> None:
    upstream = Upstream(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(ProviderError) as caught:
        await provider("ollama", upstream).complete(request())
    assert caught.value.category is ProviderErrorCategory.UNAVAILABLE
    assert len(upstream.requests) == 3
