"""The providers of one process: which are configured, their adapters (built once on one HTTP client)
and their model lists (cached)."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import httpx

from server.config import Settings
from server.errors import ProviderError
from server.providers.base import Provider
from server.providers.registry import (
    PROVIDER_NAMES,
    ProviderName,
    is_configured,
    make_provider,
    provider_info,
)
from server.providers.transport import Clock, RetryPolicy

# Ollama at its default address is looked for once, quickly, and never retried: a local server that
# refuses a connection is not running, and every read of `router://models` must not wait for it.
OLLAMA_PROBE = RetryPolicy(max_retries=0, timeout=2.0, connect_timeout=0.3)

MODEL_LIST_TIMEOUT = 5.0  # seconds a list-models request may take before the default model is shown
MODEL_LIST_TTL = 300.0  # seconds a provider's model list is kept: lists change with releases, not reads
MODEL_LIST_FAILURE_TTL = 30.0  # a failed listing is asked again sooner, so a fixed key shows soon


@dataclass(frozen=True, slots=True)
class ModelListing:
    models: list[str]  # as `provider/<name>` takes them
    problem: str | None = None  # why the list could not be read; `models` then holds the default model


class ProviderDirectory:
    """One per server (the Router's): the Ollama probe's answer is kept for the life of the process."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock or Clock()
        self._adapters: dict[str, Provider] = {}
        self._ollama_answers: bool | None = None
        self._probing = anyio.Lock()
        self._listings: dict[str, tuple[float, ModelListing]] = {}  # name: (good until, listing)

    def adapter(self, name: str) -> Provider:
        if name not in self._adapters:
            self._adapters[name] = make_provider(name, self.settings, self.http, clock=self.clock)
        return self._adapters[name]

    def configured_by_settings(self) -> list[ProviderName]:
        """Those configured without asking Ollama's default address (enough when a key is set)."""
        return [name for name in PROVIDER_NAMES if is_configured(name, self.settings)]

    async def configured(self) -> list[ProviderName]:
        """The providers that can be routed to, in the order of PROVIDER_NAMES (the first gives the
        default model)."""
        return [name for name in PROVIDER_NAMES if await self.is_configured(name)]

    async def is_configured(self, name: ProviderName) -> bool:
        if is_configured(name, self.settings):
            return True
        return name == "ollama" and await self._ollama_at_default_address()

    async def _ollama_at_default_address(self) -> bool:
        async with self._probing:
            if self._ollama_answers is None:
                probe = make_provider("ollama", self.settings, self.http, policy=OLLAMA_PROBE)
                try:
                    await probe.list_models()
                except ProviderError as e:
                    # Any HTTP answer is a server that is there (one that refuses us says so when used).
                    self._ollama_answers = e.status is not None
                else:
                    self._ollama_answers = True
        return self._ollama_answers

    async def models(
        self, name: str, *, wait: float = MODEL_LIST_TIMEOUT, fresh: bool = False
    ) -> ModelListing:
        """A configured provider's models, from its list endpoint (cached unless `fresh`); when that
        fails, its default model and why."""
        now = self.clock.now()
        cached = self._listings.get(name)
        if cached is not None and not fresh and now < cached[0]:
            return cached[1]
        adapter = self.adapter(name)
        listing = ModelListing([adapter.default_model], f"no answer within {wait:g}s")
        with anyio.move_on_after(wait):
            try:
                listing = ModelListing(await adapter.list_models())
            except ProviderError as e:
                listing = ModelListing([adapter.default_model], self._problem(name, adapter, e))
        ttl = MODEL_LIST_TTL if listing.problem is None else MODEL_LIST_FAILURE_TTL
        self._listings[name] = (now + ttl, listing)
        return listing

    @staticmethod
    def _problem(name: str, adapter: Provider, error: ProviderError) -> str:
        if error.status == 404:
            return f"{error} (check {provider_info(name).base_url_env}: {adapter.not_found_advice()})"
        return str(error)
