"""Small mapping helpers more than one adapter needs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from server.providers.types import Message, Parameters

# Set in a tool call's provider_details when the model's arguments were not a JSON object: the
# call is passed through with empty arguments so the host can answer it with a tool error.
INVALID_ARGUMENTS = "invalid_arguments"


def parse_arguments(raw: str | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Arguments from a JSON string; an empty string is `{}` (a zero-argument call)."""
    if raw is None or not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError:
        return {}, {INVALID_ARGUMENTS: raw}
    if not isinstance(value, dict):
        return {}, {INVALID_ARGUMENTS: raw}
    return value, None


def stable_call_id(prefix: str, index: int, name: str, arguments: dict[str, Any]) -> str:
    """An id for a call the provider gave none: the same answer always gets the same id."""
    digest = hashlib.sha256(
        f"{index}\x00{name}\x00{json.dumps(arguments, sort_keys=True)}".encode()
    ).hexdigest()
    return f"{prefix}_{digest[:16]}"


def tool_names_by_id(messages: list[Message]) -> dict[str, str]:
    """Which tool each call id in the history named, for providers that answer calls by name."""
    return {call.id: call.name for message in messages for call in message.tool_calls}


def details_for(provider: str, details: dict[str, Any] | None) -> dict[str, Any]:
    """This provider's share of a `provider_details` bag."""
    if not details:
        return {}
    mine = details.get(provider)
    return mine if isinstance(mine, dict) else {}


def tool_result_text(message: Message) -> str:
    text = message.text()
    return f"Error: {text}" if message.is_error and not text.lower().startswith("error") else text


def wire_parameters(params: Parameters, **wire_names: str) -> dict[str, Any]:
    """The parameters that are set, under each provider's names (`max_tokens="maxOutputTokens"`)."""
    out: dict[str, Any] = {}
    for field, wire_name in wire_names.items():
        value = getattr(params, field)
        if value is not None and value != []:
            out[wire_name] = value
    return out
