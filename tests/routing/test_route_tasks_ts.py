"""The official TypeScript task client (`@modelcontextprotocol/ext-tasks` with
`@modelcontextprotocol/client`, pinned in tests/ts) completes a task-backed `route_completion`
against `memory-router serve --transport http` in both eras. Skipped when node and npm are missing,
or when `npm ci` cannot install the pinned packages."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream
from fake_llm import FakeLLM, Turn
from routing_helpers import provider_env
from task_clients import ANSWER, ARGS

from server.mcp.auth import TokensFile

TS_DIR = Path(__file__).parents[1] / "ts"
READY = "memory-router on http://"


@pytest.fixture(scope="session")
def ts_client() -> Path:
    """tests/ts with its pinned packages installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the TypeScript task client test needs them")
    if not (TS_DIR / "node_modules" / "@modelcontextprotocol" / "ext-tasks").is_dir():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=TS_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if installed.returncode != 0:
            pytest.skip(f"npm ci could not install tests/ts (offline?): {installed.stderr.strip()[-300:]}")
    return TS_DIR / "route_task.mjs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def memory_router_serve(env: dict[str, str]) -> AsyncIterator[str]:
    """`memory-router serve --transport http` as a subprocess; yields its /mcp URL once it listens."""
    port = free_port()
    command = [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", str(port)]
    async with await anyio.open_process(command, env=env, stdout=subprocess.DEVNULL) as process:
        assert process.stderr is not None
        log = TextReceiveStream(process.stderr)
        with anyio.fail_after(30):
            seen = ""
            async for chunk in log:
                seen += chunk
                if READY in seen:
                    break
            assert READY in seen, seen
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, log)
            try:
                yield f"http://127.0.0.1:{port}/mcp"
            finally:
                process.terminate()
                tg.cancel_scope.cancel()


async def _drain(log: TextReceiveStream) -> None:
    async for _ in log:
        pass


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_the_official_typescript_task_client_completes_route_completion(
    ts_client: Path, fake: FakeLLM, tmp_path: Path, era: str
) -> None:
    token = TokensFile(tmp_path / "tokens").add("alice")
    fake.script(Turn(text=ANSWER))
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEMORY_ROUTER_")}
    env |= provider_env(fake.url) | {
        "MEMORY_ROUTER_STORE": "mem://",
        "MEMORY_ROUTER_TOKENS_FILE": str(tmp_path / "tokens"),
        "MEMORY_ROUTER_MAX_RETRIES": "0",
        "MEMORY_ROUTER_TASK_POLL_MS": "20",
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    async with memory_router_serve(env) as url:
        with anyio.fail_after(60):
            run = await anyio.run_process(
                ["node", str(ts_client), url, era, token, json.dumps(ARGS)], cwd=TS_DIR, check=False
            )
    output = run.stdout.decode()
    assert run.returncode == 0, output + run.stderr.decode()
    assert f"version {'2025-11-25' if era == 'legacy' else '2026-07-28'}" in output
    assert "outcome completed" in output
    result = json.loads(output.split("RESULT ", 1)[1])
    assert result["content"] == [{"type": "text", "text": ANSWER}]
    assert result["structuredContent"]["text"] == ANSWER
