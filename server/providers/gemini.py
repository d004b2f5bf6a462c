"""Gemini API v1beta (`models/{model}:generateContent` and `:streamGenerateContent?alt=sse`).

The key travels in the `x-goog-api-key` header, never in the URL. Gemini 2.x function calls usually
come without ids: we give them stable ones, remember in `provider_details` that the id is ours, and
answer them by name (and by id only when Gemini chose it). Thought signatures ride along in
`provider_details` and are put back on the same part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, assert_never
from urllib.parse import quote

from pydantic import Discriminator, Tag

from server.providers.base import OTHER, HttpProvider, StreamDecoder, WireModel, kind_of, leniently
from server.providers.failures import Category, ErrorDetail, looks_like_context_length
from server.providers.framing import SSEParser
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


# What we read of a GenerateContentResponse (each streamed chunk is one too).


class _FunctionCall(WireModel):
    name: str | None = None
    args: dict[str, Any] | None = None
    id: str | None = None  # Gemini 2.x usually leaves it out


class _CallPart(WireModel):
    functionCall: _FunctionCall
    thoughtSignature: str | None = None


class _TextPart(WireModel):
    text: str
    thought: bool | None = None
    thoughtSignature: str | None = None


class _OtherPart(WireModel):
    pass


def _part_kind(part: Any) -> str:
    """Gemini parts have no type field: what a part is shows in which key it carries."""
    if isinstance(part, Mapping):
        return "call" if "functionCall" in part else "text" if "text" in part else OTHER
    return "call" if isinstance(part, _CallPart) else "text" if isinstance(part, _TextPart) else OTHER


_Part = Annotated[
    Annotated[_CallPart, Tag("call")] | Annotated[_TextPart, Tag("text")] | Annotated[_OtherPart, Tag(OTHER)],
    Discriminator(_part_kind),
]


class _Content(WireModel):
    role: str | None = None
    parts: list[_Part] | None = None


class _Candidate(WireModel):
    content: _Content | None = None
    finishReason: str | None = None


class _PromptFeedback(WireModel):
    blockReason: str | None = None


class _UsageMetadata(WireModel):
    promptTokenCount: int | None = None
    candidatesTokenCount: int | None = None
    thoughtsTokenCount: int | None = None


_RPC = "type.googleapis.com/google.rpc."


class _ErrorInfo(WireModel):
    reason: str | None = None


class _QuotaViolation(WireModel):
    quotaId: str | None = None


class _QuotaFailure(WireModel):
    violations: list[_QuotaViolation] | None = None


class _RetryInfo(WireModel):
    retryDelay: str | None = None  # a protobuf JSON duration such as "33s"


class _OtherDetail(WireModel):
    pass


_Detail = Annotated[
    Annotated[_ErrorInfo, Tag(f"{_RPC}ErrorInfo")]
    | Annotated[_QuotaFailure, Tag(f"{_RPC}QuotaFailure")]
    | Annotated[_RetryInfo, Tag(f"{_RPC}RetryInfo")]
    | Annotated[_OtherDetail, Tag(OTHER)],
    Discriminator(kind_of({f"{_RPC}ErrorInfo", f"{_RPC}QuotaFailure", f"{_RPC}RetryInfo"}, field="@type")),
]


class _ErrorObject(WireModel):
    message: str | None = None
    status: str | None = None
    details: list[_Detail] | None = None


class _ErrorBody(WireModel):
    error: _ErrorObject


class _Response(WireModel):
    candidates: list[_Candidate] | None = None
    promptFeedback: _PromptFeedback | None = None
    usageMetadata: _UsageMetadata | None = None
    modelVersion: str | None = None
    error: _ErrorObject | None = None  # a failure reported inside a stream


class GeminiProvider(HttpProvider[_Response]):
    name = "gemini"
    response_model = _Response
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

    def parse_response(self, body: _Response, request: CompletionRequest) -> CompletionResponse:
        candidate = body.candidates[0] if body.candidates else _Candidate()
        text: list[str] = []
        calls: list[ToolCall] = []
        text_signature = None
        for part in (candidate.content or _Content()).parts or []:
            match part:
                case _CallPart():
                    calls.append(self._read_call(len(calls), part))
                case _TextPart(thought=True):
                    pass  # a thought summary, not the answer
                case _TextPart():
                    text.append(part.text)
                    text_signature = part.thoughtSignature or text_signature
                case _OtherPart():
                    pass
                case _:
                    assert_never(part)
        raw = candidate.finishReason or (body.promptFeedback or _PromptFeedback()).blockReason
        usage = body.usageMetadata or _UsageMetadata()
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

    def _read_call(self, index: int, part: _CallPart) -> ToolCall:
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

    def decoder(self, request: CompletionRequest) -> StreamDecoder[Any, _Response]:
        return _Decoder(self, request)

    def parse_error(self, status: int, payload: Any) -> ErrorDetail:
        body = leniently(_ErrorBody, payload)
        return _error_detail(status, body.error) if body is not None else ErrorDetail(str(payload or ""))

    def check_request(self) -> WireRequest:
        return WireRequest("GET", f"{self.base_url}/v1beta/models?pageSize=1", self._headers())


def _finish(raw: str | None, calls: list[ToolCall]) -> FinishReason:
    if raw in _FILTERED:
        return FinishReason.CONTENT_FILTER
    if calls:
        return FinishReason.TOOL_CALLS  # Gemini ends a tool call with STOP
    if raw in (None, "STOP"):
        return FinishReason.STOP
    return FinishReason.LENGTH if raw == "MAX_TOKENS" else FinishReason.OTHER


def _error_detail(status: int, error: _ErrorObject) -> ErrorDetail:
    message = error.message or ""
    details = error.details or []
    retry_after = next((_seconds(d.retryDelay) for d in details if isinstance(d, _RetryInfo)), None)
    if any(isinstance(d, _ErrorInfo) and d.reason == "API_KEY_INVALID" for d in details):
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


def _daily_quota(details: list[_ErrorInfo | _QuotaFailure | _RetryInfo | _OtherDetail]) -> bool:
    """A per-day quota will not come back within any wait worth making."""
    return any(
        "PerDay" in (violation.quotaId or "")
        for detail in details
        if isinstance(detail, _QuotaFailure)
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


class _Decoder(StreamDecoder[_Response, _Response]):
    """Merges the streamed GenerateContentResponses: parts in order, last finish reason and usage."""

    def __init__(self, provider: GeminiProvider, request: CompletionRequest) -> None:
        super().__init__(provider, request, SSEParser(), _Response)
        self._parts: list[_CallPart | _TextPart | _OtherPart] = []
        self._last = _Response()  # usage, model version and prompt feedback: the last chunk's win
        self._finish: str | None = None

    def on(self, event: _Response, events: list[StreamEvent]) -> None:
        if event.error is not None:
            raise self.fail(_error_detail(200, event.error))
        update = {key: getattr(event, key) for key in ("usageMetadata", "modelVersion", "promptFeedback")}
        self._last = self._last.model_copy(update={k: v for k, v in update.items() if v is not None})
        for candidate in (event.candidates or [])[:1]:
            for part in (candidate.content or _Content()).parts or []:
                self._parts.append(part)
                if isinstance(part, _TextPart) and part.text and not part.thought:
                    events.append(TextDelta(text=part.text))
            self._finish = candidate.finishReason or self._finish

    def payload(self) -> _Response:
        if self._finish is None and self._last.promptFeedback is None:
            raise self.incomplete()
        candidate = _Candidate(content=_Content(role="model", parts=self._parts), finishReason=self._finish)
        return self._last.model_copy(update={"candidates": [candidate]})
