"""The `memory-router` command line (also `python -m server`).

stdout is reserved for the protocol under `serve` (stdio); every log line goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, TextIO

import anyio
import httpx

from server.config import HTTP_DEFAULT_HOST, HTTP_DEFAULT_PORT, Settings, load_settings
from server.errors import MemoryRouterError
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope
from server.providers import NO_PROVIDER, ProviderDirectory, quiet_http_library_logs
from server.providers.types import Message
from server.routing.catalog import describe_models, describe_providers
from server.routing.catalog_text import doctor_lines, model_lines, model_notes, status_line
from server.routing.router import RouteRequest
from server.runtime import CONNECT_TIMEOUT_SECONDS, open_runtime

logger = logging.getLogger("server")

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per provider request is noise at INFO, and their DEBUG traces can quote keys.
    quiet_http_library_logs()


def _first_router_error(exc: BaseException) -> MemoryRouterError | None:
    """Find our own error inside the exception groups that task groups wrap it in."""
    if isinstance(exc, MemoryRouterError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _first_router_error(inner)) is not None:
                return found
    if exc.__cause__ is not None:
        return _first_router_error(exc.__cause__)
    return None


# ---- serve -------------------------------------------------------------------------------------


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from server.mcp.http import serve_http
    from server.mcp.server import build_server

    if args.transport == "stdio":
        await build_server(settings).run_stdio_async()
        return 0

    await serve_http(settings, transport=args.transport, host=args.host, port=args.port)
    return 0


# ---- token -------------------------------------------------------------------------------------


async def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from server.mcp.auth import token_command

    return token_command(args.action, args.user, settings)


# ---- ask and doctor ----------------------------------------------------------------------------


async def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    owner = Owner(user=settings.user, session=settings.session or "cli")
    request = RouteRequest(
        model=args.model,
        messages=[Message(role="user", content=args.prompt)],
        system=args.system,
        memory=not args.no_memory,
    )

    async def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    async with open_runtime(settings) as runtime:
        result = await runtime.router.route(request, owner, show)
    if not result.text.endswith("\n"):
        print()
    for op in result.memory_ops:
        print(f"[memory] {op.op} {op.scope} {op.key!r}: {op.outcome}", file=sys.stderr)
    for call in result.tool_calls:
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        print(f"[not run] the model asked for a host tool: {call.name}({arguments})", file=sys.stderr)
    return 0


async def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with open_runtime(settings) as runtime:
            count = await runtime.store.count(Owner(user=settings.user, session="doctor"), Scope.USER)
            store = f"{settings.store} opens; {count} user memories for {settings.user!r}"
            print(status_line(True, "store", store))
            catalog = await describe_models(runtime.router, probe_all=True, wait=args.wait)
    except MemoryRouterError as e:
        print(status_line(False, "store", f"{e} (check MEMORY_ROUTER_STORE)"))
        return 1
    lines, healthy = doctor_lines(catalog)
    print("\n".join(lines))
    default = catalog["default_model"]
    print(f"default model: {default or 'none (set MEMORY_ROUTER_DEFAULT_MODEL or a provider key)'}")
    return 0 if healthy else 1


async def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    """The `router://models` document for hosts that cannot read resources."""
    # No store: listing models needs none, and a running server may hold it.
    timeout = httpx.Timeout(settings.request_timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS)
    async with httpx.AsyncClient(timeout=timeout) as http:
        catalog = await describe_providers(ProviderDirectory(settings, http), fresh=True, wait=args.wait)
    if args.json:
        print(json.dumps(catalog, indent=2))
    else:
        for line in model_lines(catalog):
            print(line)
        for note in model_notes(catalog):
            print(note, file=sys.stderr)
    if not any(entry["configured"] for entry in catalog["providers"]):
        print(f"memory-router: {NO_PROVIDER}", file=sys.stderr)
        return 1
    return 0


# ---- memory ------------------------------------------------------------------------------------


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


def _owner(args: argparse.Namespace, settings: Settings) -> Owner:
    return Owner(user=args.user or settings.user, session=args.session or settings.session or "default")


def _print_record(record: MemoryRecord) -> None:
    key = record.key if record.key is not None else "(no key)"
    print(f"{record.handle}\t{record.updated_at.isoformat(timespec='seconds')}\t{key}\t{record.content}")


async def cmd_memory(args: argparse.Namespace, settings: Settings) -> int:
    owner = _owner(args, settings)
    scope = Scope(args.scope)
    async with open_runtime(settings) as runtime:
        store = runtime.store
        match args.action:
            case "list":
                for record in await store.list(owner, scope, limit=args.limit):
                    _print_record(record)
            case "show":
                found = await store.get(owner, scope, args.key)
                if found is None:
                    print(f'No {scope.value} memory found for "{args.key}".', file=sys.stderr)
                    return 1
                print(json.dumps(_export_line(found, owner), ensure_ascii=False, indent=2))
            case "forget":
                forgotten = (
                    await store.forget(owner, scope, args.handle)
                    if args.handle
                    else await store.forget_key(owner, scope, args.key)
                )
                if forgotten is None:
                    print(f"No {scope.value} memory found for that key or handle.", file=sys.stderr)
                    return 1
                print(f'Forgot {scope.value} memory "{forgotten.key or forgotten.handle}".')
            case "export":
                await _export_memories(store, owner, scope, args.file)
            case "import":
                return await _import_memories(store, owner, args.file, session=args.session)
    return 0


async def _export_memories(store: MemoryStorage, owner: Owner, scope: Scope, file: str | None) -> None:
    records = await store.list(owner, scope)
    progress = Progress(len(records), "export")
    with _open_out(file) as out:
        for record in reversed(records):  # oldest first, so an import replays history in order
            out.write(json.dumps(_export_line(record, owner), ensure_ascii=False) + "\n")
            progress.advance()
    print(f"Exported {len(records)} {scope.value} memories.", file=sys.stderr)


async def _import_memories(store: MemoryStorage, owner: Owner, file: str, *, session: str | None) -> int:
    """Restore the lines of an export; `session` (--session) overrides the sessions they name."""
    lines = (await anyio.Path(file).read_text(encoding="utf-8")).splitlines()
    progress = Progress(len(lines), "import")
    imported = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record, line_scope, line_session = _import_line(line)
        except (ValueError, KeyError, TypeError) as e:
            print(f"{file}:{number}: not a memory-router export line ({e}).", file=sys.stderr)
            return 1
        target = Owner(user=owner.user, session=session or line_session or owner.session)
        await store.restore(target, line_scope, record)
        imported += 1
        progress.advance()
    print(f"Imported {imported} memories.", file=sys.stderr)
    return 0


class _Stdout:
    def __enter__(self) -> TextIO:
        return sys.stdout

    def __exit__(self, *_: object) -> None:
        sys.stdout.flush()


def _open_out(file: str | None) -> Any:
    return _Stdout() if file in (None, "-") else open(file, "w", encoding="utf-8")


def _export_line(record: MemoryRecord, owner: Owner) -> dict[str, Any]:
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
    return line


def _import_line(line: str) -> tuple[MemoryRecord, Scope, str | None]:
    data = json.loads(line)
    scope = Scope(data["scope"])
    record = MemoryRecord(
        handle=str(data["handle"]),
        scope=scope,
        key=data.get("key"),
        content=str(data["content"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
    )
    return record, scope, data.get("session")


# ---- argument parsing --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memory-router",
        description="An MCP server with memory that lasts and one door to every model.",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (logs go to stderr)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=["stdio", "sse", "http"], default="stdio")
    serve.add_argument("--host", default=HTTP_DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=HTTP_DEFAULT_PORT)
    serve.set_defaults(run=cmd_serve)

    ask = commands.add_parser("ask", help="one completion with memory, printed as it streams")
    ask.add_argument("prompt")
    ask.add_argument("--model", help="provider/model or an alias (default: MEMORY_ROUTER_DEFAULT_MODEL)")
    ask.add_argument("--system", help="system prompt (memories are appended to it)")
    ask.add_argument("--no-memory", action="store_true", help="no memory preamble and no memory tool")
    ask.set_defaults(run=cmd_ask)

    doctor = commands.add_parser("doctor", help="check the store and every configured provider")
    doctor.add_argument("--wait", type=float, default=10.0, help="seconds to wait for each provider")
    doctor.set_defaults(run=cmd_doctor)

    models = commands.add_parser("models", help="list every configured provider's models, one per line")
    models.add_argument("--json", action="store_true", help="print the router://models document")
    models.add_argument("--wait", type=float, default=10.0, help="seconds to wait for each provider's list")
    models.set_defaults(run=cmd_models)

    memory = commands.add_parser("memory", help="manage stored memories")
    actions = memory.add_subparsers(dest="action", required=True)

    def owner_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--user", help="whose memories (default: MEMORY_ROUTER_USER or the OS login name)")
        p.add_argument("--scope", choices=["user", "session"], default="user")
        p.add_argument("--session", help="the session, for --scope session (default: MEMORY_ROUTER_SESSION)")

    p = actions.add_parser("list", help="list memories, newest first")
    owner_options(p)
    p.add_argument("--limit", type=int)
    p = actions.add_parser("show", help="show one memory as JSON")
    owner_options(p)
    p.add_argument("key")
    p = actions.add_parser("forget", help="forget one memory by key (or --handle)")
    owner_options(p)
    p.add_argument("key", nargs="?")
    p.add_argument("--handle")
    p = actions.add_parser("export", help="write memories as JSON lines")
    owner_options(p)
    p.add_argument("file", nargs="?", help="output file (default: stdout)")
    p = actions.add_parser("import", help="read JSON lines written by export (keyed memories upsert)")
    owner_options(p)
    p.add_argument("file")
    memory.set_defaults(run=cmd_memory)

    token = commands.add_parser("token", help="manage HTTP bearer tokens (MEMORY_ROUTER_TOKENS_FILE)")
    token_actions = token.add_subparsers(dest="action", required=True)
    p = token_actions.add_parser("add", help="print a new token for USER once; only its hash is stored")
    p.add_argument("user")
    token_actions.add_parser("list", help="list users that have tokens").set_defaults(user=None)
    token_actions.add_parser("revoke", help="remove every token of USER").add_argument("user")
    token.set_defaults(run=cmd_token)

    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "memory" and args.action == "forget" and not (args.key or args.handle):
        print("memory forget needs a KEY or --handle.", file=sys.stderr)
        sys.exit(2)
    _setup_logging(args.log_level)
    try:
        settings = load_settings()
        run: Command = args.run
        code = anyio.run(run, args, settings)
    except KeyboardInterrupt:
        code = 130
    except BaseException as e:
        if (error := _first_router_error(e)) is None:
            raise
        print(f"memory-router: {error}", file=sys.stderr)
        code = 1
    sys.exit(code)
