"""The memory store's schema: defined on open, older stores upgraded, derived counters repaired."""

from __future__ import annotations

import logging

from server.memory.surreal import queries
from server.memory.surreal.statements import Statements

logger = logging.getLogger(__name__)


async def upgrade_schema(statements: Statements) -> None:
    await statements.run(queries.SCHEMA, {}, "defining the schema")
    info = await statements.one(queries.TIMELINE_INFO, {}, "reading the schema") or {}
    if "content" in (info.get("fields") or {}):
        # Once per store written by an older version: about 1 s per 100k memories.
        logger.info("Dropping the timeline's copies of every memory (once, for a store of an older version).")
        await statements.write(queries.DROP_TIMELINE_COPIES, {}, "upgrading the store's timeline")


async def repair_counters(statements: Statements) -> bool:
    """Recount every owner's entries when the counters' total disagrees with the number of entries;
    whether it did. The check scans the entries' keys (about 0.1 s per 100k), the recount reads them
    (about 1.5 s per 100k)."""
    entries, counted = await statements.one(queries.TOTALS, {}, "checking the memory counters")
    if entries == counted:
        return False
    logger.warning(
        "The memory store's counters said %s memories but it holds %s; recounting them.", counted, entries
    )
    await statements.write(queries.RECOUNT, {}, "recounting memories")
    return True
