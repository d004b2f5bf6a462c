"""The memory operations that the MCP `memory` tool and the router's internal tool share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from server.errors import MemoryInputError, StoreError
from server.memory.preamble import Preamble, PreambleBudget, compose_preamble
from server.memory.relevance import query_terms
from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope, Source
from server.memory.tool import MemoryArguments, MemoryOpResult, Op, Outcome

MAX_QUERY_CHARS = 2000
"""A longer query is cut to its end (where a turn's question usually is)."""
RECENT_SHARE = 4
"""When facts are chosen for a turn, the newest 1/RECENT_SHARE of the item budget keep their place."""

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

    async def apply(
        self, owner: Owner, call: MemoryArguments, source: Source | None = None
    ) -> MemoryOpResult:
        """Run one `memory` tool call (a record keeps `source`, where it came from). A missing value
        and store failures become error results."""
        scope, key = call.scope, call.key

        def result(outcome: Outcome, text: str) -> MemoryOpResult:
            return MemoryOpResult(op=call.op, scope=scope, key=key, outcome=outcome, text=text)

        try:
            match call.op:
                case Op.RECORD:
                    if not call.value:
                        return result("error", f'The value is required to record {scope} memory "{key}".')
                    await self.store.put(owner, scope, call.value, key=key, source=source)
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
        """The preamble for this owner now, with its manifest; `scopes` narrows it to user or
        session facts.

        When every fact fits, all of them, newest first (selection `all`). When they do not and
        `query` (the turn's text) has terms, the candidates of each scope are, in this order of
        preference: the newest quarter of the item budget (recent context always has a place), then
        the facts most relevant to the query (BM25 over key and content, this owner's facts only),
        then the newer of the rest to fill what is left (selection `relevance`). Without query
        terms, the newest that fit (selection `newest`). Only the last MAX_QUERY_CHARS characters of
        `query` count.
        """
        limit = self.budget.max_items
        newest = {scope: await self.newest(owner, scope, limit) for scope in Scope if scope in scopes}
        user, user_total = newest.get(Scope.USER, ([], None))
        session, session_total = newest.get(Scope.SESSION, ([], None))
        by_recency = compose_preamble(
            user, session, self.budget, user_total=user_total, session_total=session_total
        )
        query = query[-MAX_QUERY_CHARS:] if query else None
        if by_recency.context.left_out == 0 or not query or not query_terms(query):
            return by_recency
        return compose_preamble(
            await self._by_relevance(owner, Scope.USER, query, user) if user else [],
            await self._by_relevance(owner, Scope.SESSION, query, session) if session else [],
            self.budget,
            user_total=user_total,
            session_total=session_total,
            selection="relevance",
        )

    async def _by_relevance(
        self, owner: Owner, scope: Scope, query: str, newest: list[MemoryRecord]
    ) -> list[MemoryRecord]:
        """The candidates of one scope in order of preference: the newest few, the most relevant,
        then the newer rest."""
        recent = max(1, self.budget.max_items // RECENT_SHARE)
        hits = await self.store.search(owner, scope, query, self.budget.max_items)
        ordered = {r.handle: r for r in newest[:recent]}
        for record in [*(record for record, _ in hits), *newest[recent:]]:
            ordered.setdefault(record.handle, record)
        return list(ordered.values())
