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

USAGE = {
    "promptTokenCount": 193,
    "candidatesTokenCount": 37,
    "thoughtsTokenCount": 108,
    "totalTokenCount": 338,
}
CALLS: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Adding and subtracting."},
                    {
                        "functionCall": {"name": "add", "args": {"x": 3, "y": 4}},
                        "thoughtSignature": "c2lnLTE=",
                    },
                    {"functionCall": {"name": "subtract", "args": {"x": 10, "y": 2}}},
                ],
            },
            "finishReason": "STOP",
            "finishMessage": "Model generated function call(s).",
            "index": 0,
        }
    ],
    "usageMetadata": USAGE,
    "modelVersion": "gemini-2.5-flash",
    "responseId": "r1",
}


def request(**extra: object) -> CompletionRequest:
    return CompletionRequest.model_validate(
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "sums?"}], **extra}
    )


def streamed_calls() -> str:
    def piece(
        parts: list[dict[str, object]], usage: dict[str, int], finish: str | None = None
    ) -> dict[str, object]:
        candidate: dict[str, object] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash"}

    early = {"promptTokenCount": 193, "totalTokenCount": 193}
    parts = CALLS["candidates"][0]["content"]["parts"]
    return sse(
        piece([{"text": "Adding and "}], early),
        piece([{"text": "subtracting."}], early),
        piece([parts[1]], early),
        piece([parts[2], {"text": ""}], USAGE, "STOP"),
        newline="\r\n",
    )


async def test_key_goes_in_a_header_never_the_url() -> None:
    upstream = Upstream(json_reply(200, CALLS))
    await provider("gemini", upstream).complete(request(system="Be brief."))
    sent = upstream.requests[0]
    assert str(sent.url) == "https://gemini.test/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert KEY not in str(sent.url)
    body = upstream.body()
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "sums?"}]}]


async def test_tool_schemas_are_reduced_to_what_gemini_accepts() -> None:
    upstream = Upstream(json_reply(200, CALLS))
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "city": {"type": ["string", "null"], "description": "City"},
            "units": {"const": "metric"},
            "days": {"type": "array", "items": {"type": "integer", "additionalProperties": False}},
        },
        "required": ["city"],
    }
    tools = [
        {"name": "weather", "description": "Weather", "input_schema": schema},
        {"name": "now", "description": "Time", "input_schema": {"type": "object", "properties": {}}},
    ]
    await provider("gemini", upstream).complete(request(tools=tools, tool_choice="required"))
    body = upstream.body()
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": "Weather",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "nullable": True, "description": "City"},
                            "units": {"enum": ["metric"]},
                            "days": {"type": "array", "items": {"type": "integer"}},
                        },
                        "required": ["city"],
                    },
                },
                {"name": "now", "description": "Time"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


async def test_calls_without_ids_get_stable_ids_and_signatures_round_trip() -> None:
    upstream = Upstream(json_reply(200, CALLS))
    gemini = provider("gemini", upstream)
    first = await gemini.complete(request())
    again = await gemini.complete(request())
    assert [c.id for c in first.tool_calls] == [c.id for c in again.tool_calls]
    assert first.finish_reason is FinishReason.TOOL_CALLS
    assert first.usage.output_tokens == 37 + 108
    echoed = Message.model_validate_json(first.message().model_dump_json())
    results = [
        Message(role="tool", tool_call_id=first.tool_calls[0].id, content="7"),
        Message(role="tool", tool_call_id=first.tool_calls[1].id, content="8"),
    ]
    await gemini.complete(request(messages=[{"role": "user", "content": "sums?"}, echoed, *results]))
    contents = upstream.body()["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"text": "Adding and subtracting."},
            {"functionCall": {"name": "add", "args": {"x": 3, "y": 4}}, "thoughtSignature": "c2lnLTE="},
            {"functionCall": {"name": "subtract", "args": {"x": 10, "y": 2}}},
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "add", "response": {"result": "7"}}},
            {"functionResponse": {"name": "subtract", "response": {"result": "8"}}},
        ],
    }


async def test_calls_with_gemini_ids_are_answered_by_id() -> None:
    with_id = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"id": "fc1", "name": "now", "args": {}}}],
                }
            }
        ]
    }
    upstream = Upstream(json_reply(200, with_id))
    gemini = provider("gemini", upstream)
    response = await gemini.complete(request())
    result = Message(role="tool", tool_call_id="fc1", content="noon", is_error=True)
    await gemini.complete(request(messages=[response.message(), result]))
    contents = upstream.body()["contents"]
    assert contents[0]["parts"] == [{"functionCall": {"name": "now", "args": {}, "id": "fc1"}}]
    assert contents[1]["parts"] == [
        {"functionResponse": {"name": "now", "response": {"error": "noon"}, "id": "fc1"}}
    ]


async def test_crlf_stream_split_awkwardly_ends_with_the_complete_response() -> None:
    complete = await provider("gemini", Upstream(json_reply(200, CALLS))).complete(request())
    for size in (1, 2, 17):
        upstream = Upstream(stream_reply(streamed_calls(), size=size))
        events = [e async for e in provider("gemini", upstream).stream(request())]
        assert [e.text for e in events if isinstance(e, TextDelta)] == ["Adding and ", "subtracting."]
        assert [e.tool_call.name for e in events if isinstance(e, ToolCallEvent)] == ["add", "subtract"]
        assert isinstance(events[-1], FinalResponse)
        assert events[-1].response == complete
        assert str(upstream.requests[0].url).endswith(":streamGenerateContent?alt=sse")


async def test_blocked_prompt_maps_to_content_filter() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9},
    }
    response = await provider("gemini", Upstream(json_reply(200, blocked))).complete(request())
    assert response.finish_reason is FinishReason.CONTENT_FILTER
    assert response.raw_finish_reason == "PROHIBITED_CONTENT"
    assert response.text == ""


async def test_safety_finish_maps_to_content_filter() -> None:
    safety = {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "SAFETY"}]}
    response = await provider("gemini", Upstream(json_reply(200, safety))).complete(request())
    assert response.finish_reason is FinishReason.CONTENT_FILTER


async def test_image_urls_are_refused_before_sending() -> None:
    upstream = Upstream(json_reply(200, CALLS))
    messages = [{"role": "user", "content": [{"type": "image", "url": "https://x/i.png"}]}]
    with pytest.raises(ProviderError) as caught:
        await provider("gemini", upstream).complete(request(messages=messages))
    assert caught.value.category is ProviderErrorCategory.INVALID_REQUEST
    assert upstream.requests == []


async def test_base64_images_become_inline_data() -> None:
    upstream = Upstream(json_reply(200, CALLS))
    messages = [{"role": "user", "content": [{"type": "image", "data": "iVBO", "media_type": "image/png"}]}]
    await provider("gemini", upstream).complete(request(messages=messages))
    assert upstream.body()["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}
    ]


async def test_resource_exhausted_honours_retry_info() -> None:
    exhausted = json_reply(
        429,
        {
            "error": {
                "code": 429,
                "message": "You exceeded your current quota",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}],
                    },
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "33s"},
                ],
            }
        },
    )
    clock = FakeClock()
    upstream = Upstream(exhausted, json_reply(200, CALLS))
    await provider("gemini", upstream, clock).complete(request())
    assert clock.sleeps == [33.0]


async def test_invalid_key_400_is_an_authentication_error() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    with pytest.raises(ProviderError) as caught:
        await provider("gemini", Upstream(json_reply(400, body))).complete(request())
    assert caught.value.category is ProviderErrorCategory.AUTHENTICATION
    assert not caught.value.retryable


async def test_not_found_on_a_stream_request_carries_the_message() -> None:
    body = {
        "error": {
            "code": 404,
            "message": "models/x is not found for API version v1beta",
            "status": "NOT_FOUND",
        }
    }
    reply = json_reply(404, body, {"content-type": "text/event-stream"})
    with pytest.raises(ProviderError) as caught:
        [e async for e in provider("gemini", Upstream(reply)).stream(request())]
    assert caught.value.category is ProviderErrorCategory.NOT_FOUND
    assert "is not found" in caught.value.message


async def test_part_kinds_we_do_not_read_are_skipped_and_thoughts_are_not_the_answer() -> None:
    parts = [
        {"text": "Planning the sums.", "thought": True},
        {"executableCode": {"language": "PYTHON", "code": "print(3 + 4)"}},
        *CALLS["candidates"][0]["content"]["parts"],
    ]
    body = {**CALLS, "candidates": [{**CALLS["candidates"][0], "content": {"role": "model", "parts": parts}}]}
    response = await provider("gemini", Upstream(json_reply(200, body))).complete(request())
    plain = await provider("gemini", Upstream(json_reply(200, CALLS))).complete(request())
    assert response == plain
    assert response.text == "Adding and subtracting."
    assert [c.name for c in response.tool_calls] == ["add", "subtract"]
