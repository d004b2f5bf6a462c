"""A real `memory-router serve --transport http` subprocess, SDK clients to it, and the host side of
the MCP Apps bridge for a headless Chromium (Debian's package, never a downloaded build)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.extension import advertise
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from server.mcp.auth import TokensFile
from server.mcp.view import UI_EXTENSION, VIEW_MIME_TYPE

HERE = Path(__file__).resolve().parent
HOST_HTML = HERE / "host.html"
HOST_URL = "http://test-host.invalid/host.html"  # answered by the page's route, never by a network
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright; no `playwright install`)."
    if CHROMIUM is None:
        return "Chromium is not installed (apt-get install -y chromium); no browser build is ever downloaded."
    try:  # a stub that only points elsewhere (Ubuntu's snap transition package) does not run
        subprocess.run([CHROMIUM, "--version"], capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return f"{CHROMIUM} does not run here (`{CHROMIUM} --version` failed)."
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def http_server(tmp: Path, users: tuple[str, ...] = ("alice", "bob")) -> Iterator[tuple[str, dict[str, str]]]:
    """`memory-router serve --transport http` on mem:// with a token per user; yields (base URL, tokens)
    once it printed the view's URL and accepts connections."""
    tokens_file = TokensFile(tmp / "tokens")
    tokens = {user: tokens_file.add(user) for user in users}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_ROUTER_")}
    env.update(MEMORY_ROUTER_STORE="mem://", MEMORY_ROUTER_TOKENS_FILE=str(tmp / "tokens"))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    drain = threading.Thread(target=process.stderr.read, daemon=True)
    try:
        # A bounded read: the server exits on failure. Uvicorn says when it is listening.
        printed = False
        for line in process.stderr:
            printed = printed or f"memory view: http://127.0.0.1:{port}/app" in line
            if "Uvicorn running on" in line:
                break
        else:
            raise RuntimeError(f"memory-router serve exited with {process.wait()} before listening")
        if not printed:
            raise RuntimeError("memory-router serve --transport http did not print the memory view's URL")
        # Keep reading its log, or the server blocks once the pipe is full.
        drain.start()
        yield f"http://127.0.0.1:{port}", tokens
    finally:
        process.terminate()
        process.wait(timeout=20)
        if drain.is_alive():
            drain.join(timeout=20)
        process.stderr.close()


@asynccontextmanager
async def mcp_client(base: str, token: str, *, renders_apps: bool = False) -> AsyncIterator[Client]:
    """An SDK client over streamable HTTP (handshake era: it has an MCP session); `renders_apps`
    advertises the MCP Apps extension in `initialize`, as a host that renders views does."""
    extensions = [advertise(UI_EXTENSION, {"mimeTypes": [VIEW_MIME_TYPE]})] if renders_apps else None
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        )
        transport = streamable_http_client(f"{base}/mcp", http_client=http)
        client = Client(transport, mode="legacy", cache=None, extensions=extensions)
        yield await stack.enter_async_context(client)


async def record(client: Client, key: str, value: str, scope: str = "user") -> None:
    result = await client.call_tool("memory", {"op": "record", "scope": scope, "key": key, "value": value})
    assert not result.is_error, result


async def forward(client: Client, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """What the host does with a view's request: pass it to the server, answer with a JSON-RPC body."""
    try:
        if method == "tools/call":
            result: Any = await client.call_tool(params["name"], params.get("arguments") or {})
        elif method == "resources/read":
            result = await client.read_resource(params["uri"])
        elif method == "tools/list":
            result = await client.list_tools()
        else:
            return {"error": {"code": -32601, "message": f"Method not found: {method}"}}
    except MCPError as e:
        return {"error": {"code": e.code, "message": e.message}}
    return {"result": result.model_dump(mode="json", by_alias=True, exclude_none=True)}


class Dialogs:
    """Every JavaScript dialog (alert, confirm, prompt) any frame opens: a script that ran."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, dialog: Any) -> None:
        self.seen.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()
