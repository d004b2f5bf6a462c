"""Turning provider failures into `ProviderError`: classification, retry hints, redaction.

Classification is by HTTP status first; an adapter's reading of the error body may only refine it
(a 400 that is really a context-length or key problem, a 429 that is an exhausted quota), so a 500
whose body mentions "policy" stays an outage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from server.errors import ProviderError, ProviderErrorCategory
from server.providers.redaction import redact

Category = ProviderErrorCategory

_BY_STATUS: dict[int, Category] = {
    400: Category.INVALID_REQUEST,
    401: Category.AUTHENTICATION,
    402: Category.PERMISSION,
    403: Category.PERMISSION,
    404: Category.NOT_FOUND,
    408: Category.TIMEOUT,
    409: Category.UNAVAILABLE,
    413: Category.INVALID_REQUEST,
    422: Category.INVALID_REQUEST,
    429: Category.RATE_LIMIT,
    500: Category.UNAVAILABLE,
    502: Category.UNAVAILABLE,
    503: Category.OVERLOADED,
    504: Category.TIMEOUT,
    529: Category.OVERLOADED,
}

RETRYABLE_CATEGORIES = frozenset(
    {Category.RATE_LIMIT, Category.OVERLOADED, Category.UNAVAILABLE, Category.TIMEOUT}
)

_CONTEXT_LENGTH_HINTS = (
    "context_length_exceeded",
    "exceed_context_size",
    "maximum context length",
    "context window",
    "prompt is too long",
    "input token count",
    "too many tokens",
)


def category_for_status(status: int) -> Category:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return Category.UNAVAILABLE
    return Category.INVALID_REQUEST if status >= 400 else Category.UNKNOWN


def looks_like_context_length(*texts: str | None) -> bool:
    joined = " ".join(t for t in texts if t).lower()
    return any(hint in joined for hint in _CONTEXT_LENGTH_HINTS)


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """What an adapter read from an error body."""

    message: str
    category: Category | None = None  # a refinement of the status-based category
    retryable: bool | None = None  # None: decided by category
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RetryHint:
    """What a failed response's headers say about retrying."""

    after: float | None = None  # seconds to wait
    retry: bool | None = None  # the provider's own verdict, over the category's


def header_retry_hint(
    headers: Mapping[str, str], *, milliseconds: str | None = None, verdict: str | None = None
) -> RetryHint:
    """The standard `retry-after` (seconds or an HTTP date), preceded by a vendor's header of
    `milliseconds` to wait, and with its `verdict` header ("true"/"false") when it names one."""
    after = _milliseconds(headers.get(milliseconds)) if milliseconds else None
    if after is None:
        after = _retry_after(headers.get("retry-after"))
    flag = headers.get(verdict) if verdict else None
    return RetryHint(after=after, retry={"true": True, "false": False}.get(flag or ""))


def _milliseconds(value: str | None) -> float | None:
    try:
        return max(float(value) / 1000, 0.0) if value else None
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def build_error(
    *,
    provider: str,
    model: str | None,
    status: int | None,
    detail: ErrorDetail,
    secrets: Iterable[str],
    hint: RetryHint | None = None,
    key_env: str | None = None,
) -> ProviderError:
    """The error for `detail`; a refused key names `key_env`, the variable to check (never the key)."""
    category = category_for_status(status) if status is not None else Category.UNKNOWN
    if detail.category is not None:
        category = detail.category
    retryable = category in RETRYABLE_CATEGORIES or status in (408, 409)
    if detail.retryable is not None:
        retryable = detail.retryable
    retry_after = detail.retry_after
    if hint is not None:
        retry_after = hint.after if retry_after is None else retry_after
        retryable = hint.retry if hint.retry is not None else retryable
    message = redact(detail.message, secrets) or f"HTTP {status}"
    if key_env is not None and category in (Category.AUTHENTICATION, Category.PERMISSION):
        message = f"{message} (check {key_env})"
    return ProviderError(
        category,
        message,
        provider=provider,
        model=model,
        status=status,
        retryable=retryable,
        retry_after=retry_after,
    )
