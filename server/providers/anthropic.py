"""Anthropic Messages API (`POST /v1/messages`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, assert_never

from pydantic import Discriminator, PrivateAttr, RootModel, Tag

from server.providers.base import OTHER, HttpProvider, StreamDecoder, WireModel, kind_of, leniently
from server.providers.failures import (
    Category,
    ErrorDetail,
    RetryHint,
    header_retry_hint,
    looks_like_context_length,
)
from server.providers.framing import SSEParser
from server.providers.mapping import INVALID_ARGUMENTS, details_for, parse_arguments, wire_parameters
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
    Usage,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
_ERROR_TYPES = {
    "invalid_request_error": Category.INVALID_REQUEST,
    "authentication_error": Category.AUTHENTICATION,
    "permission_error": Category.PERMISSION,
    "billing_error": Category.PERMISSION,
    "not_found_error": Category.NOT_FOUND,
    "request_too_large": Category.INVALID_REQUEST,
    "rate_limit_error": Category.RATE_LIMIT,
    "api_error": Category.UNAVAILABLE,
    "timeout_error": Category.TIMEOUT,
    "overloaded_error": Category.OVERLOADED,
}


# What we read of a Message; everything else is kept as it came.


class _Text(WireModel):
    type: Literal["text"]
    text: str = ""


class _ToolUse(WireModel):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any] | None = None
    _unparsed: str | None = PrivateAttr(default=None)  # streamed input that was not a JSON object

    def with_streamed_input(self, raw: str) -> _ToolUse:
        arguments, invalid = parse_arguments(raw)
        block = self.model_copy(update={"input": arguments})
        block._unparsed = raw if invalid is not None else None
        return block

    def call(self) -> ToolCall:
        return ToolCall(
            id=self.id,
            name=self.name,
            arguments=self.input or {},
            provider_details={INVALID_ARGUMENTS: self._unparsed} if self._unparsed is not None else None,
        )


class _Thinking(WireModel):
    """Echoed back verbatim in the next request, so every field is kept as an extra."""

    type: Literal["thinking", "redacted_thinking"]


class _OtherBlock(WireModel):
    type: Any = None


_Block = Annotated[
    Annotated[_Text, Tag("text")]
    | Annotated[_ToolUse, Tag("tool_use")]
    | Annotated[_Thinking, Tag("thinking")]
    | Annotated[_Thinking, Tag("redacted_thinking")]
    | Annotated[_OtherBlock, Tag(OTHER)],
    Discriminator(kind_of({"text", "tool_use", "thinking", "redacted_thinking"})),
]


class _Usage(WireModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def merged(self, later: _Usage | None) -> _Usage:
        """`message_delta` usage is cumulative and may repeat only some fields."""
        if later is None:
            return self
        return _Usage.model_validate(
            {**self.model_dump(exclude_unset=True), **later.model_dump(exclude_unset=True)}
        )


class _Message(WireModel):
    model: str | None = None
    content: list[_Block] | None = None
    stop_reason: str | None = None
    usage: _Usage | None = None


class _ErrorDetails(WireModel):
    error_code: str | None = None


class _ErrorObject(WireModel):
    type: str | None = None
    message: str = ""
    details: _ErrorDetails | None = None


class _ErrorBody(WireModel):
    error: _ErrorObject


class AnthropicProvider(HttpProvider[_Message]):
    name = "anthropic"
    response_model = _Message
    reserved_fields = frozenset({"model", "messages", "system", "stream", "tools", "tool_choice"})

    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if self.api_key is not None:
            headers["x-api-key"] = self.api_key.get_secret_value()
        return headers

    def build_request(self, request: CompletionRequest, *, stream: bool) -> WireRequest:
        params = request.parameters
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": params.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": self._messages(request),
        }
        if request.system:
            body["system"] = request.system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in request.tools
            ]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        body.update(wire_parameters(params, temperature="temperature", top_p="top_p", stop="stop_sequences"))
        if stream:
            body["stream"] = True
        self.add_provider_options(body, request)
        return WireRequest("POST", f"{self.base_url}/v1/messages", self._headers(), body)

    def _messages(self, request: CompletionRequest) -> list[dict[str, Any]]:
        turns: list[dict[str, Any]] = []
        for message in request.messages:
            role = "assistant" if message.role == "assistant" else "user"
            blocks = self._blocks(message, request)
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"].extend(blocks)  # all results of one turn go in one user turn
            else:
                turns.append({"role": role, "content": blocks})
        return turns

    def _blocks(self, message: Message, request: CompletionRequest) -> list[dict[str, Any]]:
        match message.role:
            case "user":
                return [self._part(part) for part in message.parts()]
            case "assistant":
                if message.has_images():
                    raise self.invalid("Anthropic takes no images in assistant messages", request)
                blocks: list[dict[str, Any]] = list(
                    details_for(self.name, message.provider_details).get("thinking", [])
                )
                blocks += [self._part(part) for part in message.parts()]
                blocks += [
                    {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                    for c in message.tool_calls
                ]
                return blocks
            case "tool":
                result: dict[str, Any] = {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,
                    "content": message.content
                    if isinstance(message.content, str)
                    else [self._part(p) for p in message.content],
                }
                if message.is_error:
                    result["is_error"] = True
                return [result]
            case _:
                assert_never(message.role)

    @staticmethod
    def _part(part: TextPart | ImagePart) -> dict[str, Any]:
        match part:
            case TextPart():
                return {"type": "text", "text": part.text}
            case ImagePart(url=str(url)):
                return {"type": "image", "source": {"type": "url", "url": url}}
            case ImagePart():
                return {
                    "type": "image",
                    "source": {"type": "base64", "media_type": part.media_type, "data": part.data},
                }
            case _:
                assert_never(part)

    def parse_response(self, body: _Message, request: CompletionRequest) -> CompletionResponse:
        text: list[str] = []
        calls: list[ToolCall] = []
        thinking: list[dict[str, Any]] = []
        for block in body.content or []:
            match block:
                case _Text():
                    text.append(block.text)
                case _ToolUse():
                    calls.append(block.call())
                case _Thinking():
                    thinking.append(block.model_dump(mode="json"))
                case _OtherBlock():
                    pass  # e.g. server-tool blocks: nothing the caller can act on
                case _:
                    assert_never(block)
        usage = body.usage or _Usage()
        return CompletionResponse(
            text="".join(text),
            tool_calls=calls,
            finish_reason=_FINISH.get(body.stop_reason or "", FinishReason.OTHER),
            raw_finish_reason=body.stop_reason,
            usage=Usage(
                input_tokens=(usage.input_tokens or 0)
                + (usage.cache_creation_input_tokens or 0)
                + (usage.cache_read_input_tokens or 0),
                output_tokens=usage.output_tokens or 0,
            ),
            model=body.model or request.model,
            provider=self.name,
            provider_details={self.name: {"thinking": thinking}} if thinking else None,
        )

    def decoder(self, request: CompletionRequest) -> StreamDecoder[Any, _Message]:
        return _Decoder(self, request)

    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        body = leniently(_ErrorBody, payload)
        if body is None:
            return ErrorDetail(str(payload or ""))
        return _error_detail(status, body.error)

    def retry_hint(self, headers: Mapping[str, str]) -> RetryHint:
        return header_retry_hint(headers, milliseconds="retry-after-ms", verdict="x-should-retry")

    def check_request(self) -> WireRequest:
        return WireRequest("GET", f"{self.base_url}/v1/models?limit=1", self._headers())


def _error_detail(status: int, error: _ErrorObject) -> ErrorDetail:
    if error.details is not None and error.details.error_code == "enforced_spend_limit_reached":
        return ErrorDetail(error.message, Category.RATE_LIMIT, retryable=False)
    if error.type == "invalid_request_error" and looks_like_context_length(error.message):
        return ErrorDetail(error.message, Category.CONTEXT_LENGTH)
    # Status decides; the type only speaks for bodies without a telling status (mid-stream errors).
    return ErrorDetail(error.message, _ERROR_TYPES.get(error.type or "") if status == 200 else None)


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    match choice:
        case NamedToolChoice(name=name):
            return {"type": "tool", "name": name}
        case "auto":
            return {"type": "auto"}
        case "none":
            return {"type": "none"}
        case "required":
            return {"type": "any"}
        case _:
            assert_never(choice)


# Stream events.


class _TextDelta(WireModel):
    type: Literal["text_delta"]
    text: str = ""


class _JsonDelta(WireModel):
    type: Literal["input_json_delta"]
    partial_json: str = ""


class _ThinkingDelta(WireModel):
    type: Literal["thinking_delta"]
    thinking: str = ""


class _SignatureDelta(WireModel):
    type: Literal["signature_delta"]
    signature: str = ""


class _OtherDelta(WireModel):
    type: Any = None


_Delta = Annotated[
    Annotated[_TextDelta, Tag("text_delta")]
    | Annotated[_JsonDelta, Tag("input_json_delta")]
    | Annotated[_ThinkingDelta, Tag("thinking_delta")]
    | Annotated[_SignatureDelta, Tag("signature_delta")]
    | Annotated[_OtherDelta, Tag(OTHER)],
    Discriminator(kind_of({"text_delta", "input_json_delta", "thinking_delta", "signature_delta"})),
]


class _MessageStart(WireModel):
    type: Literal["message_start"]
    message: _Message


class _BlockStart(WireModel):
    type: Literal["content_block_start"]
    index: int
    content_block: _Block


class _BlockDelta(WireModel):
    type: Literal["content_block_delta"]
    index: int
    delta: _Delta


class _BlockStop(WireModel):
    type: Literal["content_block_stop"]
    index: int


class _StopChange(WireModel):
    stop_reason: str | None = None


class _MessageDelta(WireModel):
    type: Literal["message_delta"]
    delta: _StopChange | None = None
    usage: _Usage | None = None


class _MessageStop(WireModel):
    type: Literal["message_stop"]


class _ErrorEvent(WireModel):
    type: Literal["error"]
    error: _ErrorObject


class _OtherEvent(WireModel):
    type: Any = None  # `ping`, and event types added later: ignored, as the API asks


_EVENTS = ("message_start", "content_block_start", "content_block_delta", "content_block_stop")
_Event = RootModel[
    Annotated[
        Annotated[_MessageStart, Tag("message_start")]
        | Annotated[_BlockStart, Tag("content_block_start")]
        | Annotated[_BlockDelta, Tag("content_block_delta")]
        | Annotated[_BlockStop, Tag("content_block_stop")]
        | Annotated[_MessageDelta, Tag("message_delta")]
        | Annotated[_MessageStop, Tag("message_stop")]
        | Annotated[_ErrorEvent, Tag("error")]
        | Annotated[_OtherEvent, Tag(OTHER)],
        Discriminator(kind_of({*_EVENTS, "message_delta", "message_stop", "error"})),
    ]
]


@dataclass
class _OpenBlock:
    """A content block between its start and stop events."""

    start: _Text | _ToolUse | _Thinking | _OtherBlock
    text: list[str] = field(default_factory=list)
    partial_json: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    signature: str | None = None

    def closed(self) -> _Text | _ToolUse | _Thinking | _OtherBlock:
        block = self.start
        match block:
            case _Text():
                return block.model_copy(update={"text": block.text + "".join(self.text)})
            case _ToolUse():
                return block.with_streamed_input("".join(self.partial_json)) if self.partial_json else block
            case _Thinking():
                update: dict[str, Any] = {}
                if self.thinking:
                    update["thinking"] = (block.model_extra or {}).get("thinking", "") + "".join(
                        self.thinking
                    )
                if self.signature is not None:
                    update["signature"] = self.signature
                return _Thinking.model_validate({**block.model_dump(), **update})
            case _OtherBlock():
                return block
            case _:
                assert_never(block)


class _Decoder(StreamDecoder[_Event, _Message]):
    """Rebuilds the Message from SSE events: blocks by index, tool input from JSON fragments."""

    def __init__(self, provider: AnthropicProvider, request: CompletionRequest) -> None:
        super().__init__(provider, request, SSEParser(), _Event)
        self._message: _Message | None = None
        self._blocks: dict[int, _OpenBlock] = {}
        self._stopped = False

    def on(self, event: _Event, events: list[StreamEvent]) -> None:
        match event.root:
            case _MessageStart(message=message):
                self._message = message
            case _BlockStart(index=index, content_block=block):
                self._blocks[index] = _OpenBlock(block)
            case _BlockDelta(index=index, delta=delta):
                self._on_delta(index, delta, events)
            case _MessageDelta(delta=change, usage=usage) if self._message is not None:
                update: dict[str, Any] = {"usage": (self._message.usage or _Usage()).merged(usage)}
                if change is not None:
                    update.update(change.model_dump(exclude_unset=True))
                self._message = self._message.model_copy(update=update)
            case _MessageStop():
                self._stopped = True
            case _ErrorEvent(error=error):
                raise self.fail(_error_detail(200, error))
            case _BlockStop() | _MessageDelta() | _OtherEvent():
                pass  # blocks are closed when the message is rebuilt
            case _:
                assert_never(event.root)

    def _on_delta(self, index: int, delta: _Delta, events: list[StreamEvent]) -> None:
        block = self._blocks.setdefault(index, _OpenBlock(_OtherBlock()))
        match delta:
            case _TextDelta(text=text):
                block.text.append(text)
                if text:
                    events.append(TextDelta(text=text))
            case _JsonDelta(partial_json=fragment):
                block.partial_json.append(fragment)
            case _ThinkingDelta(thinking=thinking):
                block.thinking.append(thinking)
            case _SignatureDelta(signature=signature):
                block.signature = signature
            case _OtherDelta():
                pass  # unknown delta types are ignored, as the API asks
            case _:
                assert_never(delta)

    def payload(self) -> _Message:
        if self._message is None or not self._stopped:
            raise self.incomplete()
        blocks = [self._blocks[i].closed() for i in sorted(self._blocks)]
        return self._message.model_copy(update={"content": blocks})
