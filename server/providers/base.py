"""The `Provider` protocol and the HTTP machinery every adapter shares.

An adapter only says how to build its wire request, read its wire response, read its error body
and decode its stream; `complete` and `stream` are written once here, and a stream decoder ends by
rebuilding the non-streamed body and reading it with the same function `complete` uses, so both
verbs return the same response for the same answer.

Wire bodies are validated once into each adapter's private `WireModel`s; `HttpProvider.validated` is
the one place where a body of the wrong shape becomes a `ProviderError` (`invalid_response`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Collection, Mapping
from contextlib import aclosing
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from server.errors import ProviderError, ProviderErrorCategory
from server.providers.failures import ErrorDetail, RetryHint, header_retry_hint
from server.providers.framing import Framing
from server.providers.transport import Clock, HttpCaller, RetryPolicy, WireRequest, origin
from server.providers.types import (
    CompletionRequest,
    CompletionResponse,
    FinalResponse,
    StreamEvent,
    ToolCallEvent,
)


class WireModel(BaseModel):
    """A vendor payload as read: unknown fields are kept (and echoed where a vendor wants them back)."""

    model_config = ConfigDict(extra="allow")


class ModelList(WireModel, ABC):
    """A list-models response body, as each adapter reads it."""

    @abstractmethod
    def ids(self) -> list[str]:
        """The names to route to, as `provider/<name>` takes them."""


def bare_address_advice(base_url: str, list_path: str) -> str:
    """For vendors whose base URL is the server's address alone (they add the API path themselves)."""
    address = origin(base_url)
    if address != base_url:
        return (
            f"it is usually the server's address alone, without a path (try {address}); {list_path} is added"
        )
    return f"nothing is served at {base_url}{list_path}"


Wire = TypeVar("Wire", bound=BaseModel)
Body = TypeVar("Body", bound=BaseModel)
Event = TypeVar("Event", bound=BaseModel)

OTHER = "other"  # the tag of every block, part or event type an adapter does not know


def kind_of(known: Collection[str], field: str = "type") -> Callable[[Any], str]:
    """A discriminator for a union of wire blocks: the block's `field` when known, else `OTHER`,
    so a block type the vendor adds later is kept as an unknown block instead of failing the body."""

    def kind(value: Any) -> str:
        tag = value.get(field) if isinstance(value, Mapping) else getattr(value, field, None)
        return tag if isinstance(tag, str) and tag in known else OTHER

    return kind


class Provider(Protocol):
    name: str
    default_model: str

    async def complete(self, request: CompletionRequest) -> CompletionResponse: ...

    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        """Use inside `contextlib.aclosing` so an abandoned stream closes its HTTP response at once."""
        ...

    async def list_models(self) -> list[str]:
        """The provider's models, from its list endpoint (also the cheap authenticated check)."""
        ...

    def not_found_advice(self) -> str:
        """What a 404 from the list endpoint suggests about the base URL."""
        ...


class StreamDecoder(ABC, Generic[Event, Body]):
    """Turns raw body chunks into typed events, then into the final response."""

    def __init__(
        self,
        provider: HttpProvider[Body],
        request: CompletionRequest,
        framing: Framing,
        event_model: type[Event],
    ) -> None:
        self.provider = provider
        self.request = request
        self.response: CompletionResponse
        self._framing = framing
        self._event_model = event_model

    @abstractmethod
    def on(self, event: Event, events: list[StreamEvent]) -> None:
        """Take in one validated frame, appending any events it completes."""

    @abstractmethod
    def payload(self) -> Body:
        """The non-streamed response body this stream amounts to."""

    def is_terminator(self, frame: str) -> bool:
        return False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return self._take(self._framing.feed(chunk))

    def close(self) -> list[StreamEvent]:
        """Called once the body has ended: reads the rebuilt body the way `complete` would."""
        events = self._take(self._framing.close())
        self.response = self.provider.parse_response(self.payload(), self.request)
        return events + [ToolCallEvent(tool_call=call) for call in self.response.tool_calls]

    def _take(self, frames: list[str]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for frame in frames:
            if self.is_terminator(frame):
                continue
            data = self.load(frame)
            if isinstance(data, dict):
                self.on(self.provider.validated(self._event_model, data, self.request.model), events)
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
                    "the provider sent a stream event that is not valid JSON",
                    ProviderErrorCategory.INVALID_RESPONSE,
                )
            ) from None


class HttpProvider(ABC, Generic[Body]):
    name: str  # set by each adapter class
    response_model: type[Body]  # the non-streamed response body, as each adapter reads it
    model_list: type[ModelList]  # the list-models body, as each adapter reads it

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: SecretStr | None,
        default_model: str,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        key_env: str | None = None,
    ) -> None:
        """`key_env` is the variable a refused key is named by in errors."""
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.default_model = default_model
        self.http = HttpCaller(
            client,
            provider=self.name,
            secrets=[api_key.get_secret_value()] if api_key else [],
            parse_error=self.parse_error,
            retry_hint=self.retry_hint,
            policy=policy or RetryPolicy(),
            clock=clock or Clock(),
            key_env=key_env,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, default_model={self.default_model!r})"

    # What each adapter supplies.

    @abstractmethod
    def build_request(self, request: CompletionRequest, *, stream: bool) -> WireRequest: ...

    @abstractmethod
    def parse_response(self, body: Body, request: CompletionRequest) -> CompletionResponse: ...

    @abstractmethod
    def decoder(self, request: CompletionRequest) -> StreamDecoder[Any, Body]: ...

    @abstractmethod
    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        """Best effort: an error body of an unexpected shape still says what it can."""

    def retry_hint(self, headers: Mapping[str, str]) -> RetryHint:
        """What a failed response's headers say about retrying: the standard `retry-after`, unless an
        adapter knows its vendor's own headers."""
        return header_retry_hint(headers)

    @abstractmethod
    def models_request(self) -> WireRequest: ...

    @abstractmethod
    def not_found_advice(self) -> str: ...

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

    async def list_models(self) -> list[str]:
        payload = await self.http.request_json(self.models_request(), None)
        return self.validated(self.model_list, payload, None).ids()

    def read_payload(self, payload: Any, request: CompletionRequest) -> CompletionResponse:
        return self.parse_response(self.validated(self.response_model, payload, request.model), request)

    def validated(self, shape: type[Wire], data: Any, model: str | None) -> Wire:
        """`data` read as `shape`; a body of another shape is an `invalid_response` error."""
        try:
            return shape.model_validate(data)
        except ValidationError as e:
            detail = ErrorDetail(
                f"the provider's response has an unexpected shape (at {_where(e)})",
                ProviderErrorCategory.INVALID_RESPONSE,
                retryable=False,
            )
            raise self.http.error(detail, model) from e

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


def leniently(shape: type[Wire], data: Any) -> Wire | None:
    """`data` read as `shape`, or None: for error bodies, which are read for what they can tell."""
    try:
        return shape.model_validate(data)
    except ValidationError:
        return None


def _where(error: ValidationError) -> str:
    """The path of the first misfit (never the offending value, which we did not write)."""
    path = error.errors()[0]["loc"] if error.error_count() else ()
    return ".".join(str(p) for p in path) or "the top level"


def _deep_merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _deep_merge(current, value)
        else:
            into[key] = value
