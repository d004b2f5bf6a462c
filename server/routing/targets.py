"""Resolve a model string (`provider/model`, an alias, or the default) into a chain of targets.

`configured` is the providers that can be routed to now (`ProviderDirectory.configured`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.config import Settings
from server.errors import RoutingError
from server.providers import NO_PROVIDER, PROVIDER_NAMES, ProviderDirectory, provider_info
from server.providers.types import MAX_MODELS_TRIED


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


def _configuration_help(settings: Settings, configured: Sequence[str]) -> str:
    if not configured:
        return NO_PROVIDER + _aliases(settings)
    text = f"Configured providers: {', '.join(configured)}."
    missing = [provider_info(name).setup for name in PROVIDER_NAMES if name not in configured]
    if missing:
        text += f" To add one: {'; '.join(missing)}."
    return text + _aliases(settings)


def default_model(settings: Settings, configured: Sequence[str]) -> str:
    """MEMORY_ROUTER_DEFAULT_MODEL, else the first configured provider's default model."""
    if settings.default_model:
        return settings.default_model
    for name in configured:
        return f"{name}/{provider_info(name).default_model}"
    raise RoutingError(NO_PROVIDER + _aliases(settings))


def _aliases(settings: Settings) -> str:
    return f" Aliases: {', '.join(sorted(settings.aliases))}." if settings.aliases else ""


def parse_target(model: str, settings: Settings, configured: Sequence[str]) -> Target:
    help_text = _configuration_help(settings, configured)
    provider, slash, name = model.partition("/")
    if not slash or not provider or not name:
        raise RoutingError(
            f"Malformed model {model!r}: use provider/model (e.g. anthropic/claude-sonnet-4-5, "
            f"openai/gpt-4.1-mini, gemini/gemini-2.5-flash, ollama/llama3.2) or an alias. {help_text}"
        )
    if provider not in PROVIDER_NAMES:
        raise RoutingError(
            f"Unknown provider {provider!r} in {model!r}: use one of {', '.join(PROVIDER_NAMES)}. {help_text}"
        )
    if provider not in configured:
        setup = provider_info(provider).setup
        raise RoutingError(f"Provider {provider!r} is not configured: {setup}. {help_text}")
    return Target(provider, name)


def resolve_chain(
    model: str | None, fallbacks: Sequence[str], settings: Settings, configured: Sequence[str]
) -> list[Target]:
    """The models to try in order: the named one (or an alias's chain), then `fallbacks`; each once,
    and no more than MAX_MODELS_TRIED of them (aliases can expand a short list into a long chain)."""
    names: list[str] = []
    for name in [model or default_model(settings, configured), *fallbacks]:
        alias = settings.aliases.get(name)
        names.extend([alias.model, *alias.fallbacks] if alias else [name])
    # A dict keeps the first occurrence of each target, in order, in linear time.
    chain = dict.fromkeys(parse_target(name, settings, configured) for name in names)
    return list(chain)[:MAX_MODELS_TRIED]


async def resolve_targets(
    model: str | None, fallbacks: Sequence[str], settings: Settings, providers: ProviderDirectory
) -> list[Target]:
    """`resolve_chain` over the configured providers. Ollama's default address is asked only when the
    chain cannot be resolved without it (Ollama named, or no key set and no model named)."""
    try:
        return resolve_chain(model, fallbacks, settings, providers.configured_by_settings())
    except RoutingError:
        return resolve_chain(model, fallbacks, settings, await providers.configured())
