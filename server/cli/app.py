"""The parser, and the one place where a command's failure becomes one line on stderr.

Command modules import only the standard library at the top: `--help`, parse errors and the
commands that serve no MCP never load the MCP SDK, uvicorn or the providers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn

from server import __version__
from server.cli import ask, doctor, memory, serve

if TYPE_CHECKING:
    from server.config import Settings

Command = Callable[[argparse.Namespace, "Settings"], Coroutine[Any, Any, int]]

logger = logging.getLogger("server")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EXIT_BROKEN_PIPE = 141  # what a shell reports for a tool that SIGPIPE ended
EXIT_INTERRUPTED = 130
PROVIDER_COMMANDS = ("serve", "ask", "doctor", "models")  # the commands that load the providers anyway


class Parser(argparse.ArgumentParser):
    """argparse, with its complaints on one line that says where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _log_level_option(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=default,
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING or ERROR; logs go to stderr (default: INFO for serve, WARNING otherwise)",
    )


def build_parser() -> Parser:
    parser = Parser(
        prog="memory-router", description="An MCP server with memory that lasts and one door to every model."
    )
    parser.add_argument("--version", action="version", version=f"memory-router {__version__}")
    _log_level_option(parser, default=None)
    # The subcommands take --log-level too; SUPPRESS keeps theirs from hiding one given before them.
    common = argparse.ArgumentParser(add_help=False)
    _log_level_option(common, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parsers(commands, common)
    ask.add_parser(commands, common)
    doctor.add_parser(commands, common)
    memory.add_parser(commands, common)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    level = args.log_level or ("INFO" if args.command == "serve" else "WARNING")
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    _setup_logging(args)
    sys.exit(_run(args))


def console() -> NoReturn:
    """The `memory-router` script and `python -m server`: `main`, then an exit that skips the
    interpreter's teardown. The embedded SurrealDB engine (surrealdb 2.0) can abort the process with a
    Rust panic while Python finalizes objects at exit (seen as SIGABRT after a finished `memory list`);
    by then every write is committed and the store closed, so nothing is lost by not finalizing."""
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            code = code or 141  # the reader went away, as a tool ended by SIGPIPE reports
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    import anyio

    from server.config import load_settings

    try:
        if args.command in PROVIDER_COMMANDS:
            from server.providers import quiet_http_library_logs

            # One line per provider request is noise at INFO, and their DEBUG traces can quote keys.
            quiet_http_library_logs()
        settings = load_settings()
        run: Command = args.run
        return anyio.run(run, args, settings)
    except BaseException as e:  # every failure ends as one line (or none) and a code
        return _report(e)


def _report(exc: BaseException) -> int:
    """Print what went wrong as one line on stderr; the exit code."""
    from server.errors import MemoryRouterError

    if isinstance(exc, SystemExit):
        raise exc
    leaves = list(_leaves(exc))
    if (router_error := next((e for e in leaves if isinstance(e, MemoryRouterError)), None)) is not None:
        print(f"memory-router: {router_error}", file=sys.stderr)
        return 1
    if any(isinstance(e, BrokenPipeError) for e in leaves):
        # The reader went away (`| head`, a host that quit): stop quietly, final flush included.
        logger.info("stdout was closed by whoever read it; stopping.")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    if any(isinstance(e, KeyboardInterrupt) for e in leaves):
        return EXIT_INTERRUPTED
    logger.debug("unexpected failure", exc_info=exc)
    print(
        f"memory-router: unexpected {type(leaves[0]).__name__}: {leaves[0]}. This is a bug; "
        "rerun with --log-level DEBUG for the traceback and report it.",
        file=sys.stderr,
    )
    return 1


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside the groups that task groups wrap them in, and what our errors came from
    (a MemoryRouterError raised from another error comes first)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    from server.errors import MemoryRouterError

    cause = exc.__cause__
    if cause is not None and not isinstance(exc, MemoryRouterError):
        return [exc, *_leaves(cause)]
    return [exc]
