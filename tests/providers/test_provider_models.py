"""Each provider's model list: the request each list endpoint wants, the body it answers with, the
cache, and the default model shown when a list cannot be read."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from provider_fakes import KEY, FakeClock, Upstream, json_reply, provider, settings

from server.errors import ProviderError, ProviderErrorCategory
from server.providers import ProviderDirectory
from server.providers.directory import MODEL_LIST_FAILURE_TTL, MODEL_LIST_TTL

# Shapes as the providers send them (trimmed to a few models; unknown fields kept).
ANTHROPIC = {
    "data": [
        {
            "type": "model",
            "id": "claude-sonnet-4-5-20250929",
            "display_name": "Claude Sonnet 4.5",
            "created_at": "2025-09-29T00:00:00Z",
        },
        {
            "type": "model",
            "id": "claude-opus-4-1-20250805",
            "display_name": "Claude Opus 4.1",
            "created_at": "2025-08-05T00:00:00Z",
        },
    ],
    "has_more": False,
    "first_id": "claude-sonnet-4-5-20250929",
    "last_id": "claude-opus-4-1-20250805",
}
OPENAI = {
    "object": "list",
    "data": [
        {"id": "gpt-4.1-mini", "object": "model", "created": 1744316542, "owned_by": "system"},
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
    ],
}
GEMINI = {
    "models": [
        {
            "name": "models/gemini-2.5-flash",
            "version": "001",
            "displayName": "Gemini 2.5 Flash",
            "inputTokenLimit": 1048576,
            "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent"],
        },
        {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
    ],
    "nextPageToken": "Ch9tb2RlbHMvZ2VtaW5p",
}
OLLAMA = {
    "models": [
        {
            "name": "llama3.2:latest",
            "model": "llama3.2:latest",
            "modified_at": "2025-05-13T20:47:31.452Z",
            "size": 2019393189,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B"},
        },
        {"name": "qwen3:4b"},  # an older server: `name` only
    ]
}


@pytest.mark.parametrize(
    ("name", "body", "url", "key_header", "models"),
    [
        (
            "anthropic",
            ANTHROPIC,
            "https://anthropic.test/v1/models?limit=1000",
            ("x-api-key", KEY),
            ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805"],
        ),
        (
            "openai",
            OPENAI,
            "https://openai.test/v1/models",
            ("authorization", f"Bearer {KEY}"),
            ["gpt-4.1-mini", "gpt-4o"],
        ),
        (
            "gemini",
            GEMINI,
            "https://gemini.test/v1beta/models?pageSize=1000",
            ("x-goog-api-key", KEY),
            ["gemini-2.5-flash"],  # the embedding model cannot generateContent
        ),
        ("ollama", OLLAMA, "http://ollama.test:11434/api/tags", None, ["llama3.2:latest", "qwen3:4b"]),
    ],
)
async def test_each_provider_lists_its_models_from_its_list_endpoint(
    name: str, body: dict[str, Any], url: str, key_header: tuple[str, str] | None, models: list[str]
) -> None:
    upstream = Upstream(json_reply(200, body))
    assert await provider(name, upstream).list_models() == models
    sent = upstream.requests[0]
    assert (sent.method, str(sent.url)) == ("GET", url)
    if key_header is not None:
        assert sent.headers[key_header[0]] == key_header[1]
    assert KEY not in str(sent.url)


async def test_a_listing_of_another_shape_is_an_invalid_response() -> None:
    upstream = Upstream(json_reply(200, {"object": "list"}))
    with pytest.raises(ProviderError) as caught:
        await provider("openai", upstream).list_models()
    assert caught.value.category is ProviderErrorCategory.INVALID_RESPONSE


def directory(upstream: Upstream | Any, clock: FakeClock) -> ProviderDirectory:
    client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    return ProviderDirectory(settings(max_retries=0), client, clock=clock.clock())


async def test_a_model_list_is_kept_for_minutes_and_a_failed_one_is_asked_again_sooner() -> None:
    clock = FakeClock()
    upstream = Upstream(
        json_reply(200, OPENAI), json_reply(500, {"error": {"message": "down"}}), json_reply(200, OPENAI)
    )
    providers = directory(upstream, clock)
    assert (await providers.models("openai")).models == ["gpt-4.1-mini", "gpt-4o"]
    clock.time += MODEL_LIST_TTL - 1
    assert (await providers.models("openai")).problem is None
    assert len(upstream.requests) == 1
    clock.time += 2
    failed = await providers.models("openai")
    assert failed.models == ["gpt-4.1-mini"]  # the default model
    assert failed.problem is not None and "down" in failed.problem
    clock.time += MODEL_LIST_FAILURE_TTL + 1
    assert (await providers.models("openai")).problem is None
    assert len(upstream.requests) == 3
    assert (await providers.models("openai", fresh=True)).problem is None
    assert len(upstream.requests) == 4


async def test_a_list_endpoint_that_does_not_answer_in_time_shows_the_default_model() -> None:
    async def hangs(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    providers = directory(hangs, FakeClock())
    with anyio.fail_after(5):
        listing = await providers.models("anthropic", wait=0.01)
    assert listing.models == ["claude-sonnet-4-5"]
    assert listing.problem == "no answer within 0.01s"


@pytest.mark.parametrize(
    ("overrides", "name", "advice"),
    [
        (
            {"OPENAI_BASE_URL": "http://127.0.0.1:8000"},
            "openai",
            "check OPENAI_BASE_URL: OpenAI-compatible servers usually serve their API under /v1 "
            "(try http://127.0.0.1:8000/v1)",
        ),
        (
            {"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"},
            "openai",
            "nothing is served at http://127.0.0.1:8000/v1/models; is it an OpenAI-compatible server?",
        ),
        (
            {"ANTHROPIC_BASE_URL": "https://gateway.test/v1"},
            "anthropic",
            "check ANTHROPIC_BASE_URL: it is usually the server's address alone, without a path "
            "(try https://gateway.test); /v1/models is added",
        ),
        ({"GEMINI_BASE_URL": "https://gemini.test/v1beta"}, "gemini", "(try https://gemini.test)"),
        ({"OLLAMA_HOST": "http://gpu:11434/api"}, "ollama", "(try http://gpu:11434); /api/tags is added"),
    ],
)
async def test_a_list_endpoint_that_answers_404_suggests_the_usual_base_url(
    overrides: dict[str, str], name: str, advice: str
) -> None:
    upstream = Upstream(json_reply(404, {"error": "404 page not found"}))
    client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    providers = ProviderDirectory(settings(max_retries=0, **overrides), client, clock=FakeClock().clock())
    listing = await providers.models(name)
    assert listing.problem is not None and advice in listing.problem
