"""What can be routed to: each provider, its default model, the aliases, and what works now."""

from __future__ import annotations

from typing import Any

import anyio

from server.errors import ProviderError, RoutingError
from server.providers import PROVIDER_NAMES, provider_info
from server.routing.router import Router
from server.routing.targets import default_model

REACHABILITY_TIMEOUT = 2.0


async def _reachable(router: Router, name: str, wait: float) -> str | None:
    """None when a cheap request succeeds, else why not."""
    with anyio.move_on_after(wait):
        try:
            await router.provider(name).check()
        except ProviderError as e:
            return str(e)
        return None
    return f"no answer within {wait:g}s"


async def describe_models(
    router: Router, *, probe_all: bool = False, wait: float = REACHABILITY_TIMEOUT
) -> dict[str, Any]:
    """The `router://models` document. Keyed providers are configured and usable when their key is
    set; Ollama, which needs no key, is configured when OLLAMA_HOST is set or its default address
    answers, and usable when its server answers. `probe_all` also sends a cheap authenticated request to
    every configured provider (the `doctor` command)."""
    settings = router.settings
    providers: list[dict[str, Any]] = []
    for name in PROVIDER_NAMES:
        info = provider_info(name)
        configured = await router.providers.is_configured(name)
        entry: dict[str, Any] = {
            "provider": name,
            "default_model": f"{name}/{info.default_model}",
            "configured": configured,
            "key_env": info.key_env,
            "base_url_env": info.base_url_env,
        }
        problem: str | None = None if configured else _setup(info.key_env, info.setup, settings.ollama_host)
        if configured and (probe_all or info.key_env is None):
            problem = await _reachable(router, name, wait)
        entry["usable"] = problem is None
        if problem is not None:
            entry["problem"] = problem
        providers.append(entry)
    try:
        default: str | None = default_model(settings, await router.providers.configured())
    except RoutingError:
        default = None
    return {
        "default_model": default,
        "providers": providers,
        "aliases": {name: alias.model_dump() for name, alias in sorted(settings.aliases.items())},
    }


def _setup(key_env: str | None, setup: str, ollama_host: str) -> str:
    return setup if key_env else f"nothing answers at {ollama_host}; {setup}"
