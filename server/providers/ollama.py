"""Ollama's native chat API (`POST {OLLAMA_HOST}/api/chat`), streamed as NDJSON."""

from __future__ import annotations

from typing import Any, assert_never

from server.providers.base import HttpProvider, StreamDecoder
from server.providers.failures import Category, ErrorDetail, looks_like_context_length
from server.providers.framing import NDJSONParser
from server.providers.mapping import (
    function_tools,
    stable_call_id,
    tool_names_by_id,
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
    ToolCall,
    Usage,
)


class OllamaProvider(HttpProvider):
    name = "ollama"
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

    def parse_response(self, payload: Any, request: CompletionRequest) -> CompletionResponse:
        message = payload.get("message") or {}
        calls = [self._read_call(i, c) for i, c in enumerate(message.get("tool_calls") or [])]
        raw = payload.get("done_reason")
        if calls:
            finish = FinishReason.TOOL_CALLS  # done_reason stays "stop" when tools are called
        elif raw == "length":
            finish = FinishReason.LENGTH
        else:
            finish = FinishReason.STOP if raw in ("stop", None) else FinishReason.OTHER
        return CompletionResponse(
            text=message.get("content") or "",
            tool_calls=calls,
            finish_reason=finish,
            raw_finish_reason=raw,
            usage=Usage(
                input_tokens=payload.get("prompt_eval_count") or 0,
                output_tokens=payload.get("eval_count") or 0,
            ),
            model=payload.get("model") or request.model,
            provider=self.name,
        )

    @staticmethod
    def _read_call(index: int, wire: dict[str, Any]) -> ToolCall:
        function = wire.get("function") or {}
        name, arguments = function.get("name") or "", function.get("arguments") or {}
        call_id = wire.get("id") or stable_call_id("ollama", index, name, arguments)
        return ToolCall(id=call_id, name=name, arguments=arguments)

    def decoder(self, request: CompletionRequest) -> StreamDecoder:
        return _Decoder(self, request)

    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        message = payload.get("error") if isinstance(payload, dict) else payload
        message = str(message or "")
        if status in (400, 500) and looks_like_context_length(message):
            return ErrorDetail(message, Category.CONTEXT_LENGTH)
        return ErrorDetail(message)

    def check_request(self) -> WireRequest:
        return WireRequest("GET", f"{self.base_url}/api/tags", self._headers())


class _Decoder(StreamDecoder):
    """Merges NDJSON lines: content fragments, whole tool calls, the stats of the `done` line."""

    def __init__(self, provider: OllamaProvider, request: CompletionRequest) -> None:
        super().__init__(provider, request, NDJSONParser())
        self._text: list[str] = []
        self._calls: list[dict[str, Any]] = []
        self._done: dict[str, Any] | None = None

    def on(self, data: dict[str, Any], events: list[StreamEvent]) -> None:
        if data.get("error"):
            raise self.fail(self.provider.parse_error(200, data))
        message = data.get("message") or {}
        if text := message.get("content"):
            self._text.append(text)
            events.append(TextDelta(text=text))
        self._calls.extend(message.get("tool_calls") or [])
        if data.get("done"):
            self._done = data

    def payload(self) -> Any:
        if self._done is None:
            raise self.incomplete()
        message = {"role": "assistant", "content": "".join(self._text), "tool_calls": self._calls}
        return {**self._done, "message": message}
