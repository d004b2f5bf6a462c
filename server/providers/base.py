"""The `Provider` protocol and the HTTP machinery every adapter shares.

An adapter only says how to build its wire request, read its wire response, read its error body
and decode its stream; `complete` and `stream` are written once here, and a stream decoder ends by
rebuilding the non-streamed body and reading it with the same function `complete` uses, so both
verbs return the same response for the same answer.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, ClassVar, Protocol

import httpx
from pydantic import SecretStr

from server.errors import ProviderError, ProviderErrorCategory
from server.providers.failures import ErrorDetail
from server.providers.framing import Framing
from server.providers.transport import Clock, HttpCaller, RetryPolicy, WireRequest
from server.providers.types import (
    CompletionRequest,
    CompletionResponse,
    FinalResponse,
    StreamEvent,
    ToolCallEvent,
)


class Provider(Protocol):
    name: str
    default_model: str

    async def complete(self, request: CompletionRequest) -> CompletionResponse: ...

    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        """Use inside `contextlib.aclosing` so an abandoned stream closes its HTTP response at once."""
        ...

    async def check(self) -> None: ...


class StreamDecoder(ABC):
    """Turns raw body chunks into events, then into the final response."""

    def __init__(self, provider: HttpProvider, request: CompletionRequest, framing: Framing) -> None:
        self.provider = provider
        self.request = request
        self.response: CompletionResponse
        self._framing = framing

    @abstractmethod
    def on(self, data: dict[str, Any], events: list[StreamEvent]) -> None:
        """Take in one decoded frame, appending any events it completes."""

    @abstractmethod
    def payload(self) -> Any:
        """The non-streamed response body this stream amounts to."""

    def is_terminator(self, frame: str) -> bool:
        return False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return self._take(self._framing.feed(chunk))

    def close(self) -> list[StreamEvent]:
        """Called once the body has ended: reads the rebuilt body the way `complete` would."""
        events = self._take(self._framing.close())
        self.response = self.provider.read_payload(self.payload(), self.request)
        return events + [ToolCallEvent(tool_call=call) for call in self.response.tool_calls]

    def _take(self, frames: list[str]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for frame in frames:
            if self.is_terminator(frame):
                continue
            data = self.load(frame)
            if isinstance(data, dict):
                self.on(data, events)
        return events

    def fail(self, detail: ErrorDetail) -> ProviderError:
        return self.provider.http.error(detail, self.request.model)

    def incomplete(self) -> ProviderError:
        return self.fail(
            ErrorDetail("the stream ended before the answer was complete", ProviderErrorCategory.UNAVAILABLE)
        )

    def load(self, data: str) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            raise self.fail(
                ErrorDetail(
                    "the provider sent a stream event that is not valid JSON", ProviderErrorCategory.UNKNOWN
                )
            ) from None


class HttpProvider(ABC):
    name: str  # set by each adapter class

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: SecretStr | None,
        default_model: str,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.default_model = default_model
        self.http = HttpCaller(
            client,
            provider=self.name,
            secrets=[api_key.get_secret_value()] if api_key else [],
            parse_error=self.parse_error,
            policy=policy or RetryPolicy(),
            clock=clock or Clock(),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, default_model={self.default_model!r})"

    # What each adapter supplies.

    @abstractmethod
    def build_request(self, request: CompletionRequest, *, stream: bool) -> WireRequest: ...

    @abstractmethod
    def parse_response(self, payload: Any, request: CompletionRequest) -> CompletionResponse: ...

    @abstractmethod
    def decoder(self, request: CompletionRequest) -> StreamDecoder: ...

    @abstractmethod
    def parse_error(self, status: int, payload: Any) -> ErrorDetail: ...

    @abstractmethod
    def check_request(self) -> WireRequest: ...

    # The two verbs, written once.

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        payload = await self.http.request_json(self.build_request(request, stream=False), request.model)
        return self.read_payload(payload, request)

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        wire = self.build_request(request, stream=True)
        decoder = self.decoder(request)
        async with aclosing(self.http.stream(wire, request.model)) as chunks:
            async for chunk in chunks:
                for event in decoder.feed(chunk):
                    yield event
        for event in decoder.close():
            yield event
        yield FinalResponse(response=decoder.response)

    async def check(self) -> None:
        await self.http.request_json(self.check_request(), None)

    def read_payload(self, payload: Any, request: CompletionRequest) -> CompletionResponse:
        """`parse_response`, with a wire body of an unexpected shape reported as a provider error."""
        try:
            return self.parse_response(payload, request)
        except ProviderError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            detail = ErrorDetail(
                f"the provider's response has an unexpected shape ({type(e).__name__})",
                ProviderErrorCategory.UNKNOWN,
                retryable=False,
            )
            raise self.http.error(detail, request.model) from e

    # Body fields that provider_options may not replace: they carry the request itself.
    reserved_fields: ClassVar[frozenset[str]] = frozenset()

    def add_provider_options(self, body: dict[str, Any], request: CompletionRequest) -> None:
        """Merge `provider_options` into the body: nested objects merge key by key, so that e.g. a
        thinking setting keeps the generation settings beside it; the request's own fields are refused."""
        options = request.provider_options or {}
        clashing = sorted(self.reserved_fields & options.keys())
        if clashing:
            raise self.invalid(
                f"provider_options may not set {', '.join(clashing)}: the router builds those fields", request
            )
        _deep_merge(body, options)

    def invalid(self, message: str, request: CompletionRequest) -> ProviderError:
        """A request this provider cannot take, refused before anything is sent."""
        detail = ErrorDetail(message, ProviderErrorCategory.INVALID_REQUEST, retryable=False)
        return self.http.error(detail, request.model)


def _deep_merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _deep_merge(current, value)
        else:
            into[key] = value
