"""The `memory` tool's contract: its arguments, its description and what one call did.

`MemoryArguments` is the one definition of the arguments: it generates the schema offered to models
inside `route_completion` (`MEMORY_TOOL_INPUT_SCHEMA`) and, through the MCP layer, the MCP tool's.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, SkipJsonSchema
from pydantic_core import core_schema

from server.errors import MemoryInputError
from server.memory.storage import Scope

MEMORY_TOOL_NAME = "memory"

MEMORY_TOOL_DESCRIPTION = (
    "Record or forget a fact about the user, so that it is remembered in later turns and conversations. "
    "Use scope `user` for durable facts about the user (preferences, identity, long-lived context) and "
    "scope `session` for working memory of the current session. `record` stores `value` under `key`, "
    "replacing any fact under the same key; `forget` removes the fact under `key`. "
    "You never need to recall: everything recorded is already given to you as context at the start "
    "of the turn."
)


class Op(StrEnum):
    RECORD = "record"
    FORGET = "forget"


def _inline(enum: type[StrEnum]) -> WithJsonSchema:
    # Inline, not a `$ref` to `$defs`: some hosts and models read only a property's own schema.
    return WithJsonSchema({"type": "string", "enum": [member.value for member in enum]})


class MemoryArguments(BaseModel):
    op: Annotated[Op, _inline(Op), Field(description="record or forget")]
    scope: Annotated[
        Scope,
        _inline(Scope),
        Field(description="user: durable facts about the user; session: working memory of this session"),
    ]
    key: Annotated[str, Field(description="the topic the fact is stored under")]
    value: Annotated[str | None, Field(description="the fact; required for record, ignored for forget")] = (
        None
    )

    @classmethod
    def from_call(cls, arguments: Mapping[str, Any]) -> MemoryArguments:
        """Arguments a model sent; MemoryInputError names what is wrong, in words the model can act on."""
        try:
            return cls.model_validate(arguments)
        except ValidationError as e:
            raise MemoryInputError(f"Invalid memory call: {describe_problems(e)}.") from None


def describe_problems(error: ValidationError) -> str:
    """What is wrong with some arguments, per field, without the validator's jargon and links."""
    return "; ".join(_problem(problem["loc"], problem["type"], problem["msg"]) for problem in error.errors())


def _problem(loc: tuple[int | str, ...], kind: str, message: str) -> str:
    field = ".".join(str(part) for part in loc) or "arguments"
    if kind == "missing":
        return f"`{field}` is required"
    return f"`{field}`: {message[:1].lower()}{message[1:]}"


class _ModelFacingSchema(GenerateJsonSchema):
    """The plainest schema for models: no titles, no defaults, optional fields without a null arm."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        generated = super().model_schema(schema)
        generated.pop("title", None)
        return generated

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        generated = super().default_schema(schema)
        generated.pop("default", None)
        return generated

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


MEMORY_TOOL_INPUT_SCHEMA: dict[str, Any] = MemoryArguments.model_json_schema(
    schema_generator=_ModelFacingSchema
)

Outcome = Literal["recorded", "forgotten", "not_found", "error"]


class MemoryOpResult(BaseModel):
    """What one memory call did: an entry of `route_completion`'s `memory_ops`."""

    op: Op
    scope: Scope
    key: str
    outcome: Outcome
    # What the caller (a model, an MCP client) is told. Not part of `memory_ops`, whose entries the
    # README fixes as op, scope, key and outcome.
    text: SkipJsonSchema[str] = Field(default="", exclude=True)

    @property
    def is_error(self) -> bool:
        return self.outcome == "error"
