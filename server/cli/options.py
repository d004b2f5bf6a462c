"""Option types and option groups that several commands share."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from server.errors import MemoryRouterError

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[Any]  # argparse has no public name for it

CURRENT_SESSION = "current"


class UsageError(MemoryRouterError):
    """The command line asks for something that cannot be done; the message says what would work."""


def _whole_number(text: str, *, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; {what}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} is too small; {what}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, minimum=1, what="give 1 or more")


def port_number(text: str) -> int:
    port = _whole_number(text, minimum=0, what="give a port from 0 to 65535")
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{port} is too large; give a port from 0 to 65535")
    return port


def add_owner_options(parser: argparse.ArgumentParser, *, scope_help: str) -> None:
    parser.add_argument("--user", help="whose memories (default: MEMORY_ROUTER_USER, else the OS login name)")
    parser.add_argument("--scope", choices=["user", "session"], help=scope_help)
    parser.add_argument(
        "--session",
        help=(
            "the session: the id `serve` logs when ready, or `current` for MEMORY_ROUTER_SESSION "
            "(implies --scope session)"
        ),
    )


def read_stdin_text(what: str) -> str:
    """Everything piped on stdin; refused on a terminal, where it would wait for input unprompted."""
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(
            f"{what} is `-` or missing, so it is read from stdin, but stdin is a terminal: pipe it in or pass it as an argument."
        )
    return sys.stdin.read()
