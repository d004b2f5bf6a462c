"""One HTTP call to a provider: retries with jittered backoff, one overall deadline, error mapping.

Foreign exceptions (httpx's) become `ProviderError` here and nowhere else. Nothing we raise or log
carries a header or a query string, so keys cannot leak through them.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from server.errors import ProviderError, ProviderErrorCategory
from server.providers.failures import ErrorDetail, RetryHint, build_error
from server.providers.redaction import clip

logger = logging.getLogger(__name__)

# httpcore's DEBUG traces print the exceptions they see, and h11 quotes a refused header whole
# (`Illegal header value b'Bearer sk-...'`); these loggers stay at WARNING or above, whatever the level.
_HTTP_LIBRARY_LOGGERS = ("httpx", "httpcore", "h11", "h2", "hpack")


def quiet_http_library_logs() -> None:
    """Call once logging is set up: the HTTP libraries log nothing below WARNING (or the root level)."""
    level = max(logging.WARNING, logging.getLogger().level)
    for name in _HTTP_LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(level)


ErrorParser = Callable[[int, Any], ErrorDetail]
RetryHintReader = Callable[[Mapping[str, str]], RetryHint]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    timeout: float = 120.0  # one deadline per call: every attempt, wait and stream read fits in it
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a provider asking for longer than this is not waited for
    connect_timeout: float | None = None  # None: connecting may take the whole deadline


@dataclass(frozen=True, slots=True)
class Clock:
    """Time as the retry loop sees it; tests pass a fake one so nothing really sleeps."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    random: Callable[[], float] = random.random


@dataclass(frozen=True, slots=True)
class WireRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def content(self) -> bytes | None:
        return None if self.body is None else json.dumps(self.body, separators=(",", ":")).encode()


class HttpCaller:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        provider: str,
        secrets: list[str],
        parse_error: ErrorParser,
        retry_hint: RetryHintReader,
        policy: RetryPolicy,
        clock: Clock,
        key_env: str | None = None,
    ) -> None:
        self._client = client
        self._key_env = key_env
        self._provider = provider
        self._secrets = secrets
        self._parse_error = parse_error
        self._retry_hint = retry_hint
        self._policy = policy
        self._clock = clock

    def error(self, detail: ErrorDetail, model: str | None, status: int | None = None) -> ProviderError:
        return build_error(
            provider=self._provider,
            model=model,
            status=status,
            detail=detail,
            secrets=self._secrets,
            key_env=self._key_env,
        )

    async def request_json(self, wire: WireRequest, model: str | None) -> Any:
        deadline = self._clock.now() + self._policy.timeout
        attempt = 0
        while True:
            try:
                remaining = self._remaining(deadline, model)
                # httpx's timeouts bound each read; the scope also bounds a body that trickles in.
                with anyio.move_on_after(remaining) as scope, self._transport_errors(model, wire.url):
                    response = await self._client.request(
                        wire.method,
                        wire.url,
                        headers=wire.headers,
                        content=wire.content(),
                        timeout=self._timeout(remaining),
                    )
                if scope.cancelled_caught:
                    raise self._deadline_error(model)
                if response.is_success:
                    return self._decode_json(response.content, model, response.status_code)
                raise self._http_error(response, model)
            except ProviderError as error:
                await self._wait_before_retry(error, attempt, deadline)
            attempt += 1

    async def stream(self, wire: WireRequest, model: str | None) -> AsyncGenerator[bytes, None]:
        """The response body in chunks; retried only until the first chunk has been handed out."""
        deadline = self._clock.now() + self._policy.timeout
        attempt = 0
        started = False
        while True:
            try:
                with self._transport_errors(model, wire.url):
                    async with self._client.stream(
                        wire.method,
                        wire.url,
                        headers=wire.headers,
                        content=wire.content(),
                        timeout=self._timeout(self._remaining(deadline, model)),
                    ) as response:
                        if not response.is_success:
                            await response.aread()
                            raise self._http_error(response, model)
                        async for chunk in response.aiter_bytes():
                            if chunk:
                                started = True
                                yield chunk
                            if self._clock.now() > deadline:
                                raise self._deadline_error(model)
                        return
            except ProviderError as error:
                # Once bytes were handed out, a replay would repeat them: no retry here. The error keeps
                # its `retryable`, so a caller that showed nothing yet may still try another model.
                if started:
                    raise _mid_stream(error) from error
                await self._wait_before_retry(error, attempt, deadline)
            attempt += 1

    def _remaining(self, deadline: float, model: str | None) -> float:
        remaining = deadline - self._clock.now()
        if remaining <= 0:
            raise self._deadline_error(model)
        return remaining

    def _timeout(self, remaining: float) -> httpx.Timeout:
        connect = self._policy.connect_timeout
        return httpx.Timeout(remaining, connect=remaining if connect is None else min(connect, remaining))

    def _deadline_error(self, model: str | None) -> ProviderError:
        detail = ErrorDetail(
            f"no complete answer within the {self._policy.timeout:g}s deadline",
            category=ProviderErrorCategory.TIMEOUT,
            retryable=True,
        )
        return self.error(detail, model)

    async def _wait_before_retry(self, error: ProviderError, attempt: int, deadline: float) -> None:
        # A refused connection is a server that is not running: a second later it still is not.
        if not error.retryable or attempt >= self._policy.max_retries or _refused(error.__cause__):
            raise error
        policy = self._policy
        backoff = min(policy.max_delay, policy.base_delay * 2**attempt) * (0.5 + self._clock.random() / 2)
        if error.retry_after is not None:
            if error.retry_after > policy.max_retry_after:
                raise error
            backoff = max(backoff, error.retry_after)
        if self._clock.now() + backoff >= deadline:
            raise error
        logger.info(
            "retrying %s after %s (attempt %d, waiting %.2fs)",
            self._provider,
            error.category.value,
            attempt + 1,
            backoff,
        )
        await self._clock.sleep(backoff)

    def _http_error(self, response: httpx.Response, model: str | None) -> ProviderError:
        try:
            payload: Any = json.loads(response.content) if response.content else None
        except ValueError:
            payload = clip(response.text, self._secrets)
        detail = self._parse_error(response.status_code, payload)
        return build_error(
            provider=self._provider,
            model=model,
            status=response.status_code,
            detail=detail,
            secrets=self._secrets,
            hint=self._retry_hint(response.headers),
            key_env=self._key_env,
        )

    def _decode_json(self, content: bytes, model: str | None, status: int) -> Any:
        try:
            return json.loads(content)
        except ValueError:
            raise self.error(
                ErrorDetail(
                    "the provider's response is not valid JSON", ProviderErrorCategory.INVALID_RESPONSE
                ),
                model,
                status,
            ) from None

    @contextmanager
    def _transport_errors(self, model: str | None, url: str) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as e:
            detail = ErrorDetail(
                f"the provider did not answer in time ({type(e).__name__})",
                ProviderErrorCategory.TIMEOUT,
                retryable=True,
            )
            raise self.error(detail, model) from e
        except httpx.TransportError as e:
            if _refused(e):
                message = f"connection refused at {origin(url)}: is the server running there?"
            else:
                message = f"connection to the provider failed ({type(e).__name__}: {e})"
            # Retryable even when refused: another model may still answer (we just do not retry it here).
            detail = ErrorDetail(message, ProviderErrorCategory.UNAVAILABLE, retryable=True)
            raise self.error(detail, model) from e


def _refused(error: BaseException | None) -> bool:
    """Whether `error` is, or was caused by, a refused TCP connection."""
    while error is not None:
        if isinstance(error, ConnectionRefusedError):
            return True
        error = error.__cause__ or error.__context__
    return False


def origin(raw: str) -> str:
    """scheme://host:port only: a path or query could carry a key, userinfo a password."""
    url = httpx.URL(raw)
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def _mid_stream(error: ProviderError) -> ProviderError:
    """The same failure, said to have come after the stream started (and so not replayed here)."""
    return ProviderError(
        error.category,
        f"{error.message} (after the stream had started)",
        provider=error.provider,
        model=error.model,
        status=error.status,
        retryable=error.retryable,
        retry_after=error.retry_after,
    )
