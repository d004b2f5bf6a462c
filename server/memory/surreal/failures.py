"""Where the SurrealDB SDK's failures become ours: the one translation boundary, and the reading of a
query's response into results, retryable conflicts and the store's own refusals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import aiohttp
from surrealdb import SurrealError
from websockets.exceptions import WebSocketException

from server.errors import MemoryInputError, StoreError
from server.memory.storage import MemoryLimits, Scope
from server.memory.surreal.queries import EXPIRED_MARK, LIMIT_MARK

# What the SDK raises: the embedded engine reports failures as RuntimeError, remote ones come from the
# transport, and a name holding a lone surrogate cannot be encoded.
SDK_ERRORS: Final = (
    SurrealError,
    OSError,
    RuntimeError,
    UnicodeEncodeError,
    aiohttp.ClientError,
    WebSocketException,
)


class Retry(Exception):
    """A transaction conflicted and may be retried."""


class LimitReached(Exception):
    """The per-owner record limit would be exceeded."""


def limit_reached(scope: Scope, limits: MemoryLimits) -> MemoryInputError:
    """What a write that met `LimitReached` tells the caller."""
    who = "user" if scope is Scope.USER else "session"
    return MemoryInputError(
        f"This {who} already has {limits.max_records_per_owner} {scope.value} memories, "
        "the limit (MEMORY_ROUTER_MAX_MEMORIES). "
        "Forget some, or record under an existing key to replace it."
    )


class SessionExpired(Exception):
    """The session was idle past the TTL: its entries must go before it is written again."""


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """The one boundary where SDK errors become ours."""
    try:
        yield
    except UnicodeEncodeError:
        # Keys and values are checked before; what is left are the names of users and sessions.
        raise StoreError(
            f"The memory store failed while {action}: a user or session name is not valid Unicode text "
            "(it holds a lone surrogate)."
        ) from None
    except SDK_ERRORS as e:
        raise StoreError(f"The memory store failed while {action}: {e}") from e


def statement_results(response: dict[str, Any], action: str) -> list[Any]:
    """The result of each statement of a `query_raw` response.

    Raises `Retry` on a conflict, `LimitReached` / `SessionExpired` when a query threw its mark,
    and `StoreError` on any other failure.
    """
    if response.get("error") is not None:
        message = str(response["error"].get("message", response["error"]))
        if _conflict(message):
            raise Retry
        raise StoreError(f"The memory store failed while {action}: {message}")
    statements: list[dict[str, Any]] = response.get("result") or []
    failures = [str(s.get("result")) for s in statements if s.get("status") == "ERR"]
    if failures:
        if any(LIMIT_MARK in f for f in failures):
            raise LimitReached
        if any(EXPIRED_MARK in f for f in failures):
            raise SessionExpired
        if any(_conflict(f) for f in failures):
            raise Retry
        raise StoreError(f"The memory store failed while {action}: {failures[0]}")
    return [s.get("result") for s in statements]


def _conflict(message: str) -> bool:
    lowered = message.lower()
    return "conflict" in lowered or "can be retried" in lowered
