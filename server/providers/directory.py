"""The providers of one process: which are configured, and their adapters, built once on one HTTP client."""

from __future__ import annotations

import anyio
import httpx

from server.config import Settings
from server.errors import ProviderError
from server.providers.base import Provider
from server.providers.registry import PROVIDER_NAMES, ProviderName, is_configured, make_provider
from server.providers.transport import Clock, RetryPolicy

# Ollama at its default address is looked for once, quickly, and never retried: a local server that
# refuses a connection is not running, and every read of `router://models` must not wait for it.
OLLAMA_PROBE = RetryPolicy(max_retries=0, timeout=2.0, connect_timeout=0.3)


class ProviderDirectory:
    """One per server (the Router's): the Ollama probe's answer is kept for the life of the process."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock or Clock()
        self._adapters: dict[str, Provider] = {}
        self._ollama_answers: bool | None = None
        self._probing = anyio.Lock()

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
                    await probe.check()
                except ProviderError as e:
                    # Any HTTP answer is a server that is there (one that refuses us says so when used).
                    self._ollama_answers = e.status is not None
                else:
                    self._ollama_answers = True
        return self._ollama_answers
