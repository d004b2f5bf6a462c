"""The `router://models` resource: what can be routed to, and whether it works now."""

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


async def test_models_lists_each_provider_its_default_model_aliases_and_whether_it_is_usable(
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
    providers = {p["provider"]: p for p in catalog["providers"]}
    assert list(providers) == ["anthropic", "openai", "gemini", "ollama"]
    assert providers["anthropic"]["usable"] and providers["anthropic"]["default_model"] == (
        "anthropic/claude-sonnet-4-5"
    )
    assert providers["gemini"]["configured"] is False
    assert providers["gemini"]["usable"] is False
    assert providers["gemini"]["problem"] == "set GEMINI_API_KEY"
    assert providers["ollama"]["usable"]  # its server (the fake) answered
    assert catalog["aliases"] == {"smart": {"model": "anthropic/model-a", "fallbacks": ["openai/model-b"]}}
    assert catalog["default_model"] == "anthropic/claude-sonnet-4-5"
    # Keyed providers are judged by their key alone: no request was spent on them.
    assert {r.provider for r in fake.requests} == {"ollama"}


async def test_an_unreachable_ollama_is_listed_as_not_usable_with_the_reason(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"ollama_host": closed_port_url()})
    async with Client(build_server(unreachable)) as client:
        catalog = await read_json(client, "router://models")
    ollama = next(p for p in catalog["providers"] if p["provider"] == "ollama")
    assert ollama["usable"] is False
    assert "connection" in ollama["problem"]
