"""Which providers exist, how each is configured, and how to make one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from server.config import Settings
from server.errors import ConfigError
from server.providers.anthropic import AnthropicProvider
from server.providers.base import HttpProvider, Provider
from server.providers.gemini import GeminiProvider
from server.providers.ollama import OllamaProvider
from server.providers.openai import OpenAIProvider
from server.providers.transport import Clock, RetryPolicy

ProviderName = Literal["anthropic", "openai", "gemini", "ollama"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("anthropic", "openai", "gemini", "ollama")


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: ProviderName
    adapter: type[HttpProvider[Any]]
    default_model: str
    key_env: str | None  # the variable that configures it; None: works without a key
    base_url_env: str


PROVIDERS: dict[str, ProviderInfo] = {
    info.name: info
    for info in (
        ProviderInfo(
            "anthropic", AnthropicProvider, "claude-sonnet-4-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"
        ),
        ProviderInfo("openai", OpenAIProvider, "gpt-4.1-mini", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
        ProviderInfo("gemini", GeminiProvider, "gemini-2.5-flash", "GEMINI_API_KEY", "GEMINI_BASE_URL"),
        ProviderInfo("ollama", OllamaProvider, "llama3.2", None, "OLLAMA_HOST"),
    )
}


def provider_info(name: str) -> ProviderInfo:
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(PROVIDER_NAMES)
        raise ConfigError(f"Unknown provider {name!r}; known providers are {known}.") from None


def _key_and_url(name: ProviderName, settings: Settings) -> tuple[SecretStr | None, str]:
    match name:
        case "anthropic":
            return settings.anthropic_api_key, settings.anthropic_base_url
        case "openai":
            return settings.openai_api_key, settings.openai_base_url
        case "gemini":
            return settings.gemini_api_key, settings.gemini_base_url
        case "ollama":
            return settings.ollama_api_key, settings.ollama_host


def is_configured(name: str, settings: Settings) -> bool:
    """A provider is usable when its key is set; Ollama needs none."""
    info = provider_info(name)
    key, _ = _key_and_url(info.name, settings)
    return info.key_env is None or (key is not None and bool(key.get_secret_value()))


def configured_providers(settings: Settings) -> list[str]:
    return [name for name in PROVIDER_NAMES if is_configured(name, settings)]


def make_provider(
    name: str,
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    clock: Clock | None = None,
) -> Provider:
    """An adapter sharing `client`; raises ConfigError naming the variable to set when unconfigured."""
    info = provider_info(name)
    if not is_configured(name, settings):
        raise ConfigError(f"The {name} provider is not configured: set {info.key_env}.")
    key, base_url = _key_and_url(info.name, settings)
    policy = RetryPolicy(max_retries=settings.max_retries, timeout=settings.request_timeout_seconds)
    return info.adapter(
        client=client,
        base_url=base_url,
        api_key=key,
        default_model=info.default_model,
        policy=policy,
        clock=clock,
    )
