"""Anthropic Messages API (`POST /v1/messages`)."""

from __future__ import annotations

from typing import Any, assert_never

from server.providers.base import HttpProvider, StreamDecoder
from server.providers.failures import Category, ErrorDetail, looks_like_context_length
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
_THINKING_BLOCKS = ("thinking", "redacted_thinking")


class AnthropicProvider(HttpProvider):
    name = "anthropic"
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

    def parse_response(self, payload: Any, request: CompletionRequest) -> CompletionResponse:
        text: list[str] = []
        calls: list[ToolCall] = []
        thinking: list[dict[str, Any]] = []
        for block in payload.get("content") or []:
            kind = block.get("type")
            if kind == "text":
                text.append(block["text"])
            elif kind == "tool_use":
                invalid = block.get(INVALID_ARGUMENTS)
                calls.append(
                    ToolCall(
                        id=block["id"],
                        name=block["name"],
                        arguments=block.get("input") or {},
                        provider_details={INVALID_ARGUMENTS: invalid} if invalid is not None else None,
                    )
                )
            elif kind in _THINKING_BLOCKS:
                thinking.append(block)
        usage = payload.get("usage") or {}
        raw = payload.get("stop_reason")
        return CompletionResponse(
            text="".join(text),
            tool_calls=calls,
            finish_reason=_FINISH.get(raw or "", FinishReason.OTHER),
            raw_finish_reason=raw,
            usage=Usage(
                input_tokens=(usage.get("input_tokens") or 0)
                + (usage.get("cache_creation_input_tokens") or 0)
                + (usage.get("cache_read_input_tokens") or 0),
                output_tokens=usage.get("output_tokens") or 0,
            ),
            model=payload.get("model") or request.model,
            provider=self.name,
            provider_details={self.name: {"thinking": thinking}} if thinking else None,
        )

    def decoder(self, request: CompletionRequest) -> StreamDecoder:
        return _Decoder(self, request)

    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            return ErrorDetail(str(payload or ""))
        message, kind = str(error.get("message", "")), error.get("type")
        details = error.get("details")
        if isinstance(details, dict) and details.get("error_code") == "enforced_spend_limit_reached":
            return ErrorDetail(message, Category.RATE_LIMIT, retryable=False)
        if kind == "invalid_request_error" and looks_like_context_length(message):
            return ErrorDetail(message, Category.CONTEXT_LENGTH)
        # Status decides; the type only speaks for bodies without a telling status (mid-stream errors).
        return ErrorDetail(message, _ERROR_TYPES.get(kind or "") if status == 200 else None)

    def check_request(self) -> WireRequest:
        return WireRequest("GET", f"{self.base_url}/v1/models?limit=1", self._headers())


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


class _Decoder(StreamDecoder):
    """Rebuilds the Message from SSE events: blocks by index, tool input from JSON fragments."""

    def __init__(self, provider: AnthropicProvider, request: CompletionRequest) -> None:
        super().__init__(provider, request, SSEParser())
        self._message: dict[str, Any] | None = None
        self._blocks: dict[int, dict[str, Any]] = {}
        self._partial_json: dict[int, list[str]] = {}
        self._stopped = False

    def on(self, data: dict[str, Any], events: list[StreamEvent]) -> None:
        kind = data.get("type")
        if kind == "message_start":
            self._message = dict(data.get("message") or {})
        elif kind == "content_block_start":
            self._blocks[data["index"]] = dict(data.get("content_block") or {})
        elif kind == "content_block_delta":
            self._on_delta(data["index"], data.get("delta") or {}, events)
        elif kind == "content_block_stop":
            self._close_block(data["index"])
        elif kind == "message_delta" and self._message is not None:
            self._message.update(data.get("delta") or {})
            self._message["usage"] = {**(self._message.get("usage") or {}), **(data.get("usage") or {})}
        elif kind == "message_stop":
            self._stopped = True
        elif kind == "error":
            raise self.fail(self.provider.parse_error(200, data))

    def _on_delta(self, index: int, delta: dict[str, Any], events: list[StreamEvent]) -> None:
        block = self._blocks.setdefault(index, {})
        match delta.get("type"):
            case "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
                if delta.get("text"):
                    events.append(TextDelta(text=delta["text"]))
            case "input_json_delta":
                self._partial_json.setdefault(index, []).append(delta.get("partial_json", ""))
            case "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            case "signature_delta":
                block["signature"] = delta.get("signature", "")
            case _:
                pass  # unknown delta types are ignored, as the API asks

    def _close_block(self, index: int) -> None:
        if index in self._partial_json:
            raw = "".join(self._partial_json.pop(index))
            arguments, invalid = parse_arguments(raw)
            self._blocks[index]["input"] = arguments
            if invalid is not None:
                self._blocks[index][INVALID_ARGUMENTS] = raw

    def payload(self) -> Any:
        if self._message is None or not self._stopped:
            raise self.incomplete()
        return {**self._message, "content": [self._blocks[i] for i in sorted(self._blocks)]}
