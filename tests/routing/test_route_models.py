"""The `router://models` resource: what can be routed to, each provider's models, and whether it works now."""

from __future__ import annotations

import socket

from fake_llm import FakeLLM
from mcp import Client
from mcp_helpers import read_json

from server.config import Alias, Settings
from server.mcp.server import build_server


def closed_port_url() -> str:
    """A loopback address where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_models_lists_each_configured_providers_models_its_default_and_the_aliases(
    settings: Settings, fake: FakeLLM
) -> None:
    configured = settings.model_copy(
        update={
            "gemini_api_key": None,
            "aliases": {"smart": Alias(model="anthropic/model-a", fallbacks=["openai/model-b"])},
        }
    )
    async with Client(build_server(configured)) as client:
        catalog = await read_json(client, "router://models")
        again = await read_json(client, "router://models")
    assert again == catalog
    providers = {p["provider"]: p for p in catalog["providers"]}
    assert list(providers) == ["anthropic", "openai", "gemini", "ollama"]
    assert providers["anthropic"]["usable"] and providers["anthropic"]["default_model"] == (
        "anthropic/claude-sonnet-4-5"
    )
    assert providers["anthropic"]["models"] == ["anthropic/model-a", "anthropic/model-b"]
    assert providers["openai"]["models"] == ["openai/model-a", "openai/model-b"]
    assert providers["ollama"]["models"] == ["ollama/model-a:latest"]
    assert providers["gemini"]["configured"] is False
    assert providers["gemini"]["usable"] is False
    assert providers["gemini"]["problem"] == "set GEMINI_API_KEY"
    assert providers["gemini"]["models"] == []
    assert catalog["aliases"] == {"smart": {"model": "anthropic/model-a", "fallbacks": ["openai/model-b"]}}
    assert catalog["default_model"] == "anthropic/claude-sonnet-4-5"
    # One listing per configured provider, kept for the second read.
    assert sorted(r.provider for r in fake.requests) == ["anthropic", "ollama", "openai"]


async def test_a_provider_whose_list_fails_shows_its_default_model_with_a_note(
    settings: Settings, fake: FakeLLM
) -> None:
    fake.listing_errors["gemini"] = (503, "The model is overloaded.")
    async with Client(build_server(settings)) as client:
        catalog = await read_json(client, "router://models")
    gemini = next(p for p in catalog["providers"] if p["provider"] == "gemini")
    assert gemini["models"] == ["gemini/gemini-2.5-flash"]
    assert gemini["models_note"] == "could not list the models; showing the default model"
    assert gemini["usable"] is False
    assert "The model is overloaded." in gemini["problem"]
    assert next(p for p in catalog["providers"] if p["provider"] == "openai")["usable"]


async def test_an_unreachable_ollama_is_listed_as_not_usable_with_the_reason(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"ollama_host": closed_port_url()})
    async with Client(build_server(unreachable)) as client:
        catalog = await read_json(client, "router://models")
    ollama = next(p for p in catalog["providers"] if p["provider"] == "ollama")
    assert ollama["usable"] is False
    assert "connection" in ollama["problem"]
