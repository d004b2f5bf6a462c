"""Anthropic Messages API (`POST /v1/messages`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

from server.providers.anthropic import _models as models
from server.providers.anthropic import _wire as wire
from server.providers.base import HttpProvider, StreamDecoder, leniently
from server.providers.failures import (
    Category,
    ErrorDetail,
    RetryHint,
    header_retry_hint,
    looks_like_context_length,
)
from server.providers.framing import SSEParser
from server.providers.mapping import details_for, wire_parameters
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


class AnthropicProvider(HttpProvider[wire.Message]):
    name = "anthropic"
    response_model = wire.Message
    model_list = models.Listing
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

    def parse_response(self, body: wire.Message, request: CompletionRequest) -> CompletionResponse:
        text: list[str] = []
        calls: list[ToolCall] = []
        thinking: list[dict[str, Any]] = []
        for block in body.content or []:
            match block:
                case wire.Text():
                    text.append(block.text)
                case wire.ToolUse():
                    calls.append(block.call())
                case wire.Thinking():
                    thinking.append(block.model_dump(mode="json"))
                case wire.OtherBlock():
                    pass  # e.g. server-tool blocks: nothing the caller can act on
                case _:
                    assert_never(block)
        usage = body.usage or wire.Usage()
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

    def decoder(self, request: CompletionRequest) -> StreamDecoder[Any, wire.Message]:
        return _Decoder(self, request)

    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        body = leniently(wire.ErrorBody, payload)
        if body is None:
            return ErrorDetail(str(payload or ""))
        return _error_detail(status, body.error)

    def retry_hint(self, headers: Mapping[str, str]) -> RetryHint:
        return header_retry_hint(headers, milliseconds="retry-after-ms", verdict="x-should-retry")

    def models_request(self) -> WireRequest:
        return models.request(self.base_url, self._headers())

    def not_found_advice(self) -> str:
        return models.not_found_advice(self.base_url)


def _error_detail(status: int, error: wire.ErrorObject) -> ErrorDetail:
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


@dataclass
class _OpenBlock:
    """A content block between its start and stop events."""

    start: wire.Text | wire.ToolUse | wire.Thinking | wire.OtherBlock
    text: list[str] = field(default_factory=list)
    partial_json: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    signature: str | None = None

    def closed(self) -> wire.Text | wire.ToolUse | wire.Thinking | wire.OtherBlock:
        block = self.start
        match block:
            case wire.Text():
                return block.model_copy(update={"text": block.text + "".join(self.text)})
            case wire.ToolUse():
                return block.with_streamed_input("".join(self.partial_json)) if self.partial_json else block
            case wire.Thinking():
                update: dict[str, Any] = {}
                if self.thinking:
                    update["thinking"] = (block.model_extra or {}).get("thinking", "") + "".join(
                        self.thinking
                    )
                if self.signature is not None:
                    update["signature"] = self.signature
                return wire.Thinking.model_validate({**block.model_dump(), **update})
            case wire.OtherBlock():
                return block
            case _:
                assert_never(block)


class _Decoder(StreamDecoder[wire.Event, wire.Message]):
    """Rebuilds the Message from SSE events: blocks by index, tool input from JSON fragments."""

    def __init__(self, provider: AnthropicProvider, request: CompletionRequest) -> None:
        super().__init__(provider, request, SSEParser(), wire.Event)
        self._message: wire.Message | None = None
        self._blocks: dict[int, _OpenBlock] = {}
        self._stopped = False

    def on(self, event: wire.Event, events: list[StreamEvent]) -> None:
        match event.root:
            case wire.MessageStart(message=message):
                self._message = message
            case wire.BlockStart(index=index, content_block=block):
                self._blocks[index] = _OpenBlock(block)
            case wire.BlockDelta(index=index, delta=delta):
                self._on_delta(index, delta, events)
            case wire.MessageDelta(delta=change, usage=usage) if self._message is not None:
                update: dict[str, Any] = {"usage": (self._message.usage or wire.Usage()).merged(usage)}
                if change is not None:
                    update.update(change.model_dump(exclude_unset=True))
                self._message = self._message.model_copy(update=update)
            case wire.MessageStop():
                self._stopped = True
            case wire.ErrorEvent(error=error):
                raise self.fail(_error_detail(200, error))
            case wire.BlockStop() | wire.MessageDelta() | wire.OtherEvent():
                pass  # blocks are closed when the message is rebuilt
            case _:
                assert_never(event.root)

    def _on_delta(self, index: int, delta: wire.Delta, events: list[StreamEvent]) -> None:
        block = self._blocks.setdefault(index, _OpenBlock(wire.OtherBlock()))
        match delta:
            case wire.TextDelta(text=text):
                block.text.append(text)
                if text:
                    events.append(TextDelta(text=text))
            case wire.JsonDelta(partial_json=fragment):
                block.partial_json.append(fragment)
            case wire.ThinkingDelta(thinking=thinking):
                block.thinking.append(thinking)
            case wire.SignatureDelta(signature=signature):
                block.signature = signature
            case wire.OtherDelta():
                pass  # unknown delta types are ignored, as the API asks
            case _:
                assert_never(delta)

    def payload(self) -> wire.Message:
        if self._message is None or not self._stopped:
            raise self.incomplete()
        blocks = [self._blocks[i].closed() for i in sorted(self._blocks)]
        return self._message.model_copy(update={"content": blocks})
