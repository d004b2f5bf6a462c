"""`memory-router memory ...` as real subprocesses on a real store: every command, and what each refuses."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from stdio_servers import record, run_cli, serve

ONE_LINE = re.compile(r"\Amemory-router[^\n]*: [^\n]+\n\Z")


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def assert_one_line_error(stderr: str) -> None:
    assert ONE_LINE.match(stderr), stderr
    assert "Traceback" not in stderr


async def test_record_then_list_show_preamble_and_forget(store_dir: Path) -> None:
    recorded = await run_cli(store_dir, "memory", "record", "name", "Alice")
    assert (recorded.returncode, recorded.stdout) == (0, 'Recorded user memory "name".\n')
    piped = await run_cli(store_dir, "memory", "record", "city", "-", input="Lyon\n")
    assert piped.returncode == 0, piped.stderr

    listed = await run_cli(store_dir, "memory", "list")
    rows = [row.split("\t") for row in listed.stdout.splitlines()]
    assert [(row[2], row[3]) for row in rows] == [("city", "Lyon"), ("name", "Alice")]
    assert len((await run_cli(store_dir, "memory", "list", "--limit", "1")).stdout.splitlines()) == 1
    shown = json.loads((await run_cli(store_dir, "memory", "show", "city")).stdout)
    assert (shown["key"], shown["content"], shown["user"]) == ("city", "Lyon", "alice")

    preamble = (await run_cli(store_dir, "memory", "preamble", "--query", "where?")).stdout
    assert "<remembered_facts>" in preamble and "- [city] Lyon\n- [name] Alice" in preamble

    forgot = await run_cli(store_dir, "memory", "forget", "city")
    assert (forgot.returncode, forgot.stdout) == (0, 'Forgot user memory "city".\n')
    again = await run_cli(store_dir, "memory", "forget", "city")
    assert again.returncode == 1 and "No user memory found" in again.stderr


async def test_record_refuses_what_the_memory_tool_refuses_and_says_which_limit(store_dir: Path) -> None:
    done = await run_cli(store_dir, "memory", "record", "k", "x" * 101, MEMORY_ROUTER_MAX_VALUE_BYTES="100")
    assert done.returncode == 1
    assert "MEMORY_ROUTER_MAX_VALUE_BYTES" in done.stderr and "Traceback" not in done.stderr


async def test_a_stdio_servers_session_memories_are_listed_by_the_session_id_it_logs(
    store_dir: Path, tmp_path: Path
) -> None:
    params = serve(store_dir)
    params.env = {k: v for k, v in (params.env or {}).items() if k != "MEMORY_ROUTER_SESSION"}
    log = tmp_path / "serve.log"
    with anyio.fail_after(60), log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            await record(client, "task", "write the report", scope="session")
    ready = [line for line in log.read_text().splitlines() if "memory-router ready on stdio" in line]
    assert len(ready) == 1, log.read_text()
    session = ready[0].rsplit("session ", 1)[1]

    listed = await run_cli(store_dir, "memory", "list", "--session", session)
    assert listed.stdout.split("\t")[2:] == ["task", "write the report\n"]
    assert (await run_cli(store_dir, "memory", "list")).stdout == ""  # user scope: nothing


async def test_session_current_is_the_session_named_by_memory_router_session(store_dir: Path) -> None:
    assert (await run_cli(store_dir, "memory", "record", "--session", "s9", "todo", "milk")).returncode == 0
    listed = await run_cli(store_dir, "memory", "list", "--session", "current", MEMORY_ROUTER_SESSION="s9")
    assert "\ttodo\tmilk" in listed.stdout

    done = await run_cli(
        store_dir, "memory", "list", "--session", "current", without=("MEMORY_ROUTER_SESSION",)
    )
    assert done.returncode == 1
    assert_one_line_error(done.stderr)
    assert "MEMORY_ROUTER_SESSION" in done.stderr and "ready line" in done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["memory", "list", "--limit", "-1"], "argument --limit: -1 is too small; give 1 or more"),
        (["memory", "list", "--limit", "lots"], "argument --limit: 'lots' is not a whole number"),
        (["--log-level", "LOUD", "memory", "list"], "argument --log-level: invalid choice: 'LOUD'"),
        (["memory", "list", "--log-level", "LOUD"], "argument --log-level: invalid choice: 'LOUD'"),
        (["memory", "import", "/nonexistent.jsonl"], "Cannot read /nonexistent.jsonl: No such file"),
        (["memory", "forget"], "memory forget needs a KEY or --handle"),
        (["serve", "--port", "70000"], "argument --port: 70000 is too large"),
    ],
)
async def test_every_refusal_is_one_line_on_stderr_with_a_nonzero_exit(
    store_dir: Path, args: list[str], said: str
) -> None:
    done = await run_cli(store_dir, *args)
    assert done.returncode != 0
    assert_one_line_error(done.stderr)
    assert said in done.stderr
    assert done.stdout == ""


async def test_an_invalid_setting_is_one_line_naming_the_variable(store_dir: Path) -> None:
    done = await run_cli(store_dir, "memory", "list", MEMORY_ROUTER_MAX_KEY_CHARS="long")
    assert done.returncode == 1
    assert_one_line_error(done.stderr)
    assert "Invalid configuration: MEMORY_ROUTER_MAX_KEY_CHARS: " in done.stderr


async def test_log_level_is_taken_before_or_after_the_command(store_dir: Path) -> None:
    for args in (["--log-level", "debug", "memory", "list"], ["memory", "list", "--log-level", "DEBUG"]):
        done = await run_cli(store_dir, *args)
        assert done.returncode == 0 and " DEBUG " in done.stderr
    quiet = await run_cli(store_dir, "memory", "list")
    assert quiet.stderr == ""  # WARNING by default outside serve: the store's INFO lines stay out


async def test_version_prints_the_package_version(store_dir: Path) -> None:
    from server import __version__

    done = await run_cli(store_dir, "--version")
    assert (done.returncode, done.stdout) == (0, f"memory-router {__version__}\n")


async def test_a_reader_that_goes_away_ends_the_command_quietly(store_dir: Path) -> None:
    await run_cli(store_dir, "memory", "record", "name", "Alice")
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -0`: nobody will read
    try:
        done = await run_cli(store_dir, "memory", "list", stdout=write_end)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")
