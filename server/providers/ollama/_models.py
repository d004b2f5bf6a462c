"""The models an Ollama server has pulled: `GET /api/tags`.

{"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest", "modified_at": "...",
  "size": 2019393189, "digest": "...", "details": {"family": "llama", ...}}]}
"""

from __future__ import annotations

from server.providers.base import ModelList, WireModel, bare_address_advice
from server.providers.transport import WireRequest


class _Model(WireModel):
    name: str | None = None
    model: str | None = None  # newer servers send both, older ones only `name`


class Listing(ModelList):
    models: list[_Model]

    def ids(self) -> list[str]:
        return [name for model in self.models if (name := model.name or model.model)]


def request(base_url: str, headers: dict[str, str]) -> WireRequest:
    return WireRequest("GET", f"{base_url}/api/tags", headers)


def not_found_advice(base_url: str) -> str:
    return bare_address_advice(base_url, "/api/tags")
