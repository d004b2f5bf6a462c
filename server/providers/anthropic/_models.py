"""Anthropic's model list: `GET /v1/models`, newest first.

{"data": [{"type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "...",
  "created_at": "..."}], "has_more": false, "first_id": "...", "last_id": "..."}
"""

from __future__ import annotations

from server.providers.base import ModelList, WireModel, bare_address_advice
from server.providers.transport import WireRequest


class _Model(WireModel):
    id: str


class Listing(ModelList):
    data: list[_Model]
    has_more: bool = False  # one page of 1000 holds every model Anthropic serves

    def ids(self) -> list[str]:
        return [model.id for model in self.data]


def request(base_url: str, headers: dict[str, str]) -> WireRequest:
    return WireRequest("GET", f"{base_url}/v1/models?limit=1000", headers)


def not_found_advice(base_url: str) -> str:
    return bare_address_advice(base_url, "/v1/models")
