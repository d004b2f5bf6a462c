"""One error hierarchy for memory-router.

    MemoryRouterError
    ├── ConfigError            bad or missing configuration (names the variable to set)
    ├── StoreError             the memory store failed
    │   ├── StoreLockedError   an embedded store's lock is held by a process that does not share it
    │   └── StoreConflictError a transaction kept conflicting after bounded retries
    ├── MemoryInputError       invalid memory arguments (key too long, value too large, ...)
    ├── ProviderError          a model provider failed; carries a ProviderErrorCategory
    └── RoutingError           the routing loop cannot go on (unknown model, too many rounds, ...)

Every message is written for the person reading it: what happened and what to do.
No message ever contains a secret.
"""

from __future__ import annotations

from enum import StrEnum


class MemoryRouterError(Exception):
    """Base of every error memory-router raises on purpose."""


class ConfigError(MemoryRouterError):
    """Configuration is missing or invalid."""


class StoreError(MemoryRouterError):
    """The memory store failed."""


class StoreLockedError(StoreError):
    """An embedded store is already open in another process."""


class StoreConflictError(StoreError):
    """A write kept conflicting with concurrent writes after bounded retries."""


class MemoryInputError(MemoryRouterError):
    """A memory operation was given invalid arguments."""


class RoutingError(MemoryRouterError):
    """A completion cannot be routed (unknown model, unconfigured provider, too many rounds)."""


class ProviderErrorCategory(StrEnum):
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    INVALID_REQUEST = "invalid_request"
    CONTEXT_LENGTH = "context_length"
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    CONTENT_FILTER = "content_filter"
    INVALID_RESPONSE = "invalid_response"  # the provider answered with a body we cannot read
    UNKNOWN = "unknown"


class ProviderError(MemoryRouterError):
    """A provider request failed.

    `message` is the provider's own message from its error body (or ours when there is none);
    it never contains a secret.
    """

    def __init__(
        self,
        category: ProviderErrorCategory,
        message: str,
        *,
        provider: str,
        model: str | None = None,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.category = category
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.provider}/{self.model}" if self.model else self.provider
        status = f" (HTTP {self.status})" if self.status is not None else ""
        retry = "retryable" if self.retryable else "not retryable"
        if self.retry_after is not None:
            retry += f", retry after {self.retry_after:g}s"
        return f"{self.category.value} error from {where}{status}, {retry}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"ProviderError(category={self.category.value!r}, provider={self.provider!r}, "
            f"model={self.model!r}, status={self.status!r}, retryable={self.retryable!r})"
        )
