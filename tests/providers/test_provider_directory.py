"""Which providers are configured: keys, OLLAMA_HOST, and the one quick probe of Ollama's default address."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from provider_fakes import KEY, FakeClock, Upstream, json_reply, provider

from server.config import Settings
from server.errors import ProviderError, ProviderErrorCategory
from server.providers import ProviderDirectory
from server.providers.types import CompletionRequest

TAGS = {"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest"}]}


def refused(request: httpx.Request) -> httpx.Response:
    """What httpx raises when nothing listens at the address: a ConnectError caused by a refusal."""
    try:
        raise ConnectionRefusedError(111, "Connect call failed")
    except ConnectionRefusedError as e:
        raise httpx.ConnectError("All connection attempts failed", request=request) from e


def directory(upstream: Upstream, **values: Any) -> ProviderDirectory:
    """No key and no OLLAMA_HOST unless given: Ollama's default address is what is asked."""
    keys = {"ANTHROPIC_API_KEY": None, "OPENAI_API_KEY": None, "GEMINI_API_KEY": None}
    settings = Settings(**{**keys, **values})
    client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    return ProviderDirectory(settings, client, clock=FakeClock().clock())


async def test_ollama_at_its_default_address_is_configured_when_it_answers_and_asked_only_once() -> None:
    upstream = Upstream(json_reply(200, TAGS))
    providers = directory(upstream, OPENAI_API_KEY=KEY)
    assert await providers.configured() == ["openai", "ollama"]
    assert await providers.configured() == ["openai", "ollama"]
    assert [str(r.url) for r in upstream.requests] == ["http://127.0.0.1:11434/api/tags"]


async def test_ollama_is_not_configured_when_its_default_address_refuses_and_that_is_not_retried() -> None:
    upstream = Upstream(refused)
    providers = directory(upstream, GEMINI_API_KEY=KEY)
    assert await providers.configured() == ["gemini"]
    assert not await providers.is_configured("ollama")
    assert len(upstream.requests) == 1  # one probe for the whole process, no retry


async def test_a_set_ollama_host_configures_ollama_without_a_probe() -> None:
    upstream = Upstream(refused)
    providers = directory(upstream, OLLAMA_HOST="http://gpu-box:11434")
    assert await providers.configured() == ["ollama"]
    assert upstream.requests == []


async def test_with_no_key_and_no_ollama_nothing_is_configured() -> None:
    assert await directory(Upstream(refused)).configured() == []


async def test_a_refused_connection_fails_at_once_while_other_connection_failures_are_retried() -> None:
    request = CompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    clock = FakeClock()
    upstream = Upstream(refused)
    with pytest.raises(ProviderError) as caught:
        await provider("ollama", upstream, clock).complete(request)
    assert len(upstream.requests) == 1 and clock.sleeps == []
    assert caught.value.category is ProviderErrorCategory.UNAVAILABLE
    assert caught.value.retryable  # a fallback model may still answer
    assert "connection refused at http://ollama.test:11434" in str(caught.value)

    reset = Upstream(httpx.ConnectError("Connection reset by peer"))
    with pytest.raises(ProviderError):
        await provider("ollama", reset, clock).complete(request)
    assert len(reset.requests) == 3
