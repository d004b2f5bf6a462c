"""Gemini's model list: `GET /v1beta/models` (key in the `x-goog-api-key` header, never the URL).

    {"models": [{"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
      "supportedGenerationMethods": ["generateContent", "countTokens", ...]}], "nextPageToken": "..."}

Embedding and other models that cannot generateContent are left out: they cannot be routed to.
"""

from __future__ import annotations

from pydantic import Field

from server.providers.base import ModelList, WireModel, bare_address_advice
from server.providers.transport import WireRequest


class _Model(WireModel):
    name: str
    supportedGenerationMethods: list[str] | None = None


class Listing(ModelList):
    models: list[_Model] = Field(default_factory=list)  # Google's JSON leaves out empty lists

    def ids(self) -> list[str]:
        return [
            model.name.removeprefix("models/")
            for model in self.models
            if model.supportedGenerationMethods is None
            or "generateContent" in model.supportedGenerationMethods
        ]


def request(base_url: str, headers: dict[str, str]) -> WireRequest:
    return WireRequest("GET", f"{base_url}/v1beta/models?pageSize=1000", headers)


def not_found_advice(base_url: str) -> str:
    return bare_address_advice(base_url, "/v1beta/models")
