"""Gemini GenerateContentResponse payloads as we read them (each streamed chunk is one too).

Unknown fields are kept; part and error-detail kinds we do not read fall back to `Other*` models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Discriminator, Tag

from server.providers.base import OTHER, WireModel, kind_of

# What we read of a GenerateContentResponse (each streamed chunk is one too).


class FunctionCall(WireModel):
    name: str | None = None
    args: dict[str, Any] | None = None
    id: str | None = None  # Gemini 2.x usually leaves it out


class CallPart(WireModel):
    functionCall: FunctionCall
    thoughtSignature: str | None = None


class TextPart(WireModel):
    text: str
    thought: bool | None = None
    thoughtSignature: str | None = None


class OtherPart(WireModel):
    pass


def part_kind(part: Any) -> str:
    """Gemini parts have no type field: what a part is shows in which key it carries."""
    if isinstance(part, Mapping):
        return "call" if "functionCall" in part else "text" if "text" in part else OTHER
    return "call" if isinstance(part, CallPart) else "text" if isinstance(part, TextPart) else OTHER


Part = Annotated[
    Annotated[CallPart, Tag("call")] | Annotated[TextPart, Tag("text")] | Annotated[OtherPart, Tag(OTHER)],
    Discriminator(part_kind),
]


class Content(WireModel):
    role: str | None = None
    parts: list[Part] | None = None


class Candidate(WireModel):
    content: Content | None = None
    finishReason: str | None = None


class PromptFeedback(WireModel):
    blockReason: str | None = None


class UsageMetadata(WireModel):
    promptTokenCount: int | None = None
    candidatesTokenCount: int | None = None
    thoughtsTokenCount: int | None = None


RPC = "type.googleapis.com/google.rpc."


class ErrorInfo(WireModel):
    reason: str | None = None


class QuotaViolation(WireModel):
    quotaId: str | None = None


class QuotaFailure(WireModel):
    violations: list[QuotaViolation] | None = None


class RetryInfo(WireModel):
    retryDelay: str | None = None  # a protobuf JSON duration such as "33s"


class OtherDetail(WireModel):
    pass


Detail = Annotated[
    Annotated[ErrorInfo, Tag(f"{RPC}ErrorInfo")]
    | Annotated[QuotaFailure, Tag(f"{RPC}QuotaFailure")]
    | Annotated[RetryInfo, Tag(f"{RPC}RetryInfo")]
    | Annotated[OtherDetail, Tag(OTHER)],
    Discriminator(kind_of({f"{RPC}ErrorInfo", f"{RPC}QuotaFailure", f"{RPC}RetryInfo"}, field="@type")),
]


class ErrorObject(WireModel):
    message: str | None = None
    status: str | None = None
    details: list[Detail] | None = None


class ErrorBody(WireModel):
    error: ErrorObject


class Response(WireModel):
    candidates: list[Candidate] | None = None
    promptFeedback: PromptFeedback | None = None
    usageMetadata: UsageMetadata | None = None
    modelVersion: str | None = None
    error: ErrorObject | None = None  # a failure reported inside a stream
