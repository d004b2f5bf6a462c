"""Ollama's native chat API (`POST {OLLAMA_HOST}/api/chat`), streamed as NDJSON."""

from __future__ import annotations

from typing import Any, assert_never

from server.providers.base import HttpProvider, StreamDecoder, WireModel, leniently
from server.providers.failures import Category, ErrorDetail, looks_like_context_length
from server.providers.framing import NDJSONParser
from server.providers.mapping import stable_call_id, tool_names_by_id, tool_result_text, wire_parameters
from server.providers.ollama import _models as models
from server.providers.openai import function_tools
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
    ToolCall,
    Usage,
)

# What we read of a chat response (each NDJSON line is one too).


class _Function(WireModel):
    name: str | None = None
    arguments: dict[str, Any] | None = None  # an object, unlike OpenAI's JSON string


class _Call(WireModel):
    id: str | None = None  # newer servers only
    function: _Function | None = None


class _Message(WireModel):
    content: str | None = None
    tool_calls: list[_Call] | None = None


class _Chat(WireModel):
    model: str | None = None
    message: _Message | None = None
    done: bool | None = None
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    error: str | None = None  # a failure reported inside a stream


class _ErrorBody(WireModel):
    error: str | None = None


class OllamaProvider(HttpProvider[_Chat]):
    name = "ollama"
    response_model = _Chat
    model_list = models.Listing
    reserved_fields = frozenset({"model", "messages", "stream", "tools"})

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.api_key is not None:  # only ollama.com needs one
            headers["authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return headers

    def build_request(self, request: CompletionRequest, *, stream: bool) -> WireRequest:
        params = request.parameters
        body: dict[str, Any] = {"model": request.model, "messages": self._messages(request), "stream": stream}
        tools = request.tools
        # Ollama has no tool_choice: "none" withholds the tools, a named choice offers only that one.
        match request.tool_choice:
            case "none":
                tools = []
            case NamedToolChoice(name=name):
                tools = [t for t in tools if t.name == name]
            case "auto" | "required" | None:
                pass
            case _:
                assert_never(request.tool_choice)
        if tools:
            body["tools"] = function_tools(tools)
        options = wire_parameters(
            params, temperature="temperature", top_p="top_p", max_tokens="num_predict", stop="stop"
        )
        if options:
            body["options"] = options
        self.add_provider_options(body, request)
        return WireRequest("POST", f"{self.base_url}/api/chat", self._headers(), body)

    def _messages(self, request: CompletionRequest) -> list[dict[str, Any]]:
        names = tool_names_by_id(request.messages)
        wire: list[dict[str, Any]] = []
        if request.system:
            wire.append({"role": "system", "content": request.system})
        for message in request.messages:
            wire.append(self._message(message, request, names))
        return wire

    def _message(self, message: Message, request: CompletionRequest, names: dict[str, str]) -> dict[str, Any]:
        match message.role:
            case "user":
                out: dict[str, Any] = {"role": "user", "content": message.text()}
                images = [p for p in message.parts() if isinstance(p, ImagePart)]
                if any(image.url for image in images):
                    raise self.invalid("Ollama takes images as base64 data, not URLs", request)
                if images:
                    out["images"] = [image.data for image in images]
                return out
            case "assistant":
                self._text_only(message, request)
                out = {"role": "assistant", "content": message.text()}
                if message.tool_calls:
                    out["tool_calls"] = [
                        {"function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls
                    ]
                return out
            case "tool":
                self._text_only(message, request)
                name = message.name or names.get(message.tool_call_id or "", "")
                return {"role": "tool", "tool_name": name, "content": tool_result_text(message)}
            case _:
                assert_never(message.role)

    def _text_only(self, message: Message, request: CompletionRequest) -> None:
        if message.has_images():
            raise self.invalid(f"Ollama takes images only in user messages, not {message.role} ones", request)

    def parse_response(self, body: _Chat, request: CompletionRequest) -> CompletionResponse:
        message = body.message or _Message()
        calls = [self._read_call(i, c) for i, c in enumerate(message.tool_calls or [])]
        raw = body.done_reason
        if calls:
            finish = FinishReason.TOOL_CALLS  # done_reason stays "stop" when tools are called
        elif raw == "length":
            finish = FinishReason.LENGTH
        else:
            finish = FinishReason.STOP if raw in ("stop", None) else FinishReason.OTHER
        return CompletionResponse(
            text=message.content or "",
            tool_calls=calls,
            finish_reason=finish,
            raw_finish_reason=raw,
            usage=Usage(input_tokens=body.prompt_eval_count or 0, output_tokens=body.eval_count or 0),
            model=body.model or request.model,
            provider=self.name,
        )

    @staticmethod
    def _read_call(index: int, wire: _Call) -> ToolCall:
        function = wire.function or _Function()
        name, arguments = function.name or "", function.arguments or {}
        call_id = wire.id or stable_call_id("ollama", index, name, arguments)
        return ToolCall(id=call_id, name=name, arguments=arguments)

    def decoder(self, request: CompletionRequest) -> StreamDecoder[Any, _Chat]:
        return _Decoder(self, request)

    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        body = leniently(_ErrorBody, payload)
        return _error_detail(status, body.error if body is not None else str(payload or ""))

    def models_request(self) -> WireRequest:
        return models.request(self.base_url, self._headers())

    def not_found_advice(self) -> str:
        return models.not_found_advice(self.base_url)


def _error_detail(status: int, message: str | None) -> ErrorDetail:
    message = message or ""
    if status in (400, 500) and looks_like_context_length(message):
        return ErrorDetail(message, Category.CONTEXT_LENGTH)
    return ErrorDetail(message)


class _Decoder(StreamDecoder[_Chat, _Chat]):
    """Merges NDJSON lines: content fragments, whole tool calls, the stats of the `done` line."""

    def __init__(self, provider: OllamaProvider, request: CompletionRequest) -> None:
        super().__init__(provider, request, NDJSONParser(), _Chat)
        self._text: list[str] = []
        self._calls: list[_Call] = []
        self._done: _Chat | None = None

    def on(self, event: _Chat, events: list[StreamEvent]) -> None:
        if event.error:
            raise self.fail(_error_detail(200, event.error))
        message = event.message or _Message()
        if text := message.content:
            self._text.append(text)
            events.append(TextDelta(text=text))
        self._calls.extend(message.tool_calls or [])
        if event.done:
            self._done = event

    def payload(self) -> _Chat:
        if self._done is None:
            raise self.incomplete()
        message = _Message(content="".join(self._text), tool_calls=self._calls)
        return self._done.model_copy(update={"message": message})
