"""Anthropic Messages payloads as we read them: bodies, content blocks and stream events.

Unknown fields are kept; block, delta and event types added later fall back to `Other*` models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, PrivateAttr, RootModel, Tag

from server.providers.base import OTHER, WireModel, kind_of
from server.providers.mapping import INVALID_ARGUMENTS, parse_arguments
from server.providers.types import ToolCall

# What we read of a Message; everything else is kept as it came.


class Text(WireModel):
    type: Literal["text"]
    text: str = ""


class ToolUse(WireModel):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any] | None = None
    _unparsed: str | None = PrivateAttr(default=None)  # streamed input that was not a JSON object

    def with_streamed_input(self, raw: str) -> ToolUse:
        arguments, invalid = parse_arguments(raw)
        block = self.model_copy(update={"input": arguments})
        block._unparsed = raw if invalid is not None else None
        return block

    def call(self) -> ToolCall:
        return ToolCall(
            id=self.id,
            name=self.name,
            arguments=self.input or {},
            provider_details={INVALID_ARGUMENTS: self._unparsed} if self._unparsed is not None else None,
        )


class Thinking(WireModel):
    """Echoed back verbatim in the next request, so every field is kept as an extra."""

    type: Literal["thinking", "redacted_thinking"]


class OtherBlock(WireModel):
    type: Any = None


Block = Annotated[
    Annotated[Text, Tag("text")]
    | Annotated[ToolUse, Tag("tool_use")]
    | Annotated[Thinking, Tag("thinking")]
    | Annotated[Thinking, Tag("redacted_thinking")]
    | Annotated[OtherBlock, Tag(OTHER)],
    Discriminator(kind_of({"text", "tool_use", "thinking", "redacted_thinking"})),
]


class Usage(WireModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def merged(self, later: Usage | None) -> Usage:
        """`message_delta` usage is cumulative and may repeat only some fields."""
        if later is None:
            return self
        return Usage.model_validate(
            {**self.model_dump(exclude_unset=True), **later.model_dump(exclude_unset=True)}
        )


class Message(WireModel):
    model: str | None = None
    content: list[Block] | None = None
    stop_reason: str | None = None
    usage: Usage | None = None


class ErrorDetails(WireModel):
    error_code: str | None = None


class ErrorObject(WireModel):
    type: str | None = None
    message: str = ""
    details: ErrorDetails | None = None


class ErrorBody(WireModel):
    error: ErrorObject


# Stream events.


class TextDelta(WireModel):
    type: Literal["text_delta"]
    text: str = ""


class JsonDelta(WireModel):
    type: Literal["input_json_delta"]
    partial_json: str = ""


class ThinkingDelta(WireModel):
    type: Literal["thinking_delta"]
    thinking: str = ""


class SignatureDelta(WireModel):
    type: Literal["signature_delta"]
    signature: str = ""


class OtherDelta(WireModel):
    type: Any = None


Delta = Annotated[
    Annotated[TextDelta, Tag("text_delta")]
    | Annotated[JsonDelta, Tag("input_json_delta")]
    | Annotated[ThinkingDelta, Tag("thinking_delta")]
    | Annotated[SignatureDelta, Tag("signature_delta")]
    | Annotated[OtherDelta, Tag(OTHER)],
    Discriminator(kind_of({"text_delta", "input_json_delta", "thinking_delta", "signature_delta"})),
]


class MessageStart(WireModel):
    type: Literal["message_start"]
    message: Message


class BlockStart(WireModel):
    type: Literal["content_block_start"]
    index: int
    content_block: Block


class BlockDelta(WireModel):
    type: Literal["content_block_delta"]
    index: int
    delta: Delta


class BlockStop(WireModel):
    type: Literal["content_block_stop"]
    index: int


class StopChange(WireModel):
    stop_reason: str | None = None


class MessageDelta(WireModel):
    type: Literal["message_delta"]
    delta: StopChange | None = None
    usage: Usage | None = None


class MessageStop(WireModel):
    type: Literal["message_stop"]


class ErrorEvent(WireModel):
    type: Literal["error"]
    error: ErrorObject


class OtherEvent(WireModel):
    type: Any = None  # `ping`, and event types added later: ignored, as the API asks


EVENTS = ("message_start", "content_block_start", "content_block_delta", "content_block_stop")
Event = RootModel[
    Annotated[
        Annotated[MessageStart, Tag("message_start")]
        | Annotated[BlockStart, Tag("content_block_start")]
        | Annotated[BlockDelta, Tag("content_block_delta")]
        | Annotated[BlockStop, Tag("content_block_stop")]
        | Annotated[MessageDelta, Tag("message_delta")]
        | Annotated[MessageStop, Tag("message_stop")]
        | Annotated[ErrorEvent, Tag("error")]
        | Annotated[OtherEvent, Tag(OTHER)],
        Discriminator(kind_of({*EVENTS, "message_delta", "message_stop", "error"})),
    ]
]
