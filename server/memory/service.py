"""The memory operations that the MCP `memory` tool and the router's internal tool share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from server.errors import MemoryInputError, StoreError
from server.memory.preamble import PreambleBudget, render_preamble
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope

MEMORY_TOOL_NAME = "memory"

MEMORY_TOOL_DESCRIPTION = (
    "Record or forget a fact about the user, so that it is remembered in later turns and conversations. "
    "Use scope `user` for durable facts about the user (preferences, identity, long-lived context) and "
    "scope `session` for working memory of the current session. `record` stores `value` under `key`, "
    "replacing any fact under the same key; `forget` removes the fact under `key`. "
    "You never need to recall: everything recorded is already given to you as context at the start "
    "of the turn."
)

MEMORY_TOOL_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "op": {"type": "string", "enum": ["record", "forget"], "description": "record or forget"},
        "scope": {
            "type": "string",
            "enum": ["user", "session"],
            "description": "user: durable facts about the user; session: working memory of this session",
        },
        "key": {"type": "string", "description": "the topic the fact is stored under"},
        "value": {"type": "string", "description": "the fact; required for record, ignored for forget"},
    },
    "required": ["op", "scope", "key"],
}

Op = Literal["record", "forget"]
Outcome = Literal["recorded", "forgotten", "not_found", "error"]


class MemoryOpResult(BaseModel):
    """What one memory operation did; `text` is the tool result shown to the model."""

    op: str
    scope: str
    key: str
    outcome: Outcome
    text: str

    @property
    def is_error(self) -> bool:
        return self.outcome == "error"


ChangeListener = Callable[[Owner, Scope, "str | None"], Awaitable[None]]


@dataclass
class MemoryService:
    """The store plus what happens around it: validation, result texts, change notification, preamble."""

    store: MemoryStorage
    budget: PreambleBudget = field(default_factory=PreambleBudget)
    listeners: list[ChangeListener] = field(default_factory=list["ChangeListener"])

    async def _changed(self, owner: Owner, scope: Scope, key: str | None) -> None:
        for listener in self.listeners:
            await listener(owner, scope, key)

    async def apply(self, owner: Owner, op: str, scope: str, key: str, value: str | None) -> MemoryOpResult:
        """Run one `memory` tool call. Invalid arguments and store failures become error results."""

        def result(outcome: Outcome, text: str) -> MemoryOpResult:
            return MemoryOpResult(op=op, scope=scope, key=key, outcome=outcome, text=text)

        if op not in ("record", "forget"):
            return result("error", f"Unknown op {op!r}: use one of 'record', 'forget'.")
        if scope not in ("user", "session"):
            return result("error", f"Unknown scope {scope!r}: use one of 'user', 'session'.")
        where = Scope(scope)
        try:
            if op == "record":
                if value is None or value == "":
                    return result("error", f'The value is required to record {scope} memory "{key}".')
                await self.store.put(owner, where, value, key=key)
                await self._changed(owner, where, key)
                return result("recorded", f'Recorded {scope} memory "{key}".')
            forgotten = await self.store.forget_key(owner, where, key)
            if forgotten is None:
                return result("not_found", f'No {scope} memory found for "{key}".')
            await self._changed(owner, where, key)
            return result("forgotten", f'Forgot {scope} memory "{key}".')
        except (MemoryInputError, StoreError) as e:
            return result("error", str(e))

    async def newest(self, owner: Owner, scope: Scope, limit: int) -> tuple[list[MemoryRecord], int | None]:
        """The newest `limit` records, and the total when there are more than that."""
        records = list(await self.store.list(owner, scope, limit=limit + 1))
        if len(records) <= limit:
            return records, None
        return records[:limit], await self.store.count(owner, scope)

    async def preamble(self, owner: Owner) -> str:
        limit = self.budget.max_items
        user, user_total = await self.newest(owner, Scope.USER, limit)
        session, session_total = await self.newest(owner, Scope.SESSION, limit)
        return render_preamble(user, session, self.budget, user_total=user_total, session_total=session_total)
