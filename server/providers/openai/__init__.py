"""OpenAI Chat Completions (`POST {base}/chat/completions`), and OpenAI-compatible servers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never
from urllib.parse import urlsplit

from server.providers.base import HttpProvider, StreamDecoder, WireModel, leniently
from server.providers.failures import (
    Category,
    ErrorDetail,
    RetryHint,
    header_retry_hint,
    looks_like_context_length,
)
from server.providers.framing import SSEParser
from server.providers.mapping import (
    INVALID_ARGUMENTS,
    details_for,
    parse_arguments,
    tool_result_text,
    wire_parameters,
)
from server.providers.openai import _models as models
from server.providers.transport import WireRequest
from server.providers.types import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    ImagePart,
    Message,
    NamedToolChoice,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)

_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}
_QUOTA_CODES = ("insufficient_quota", "billing_hard_limit_reached")


# What we read of a chat.completion (and of its chunks); everything else is kept as it came.


class _Function(WireModel):
    name: str | None = None
    arguments: str | None = None  # a JSON string, streamed in fragments


class _Call(WireModel):
    index: int | None = None  # only in stream fragments
    id: str | None = None
    function: _Function | None = None
    extra_content: Any = None  # Gemini's OpenAI endpoint puts its thought signature here


class _Message(WireModel):
    content: str | None = None
    tool_calls: list[_Call] | None = None


class _Choice(WireModel):
    message: _Message | None = None
    finish_reason: str | None = None


class _Usage(WireModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Completion(WireModel):
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: _Usage | None = None


class _ErrorObject(WireModel):
    message: str | None = None
    code: str | int | None = None  # llama.cpp sends the HTTP status here
    type: str | None = None


class _ErrorBody(WireModel):
    error: _ErrorObject | str | None = None


class _ChunkChoice(WireModel):
    delta: _Message | None = None
    finish_reason: str | None = None


class _Chunk(WireModel):
    model: str | None = None
    choices: list[_ChunkChoice] | None = None
    usage: _Usage | None = None
    error: _ErrorObject | str | None = None


def function_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    """Tools in OpenAI's `{"type": "function", "function": {...}}` shape (which Ollama adopted)."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
        }
        for t in tools
    ]


class OpenAIProvider(HttpProvider[_Completion]):
    name = "openai"
    response_model = _Completion
    model_list = models.Listing
    reserved_fields = frozenset({"model", "messages", "stream", "stream_options", "tools", "tool_choice"})

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.api_key is not None:
            headers["authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return headers

    def build_request(self, request: CompletionRequest, *, stream: bool) -> WireRequest:
        params = request.parameters
        body: dict[str, Any] = {"model": request.model, "messages": self._messages(request)}
        if request.tools:
            body["tools"] = function_tools(request.tools)
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        # OpenAI's reasoning models only take the new name; compatible servers know the old one.
        max_tokens = "max_completion_tokens" if self._is_openai() else "max_tokens"
        body.update(
            wire_parameters(
                params, temperature="temperature", top_p="top_p", max_tokens=max_tokens, stop="stop"
            )
        )
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        self.add_provider_options(body, request)
        return WireRequest("POST", f"{self.base_url}/chat/completions", self._headers(), body)

    def _is_openai(self) -> bool:
        return urlsplit(self.base_url).hostname == "api.openai.com"

    def _messages(self, request: CompletionRequest) -> list[dict[str, Any]]:
        wire: list[dict[str, Any]] = []
        if request.system:
            wire.append({"role": "system", "content": request.system})
        for message in request.messages:
            wire.append(self._message(message, request))
        return wire

    def _message(self, message: Message, request: CompletionRequest) -> dict[str, Any]:
        match message.role:
            case "user":
                if isinstance(message.content, str):
                    return {"role": "user", "content": message.content}
                return {"role": "user", "content": [_part(p) for p in message.content]}
            case "assistant":
                if message.has_images():
                    raise self.invalid("OpenAI takes no images in assistant messages", request)
                out: dict[str, Any] = {"role": "assistant", "content": message.text() or None}
                if message.tool_calls:
                    out["tool_calls"] = [self._call(c) for c in message.tool_calls]
                return out
            case "tool":
                if message.has_images():
                    raise self.invalid("OpenAI takes no images in tool results", request)
                return {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id,
                    "content": tool_result_text(message),
                }
            case _:
                assert_never(message.role)

    def _call(self, call: ToolCall) -> dict[str, Any]:
        details = call.provider_details or {}
        raw = details.get(INVALID_ARGUMENTS)
        out: dict[str, Any] = {
            "id": call.id,
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": raw if isinstance(raw, str) else json.dumps(call.arguments),
            },
        }
        if extra := details_for(self.name, details).get("extra_content"):
            out["extra_content"] = extra  # Gemini's OpenAI endpoint wants its thought signature back
        return out

    def parse_response(self, body: _Completion, request: CompletionRequest) -> CompletionResponse:
        choice = body.choices[0] if body.choices else _Choice()
        message = choice.message or _Message()
        calls = [self._read_call(i, c) for i, c in enumerate(message.tool_calls or [])]
        raw = choice.finish_reason
        finish = _FINISH.get(raw or "", FinishReason.OTHER if raw else FinishReason.STOP)
        if calls and finish in (FinishReason.STOP, FinishReason.OTHER):
            finish = FinishReason.TOOL_CALLS  # compatible servers that say "stop" or nothing
        usage = body.usage or _Usage()
        return CompletionResponse(
            text=message.content or "",
            tool_calls=calls,
            finish_reason=finish,
            raw_finish_reason=raw,
            usage=Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0),
            model=body.model or request.model,
            provider=self.name,
        )

    def _read_call(self, index: int, wire: _Call) -> ToolCall:
        function = wire.function or _Function()
        arguments, details = parse_arguments(function.arguments)
        if wire.extra_content:
            details = {**(details or {}), self.name: {"extra_content": wire.extra_content}}
        return ToolCall(
            id=wire.id or f"call_{index}",
            name=function.name or "",
            arguments=arguments,
            provider_details=details,
        )

    def decoder(self, request: CompletionRequest) -> StreamDecoder[Any, _Completion]:
        return _Decoder(self, request)

    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        body = leniently(_ErrorBody, payload)
        error = body.error if body is not None else None
        return _error_detail(status, error) if error else ErrorDetail(str(payload or ""))

    def retry_hint(self, headers: Mapping[str, str]) -> RetryHint:
        return header_retry_hint(headers, milliseconds="retry-after-ms", verdict="x-should-retry")

    def models_request(self) -> WireRequest:
        return models.request(self.base_url, self._headers())

    def not_found_advice(self) -> str:
        return models.not_found_advice(self.base_url)


def _error_detail(status: int, error: _ErrorObject | str) -> ErrorDetail:
    if isinstance(error, str):
        return ErrorDetail(error)
    message, code, kind = error.message or "", str(error.code or ""), error.type or ""
    if code in _QUOTA_CODES or kind in _QUOTA_CODES:
        return ErrorDetail(message, Category.RATE_LIMIT, retryable=False)
    if status in (400, 413) and looks_like_context_length(code, kind, message):
        return ErrorDetail(message or code, Category.CONTEXT_LENGTH)
    if status == 400 and code == "model_not_found":
        return ErrorDetail(message, Category.NOT_FOUND)
    if status == 400 and code == "invalid_api_key":
        return ErrorDetail(message, Category.AUTHENTICATION)
    return ErrorDetail(message or code or kind)


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    match part:
        case TextPart():
            return {"type": "text", "text": part.text}
        case ImagePart(url=str(url)):
            return {"type": "image_url", "image_url": {"url": url}}
        case ImagePart():
            return {"type": "image_url", "image_url": {"url": f"data:{part.media_type};base64,{part.data}"}}
        case _:
            assert_never(part)


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    match choice:
        case NamedToolChoice(name=name):
            return {"type": "function", "function": {"name": name}}
        case "auto" | "none" | "required":
            return choice
        case _:
            assert_never(choice)


@dataclass
class _PendingCall:
    """A streamed tool call: its id and name come once, its arguments in fragments."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    extra_content: Any = None

    def take(self, fragment: _Call) -> None:
        function = fragment.function or _Function()
        self.id = self.id or fragment.id or ""
        self.name = self.name or function.name or ""
        self.arguments.append(function.arguments or "")
        self.extra_content = fragment.extra_content or self.extra_content

    def call(self) -> _Call:
        function = _Function(name=self.name, arguments="".join(self.arguments))
        return _Call(id=self.id, function=function, extra_content=self.extra_content)


class _Decoder(StreamDecoder[_Chunk, _Completion]):
    """Rebuilds the chat.completion body: text, and tool calls assembled by their `index`."""

    def __init__(self, provider: OpenAIProvider, request: CompletionRequest) -> None:
        super().__init__(provider, request, SSEParser(), _Chunk)
        self._text: list[str] = []
        self._calls: dict[int, _PendingCall] = {}
        self._finish: str | None = None
        self._usage: _Usage | None = None
        self._model: str | None = None
        self._done = False

    def is_terminator(self, frame: str) -> bool:
        if frame.strip() == "[DONE]":
            self._done = True
        return self._done

    def on(self, event: _Chunk, events: list[StreamEvent]) -> None:
        if event.error and not event.choices:
            raise self.fail(_error_detail(200, event.error))
        self._model = event.model or self._model
        self._usage = event.usage or self._usage
        for choice in event.choices or []:
            delta = choice.delta or _Message()
            if text := delta.content:
                self._text.append(text)
                events.append(TextDelta(text=text))
            for position, fragment in enumerate(delta.tool_calls or []):
                index = fragment.index if fragment.index is not None else position
                self._calls.setdefault(index, _PendingCall()).take(fragment)
            self._finish = choice.finish_reason or self._finish

    def payload(self) -> _Completion:
        if not (self._done or self._finish):  # some servers never set a finish_reason, all send [DONE]
            raise self.incomplete()
        calls = [self._calls[index].call() for index in sorted(self._calls)]
        message = _Message(content="".join(self._text) or None, tool_calls=calls or None)
        return _Completion(
            model=self._model,
            choices=[_Choice(message=message, finish_reason=self._finish)],
            usage=self._usage,
        )
