"""A first run: no key, Ollama maybe not running; the router says what to set and never waits on a
refused connection."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fake_llm import KEY, FakeLLM, Turn
from mcp import Client
from mcp_helpers import read_json, text_of
from routing_helpers import QUESTION, route, structured
from test_route_models import closed_port_url

from server.config import Settings
from server.mcp.server import build_server

NO_PROVIDER = (
    "No provider is configured: set ANTHROPIC_API_KEY, OPENAI_API_KEY or GEMINI_API_KEY, "
    "or start Ollama (OLLAMA_HOST)."
)
PROVIDER_VARIABLES = ("ANTHROPIC_", "OPENAI_", "GEMINI_", "GOOGLE_", "OLLAMA_", "MEMORY_ROUTER_")


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real transport that counts the connection attempts made to each port."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: dict[int | None, int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts[request.url.port] = self.attempts.get(request.url.port, 0) + 1
        return await super().handle_async_request(request)


def bare_settings(**values: Any) -> Settings:
    """No key and no OLLAMA_HOST (unless given), an ephemeral store."""
    keys = {"ANTHROPIC_API_KEY": None, "OPENAI_API_KEY": None, "GEMINI_API_KEY": None}
    return Settings.model_validate({"store": "mem://", "user": "alice", "session": "s1", **keys, **values})


def refusing_client() -> httpx.AsyncClient:
    def refuse(request: httpx.Request) -> httpx.Response:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except ConnectionRefusedError as e:
            raise httpx.ConnectError("All connection attempts failed", request=request) from e

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse))


async def test_with_no_key_and_no_ollama_route_completion_and_models_say_how_to_configure_one() -> None:
    async with refusing_client() as http, Client(build_server(bare_settings(), http_client=http)) as client:
        result = await client.call_tool("route_completion", {"messages": QUESTION})
        catalog = await read_json(client, "router://models")
    assert result.is_error
    assert NO_PROVIDER in text_of(result)
    assert "ConnectError" not in text_of(result)
    assert catalog["default_model"] is None
    ollama = next(p for p in catalog["providers"] if p["provider"] == "ollama")
    assert ollama["configured"] is False
    assert ollama["problem"] == "nothing answers at http://127.0.0.1:11434; start Ollama or set OLLAMA_HOST"


async def test_a_refused_ollama_falls_back_at_once_and_models_reads_try_it_once(fake: FakeLLM) -> None:
    closed = closed_port_url()
    settings = bare_settings(
        OLLAMA_HOST=closed, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake.url, max_retries=2
    )
    transport = CountingTransport()
    fake.script(Turn(text="Sunny."))
    port = httpx.URL(closed).port
    async with (
        httpx.AsyncClient(transport=transport) as http,
        Client(build_server(settings, http_client=http)) as client,
    ):
        result = structured(
            await route(client, "ollama/llama3.2", QUESTION, fallbacks=["anthropic/model-a"], memory=False)
        )
        assert transport.attempts[port] == 1
        catalog = await read_json(client, "router://models")
        assert transport.attempts[port] == 2
    assert (result["provider"], result["text"]) == ("anthropic", "Sunny.")
    ollama = next(p for p in catalog["providers"] if p["provider"] == "ollama")
    assert ollama["usable"] is False
    assert f"connection refused at {closed}" in ollama["problem"]


def ollama_default_address_is_free() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", 11434)) != 0


needs_no_local_ollama = pytest.mark.skipif(
    not ollama_default_address_is_free(), reason="something listens at Ollama's default address"
)


async def cli(store: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """The CLI with no provider variable at all, except those in `env`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_VARIABLES)}
    environment.update(MEMORY_ROUTER_STORE=f"surrealkv://{store}", MEMORY_ROUTER_USER="alice", **env)
    with anyio.fail_after(60):
        return await anyio.run_process([sys.executable, "-m", "server", *args], env=environment, check=False)


@needs_no_local_ollama
async def test_ask_and_doctor_with_no_provider_say_how_to_configure_one(tmp_path: Path) -> None:
    asked = await cli(tmp_path / "store", "ask", "hi")
    assert asked.returncode == 1
    assert asked.stderr.decode().splitlines()[-1] == f"memory-router: {NO_PROVIDER}"
    doctor = await cli(tmp_path / "store", "doctor")
    out = doctor.stdout.decode()
    assert doctor.returncode == 1
    assert f"FAIL providers: {NO_PROVIDER}" in out
    assert "--   ollama: not configured" in out
    assert "models (" not in out  # no empty models section
    assert "Traceback" not in doctor.stderr.decode()


@needs_no_local_ollama
async def test_doctor_passes_with_one_working_provider_and_reports_the_others_as_information(
    fake: FakeLLM, tmp_path: Path
) -> None:
    done = await cli(tmp_path / "store", "doctor", OPENAI_API_KEY=KEY, OPENAI_BASE_URL=f"{fake.url}/v1")
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "ok   openai:" in out
    assert "--   anthropic: not configured (set ANTHROPIC_API_KEY to use it)" in out
    assert "--   ollama: not configured (nothing answers at http://127.0.0.1:11434" in out
    assert "FAIL" not in out
    assert "default model: openai/gpt-4.1-mini" in out
