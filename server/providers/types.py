"""Provider-neutral request, response and stream-event types.

These models are part of MCP tool input schemas, so they stay plain JSON: literals discriminate
the unions, and anything only one vendor has travels in a `provider_details` dict keyed by the
provider's name (e.g. `{"gemini": {"thought_signature": "..."}}`), which other providers ignore.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, model_validator


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    """An image: base64 `data` with its `media_type`, or a `url` for providers that fetch one."""

    type: Literal["image"] = "image"
    data: str | None = None
    media_type: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.url is None) == (self.data is None):
            raise ValueError("an image needs either base64 `data` (with `media_type`) or a `url`")
        if self.data is not None and not self.media_type:
            raise ValueError("base64 image `data` needs a `media_type` such as image/png")
        return self


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ToolCall(BaseModel):
    """A call the model wants made. `provider_details` must be echoed back unchanged."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    provider_details: dict[str, Any] | None = None


class Message(BaseModel):
    """One turn of history.

    Assistant turns may carry `tool_calls`; a `tool` turn answers one call through `tool_call_id`.
    `provider_details` carries state a provider needs to see again (e.g. Anthropic thinking blocks).
    """

    role: Literal["user", "assistant", "tool"]
    content: str | list[ContentPart] = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    provider_details: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _role_fields(self) -> Self:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the `tool_call_id` of the call it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry `tool_calls`")
        return self

    def parts(self) -> list[TextPart | ImagePart]:
        """The content as a list of parts (a plain string becomes one text part)."""
        if isinstance(self.content, str):
            return [TextPart(text=self.content)] if self.content else []
        return list(self.content)

    def has_images(self) -> bool:
        return not isinstance(self.content, str) and any(isinstance(p, ImagePart) for p in self.content)

    def text(self) -> str:
        """The concatenated text of the content, ignoring images."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))


class ToolSpec(BaseModel):
    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class NamedToolChoice(BaseModel):
    """Force a call to this tool."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


class Parameters(BaseModel):
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = None
    stop: list[str] | None = None


class CompletionRequest(BaseModel):
    """`model` is the provider's own model name, without a `provider/` prefix."""

    model: str
    system: str | None = None
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parameters: Parameters = Field(default_factory=Parameters)
    # Extra top-level body fields for the provider, e.g. Anthropic {"thinking": {...}}.
    provider_options: dict[str, Any] | None = None


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    OTHER = "other"


class CompletionResponse(BaseModel):
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: FinishReason
    raw_finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    model: str
    provider: str
    provider_details: dict[str, Any] | None = None

    def message(self) -> Message:
        """The assistant turn to append to history; echoing it back keeps provider state intact."""
        return Message(
            role="assistant",
            content=self.text,
            tool_calls=self.tool_calls,
            provider_details=self.provider_details,
        )


class TextDelta(BaseModel):
    type: Literal["text_delta"] = "text_delta"
    text: str


class ToolCallEvent(BaseModel):
    """A complete tool call, arguments assembled."""

    type: Literal["tool_call"] = "tool_call"
    tool_call: ToolCall


class FinalResponse(BaseModel):
    """The last event: the response `complete` would have returned for the same answer."""

    type: Literal["final"] = "final"
    response: CompletionResponse


StreamEvent = Annotated[TextDelta | ToolCallEvent | FinalResponse, Field(discriminator="type")]
