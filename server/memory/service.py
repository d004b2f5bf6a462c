"""The memory operations that the MCP `memory` tool and the router's internal tool share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from server.errors import MemoryInputError, StoreError
from server.memory.preamble import Preamble, PreambleBudget, compose_preamble
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope
from server.memory.tool import MemoryArguments, MemoryOpResult, Op, Outcome

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

    async def apply(self, owner: Owner, call: MemoryArguments) -> MemoryOpResult:
        """Run one `memory` tool call. A missing value and store failures become error results."""
        scope, key = call.scope, call.key

        def result(outcome: Outcome, text: str) -> MemoryOpResult:
            return MemoryOpResult(op=call.op, scope=scope, key=key, outcome=outcome, text=text)

        try:
            match call.op:
                case Op.RECORD:
                    if not call.value:
                        return result("error", f'The value is required to record {scope} memory "{key}".')
                    await self.store.put(owner, scope, call.value, key=key)
                    await self._changed(owner, scope, key)
                    return result("recorded", f'Recorded {scope} memory "{key}".')
                case Op.FORGET:
                    if await self.store.forget_key(owner, scope, key) is None:
                        return result("not_found", f'No {scope} memory found for "{key}".')
                    await self._changed(owner, scope, key)
                    return result("forgotten", f'Forgot {scope} memory "{key}".')
        except (MemoryInputError, StoreError) as e:
            return result("error", str(e))

    async def newest(self, owner: Owner, scope: Scope, limit: int) -> tuple[list[MemoryRecord], int | None]:
        """The newest `limit` records, and the total when there are more than that."""
        records = list(await self.store.list(owner, scope, limit=limit + 1))
        if len(records) <= limit:
            return records, None
        return records[:limit], await self.store.count(owner, scope)

    async def preamble(
        self, owner: Owner, query: str | None = None, scopes: frozenset[Scope] = frozenset(Scope)
    ) -> Preamble:
        """The preamble for this owner now, with its manifest: every fact when all fit, else the
        newest that fit. `query` (the turn's text) is where relevance selection plugs in; `scopes`
        narrows it to user or session facts."""
        limit = self.budget.max_items
        user, user_total = await self.newest(owner, Scope.USER, limit) if Scope.USER in scopes else ([], 0)
        session, session_total = (
            await self.newest(owner, Scope.SESSION, limit) if Scope.SESSION in scopes else ([], 0)
        )
        return compose_preamble(
            user, session, self.budget, user_total=user_total, session_total=session_total
        )
