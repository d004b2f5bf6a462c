from __future__ import annotations

import pytest

from server.config import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings() -> Settings:
    """An ephemeral embedded store and a fixed user and session; no provider keys."""
    return Settings(
        store="mem://",
        user="alice",
        session="s1",
        ANTHROPIC_API_KEY=None,
        OPENAI_API_KEY=None,
        GEMINI_API_KEY=None,
    )
