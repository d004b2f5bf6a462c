import json

import pytest
from provider_fakes import KEY, FakeClock, Upstream, json_reply, provider, sse, stream_reply

from server.errors import ProviderError, ProviderErrorCategory
from server.providers.mapping import INVALID_ARGUMENTS
from server.providers.types import CompletionRequest, FinalResponse, FinishReason, TextDelta, ToolCallEvent

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1747163251,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Looking up.",
                "refusal": None,
                "annotations": [],
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "lookup_population", "arguments": '{"country":"Crumpet"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "lookup_population", "arguments": '{"country":"Muffin"}'},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 92,
        "completion_tokens": 17,
        "total_tokens": 109,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_1",
}


def request(**extra: object) -> CompletionRequest:
    return CompletionRequest.model_validate(
        {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "populations?"}], **extra}
    )


def chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": None,
        **extra,
    }


def tool_delta(index: int, **fields: object) -> dict[str, object]:
    return {"tool_calls": [{"index": index, **fields}]}


def streamed_completion() -> str:
    return sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Looking"}),
        chunk({"content": " up."}),
        chunk(
            tool_delta(
                0, id="call_a", type="function", function={"name": "lookup_population", "arguments": ""}
            )
        ),
        chunk(tool_delta(0, function={"arguments": '{"coun'})),
        chunk(tool_delta(0, function={"arguments": 'try":"Crumpet"}'})),
        chunk(tool_delta(1, id="call_b", type="function", function={"name": "lookup_population"})),
        chunk(tool_delta(1, function={"arguments": '{"country":"Muffin"}'})),
        chunk({}, "tool_calls"),
        {**chunk({}), "choices": [], "usage": COMPLETION["usage"]},
        "[DONE]",
    )


async def test_request_sends_bearer_system_tools_and_json_string_arguments() -> None:
    upstream = Upstream(json_reply(200, COMPLETION))
    history = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "see"}, {"type": "image", "url": "https://x/i.png"}],
        },
        {
            "role": "assistant",
            "tool_calls": [{"id": "call_a", "name": "lookup", "arguments": {"country": "X"}}],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "42"},
        {"role": "user", "content": [{"type": "image", "data": "iVBO", "media_type": "image/png"}]},
    ]
    tools = [{"name": "lookup", "description": "Population", "input_schema": {"type": "object"}}]
    await provider("openai", upstream).complete(
        request(system="Be brief.", messages=history, tools=tools, tool_choice={"name": "lookup"})
    )
    sent = upstream.requests[0]
    assert str(sent.url) == "https://openai.test/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = upstream.body()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"country": "X"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "42"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}],
        },
    ]
    assert body["tools"][0] == {
        "type": "function",
        "function": {"name": "lookup", "description": "Population", "parameters": {"type": "object"}},
    }
    assert body["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}


async def test_compatible_servers_get_max_tokens_and_openai_gets_max_completion_tokens() -> None:
    upstream = Upstream(json_reply(200, COMPLETION))
    await provider("openai", upstream).complete(request(parameters={"max_tokens": 50}))
    assert upstream.body()["max_tokens"] == 50
    official = Upstream(json_reply(200, COMPLETION))
    await provider("openai", official, OPENAI_BASE_URL="https://api.openai.com/v1").complete(
        request(parameters={"max_tokens": 50})
    )
    assert official.body()["max_completion_tokens"] == 50


async def test_parallel_tool_calls_are_parsed_from_json_strings() -> None:
    response = await provider("openai", Upstream(json_reply(200, COMPLETION))).complete(request())
    assert [(c.id, c.arguments) for c in response.tool_calls] == [
        ("call_a", {"country": "Crumpet"}),
        ("call_b", {"country": "Muffin"}),
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert (response.usage.input_tokens, response.usage.output_tokens) == (92, 17)


async def test_invalid_json_arguments_pass_through_flagged_and_echo_back_verbatim() -> None:
    broken = json.loads(json.dumps(COMPLETION))
    broken["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"country": "Cr'
    upstream = Upstream(json_reply(200, broken))
    openai = provider("openai", upstream)
    response = await openai.complete(request())
    call = response.tool_calls[0]
    assert call.arguments == {}
    assert call.provider_details == {INVALID_ARGUMENTS: '{"country": "Cr'}
    await openai.complete(request(messages=[{"role": "user", "content": "hi"}, response.message()]))
    assert upstream.body()["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"country": "Cr'


async def test_stream_assembles_tool_calls_by_index_and_ends_with_the_complete_response() -> None:
    complete = await provider("openai", Upstream(json_reply(200, COMPLETION))).complete(request())
    for size in (1, 9, 64):
        upstream = Upstream(stream_reply(streamed_completion(), size=size))
        events = [e async for e in provider("openai", upstream).stream(request())]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Looking up."
        assert [e.tool_call.arguments for e in events if isinstance(e, ToolCallEvent)] == [
            {"country": "Crumpet"},
            {"country": "Muffin"},
        ]
        assert isinstance(events[-1], FinalResponse)
        assert events[-1].response == complete
    assert upstream.body()["stream_options"] == {"include_usage": True}


async def test_stream_from_a_compatible_server_without_ids_or_finish_reason_still_yields_the_call() -> None:
    body = sse(
        chunk(tool_delta(0, id="0", function={"name": "get_time", "arguments": ""})),
        chunk(tool_delta(0, id="0", function={"arguments": "{}"})),
        chunk({"content": None}, None),
        "[DONE]",
    )
    events = [e async for e in provider("openai", Upstream(stream_reply(body))).stream(request())]
    final = events[-1]
    assert isinstance(final, FinalResponse)
    assert [(c.id, c.name, c.arguments) for c in final.response.tool_calls] == [("0", "get_time", {})]
    assert final.response.finish_reason is FinishReason.TOOL_CALLS
    assert final.response.raw_finish_reason is None


async def test_mid_stream_error_object_raises() -> None:
    body = sse(
        chunk({"content": "Hi"}), {"error": {"message": "The server had an error", "type": "server_error"}}
    )
    with pytest.raises(ProviderError) as caught:
        [e async for e in provider("openai", Upstream(stream_reply(body))).stream(request())]
    assert caught.value.message == "The server had an error"


async def test_context_length_exceeded_is_classified() -> None:
    body = {
        "error": {
            "message": "This model's maximum context length is 4097 tokens. However, you requested 4120 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    with pytest.raises(ProviderError) as caught:
        await provider("openai", Upstream(json_reply(400, body))).complete(request())
    assert caught.value.category is ProviderErrorCategory.CONTEXT_LENGTH


async def test_llama_cpp_context_overflow_is_classified() -> None:
    body = {
        "error": {"code": 400, "type": "exceed_context_size_error", "n_ctx": 512, "n_prompt_tokens": 2009}
    }
    with pytest.raises(ProviderError) as caught:
        await provider("openai", Upstream(json_reply(400, body))).complete(request())
    assert caught.value.category is ProviderErrorCategory.CONTEXT_LENGTH


async def test_rate_limit_429_waits_retry_after_ms_then_succeeds() -> None:
    limited = json_reply(
        429,
        {"error": {"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"}},
        {"retry-after-ms": "2500"},
    )
    clock = FakeClock()
    upstream = Upstream(limited, json_reply(200, COMPLETION))
    await provider("openai", upstream, clock).complete(request())
    assert clock.sleeps == [2.5]
    assert len(upstream.requests) == 2


async def test_insufficient_quota_429_is_not_retried() -> None:
    body = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}}
    upstream = Upstream(json_reply(429, body))
    with pytest.raises(ProviderError) as caught:
        await provider("openai", upstream).complete(request())
    assert not caught.value.retryable
    assert len(upstream.requests) == 1


async def test_model_not_found_400_is_not_found() -> None:
    body = {
        "error": {"message": "The model `nope` does not exist", "param": "model", "code": "model_not_found"}
    }
    with pytest.raises(ProviderError) as caught:
        await provider("openai", Upstream(json_reply(400, body))).complete(request())
    assert caught.value.category is ProviderErrorCategory.NOT_FOUND


async def test_images_in_tool_results_are_refused_before_sending() -> None:
    upstream = Upstream(json_reply(200, COMPLETION))
    history = [
        {"role": "assistant", "tool_calls": [{"id": "c", "name": "shot", "arguments": {}}]},
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "image", "url": "https://x/i.png"}]},
    ]
    with pytest.raises(ProviderError) as caught:
        await provider("openai", upstream).complete(request(messages=history))
    assert caught.value.category is ProviderErrorCategory.INVALID_REQUEST
    assert upstream.requests == []
