"""Fixtures of the HTTP tests: settings of an open loopback server (unauthenticated, explicitly),
tokens of two users and settings that require them."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings
from server.mcp.auth import TokensFile


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with unauthenticated access allowed: without tokens or JWT, the
    servers of these tests are open on loopback (tests that need auth add it)."""
    return settings.model_copy(update={"allow_unauthenticated": True})


@pytest.fixture
def tokens(tmp_path: Path) -> dict[str, str]:
    """Tokens of alice and bob, in a tokens file at `tmp_path / "tokens"`."""
    file = TokensFile(tmp_path / "tokens")
    return {"alice": file.add("alice"), "bob": file.add("bob")}


@pytest.fixture
def auth_settings(settings: Settings, tmp_path: Path, tokens: dict[str, str]) -> Settings:
    return settings.model_copy(update={"tokens_file": tmp_path / "tokens"})
