"""The command line's shape: every option explained, and the commands that serve no MCP load none of it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from server.cli.app import build_parser

# What only `serve` needs (the MCP SDK and the HTTP stack), what only provider calls need (httpx),
# and a remote store's client stack, which an embedded store never uses.
NOT_FOR_LOCAL_COMMANDS = ("mcp", "uvicorn", "starlette", "jwt", "httpx", "aiohttp", "requests", "urllib3")


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def test_every_option_and_argument_of_every_command_has_help_text() -> None:
    missing = [
        f"{parser.prog} {action.dest}"
        for parser in parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


@pytest.mark.parametrize("args", [["--help"], ["memory", "list"], ["memory", "preamble"], ["--version"]])
async def test_commands_that_serve_no_mcp_import_neither_the_sdk_nor_the_http_or_remote_store_stacks(
    tmp_path: Path, args: list[str]
) -> None:
    env = {"MEMORY_ROUTER_STORE": f"surrealkv://{tmp_path / 'store'}", "MEMORY_ROUTER_USER": "alice"}
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-X", "importtime", "-m", "server", *args],
            env={"PATH": "/usr/bin:/bin", **env},
            stdout=subprocess.DEVNULL,
            check=False,
        )
    assert done.returncode == 0
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "server" in imported
    assert {name.split(".")[0] for name in imported} & set(NOT_FOR_LOCAL_COMMANDS) == set()
