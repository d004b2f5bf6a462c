"""Which providers exist, how each is configured, and how to make one.

A keyed provider is configured when its key is set. Ollama needs no key: it is configured when
OLLAMA_HOST is set, or when its default address answers, which only `ProviderDirectory` can tell
(it probes once per process); `is_configured` answers from the settings alone.
"""

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

    @property
    def setup(self) -> str:
        """What to do to configure it."""
        return f"set {self.key_env}" if self.key_env else f"start Ollama or set {self.base_url_env}"


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


NO_PROVIDER = (
    "No provider is configured: set ANTHROPIC_API_KEY, OPENAI_API_KEY or GEMINI_API_KEY, "
    "or start Ollama (OLLAMA_HOST)."
)


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
    """From the settings alone: its key is set, or for Ollama, OLLAMA_HOST (or its TOML key) is."""
    info = provider_info(name)
    if info.key_env is None:
        return "ollama_host" in settings.model_fields_set
    key, _ = _key_and_url(info.name, settings)
    return key is not None and bool(key.get_secret_value())


def make_provider(
    name: str,
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    clock: Clock | None = None,
    policy: RetryPolicy | None = None,
) -> Provider:
    """An adapter sharing `client`; raises ConfigError naming the variable to set when its key is
    missing. `policy` replaces the settings' retries and deadline (a quick probe)."""
    info = provider_info(name)
    if info.key_env is not None and not is_configured(name, settings):
        raise ConfigError(f"The {name} provider is not configured: {info.setup}.")
    key, base_url = _key_and_url(info.name, settings)
    policy = policy or RetryPolicy(max_retries=settings.max_retries, timeout=settings.request_timeout_seconds)
    return info.adapter(
        client=client,
        base_url=base_url,
        api_key=key,
        default_model=info.default_model,
        policy=policy,
        clock=clock,
        key_env=info.key_env or "OLLAMA_API_KEY",  # Ollama's key is for ollama.com only
    )
