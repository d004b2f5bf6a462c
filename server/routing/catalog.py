"""What can be routed to: each provider, its models, the aliases, and what works now.

The same document is the `router://models` resource, `memory-router models --json`, and what
`memory-router doctor` reports on.
"""

from __future__ import annotations

from typing import Any

import anyio

from server.errors import RoutingError
from server.providers import PROVIDER_NAMES, ProviderDirectory, provider_info
from server.providers.directory import MODEL_LIST_TIMEOUT, ModelListing
from server.routing.router import Router
from server.routing.targets import default_model

LISTING_FAILED = "could not list the models; showing the default model"


async def describe_models(
    router: Router, *, probe_all: bool = False, wait: float = MODEL_LIST_TIMEOUT
) -> dict[str, Any]:
    """The `router://models` document for the router's providers; `probe_all` lists afresh (doctor)."""
    return await describe_providers(router.providers, fresh=probe_all, wait=wait)


async def describe_providers(
    providers: ProviderDirectory, *, fresh: bool = False, wait: float = MODEL_LIST_TIMEOUT
) -> dict[str, Any]:
    """Every provider: whether it is configured (a key set; for Ollama, OLLAMA_HOST set or its default
    address answering), and for a configured one, its models from its list endpoint, which is also
    what says it is usable (the request carries the key)."""
    settings = providers.settings
    configured = await providers.configured()
    listings: dict[str, ModelListing] = {}

    async def list_models(name: str) -> None:
        listings[name] = await providers.models(name, wait=wait, fresh=fresh)

    async with anyio.create_task_group() as tg:
        for name in configured:
            tg.start_soon(list_models, name)
    try:
        default: str | None = default_model(settings, configured)
    except RoutingError:
        default = None
    return {
        "default_model": default,
        "providers": [_entry(name, listings.get(name), settings.ollama_host) for name in PROVIDER_NAMES],
        "aliases": {name: alias.model_dump() for name, alias in sorted(settings.aliases.items())},
    }


def _entry(name: str, listing: ModelListing | None, ollama_host: str) -> dict[str, Any]:
    """One provider; `listing` is None when it is not configured."""
    info = provider_info(name)
    entry: dict[str, Any] = {
        "provider": name,
        "default_model": f"{name}/{info.default_model}",
        "configured": listing is not None,
        "key_env": info.key_env,
        "base_url_env": info.base_url_env,
    }
    if listing is None:
        setup = info.setup if info.key_env else f"nothing answers at {ollama_host}; {info.setup}"
        return {**entry, "usable": False, "problem": setup, "models": []}
    entry["usable"] = listing.problem is None
    if listing.problem is not None:
        entry["problem"] = listing.problem
        entry["models_note"] = LISTING_FAILED
    entry["models"] = [f"{name}/{model}" for model in listing.models]
    return entry
