"""Resolve a model string (`provider/model`, an alias, or the default) into a chain of targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.config import Settings
from server.errors import RoutingError
from server.providers import PROVIDER_NAMES, configured_providers, is_configured, provider_info
from server.providers.types import MAX_MODELS_TRIED


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


def _configuration_help(settings: Settings) -> str:
    configured = configured_providers(settings)
    lines = [f"Configured providers: {', '.join(configured) if configured else 'none'}."]
    missing = [provider_info(name).key_env for name in PROVIDER_NAMES if name not in configured]
    if missing:
        lines.append(f"To add one, set {' or '.join(v for v in missing if v)}.")
    if settings.aliases:
        lines.append(f"Aliases: {', '.join(sorted(settings.aliases))}.")
    return " ".join(lines)


def default_model(settings: Settings) -> str:
    if settings.default_model:
        return settings.default_model
    for name in configured_providers(settings):
        return f"{name}/{provider_info(name).default_model}"
    raise RoutingError(f"No model was named and no provider is configured. {_configuration_help(settings)}")


def parse_target(model: str, settings: Settings) -> Target:
    provider, slash, name = model.partition("/")
    if not slash or not provider or not name:
        raise RoutingError(
            f"Malformed model {model!r}: use provider/model (e.g. anthropic/claude-sonnet-4-5, "
            f"openai/gpt-4.1-mini, gemini/gemini-2.5-flash, ollama/llama3.2) or an alias. "
            f"{_configuration_help(settings)}"
        )
    if provider not in PROVIDER_NAMES:
        raise RoutingError(
            f"Unknown provider {provider!r} in {model!r}: use one of {', '.join(PROVIDER_NAMES)}. "
            f"{_configuration_help(settings)}"
        )
    info = provider_info(provider)
    if not is_configured(provider, settings):
        raise RoutingError(
            f"Provider {provider!r} is not configured: set {info.key_env}. {_configuration_help(settings)}"
        )
    return Target(provider, name)


def resolve_chain(model: str | None, fallbacks: Sequence[str], settings: Settings) -> list[Target]:
    """The models to try in order: the named one (or an alias's chain), then `fallbacks`; each once,
    and no more than MAX_MODELS_TRIED of them (aliases can expand a short list into a long chain)."""
    names: list[str] = []
    for name in [model or default_model(settings), *fallbacks]:
        alias = settings.aliases.get(name)
        names.extend([alias.model, *alias.fallbacks] if alias else [name])
    # A dict keeps the first occurrence of each target, in order, in linear time.
    chain = dict.fromkeys(parse_target(name, settings) for name in names)
    return list(chain)[:MAX_MODELS_TRIED]
