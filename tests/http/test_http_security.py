"""The HTTP front door, with plain HTTP requests: rebinding protection, body limit, bearer auth."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import jwt
import pytest
from http_helpers import INITIALIZE, MCP_HEADERS, connect, memory, running
from mcp_helpers import read_json, text_of
from pydantic import SecretStr

from server.cli import main
from server.config import Settings
from server.errors import ConfigError
from server.mcp.auth import TokensFile
from server.mcp.http import build_http_app, serve_http


async def post(base: str, body: object = INITIALIZE, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{base}/mcp", json=body, headers={**MCP_HEADERS, **headers})


@pytest.fixture
async def base(settings: Settings) -> AsyncIterator[str]:
    with anyio.fail_after(10):
        async with running(settings) as url:
            yield url


async def test_a_foreign_host_header_is_refused_with_421(base: str) -> None:
    response = await post(base, Host="attacker.example:80")
    assert response.status_code == 421


async def test_a_foreign_origin_is_refused_with_403(base: str) -> None:
    response = await post(base, Origin="http://attacker.example")
    assert response.status_code == 403


async def test_loopback_origins_and_hosts_are_accepted(base: str) -> None:
    port = base.rsplit(":", 1)[1]
    response = await post(base, Host=f"localhost:{port}", Origin=f"http://localhost:{port}")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "host", ["127.0.0.1:1@evil.com", "localhost:80.evil.com", "127.0.0.1:*", "[::1]:1/x"]
)
async def test_a_host_that_only_starts_like_loopback_is_refused(base: str, host: str) -> None:
    response = await post(base, Host=host)
    assert response.status_code == 421


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:1@evil.com", "http://localhost:80.evil.com", "http://localhost:8765/x"]
)
async def test_an_origin_that_only_starts_like_loopback_is_refused(base: str, origin: str) -> None:
    response = await post(base, Origin=origin)
    assert response.status_code == 403


async def test_a_malformed_allowed_host_is_refused_at_start_naming_the_variable(settings: Settings) -> None:
    bad = settings.model_copy(update={"allowed_hosts": "mcp.example.com/path"})
    with pytest.raises(ConfigError, match=r"MEMORY_ROUTER_ALLOWED_HOSTS: 'mcp\.example\.com/path'"):
        build_http_app(bad)


async def test_configured_extra_hosts_and_origins_are_accepted(settings: Settings) -> None:
    extra = settings.model_copy(
        update={"allowed_hosts": "mcp.example.com", "allowed_origins": "https://app.example.com"}
    )
    with anyio.fail_after(10):
        async with running(extra) as url:
            response = await post(url, Host="mcp.example.com", Origin="https://app.example.com")
            refused = await post(url, Host="other.example.com")
    assert response.status_code == 200
    assert refused.status_code == 421


async def test_rebinding_is_refused_before_authentication_and_before_anything_runs(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "memory"}}
    with anyio.fail_after(10):
        async with running(auth_settings) as url:
            no_token = await post(url, call, Host="attacker.example")
            with_token = await post(
                url, call, Origin="http://attacker.example", Authorization=f"Bearer {tokens['bob']}"
            )
    assert no_token.status_code == 421
    assert with_token.status_code == 403


async def test_a_body_over_the_limit_is_refused_with_413_declared_or_streamed(settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 1024})
    big = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "' + b"x" * 4096 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    headers = {**MCP_HEADERS, "Content-Type": "application/json"}
    with anyio.fail_after(10):
        async with running(small) as url, httpx.AsyncClient() as http:
            declared = await http.post(f"{url}/mcp", content=big, headers=headers)
            streamed = await http.post(f"{url}/mcp", content=chunks(), headers=headers)
            fits = await http.post(f"{url}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert fits.status_code == 200


async def test_without_a_token_the_answer_is_401_with_a_bearer_challenge(auth_settings: Settings) -> None:
    with anyio.fail_after(10):
        async with running(auth_settings) as url:
            response = await post(url)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="memory-router"'


async def test_an_unknown_token_is_401_invalid_token_and_is_never_logged(
    auth_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forged = "mr_forged-token-value-0123456789"
    with anyio.fail_after(10):
        async with running(auth_settings) as url:
            response = await post(url, Authorization=f"Bearer {forged}")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert forged not in response.text
    assert forged not in caplog.text


async def test_a_valid_token_acts_as_its_user(auth_settings: Settings, tokens: dict[str, str]) -> None:
    with anyio.fail_after(10):
        async with running(auth_settings) as url, connect(url, token=tokens["alice"]) as alice:
            result = await memory(alice, "record", "user", "k", value="v")
    assert text_of(result) == 'Recorded user memory "k".'


async def test_a_revoked_token_is_refused_without_a_restart(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    assert auth_settings.tokens_file is not None
    with anyio.fail_after(10):
        async with running(auth_settings) as url:
            before = await post(url, Authorization=f"Bearer {tokens['bob']}")
            TokensFile(auth_settings.tokens_file).revoke("bob")
            after = await post(url, Authorization=f"Bearer {tokens['bob']}")
    assert before.status_code == 200
    assert after.status_code == 401


async def test_jwts_are_accepted_only_from_the_configured_issuer_for_the_configured_audience(
    settings: Settings,
) -> None:
    secret = "s" * 32
    jwt_settings = settings.model_copy(
        update={
            "jwt_issuer": "https://idp.example",
            "jwt_audience": "memory-router",
            "jwt_secret": SecretStr(secret),
        }
    )

    def token(**claims: object) -> str:
        base = {
            "iss": "https://idp.example",
            "aud": "memory-router",
            "sub": "carol",
            "exp": int(time.time()) + 60,
        }
        return jwt.encode({**base, **claims}, secret, algorithm="HS256")

    with anyio.fail_after(10):
        async with running(jwt_settings) as url:
            good = await post(url, Authorization=f"Bearer {token()}")
            other_audience = await post(url, Authorization=f"Bearer {token(aud='another-service')}")
            other_issuer = await post(url, Authorization=f"Bearer {token(iss='https://evil.example')}")
            expired = await post(url, Authorization=f"Bearer {token(exp=int(time.time()) - 600)}")
            async with connect(url, token=token()) as carol:
                result = await memory(carol, "record", "user", "k", value="v")
    assert good.status_code == 200
    assert [other_audience.status_code, other_issuer.status_code, expired.status_code] == [401, 401, 401]
    assert text_of(result) == 'Recorded user memory "k".'


async def test_binding_beyond_loopback_without_authentication_is_refused_with_how_to_fix_it(
    settings: Settings,
) -> None:
    with pytest.raises(ConfigError) as refused:
        await serve_http(settings, transport="http", host="0.0.0.0", port=0)
    message = str(refused.value)
    assert "0.0.0.0" in message
    assert "memory-router token add" in message
    assert "MEMORY_ROUTER_TOKENS_FILE" in message


def run_cli(args: list[str]) -> object:
    """`memory-router ARGS` in a thread of its own: it runs its own event loop, which a test thread may not."""
    codes: list[object] = []

    def target() -> None:
        try:
            main(args)
        except SystemExit as e:
            codes.append(e.code)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return codes[0]


async def test_a_jwt_subject_is_never_the_token_file_user_of_the_same_name(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    secret = "s" * 32
    both = auth_settings.model_copy(
        update={
            "jwt_issuer": "https://idp.example",
            "jwt_audience": "memory-router",
            "jwt_secret": SecretStr(secret),
        }
    )
    claims = {
        "iss": "https://idp.example",
        "aud": "memory-router",
        "sub": "alice",
        "exp": int(time.time()) + 60,
    }
    alice_jwt = jwt.encode(claims, secret, algorithm="HS256")
    with anyio.fail_after(10):
        async with (
            running(both) as url,
            connect(url, token=tokens["alice"]) as alice,
            connect(url, token=alice_jwt) as jwt_alice,
        ):
            await memory(alice, "record", "user", "diary", value="token-file alice's")
            seen_by_jwt = await read_json(jwt_alice, "memory://user")
            await memory(jwt_alice, "record", "user", "diary", value="jwt alice's")
            alices = await read_json(alice, "memory://user")
    assert seen_by_jwt == []
    assert [m["content"] for m in alices] == ["token-file alice's"]


@pytest.mark.parametrize("name", ["jwt:alice", "a:b"])
def test_a_token_file_user_name_with_a_colon_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="without spaces, `:`"):
        TokensFile(tmp_path / "tokens").add(name)


def test_token_add_prints_the_token_once_and_stores_only_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens_file = tmp_path / "tokens"
    monkeypatch.setenv("MEMORY_ROUTER_TOKENS_FILE", str(tokens_file))
    assert run_cli(["token", "add", "dave"]) == 0
    token = capsys.readouterr().out.strip()
    stored = tokens_file.read_text()
    assert token.startswith("mr_")
    assert token not in stored
    assert stored.split() == ["dave", TokensFile(tokens_file).entries()[0].digest]
    assert TokensFile(tokens_file).user_for(token) == "dave"
    assert run_cli(["token", "list"]) == 0
    assert capsys.readouterr().out == "dave\t1 token\n"
    assert run_cli(["token", "revoke", "dave"]) == 0
    assert TokensFile(tokens_file).user_for(token) is None
