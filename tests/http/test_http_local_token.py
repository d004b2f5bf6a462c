"""Unauthenticated HTTP is an explicit choice: without tokens or JWT, a loopback server requires the
local token (in a file only this OS user can read), unless MEMORY_ROUTER_ALLOW_UNAUTHENTICATED=1."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import anyio
import httpx
import pytest
from http_helpers import INITIALIZE, MCP_HEADERS, connect, memory, running, served
from mcp_helpers import read_json

from server.config import Settings
from server.errors import ConfigError
from server.mcp.http import build_http_app, serve_http
from server.mcp.local_token import local_access


@pytest.fixture
def closed(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """No tokens file, no JWT, and no permission to serve unauthenticated."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return settings.model_copy(update={"allow_unauthenticated": False})


async def test_served_without_configured_auth_every_request_needs_the_token_from_a_private_file(
    tmp_path: Path,
) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "MEMORY_ROUTER_STORE": "mem://", "MEMORY_ROUTER_USER": "carol"}
    token_file = tmp_path / "memory-router" / "http-token"
    with anyio.fail_after(30):
        async with served(env, until="HTTP clients must send") as (base, log), httpx.AsyncClient() as http:
            token = token_file.read_text().strip()
            anonymous = await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            with_token = await http.post(
                f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"}
            )
    assert anonymous.status_code == 401
    assert with_token.status_code == 200
    assert f"Authorization: Bearer $(cat {token_file})" in log  # not a terminal: the token stays out of logs
    assert token not in log
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700


async def test_the_local_token_acts_as_the_configured_user_and_survives_a_restart(closed: Settings) -> None:
    first = local_access(closed, show_token=True)
    again = local_access(closed, show_token=True)
    assert first.notice is not None and again.notice == first.notice
    token = re.search(r"Bearer (mr_local_\S+)`", first.notice)
    assert token is not None
    with anyio.fail_after(10):
        async with running(closed, app=build_http_app(closed, verifier=first.verifier)) as url:
            async with connect(url, token=token[1]) as client:
                await memory(client, "record", "user", "k", value="v")
            async with connect(url, token=token[1]) as client:
                seen = await read_json(client, "memory://user")
    assert [(m["key"], m["content"]) for m in seen] == [("k", "v")]


async def test_an_app_without_a_verifier_needs_unauthenticated_access_allowed(closed: Settings) -> None:
    with pytest.raises(ConfigError, match="MEMORY_ROUTER_ALLOW_UNAUTHENTICATED=1"):
        build_http_app(closed)


async def test_allowing_unauthenticated_access_opens_loopback_only_with_a_warning(closed: Settings) -> None:
    open_ = closed.model_copy(update={"allow_unauthenticated": True})
    access = local_access(open_, show_token=False)
    assert access.verifier is None
    assert access.warning is not None and "every process of every user" in access.warning
    with pytest.raises(ConfigError, match=r"Refusing to listen on 0\.0\.0\.0"):
        await serve_http(open_, transport="http", host="0.0.0.0", port=0)
