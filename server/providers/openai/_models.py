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
