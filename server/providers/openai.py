"""OpenAI Chat Completions (`POST {base}/chat/completions`), and OpenAI-compatible servers."""

from __future__ import annotations

import json
from typing import Any, assert_never
from urllib.parse import urlsplit

from server.providers.base import HttpProvider, StreamDecoder
from server.providers.failures import Category, ErrorDetail, looks_like_context_length
from server.providers.framing import SSEParser
from server.providers.mapping import (
    INVALID_ARGUMENTS,
    details_for,
    function_tools,
    parse_arguments,
    tool_result_text,
    wire_parameters,
)
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

_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}
_QUOTA_CODES = ("insufficient_quota", "billing_hard_limit_reached")


class OpenAIProvider(HttpProvider):
    name = "openai"
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

    def parse_response(self, payload: Any, request: CompletionRequest) -> CompletionResponse:
        choices = payload.get("choices") or []
        choice = choices[0] if choices else {}
        message = choice.get("message") or {}
        calls = [self._read_call(i, c) for i, c in enumerate(message.get("tool_calls") or [])]
        raw = choice.get("finish_reason")
        finish = _FINISH.get(raw or "", FinishReason.OTHER if raw else FinishReason.STOP)
        if calls and finish in (FinishReason.STOP, FinishReason.OTHER):
            finish = FinishReason.TOOL_CALLS  # compatible servers that say "stop" or nothing
        usage = payload.get("usage") or {}
        return CompletionResponse(
            text=message.get("content") or "",
            tool_calls=calls,
            finish_reason=finish,
            raw_finish_reason=raw,
            usage=Usage(
                input_tokens=usage.get("prompt_tokens") or 0,
                output_tokens=usage.get("completion_tokens") or 0,
            ),
            model=payload.get("model") or request.model,
            provider=self.name,
        )

    def _read_call(self, index: int, wire: dict[str, Any]) -> ToolCall:
        function = wire.get("function") or {}
        arguments, details = parse_arguments(function.get("arguments"))
        if extra := wire.get("extra_content"):
            details = {**(details or {}), self.name: {"extra_content": extra}}
        return ToolCall(
            id=wire.get("id") or f"call_{index}",
            name=function.get("name") or "",
            arguments=arguments,
            provider_details=details,
        )

    def decoder(self, request: CompletionRequest) -> StreamDecoder:
        return _Decoder(self, request)

    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            return ErrorDetail(str(error or payload or ""))
        message = str(error.get("message", ""))
        code, kind = str(error.get("code") or ""), str(error.get("type") or "")
        if code in _QUOTA_CODES or kind in _QUOTA_CODES:
            return ErrorDetail(message, Category.RATE_LIMIT, retryable=False)
        if status in (400, 413) and looks_like_context_length(code, kind, message):
            return ErrorDetail(message or code, Category.CONTEXT_LENGTH)
        if status == 400 and code == "model_not_found":
            return ErrorDetail(message, Category.NOT_FOUND)
        if status == 400 and code == "invalid_api_key":
            return ErrorDetail(message, Category.AUTHENTICATION)
        return ErrorDetail(message or code or kind)

    def check_request(self) -> WireRequest:
        return WireRequest("GET", f"{self.base_url}/models", self._headers())


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


class _Decoder(StreamDecoder):
    """Rebuilds the chat.completion body: text, and tool calls assembled by their `index`."""

    def __init__(self, provider: OpenAIProvider, request: CompletionRequest) -> None:
        super().__init__(provider, request, SSEParser())
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model: str | None = None
        self._done = False

    def is_terminator(self, frame: str) -> bool:
        if frame.strip() == "[DONE]":
            self._done = True
        return self._done

    def on(self, data: dict[str, Any], events: list[StreamEvent]) -> None:
        if "error" in data and not data.get("choices"):
            raise self.fail(self.provider.parse_error(200, data))
        self._model = data.get("model") or self._model
        if data.get("usage"):
            self._usage = data["usage"]
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            if text := delta.get("content"):
                self._text.append(text)
                events.append(TextDelta(text=text))
            for position, fragment in enumerate(delta.get("tool_calls") or []):
                self._on_tool_fragment(position, fragment)
            self._finish = choice.get("finish_reason") or self._finish

    def _on_tool_fragment(self, position: int, fragment: dict[str, Any]) -> None:
        index = fragment.get("index", position)
        call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": [], "extra": None})
        call["id"] = call["id"] or fragment.get("id") or ""
        function = fragment.get("function") or {}
        call["name"] = call["name"] or function.get("name") or ""
        call["arguments"].append(function.get("arguments") or "")
        call["extra"] = fragment.get("extra_content") or call["extra"]

    def payload(self) -> Any:
        if not (self._done or self._finish):  # some servers never set a finish_reason, all send [DONE]
            raise self.incomplete()
        calls = []
        for index in sorted(self._calls):
            call = self._calls[index]
            wire: dict[str, Any] = {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
            }
            if call["extra"]:
                wire["extra_content"] = call["extra"]
            calls.append(wire)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text) or None}
        if calls:
            message["tool_calls"] = calls
        return {
            "model": self._model,
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish}],
            "usage": self._usage,
        }
