"""Gemini API v1beta (`models/{model}:generateContent` and `:streamGenerateContent?alt=sse`).

The key travels in the `x-goog-api-key` header, never in the URL. Gemini 2.x function calls usually
come without ids: we give them stable ones, remember in `provider_details` that the id is ours, and
answer them by name (and by id only when Gemini chose it). Thought signatures ride along in
`provider_details` and are put back on the same part.
"""

from __future__ import annotations

import re
from typing import Any, assert_never
from urllib.parse import quote

from server.providers.base import HttpProvider, StreamDecoder, leniently
from server.providers.failures import Category, ErrorDetail, looks_like_context_length
from server.providers.framing import SSEParser
from server.providers.gemini import _models as models
from server.providers.gemini import _wire as wire
from server.providers.mapping import details_for, stable_call_id, tool_names_by_id, wire_parameters
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

_FILTERED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "JAILBREAK",
    "MODEL_ARMOR",
}
# The OpenAPI subset Gemini's `parameters` accepts; anything else (additionalProperties, $schema,
# $defs, const, ...) is rejected with a 400, so it is dropped.
_SCHEMA_KEYS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "anyOf",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
}
SIGNATURE = "thought_signature"  # our key in provider_details
SIGNATURE_WIRE = "thoughtSignature"
SYNTHETIC_ID = "synthetic_id"


class GeminiProvider(HttpProvider[wire.Response]):
    name = "gemini"
    response_model = wire.Response
    model_list = models.Listing
    reserved_fields = frozenset({"contents", "systemInstruction", "tools", "toolConfig"})

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.api_key is not None:
            headers["x-goog-api-key"] = self.api_key.get_secret_value()
        return headers

    def build_request(self, request: CompletionRequest, *, stream: bool) -> WireRequest:
        params = request.parameters
        body: dict[str, Any] = {"contents": self._contents(request)}
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        if request.tools:
            body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        if request.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _tool_choice(request.tool_choice)}
        config = wire_parameters(
            params,
            temperature="temperature",
            top_p="topP",
            max_tokens="maxOutputTokens",
            stop="stopSequences",
        )
        if config:
            body["generationConfig"] = config
        self.add_provider_options(body, request)
        model = quote(request.model, safe="")
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return WireRequest("POST", f"{self.base_url}/v1beta/models/{model}:{action}", self._headers(), body)

    def _contents(self, request: CompletionRequest) -> list[dict[str, Any]]:
        names = tool_names_by_id(request.messages)
        calls = {call.id: call for message in request.messages for call in message.tool_calls}
        contents: list[dict[str, Any]] = []
        for message in request.messages:
            role = "model" if message.role == "assistant" else "user"
            parts = self._parts(message, request, names, calls)
            if contents and contents[-1]["role"] == role:
                contents[-1]["parts"].extend(parts)  # parallel results answer in one user turn
            else:
                contents.append({"role": role, "parts": parts})
        return contents

    def _parts(
        self,
        message: Message,
        request: CompletionRequest,
        names: dict[str, str],
        calls: dict[str, ToolCall],
    ) -> list[dict[str, Any]]:
        match message.role:
            case "user":
                return [self._part(p, request) for p in message.parts()]
            case "assistant":
                parts = [self._part(p, request) for p in message.parts()]
                signature = details_for(self.name, message.provider_details).get(SIGNATURE)
                if signature and parts:
                    parts[-1][SIGNATURE_WIRE] = signature
                return parts + [self._call_part(c) for c in message.tool_calls]
            case "tool":
                if message.has_images():
                    raise self.invalid("Gemini takes no images in tool results", request)
                call_id = message.tool_call_id or ""
                key = "error" if message.is_error else "result"
                response: dict[str, Any] = {"name": message.name or names.get(call_id, ""), "response": {}}
                response["response"][key] = message.text()  # the key already says it failed
                call = calls.get(call_id)
                if call is None or not details_for(self.name, call.provider_details).get(SYNTHETIC_ID):
                    response["id"] = call_id
                return [{"functionResponse": response}]
            case _:
                assert_never(message.role)

    def _call_part(self, call: ToolCall) -> dict[str, Any]:
        mine = details_for(self.name, call.provider_details)
        function: dict[str, Any] = {"name": call.name, "args": call.arguments}
        if not mine.get(SYNTHETIC_ID):
            function["id"] = call.id
        part: dict[str, Any] = {"functionCall": function}
        if signature := mine.get(SIGNATURE):
            part[SIGNATURE_WIRE] = signature
        return part

    def _part(self, part: TextPart | ImagePart, request: CompletionRequest) -> dict[str, Any]:
        match part:
            case TextPart():
                return {"text": part.text}
            case ImagePart(url=str()):
                raise self.invalid("Gemini takes images as base64 data, not URLs", request)
            case ImagePart():
                return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
            case _:
                assert_never(part)

    def parse_response(self, body: wire.Response, request: CompletionRequest) -> CompletionResponse:
        candidate = body.candidates[0] if body.candidates else wire.Candidate()
        text: list[str] = []
        calls: list[ToolCall] = []
        text_signature = None
        for part in (candidate.content or wire.Content()).parts or []:
            match part:
                case wire.CallPart():
                    calls.append(self._read_call(len(calls), part))
                case wire.TextPart(thought=True):
                    pass  # a thought summary, not the answer
                case wire.TextPart():
                    text.append(part.text)
                    text_signature = part.thoughtSignature or text_signature
                case wire.OtherPart():
                    pass
                case _:
                    assert_never(part)
        raw = candidate.finishReason or (body.promptFeedback or wire.PromptFeedback()).blockReason
        usage = body.usageMetadata or wire.UsageMetadata()
        return CompletionResponse(
            text="".join(text),
            tool_calls=calls,
            finish_reason=_finish(raw, calls),
            raw_finish_reason=raw,
            usage=Usage(
                input_tokens=usage.promptTokenCount or 0,
                output_tokens=(usage.candidatesTokenCount or 0) + (usage.thoughtsTokenCount or 0),
            ),
            model=body.modelVersion or request.model,
            provider=self.name,
            provider_details={self.name: {SIGNATURE: text_signature}} if text_signature else None,
        )

    def _read_call(self, index: int, part: wire.CallPart) -> ToolCall:
        function = part.functionCall
        name, arguments = function.name or "", function.args or {}
        details: dict[str, Any] = {}
        if part.thoughtSignature:
            details[SIGNATURE] = part.thoughtSignature
        call_id = function.id
        if not call_id:
            call_id = stable_call_id("gemini", index, name, arguments)
            details[SYNTHETIC_ID] = True
        return ToolCall(
            id=call_id,
            name=name,
            arguments=arguments,
            provider_details={self.name: details} if details else None,
        )

    def decoder(self, request: CompletionRequest) -> StreamDecoder[Any, wire.Response]:
        return _Decoder(self, request)

    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        body = leniently(wire.ErrorBody, payload)
        return _error_detail(status, body.error) if body is not None else ErrorDetail(str(payload or ""))

    def models_request(self) -> WireRequest:
        return models.request(self.base_url, self._headers())

    def not_found_advice(self) -> str:
        return models.not_found_advice(self.base_url)


def _finish(raw: str | None, calls: list[ToolCall]) -> FinishReason:
    if raw in _FILTERED:
        return FinishReason.CONTENT_FILTER
    if calls:
        return FinishReason.TOOL_CALLS  # Gemini ends a tool call with STOP
    if raw in (None, "STOP"):
        return FinishReason.STOP
    return FinishReason.LENGTH if raw == "MAX_TOKENS" else FinishReason.OTHER


def _error_detail(status: int, error: wire.ErrorObject) -> ErrorDetail:
    message = error.message or ""
    details = error.details or []
    retry_after = next((_seconds(d.retryDelay) for d in details if isinstance(d, wire.RetryInfo)), None)
    if any(isinstance(d, wire.ErrorInfo) and d.reason == "API_KEY_INVALID" for d in details):
        return ErrorDetail(message, Category.AUTHENTICATION)
    if status == 400 and looks_like_context_length(message):
        return ErrorDetail(message, Category.CONTEXT_LENGTH)
    if status == 429 and _daily_quota(details):
        return ErrorDetail(message, Category.RATE_LIMIT, retryable=False, retry_after=retry_after)
    return ErrorDetail(message or error.status or "", retry_after=retry_after)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _seconds(duration: str | None) -> float | None:
    """A protobuf JSON duration such as "33s" or "0.5s"."""
    match = _DURATION.match(duration) if duration else None
    return float(match.group(1)) if match else None


def _daily_quota(
    details: list[wire.ErrorInfo | wire.QuotaFailure | wire.RetryInfo | wire.OtherDetail],
) -> bool:
    """A per-day quota will not come back within any wait worth making."""
    return any(
        "PerDay" in (violation.quotaId or "")
        for detail in details
        if isinstance(detail, wire.QuotaFailure)
        for violation in detail.violations or []
    )


def _declaration(tool: ToolSpec) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
    schema = gemini_schema(tool.input_schema)
    if schema.get("properties"):  # a zero-argument function is declared without parameters
        declaration["parameters"] = schema
    return declaration


def gemini_schema(schema: Any) -> dict[str, Any]:
    """A JSON Schema reduced to what Gemini's `parameters` accepts."""
    if not isinstance(schema, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "const":
            out["enum"] = [value]
        elif key not in _SCHEMA_KEYS:
            continue
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out["type"] = types[0] if types else "string"
            if "null" in value:
                out["nullable"] = True
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = gemini_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [gemini_schema(sub) for sub in value]
        else:
            out[key] = value
    return out


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    match choice:
        case NamedToolChoice(name=name):
            return {"mode": "ANY", "allowedFunctionNames": [name]}
        case "auto":
            return {"mode": "AUTO"}
        case "none":
            return {"mode": "NONE"}
        case "required":
            return {"mode": "ANY"}
        case _:
            assert_never(choice)


class _Decoder(StreamDecoder[wire.Response, wire.Response]):
    """Merges the streamed GenerateContentResponses: parts in order, last finish reason and usage."""

    def __init__(self, provider: GeminiProvider, request: CompletionRequest) -> None:
        super().__init__(provider, request, SSEParser(), wire.Response)
        self._parts: list[wire.CallPart | wire.TextPart | wire.OtherPart] = []
        self._last = wire.Response()  # usage, model version and prompt feedback: the last chunk's win
        self._finish: str | None = None

    def on(self, event: wire.Response, events: list[StreamEvent]) -> None:
        if event.error is not None:
            raise self.fail(_error_detail(200, event.error))
        update = {key: getattr(event, key) for key in ("usageMetadata", "modelVersion", "promptFeedback")}
        self._last = self._last.model_copy(update={k: v for k, v in update.items() if v is not None})
        for candidate in (event.candidates or [])[:1]:
            for part in (candidate.content or wire.Content()).parts or []:
                self._parts.append(part)
                if isinstance(part, wire.TextPart) and part.text and not part.thought:
                    events.append(TextDelta(text=part.text))
            self._finish = candidate.finishReason or self._finish

    def payload(self) -> wire.Response:
        if self._finish is None and self._last.promptFeedback is None:
            raise self.incomplete()
        candidate = wire.Candidate(
            content=wire.Content(role="model", parts=self._parts), finishReason=self._finish
        )
        return self._last.model_copy(update={"candidates": [candidate]})
