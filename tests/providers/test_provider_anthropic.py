import json
from typing import Any

import pytest
from provider_fakes import KEY, FakeClock, Upstream, json_reply, provider, sse, stream_reply

from server.errors import ProviderError, ProviderErrorCategory
from server.providers.types import (
    CompletionRequest,
    FinalResponse,
    FinishReason,
    Message,
    TextDelta,
    ToolCallEvent,
)

MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}, "caller": {}},
        {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "stop_details": None,
    "usage": {
        "input_tokens": 423,
        "output_tokens": 202,
        "cache_creation_input_tokens": 7,
        "cache_read_input_tokens": 3,
        "service_tier": "standard",
    },
}


def request(**extra: object) -> CompletionRequest:
    return CompletionRequest.model_validate(
        {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "weather?"}], **extra}
    )


def streamed_message() -> str:
    start = {
        **MESSAGE,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 423, "output_tokens": 1},
    }
    args = json.dumps({"city": "Paris"})
    return sse(
        {"type": "message_start", "message": start},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "both."}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        *[
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
            for p in (args[:5], args[5:9], args[9:])
        ],
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {
                "input_tokens": 423,
                "output_tokens": 202,
                "cache_creation_input_tokens": 7,
                "cache_read_input_tokens": 3,
            },
        },
        '{"type":"message_stop" }',
        named=True,
    )


async def test_request_carries_key_version_system_and_a_default_max_tokens() -> None:
    upstream = Upstream(json_reply(200, MESSAGE))
    await provider("anthropic", upstream).complete(request(system="Be brief.", parameters={"stop": ["END"]}))
    sent = upstream.requests[0]
    assert str(sent.url) == "https://anthropic.test/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    body = upstream.body()
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 4096
    assert body["stop_sequences"] == ["END"]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "weather?"}]}]


async def test_history_puts_all_results_of_a_turn_in_one_user_turn() -> None:
    upstream = Upstream(json_reply(200, MESSAGE))
    history = [
        {"role": "user", "content": [{"type": "image", "data": "iVBO", "media_type": "image/png"}]},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "toolu_1", "name": "weather", "arguments": {"city": "Paris"}},
                {"id": "toolu_2", "name": "weather", "arguments": {"city": "Oslo"}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "22C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "unreachable", "is_error": True},
    ]
    tools = [{"name": "weather", "description": "Weather now", "input_schema": {"type": "object"}}]
    await provider("anthropic", upstream).complete(
        request(messages=history, tools=tools, tool_choice={"name": "weather"})
    )
    body = upstream.body()
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "unreachable", "is_error": True},
            ],
        },
    ]
    assert body["tools"] == [
        {"name": "weather", "description": "Weather now", "input_schema": {"type": "object"}}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "weather"}


@pytest.mark.parametrize(
    ("choice", "wire"),
    [("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"})],
)
async def test_tool_choice_maps_to_anthropic_types(choice: str, wire: dict[str, str]) -> None:
    upstream = Upstream(json_reply(200, MESSAGE))
    await provider("anthropic", upstream).complete(request(tool_choice=choice))
    assert upstream.body()["tool_choice"] == wire


async def test_parallel_tool_calls_and_cache_tokens_are_mapped() -> None:
    response = await provider("anthropic", Upstream(json_reply(200, MESSAGE))).complete(request())
    assert response.text == "Checking both."
    assert [(c.id, c.arguments) for c in response.tool_calls] == [
        ("toolu_1", {"city": "Paris"}),
        ("toolu_2", {"city": "Oslo"}),
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.raw_finish_reason == "tool_use"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (433, 202)
    assert response.model == "claude-sonnet-4-5-20250929"


async def test_stream_split_at_awkward_bytes_ends_with_the_complete_response() -> None:
    complete = await provider("anthropic", Upstream(json_reply(200, MESSAGE))).complete(request())
    for size in (1, 5, 13):
        upstream = Upstream(stream_reply(streamed_message(), size=size))
        events = [e async for e in provider("anthropic", upstream).stream(request())]
        assert [e.text for e in events if isinstance(e, TextDelta)] == ["Checking ", "both."]
        assert [e.tool_call.arguments for e in events if isinstance(e, ToolCallEvent)] == [
            {"city": "Paris"},
            {"city": "Oslo"},
        ]
        assert isinstance(events[-1], FinalResponse)
        assert events[-1].response == complete
        assert upstream.body()["stream"] is True


async def test_mid_stream_error_event_raises_an_overloaded_error() -> None:
    body = streamed_message().split("event: content_block_start")[0] + sse(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, named=True
    )
    with pytest.raises(ProviderError) as caught:
        [e async for e in provider("anthropic", Upstream(stream_reply(body))).stream(request())]
    assert caught.value.category is ProviderErrorCategory.OVERLOADED
    assert caught.value.message == "Overloaded"


async def test_thinking_blocks_survive_the_round_trip_through_neutral_messages() -> None:
    thinking = {"type": "thinking", "thinking": "Paris first.", "signature": "sig=="}
    answer = {**MESSAGE, "content": [thinking, *MESSAGE["content"]]}
    upstream = Upstream(json_reply(200, answer))
    anthropic = provider("anthropic", upstream)
    response = await anthropic.complete(request(provider_options={"thinking": {"type": "enabled"}}))
    echoed = Message.model_validate_json(response.message().model_dump_json())
    results = [Message(role="tool", tool_call_id=c.id, content="22C") for c in response.tool_calls]
    await anthropic.complete(request(messages=[{"role": "user", "content": "weather?"}, echoed, *results]))
    assert upstream.body()["messages"][1]["content"][0] == thinking


async def test_context_length_400_is_its_own_category_and_not_retried() -> None:
    upstream = Upstream(
        json_reply(
            400,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "prompt is too long: 210000 tokens > 200000",
                },
                "request_id": "req_1",
            },
        )
    )
    with pytest.raises(ProviderError) as caught:
        await provider("anthropic", upstream).complete(request())
    assert caught.value.category is ProviderErrorCategory.CONTEXT_LENGTH
    assert caught.value.status == 400
    assert len(upstream.requests) == 1


async def test_overloaded_529_is_retried_with_backoff() -> None:
    overloaded = json_reply(
        529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    clock = FakeClock()
    upstream = Upstream(overloaded, overloaded, json_reply(200, MESSAGE))
    response = await provider("anthropic", upstream, clock).complete(request())
    assert response.text == "Checking both."
    assert clock.sleeps == [0.5, 1.0]


async def test_spend_limit_429_is_not_retried() -> None:
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "spend limit reached",
            "details": {"error_code": "enforced_spend_limit_reached"},
        },
    }
    upstream = Upstream(json_reply(429, body, {"retry-after": "1"}))
    with pytest.raises(ProviderError) as caught:
        await provider("anthropic", upstream).complete(request())
    assert caught.value.category is ProviderErrorCategory.RATE_LIMIT
    assert not caught.value.retryable
    assert len(upstream.requests) == 1


async def test_block_and_event_types_added_later_are_skipped_not_fatal() -> None:
    searched = {
        **MESSAGE,
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"q": "x"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            *MESSAGE["content"],
        ],
    }
    response = await provider("anthropic", Upstream(json_reply(200, searched))).complete(request())
    assert response.text == "Checking both."
    assert [c.id for c in response.tool_calls] == ["toolu_1", "toolu_2"]
    later = sse(
        {"type": "future_event", "index": 0},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation": {}}},
        named=True,
    )
    stop = 'data: {"type":"message_stop" }'
    body = streamed_message().replace(stop, later + stop)
    assert "future_event" in body
    events = [e async for e in provider("anthropic", Upstream(stream_reply(body))).stream(request())]
    assert isinstance(events[-1], FinalResponse)
    assert events[-1].response == response
