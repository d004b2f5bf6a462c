"""`open_runtime(settings)`: what serving and the CLI both run on, built in one place.

The HTTP client the providers share (with its timeouts), the memory store, the memory service (with
the preamble budget) and the router. The server's lifespan and the `ask` and `doctor` commands open
it; the `memory` commands open only its memory part (`open_memory`), without the HTTP client and the
providers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.config import Settings
from server.memory.preamble import PreambleBudget
from server.memory.service import MemoryService
from server.memory.storage import MemoryStorage
from server.memory.store import open_store

if TYPE_CHECKING:
    import httpx

    from server.routing.router import Router

CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    http: httpx.AsyncClient
    memory: MemoryService
    router: Router

    @property
    def store(self) -> MemoryStorage:
        return self.memory.store


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, http_client: httpx.AsyncClient | None = None
) -> AsyncIterator[Runtime]:
    """Open the store and the HTTP client; both close on exit. `http_client` is the seam for tests
    (an `httpx.MockTransport` client); the caller keeps owning it."""
    import httpx

    from server.routing.router import Router

    async with AsyncExitStack() as stack:
        memory = await stack.enter_async_context(open_memory(settings))
        if http_client is None:
            timeout = httpx.Timeout(settings.request_timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS)
            http_client = await stack.enter_async_context(httpx.AsyncClient(timeout=timeout))
        yield Runtime(settings, http_client, memory, Router(settings, http_client, memory))


@asynccontextmanager
async def open_memory(settings: Settings) -> AsyncIterator[MemoryService]:
    """The store and the memory service with the configured preamble budget; the store closes on exit."""
    async with open_store(settings) as store:
        budget = PreambleBudget(max_chars=settings.preamble_max_chars, max_items=settings.preamble_max_items)
        yield MemoryService(store, budget)
