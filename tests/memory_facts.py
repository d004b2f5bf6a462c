"""Stores holding many facts, for the tests of what the preamble chooses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.memory.storage import MemoryRecord, MemoryStorage, Owner, Scope

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DOG = ("pet", "dog is named Biscuit")
DOG_QUESTION = "Quick question: what is my dog's name again?"


def unrelated(i: int) -> tuple[str, str]:
    """A fact sharing no term with the dog question."""
    return f"note-{i}", f"meeting room {i} is booked on floor {i % 7} for the quarterly review"


async def seed(
    store: MemoryStorage, owner: Owner, facts: list[tuple[str, str]], scope: Scope = Scope.USER
) -> None:
    """Restore `facts` oldest first, a minute apart (the last is the newest)."""
    records = [
        MemoryRecord(
            handle=f"seed-{n}",
            scope=scope,
            key=key,
            content=content,
            created_at=T0 + timedelta(minutes=n),
            updated_at=T0 + timedelta(minutes=n),
        )
        for n, (key, content) in enumerate(facts)
    ]
    await store.restore_many(owner, scope, records)


def old_dog_among(newer: int) -> list[tuple[str, str]]:
    return [DOG, *(unrelated(i) for i in range(newer))]
