from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_llm import FakeLLM
from routing_helpers import provider_env

from server.config import Settings


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
async def fake_server() -> AsyncIterator[FakeLLM]:
    async with FakeLLM().serving() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLM) -> FakeLLM:
    """The fake model server, with an empty script and no requests yet."""
    fake_server.reset()
    return fake_server


@pytest.fixture
def settings(fake: FakeLLM) -> Settings:
    """Every provider at the fake, an ephemeral store, a fixed user and session, no retry waits."""
    values = {"store": "mem://", "user": "alice", "session": "s1", "max_retries": 0, **provider_env(fake.url)}
    return Settings.model_validate(values)
