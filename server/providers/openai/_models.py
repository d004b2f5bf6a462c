"""OpenAI's model list (and every compatible server's): `GET {base}/models`, not paged.

{"object": "list", "data": [{"id": "gpt-4.1-mini", "object": "model", "created": 1744316542,
  "owned_by": "system"}]}
"""

from __future__ import annotations

from server.providers.base import ModelList, WireModel
from server.providers.transport import WireRequest


class _Model(WireModel):
    id: str


class Listing(ModelList):
    data: list[_Model]

    def ids(self) -> list[str]:
        return [model.id for model in self.data]


def request(base_url: str, headers: dict[str, str]) -> WireRequest:
    return WireRequest("GET", f"{base_url}/models", headers)


def not_found_advice(base_url: str) -> str:
    if not base_url.endswith("/v1"):
        return f"OpenAI-compatible servers usually serve their API under /v1 (try {base_url}/v1)"
    return f"nothing is served at {base_url}/models; is it an OpenAI-compatible server?"
