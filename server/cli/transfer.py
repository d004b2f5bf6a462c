"""`memory export` and `memory import`: JSON lines, oldest first.

Lines are split on "\\n" only, and export writes the other characters that some readers take for a
line break (U+0085, U+2028, U+2029) as JSON escapes, so every line survives any line-splitter.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from server.cli.options import UsageError

if TYPE_CHECKING:
    from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope, Source

# Raw in JSON text, but line breaks to str.splitlines() and to some editors and JSON-lines readers.
_LINE_BREAKS_JSON_ALLOWS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
IMPORT_PART = 500
"""Records per `restore_many` call on import: the progress bar moves between them."""


def add_parsers(action: Callable[[str, str], argparse.ArgumentParser], *, scope_help: str) -> None:
    p = action("export", "write memories as JSON lines, oldest first")
    p.add_argument("file", nargs="?", help="output file (default: stdout)")
    p = action(
        "import",
        "restore JSON lines written by export; keyed memories upsert, so importing twice changes nothing",
    )
    p.add_argument("file", help="a file written by memory export; `-` reads stdin")
    # On import, --scope picks which lines to restore (each goes to the scope it names) and --session
    # replaces the sessions the lines name.


def load_import(file: str, only: Scope | None) -> list[ImportLine]:
    """The lines to import, read and checked before the store opens; `only` (--scope) keeps one scope's."""
    lines = parse_export(read_import_file(file), file)
    return [line for line in lines if only is None or line.scope is only]


# ---- export ------------------------------------------------------------------------------------


def export_line(record: MemoryRecord, owner: Owner) -> dict[str, Any]:
    from server.memory.storage import Scope

    line: dict[str, Any] = {
        "scope": record.scope.value,
        "handle": record.handle,
        "key": record.key,
        "content": record.content,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "user": owner.user,
    }
    if record.scope is Scope.SESSION:
        line["session"] = owner.session
    if record.source is not None:
        line["source"] = record.source.model_dump(mode="json", exclude_none=True)
    return line


def json_line(data: dict[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False)
    for char, escaped in _LINE_BREAKS_JSON_ALLOWS.items():
        text = text.replace(char, escaped)  # only inside strings: json.dumps writes no such char elsewhere
    return text + "\n"


async def export_memories(store: MemoryStorage, owner: Owner, scope: Scope, file: str | None) -> int:
    with _output(file) as out:
        records = await store.list(owner, scope)
        progress = Progress(len(records), "export")
        for record in reversed(records):  # oldest first, so an import replays history in order
            out.write(json_line(export_line(record, owner)))
            progress.advance()
    print(f"Exported {len(records)} {scope.value} memories.", file=sys.stderr)
    return 0


@contextmanager
def _output(file: str | None) -> Iterator[TextIO]:
    if file in (None, "-"):
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        out = open(file, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed below
    except OSError as e:
        raise UsageError(f"Cannot write {file}: {e.strerror}. Check the path and its permissions.") from None
    with out:
        yield out


# ---- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportLine:
    record: MemoryRecord
    scope: Scope
    session: str | None


def read_import_file(file: str) -> str:
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as e:
        raise UsageError(
            f"Cannot read {file}: {e.strerror}. Check the path (memory export writes it)."
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(
            f"{file} is not UTF-8 text (byte {e.start}); it was not written by memory export."
        ) from None


def parse_export(text: str, file: str) -> list[ImportLine]:
    """Every line of an export, or a UsageError naming the first bad line and what is wrong in it."""
    lines = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip(" \t\r"):
            continue
        try:
            lines.append(parse_line(line))
        except ValueError as e:
            raise UsageError(f"{file}, line {number}: {e}; nothing was imported.") from None
    return lines


def parse_line(line: str) -> ImportLine:
    from server.memory.storage import MemoryRecord, Scope, Source, Via

    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    scope = _text(data, "scope")
    if scope not in ("user", "session"):
        raise ValueError(f"`scope` must be user or session, not {scope!r}")
    key = data.get("key")
    if key is not None and not isinstance(key, str):
        raise ValueError("`key` must be a string or null")
    session = data.get("session")
    if session is not None and not isinstance(session, str):
        raise ValueError("`session` must be a string or null")
    record = MemoryRecord(
        handle=_text(data, "handle"),
        scope=Scope(scope),
        key=key,
        content=_text(data, "content"),
        created_at=_moment(data, "created_at"),
        updated_at=_moment(data, "updated_at"),
        source=_source(data) or Source(via=Via.IMPORT),
    )
    return ImportLine(record, Scope(scope), session)


def _source(data: dict[str, Any]) -> Source | None:
    """The line's `source`, as exported (older exports have none)."""
    from pydantic import ValidationError

    from server.memory.storage import Source

    if data.get("source") is None:
        return None
    try:
        return Source.model_validate(data["source"])
    except ValidationError:
        raise ValueError(
            "`source` must be an object with `via` (tool, route_completion, cli or import) and "
            "optional `client`, `session` and `model` strings"
        ) from None


def _text(data: dict[str, Any], field: str) -> str:
    if field not in data:
        raise ValueError(f"`{field}` is missing")
    value = data[field]
    if not isinstance(value, str):
        raise ValueError(f"`{field}` must be a string, not {type(value).__name__}")
    return value


def _moment(data: dict[str, Any], field: str) -> datetime:
    text = _text(data, field)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"`{field}` must be an ISO 8601 date and time with a UTC offset, not {text!r}")
    return moment


async def import_memories(
    store: MemoryStorage, owner: Owner, lines: list[ImportLine], *, session: str | None
) -> int:
    """Restore the lines of an export; `session` (--session) replaces the sessions they name.

    In bulk (`restore_many`), per owner and scope in the lines' order, IMPORT_PART at a time."""
    from server.memory.storage import Owner

    groups: dict[tuple[Owner, Scope], list[MemoryRecord]] = {}
    for line in lines:
        target = Owner(user=owner.user, session=session or line.session or owner.session)
        groups.setdefault((target, line.scope), []).append(line.record)
    progress = Progress(len(lines), "import")
    for (target, scope), records in groups.items():
        for start in range(0, len(records), IMPORT_PART):
            part = records[start : start + IMPORT_PART]
            await store.restore_many(target, scope, part)
            progress.advance(len(part))
    print(f"Imported {len(lines)} memories.", file=sys.stderr)
    return 0


class Progress:
    """A progress bar on stderr for long imports and exports (only when stderr is a terminal)."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.enabled = stream.isatty() and total >= 200
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.enabled and (self.done % 100 == 0 or self.done == self.total):
            width = 30
            filled = width * self.done // max(self.total, 1)
            pct = 100 * self.done // max(self.total, 1)
            self.stream.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {pct:3d}% {self.done}/{self.total}"
            )
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
