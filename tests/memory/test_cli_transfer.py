"""`memory export` / `memory import`: what a bad line says, --scope and --session on import, and
round trips of any Unicode, line separators included."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import anyio
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from stdio_servers import run_cli

from server.cli.transfer import export_memories, import_memories, load_import
from server.config import Settings
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope
from server.runtime import open_memory

LINE = {
    "scope": "user",
    "handle": "m1.WyJhbGljZSIsInVzZXIiLCIiLCJrIiwibmFtZSJd",
    "key": "name",
    "content": "Alice",
    "created_at": "2026-01-02T03:04:05+00:00",
    "updated_at": "2026-01-02T03:04:05+00:00",
}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"content": None}, "line 2: `content` must be a string, not NoneType"),
        ({"scope": "team"}, "line 2: `scope` must be user or session, not 'team'"),
        (
            {"updated_at": "yesterday"},
            "line 2: `updated_at` must be an ISO 8601 date and time with a UTC offset",
        ),
        ({"created_at": "2026-01-02T03:04:05"}, "line 2: `created_at` must be an ISO 8601 date and time"),
        ({"key": 7}, "line 2: `key` must be a string or null"),
    ],
)
async def test_a_bad_line_names_its_number_and_field_and_nothing_is_imported(
    tmp_path: Path, change: dict[str, object], said: str
) -> None:
    file = tmp_path / "export.jsonl"
    file.write_text(json.dumps(LINE) + "\n" + json.dumps({**LINE, "key": "city", **change}) + "\n")
    done = await run_cli(tmp_path / "store", "memory", "import", str(file))
    assert done.returncode == 1
    assert done.stderr.startswith(f"memory-router: {file}, {said}")
    assert done.stderr.endswith("; nothing was imported.\n") and done.stderr.count("\n") == 1
    assert (await run_cli(tmp_path / "store", "memory", "list")).stdout == ""


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            '{"scope": "user",',
            "line 1: not JSON (Expecting property name enclosed in double quotes at column 18)",
        ),
        ("[1, 2]", "line 1: not a JSON object"),
        (json.dumps({k: v for k, v in LINE.items() if k != "handle"}), "line 1: `handle` is missing"),
    ],
)
async def test_a_line_that_is_no_export_line_says_why(tmp_path: Path, line: str, said: str) -> None:
    file = tmp_path / "export.jsonl"
    file.write_text(line + "\n")
    done = await run_cli(tmp_path / "store", "memory", "import", str(file))
    assert (done.returncode, done.stderr) == (1, f"memory-router: {file}, {said}; nothing was imported.\n")


async def test_import_scope_restores_only_that_scopes_lines_and_session_moves_session_lines(
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    await run_cli(source, "memory", "record", "name", "Alice")
    await run_cli(source, "memory", "record", "--session", "s1", "task", "report")
    users = tmp_path / "user.jsonl"
    sessions = tmp_path / "session.jsonl"
    assert (await run_cli(source, "memory", "export", str(users))).returncode == 0
    assert (await run_cli(source, "memory", "export", "--session", "s1", str(sessions))).returncode == 0
    both = tmp_path / "both.jsonl"
    both.write_text(users.read_text() + sessions.read_text())

    only_user = await run_cli(target, "memory", "import", "--scope", "user", str(both))
    assert (only_user.returncode, only_user.stderr) == (0, "Imported 1 memories.\n")
    assert "\tname\tAlice" in (await run_cli(target, "memory", "list")).stdout
    assert (await run_cli(target, "memory", "list", "--session", "s1")).stdout == ""

    moved = await run_cli(target, "memory", "import", "--scope", "session", "--session", "s2", str(both))
    assert moved.returncode == 0, moved.stderr
    assert "\ttask\treport" in (await run_cli(target, "memory", "list", "--session", "s2")).stdout


BREAKS = "\n\r\u0085\u2028\u2029\x0b\x0c\x1c\x1d\x1e"
# Any text the store takes: no lone surrogates (not UTF-8) and no NUL (the store refuses it).
# Typed: a decorated strategy gives mypy no context to read ("Cs",) as the literal it must be.
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
texts = st.text(
    st.characters(exclude_categories=SURROGATES, exclude_characters="\x00") | st.sampled_from(BREAKS),
    min_size=1,
    max_size=40,
)


def test_export_then_import_round_trips_any_unicode_line_separators_included(tmp_path: Path) -> None:
    settings = Settings(store="mem://", user="alice", session="s1", max_key_chars=64)
    owner, copy = Owner("alice", "s1"), Owner("bob", "s1")
    file = tmp_path / "export.jsonl"
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(open_memory(settings)) as memory,
    ):
        store = memory.store

        @given(key=texts, content=texts)
        @hypothesis_settings(
            max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
        )
        def round_trip(key: str, content: str) -> None:
            portal.call(check_round_trip, store, owner, copy, file, key, content)

        round_trip()


async def check_round_trip(
    store: MemoryStorage, owner: Owner, copy: Owner, file: Path, key: str, content: str
) -> None:
    await store.put(owner, Scope.USER, content, key=key)
    await store.put(owner, Scope.USER, content)  # a keyless one too
    await export_memories(store, owner, Scope.USER, str(file))
    exported = await anyio.Path(file).read_text(encoding="utf-8")
    assert not any(char in exported for char in "\u0085\u2028\u2029")
    await import_memories(store, copy, load_import(str(file), None), session=None)
    assert _facts(await store.list(copy, Scope.USER)) == _facts(await store.list(owner, Scope.USER))
    for who in (owner, copy):
        for record in await store.list(who, Scope.USER):
            await store.forget(who, Scope.USER, record.handle)


def _facts(records: Sequence[MemoryRecord]) -> list[tuple[str | None, str, datetime, datetime]]:
    return sorted(((r.key, r.content, r.created_at, r.updated_at) for r in records), key=repr)


async def test_sources_are_shown_exported_and_kept_on_import_and_old_lines_import_as_imported(
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    assert (await run_cli(source, "memory", "record", "city", "Lyon")).returncode == 0
    shown = json.loads((await run_cli(source, "memory", "show", "city")).stdout)
    assert shown["source"] == {"via": "cli", "session": "stdio-session"}
    file = tmp_path / "export.jsonl"
    assert (await run_cli(source, "memory", "export", str(file))).returncode == 0
    assert json.loads(file.read_text())["source"] == shown["source"]
    file.write_text(file.read_text() + json.dumps(LINE) + "\n")  # an export from before sources

    done = await run_cli(target, "memory", "import", str(file))
    assert (done.returncode, done.stderr) == (0, "Imported 2 memories.\n")
    city = json.loads((await run_cli(target, "memory", "show", "city")).stdout)
    name = json.loads((await run_cli(target, "memory", "show", "name")).stdout)
    assert city["source"] == shown["source"]
    assert name["source"] == {"via": "import"}


async def test_a_line_with_a_malformed_source_says_so_and_nothing_is_imported(tmp_path: Path) -> None:
    file = tmp_path / "export.jsonl"
    file.write_text(json.dumps({**LINE, "source": {"via": "telepathy"}}) + "\n")
    done = await run_cli(tmp_path / "store", "memory", "import", str(file))
    assert done.returncode == 1
    assert done.stderr.startswith(f"memory-router: {file}, line 1: `source` must be an object with `via`")
