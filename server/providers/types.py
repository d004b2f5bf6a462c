"""Provider-neutral request, response and stream-event types.

These models are part of MCP tool input schemas, so they stay plain JSON: literals discriminate
the unions, and anything only one vendor has travels in a `provider_details` dict keyed by the
provider's name (e.g. `{"gemini": {"thought_signature": "..."}}`), which other providers ignore.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, Discriminator, Field, Tag, model_validator

# ---- Size limits of a routed request -------------------------------------------------------------
# Every list and string a caller sends is bounded, so one call cannot make the server do unbounded
# work. Generous enough for anything a model itself returns in one turn, since hosts echo those back.
# The README lists them under `route_completion`, Limits.
MAX_MESSAGES = 5_000
MAX_PARTS_PER_MESSAGE = 256
MAX_TOOL_CALLS_PER_MESSAGE = 128
MAX_TOOLS = 256
MAX_FALLBACKS = 8
MAX_MODELS_TRIED = 1 + MAX_FALLBACKS  # aliases expand into chains: only this many targets are tried
MAX_STOP_SEQUENCES = 16
MAX_NAME_CHARS = 256  # model strings, tool and call names and ids, media types, stop sequences
MAX_TEXT_CHARS = 1_000_000  # the system prompt, a message's text, a text part, a tool description
MAX_IMAGE_CHARS = 10_000_000  # an image's base64 data or its url
MAX_JSON_DEPTH = 32  # nesting of tool schemas, call arguments, provider details and options
MAX_JSON_SIZE = 100_000  # one tool's input schema, all provider_options: values plus characters
MAX_DETAILS_SIZE = MAX_TEXT_CHARS  # call arguments and provider details a model produced


def json_size_problem(value: Any, max_size: int, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a parsed JSON value is over the limits, else None. Iterative, and it stops as soon as the
    size passes `max_size`, so a huge or deeply nested value costs at most that many steps."""
    size = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > max_depth:
            return f"is nested deeper than {max_depth} levels"
        size += 1 + (len(item) if isinstance(item, str | dict | list) else 0)
        if size <= max_size and isinstance(item, dict):
            size += sum(len(key) for key in item if isinstance(key, str))
            pending.extend((child, depth + 1) for child in item.values())
        elif size <= max_size and isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        if size > max_size:
            return f"is larger than {max_size:,} (JSON values plus characters)"
    return None


def _json_within(max_size: int) -> AfterValidator:
    def check(value: Any) -> Any:
        problem = json_size_problem(value, max_size)
        if problem is not None:
            raise ValueError(f"this value {problem}")
        return value

    return AfterValidator(check)


Name = Annotated[str, Field(max_length=MAX_NAME_CHARS)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
ImageSource = Annotated[str, Field(max_length=MAX_IMAGE_CHARS)]
Details = Annotated[dict[str, Any], _json_within(MAX_DETAILS_SIZE)]
JsonSchema = Annotated[dict[str, Any], _json_within(MAX_JSON_SIZE)]


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: Text


class ImagePart(BaseModel):
    """An image: base64 `data` with its `media_type`, or a `url` for providers that fetch one."""

    type: Literal["image"] = "image"
    data: ImageSource | None = None
    media_type: Name | None = None
    url: ImageSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.url is None) == (self.data is None):
            raise ValueError("an image needs either base64 `data` (with `media_type`) or a `url`")
        if self.data is not None and not self.media_type:
            raise ValueError("base64 image `data` needs a `media_type` such as image/png")
        return self


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


# Tagged by the input's own type, so an over-long string or list reports its own error, not both.
Content = Annotated[
    Annotated[Text, Tag("text")]
    | Annotated[list[ContentPart], Field(max_length=MAX_PARTS_PER_MESSAGE), Tag("parts")],
    Discriminator(lambda value: "text" if isinstance(value, str) else "parts"),
]


class ToolCall(BaseModel):
    """A call the model wants made. `provider_details` must be echoed back unchanged."""

    id: Name
    name: Name
    arguments: Details = Field(default_factory=dict)
    provider_details: Details | None = None


class Message(BaseModel):
    """One turn of history.

    Assistant turns may carry `tool_calls`; a `tool` turn answers one call through `tool_call_id`.
    `provider_details` carries state a provider needs to see again (e.g. Anthropic thinking blocks).
    """

    role: Literal["user", "assistant", "tool"]
    content: Content = ""
    tool_calls: list[ToolCall] = Field(default_factory=list, max_length=MAX_TOOL_CALLS_PER_MESSAGE)
    tool_call_id: Name | None = None
    name: Name | None = None
    is_error: bool = False
    provider_details: Details | None = None

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
    name: Name
    description: Text = ""
    input_schema: JsonSchema = Field(default_factory=lambda: {"type": "object", "properties": {}})


class NamedToolChoice(BaseModel):
    """Force a call to this tool."""

    name: Name


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


class Parameters(BaseModel):
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = None
    stop: list[Name] | None = Field(default=None, max_length=MAX_STOP_SEQUENCES)


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
