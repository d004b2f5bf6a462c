"""`memory list | show | record | forget | preamble | export | import`: the store, without MCP."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from server.cli.options import (
    CURRENT_SESSION,
    UsageError,
    add_owner_options,
    positive_int,
    read_stdin_text,
)

if TYPE_CHECKING:
    from server.cli.options import SubParsers
    from server.config import Settings
    from server.memory.service import MemoryService
    from server.memory.storage import MemoryRecord, Owner, Scope

SCOPE_HELP = "user (durable facts, the default) or session (one session's working memory)"


def add_parser(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    from server.cli import transfer

    memory = commands.add_parser(
        "memory", parents=[common], help="list, show, record, forget, export, import"
    )
    actions = memory.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, parents=[common], help=help, description=help
        )
        add_owner_options(parser, scope_help=SCOPE_HELP)
        return parser

    p = action("list", "list memories, newest first: handle, updated, key, content (tab-separated)")
    p.add_argument("--limit", type=positive_int, help="show at most this many (default: all)")
    p = action("show", "show one memory as JSON")
    p.add_argument("key", help="the memory's key")
    p = action("record", "record VALUE under KEY, replacing what was there (as the memory tool does)")
    p.add_argument("key", help="the memory's key")
    p.add_argument("value", help="the fact; `-` reads it from stdin")
    p = action("forget", "forget one memory by KEY (or --handle)")
    p.add_argument("key", nargs="?", help="the memory's key")
    p.add_argument("--handle", help="the handle `memory list` shows, for a memory without a key")
    p = action("preamble", "print the memory preamble a model would get with its system prompt")
    p.add_argument("--query", help="the turn's text, when the preamble is chosen for it")
    transfer.add_parsers(action, scope_help=SCOPE_HELP)
    memory.set_defaults(run=cmd_memory)


def resolve_session(args: argparse.Namespace, settings: Settings) -> str | None:
    """`--session`, with `current` meaning the session a stdio server started with this environment uses."""
    if args.session != CURRENT_SESSION:
        return str(args.session) if args.session is not None else None
    if settings.session is None:
        raise UsageError(
            "--session current names MEMORY_ROUTER_SESSION, which is not set: a stdio server without it "
            "picks a new session at each start and logs it on stderr (`session ...` in its ready line); "
            "pass that id to --session."
        )
    return settings.session


def owner_and_scope(args: argparse.Namespace, settings: Settings, session: str | None) -> tuple[Owner, Scope]:
    """Whose memories, and which scope: session when a session was named, else user."""
    from server.memory.storage import Owner, Scope

    scope = Scope(args.scope or ("session" if session is not None else "user"))
    return Owner(user=args.user or settings.user, session=session or settings.session or "default"), scope


async def cmd_memory(args: argparse.Namespace, settings: Settings) -> int:
    from server.cli import transfer
    from server.runtime import open_memory

    if args.action == "forget" and not (args.key or args.handle):
        raise UsageError("memory forget needs a KEY or --handle (see memory-router memory list).")
    session = resolve_session(args, settings)
    owner, scope = owner_and_scope(args, settings, session)
    # A piped value loses the line break that ends it, as in the shell's $(...).
    value = read_stdin_text("VALUE").rstrip("\n") if args.action == "record" and args.value == "-" else None
    imported = (
        transfer.load_import(args.file, scope if args.scope else None) if args.action == "import" else None
    )
    async with open_memory(settings) as memory:
        match args.action:
            case "list":
                for record in await memory.store.list(owner, scope, limit=args.limit):
                    print_record(record)
            case "show":
                return await _show(memory, owner, scope, args.key)
            case "record":
                return await _record(memory, owner, scope, args.key, args.value if value is None else value)
            case "forget":
                return await _forget(memory, owner, scope, key=args.key, handle=args.handle)
            case "preamble":
                text = (await memory.preamble(owner, query=args.query)).text
                if not text:
                    print("No memories: a model gets no preamble.", file=sys.stderr)
                print(text, end="\n" if text and not text.endswith("\n") else "")
            case "export":
                return await transfer.export_memories(memory.store, owner, scope, args.file)
            case "import":
                return await transfer.import_memories(memory.store, owner, imported or [], session=session)
    return 0


def print_record(record: MemoryRecord) -> None:
    key = record.key if record.key is not None else "(no key)"
    print(f"{record.handle}\t{record.updated_at.isoformat(timespec='seconds')}\t{key}\t{record.content}")


async def _show(memory: MemoryService, owner: Owner, scope: Scope, key: str) -> int:
    from server.cli.transfer import export_line

    found = await memory.store.get(owner, scope, key)
    if found is None:
        print(f'No {scope.value} memory found for "{key}".', file=sys.stderr)
        return 1
    print(json.dumps(export_line(found, owner), ensure_ascii=False, indent=2))
    return 0


async def _record(memory: MemoryService, owner: Owner, scope: Scope, key: str, value: str) -> int:
    from server.memory.storage import Source, Via
    from server.memory.tool import MemoryArguments, Op

    call = MemoryArguments(op=Op.RECORD, scope=scope, key=key, value=value)
    result = await memory.apply(owner, call, Source(via=Via.CLI, session=owner.session))
    print(result.text, file=sys.stderr if result.is_error else sys.stdout)
    return 1 if result.is_error else 0


async def _forget(
    memory: MemoryService, owner: Owner, scope: Scope, *, key: str | None, handle: str | None
) -> int:
    store = memory.store
    forgotten = (
        await store.forget(owner, scope, handle)
        if handle
        else await store.forget_key(owner, scope, key or "")
    )
    if forgotten is None:
        print(f"No {scope.value} memory found for that key or handle.", file=sys.stderr)
        return 1
    print(f'Forgot {scope.value} memory "{forgotten.key or forgotten.handle}".')
    return 0
