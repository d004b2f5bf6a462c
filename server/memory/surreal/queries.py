"""Every SurrealQL statement of the store: the schema and constant queries with parameters.

Record ids are passed as `RecordID` values (`ids.py`), never spliced into a query.
"""

from __future__ import annotations

from typing import Final

LIMIT_MARK: Final = "memory-router:limit"
"""Thrown by `PUT` when the owner's record limit would be exceeded."""
EXPIRED_MARK: Final = "memory-router:session-expired"
"""Thrown by `PUT` when the session was idle past its TTL."""

SCHEMA: Final = """
DEFINE TABLE IF NOT EXISTS memory SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON memory TYPE string;
DEFINE FIELD IF NOT EXISTS scope ON memory TYPE string;
DEFINE FIELD IF NOT EXISTS session ON memory TYPE string;
DEFINE FIELD IF NOT EXISTS key ON memory TYPE option<string>;
DEFINE FIELD IF NOT EXISTS content ON memory TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON memory TYPE datetime;
DEFINE FIELD IF NOT EXISTS updated_at ON memory TYPE datetime;
DEFINE FIELD IF NOT EXISTS ordered ON memory TYPE record<memory_order>;
DEFINE FIELD IF NOT EXISTS source ON memory TYPE option<object>;
DEFINE FIELD IF NOT EXISTS source.via ON memory TYPE string;
DEFINE FIELD IF NOT EXISTS source.client ON memory TYPE option<string>;
DEFINE FIELD IF NOT EXISTS source.session ON memory TYPE option<string>;
DEFINE FIELD IF NOT EXISTS source.model ON memory TYPE option<string>;
DEFINE TABLE IF NOT EXISTS memory_order SCHEMAFULL;
DEFINE TABLE IF NOT EXISTS memory_count SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS n ON memory_count TYPE int;
DEFINE TABLE IF NOT EXISTS memory_session SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON memory_session TYPE string;
DEFINE FIELD IF NOT EXISTS session ON memory_session TYPE string;
DEFINE FIELD IF NOT EXISTS last_active ON memory_session TYPE datetime;
DEFINE INDEX IF NOT EXISTS memory_session_idle ON memory_session FIELDS last_active;
"""

# Rows come back as small arrays, not objects: the SDK's CBOR decoder is pure Python and its cost
# grows with every string it decodes (field names, the owner parts of record ids).
#   entry row: [key, content, created µs, updated µs, source]
#   timeline row: [kind, name, key, content, created µs, updated µs, source]
# `source` is an object or NONE (rows written before it was kept read as NONE).
# A timeline record holds nothing but its id: `list` scans the ids in order, then reads the entries.

# Writes one entry and its timeline id. New entries are counted against the limit (the THROW undoes
# the count); a replaced entry moves in the timeline. The engine parses the text on every call, so
# user scope, the common case, gets a version without the session's checks.
_PUT_ENTRY = """
LET $old = SELECT ordered, created_at FROM ONLY $rid;
IF $old = NONE {
    IF (UPSERT ONLY $counter SET n = (n ?? 0) + 1 RETURN VALUE n) > $max { THROW $limit_mark; };
} ELSE {
    DELETE $old.ordered;
};
LET $created = $created_at ?? $old.created_at ?? $now;
UPSERT $order RETURN NONE;
UPSERT $rid CONTENT {
    user: $uid, scope: $scp, session: $sid, key: $key, content: $content,
    created_at: $created, updated_at: $now, ordered: $order, source: $source
} RETURN NONE;
RETURN time::micros($created);
"""
PUT_USER: Final = f"BEGIN TRANSACTION;{_PUT_ENTRY}COMMIT TRANSACTION;"
PUT_SESSION: Final = f"""BEGIN TRANSACTION;
IF ((SELECT VALUE last_active FROM ONLY $srec) ?? $active) < $cutoff {{ THROW $expired_mark; }};
UPSERT $srec SET user = $uid, session = $sid, last_active = $active RETURN NONE;{_PUT_ENTRY}COMMIT TRANSACTION;"""

# Many entries of one owner in one transaction (`restore_many`). Each row of `$rows` is
# [kind, name, key, content, created µs, updated µs, source], no entry twice; the ids are built here, since the
# SDK encodes parameters in pure Python (plain strings and ints cost it far less than ids and dates).
# Not with `.map(|$r| ...)`: a closure does not see the query's parameters.
# The counter grows by the entries that are new.
RESTORE_MANY: Final = """
BEGIN TRANSACTION;
LET $rids = SELECT VALUE type::thing('memory', [$uid, $scp, $sid, $this[0], $this[1]]) FROM $rows;
LET $new = array::len($rows) - array::len(SELECT VALUE id FROM $rids);
IF (UPSERT ONLY $counter SET n = (n ?? 0) + $new RETURN VALUE n) > $max { THROW $limit_mark; };
IF $srec != NONE { UPSERT $srec SET user = $uid, session = $sid, last_active = $active RETURN NONE; };
FOR $r IN $rows {
    LET $rid = type::thing('memory', [$uid, $scp, $sid, $r[0], $r[1]]);
    LET $order = type::thing('memory_order', [$uid, $scp, $sid, $rank_base - $r[5], $r[0], $r[1]]);
    LET $old = SELECT VALUE ordered FROM ONLY $rid;
    IF $old != NONE { DELETE $old; };
    UPSERT $order RETURN NONE;
    UPSERT $rid CONTENT {
        user: $uid, scope: $scp, session: $sid, key: $r[2], content: $r[3],
        created_at: time::from::micros($r[4]), updated_at: time::from::micros($r[5]), ordered: $order,
        source: $r[6]
    } RETURN NONE;
};
COMMIT TRANSACTION;
"""

GET: Final = (
    "SELECT VALUE [key, content, time::micros(created_at), time::micros(updated_at), source] FROM ONLY $rid;"
)

FORGET: Final = """
BEGIN TRANSACTION;
LET $old = SELECT * FROM ONLY $rid;
IF $old != NONE {
    DELETE $rid;
    DELETE $old.ordered;
    UPSERT $counter SET n = math::max([(n ?? 1) - 1, 0]);
};
RETURN IF $old = NONE THEN NONE
    ELSE [$old.key, $old.content, time::micros($old.created_at), time::micros($old.updated_at), $old.source]
    END;
COMMIT TRANSACTION;
"""

ENTRY_ROWS: Final = (
    "SELECT VALUE [record::id(id)[3], record::id(id)[4], key, content, "
    "time::micros(created_at), time::micros(updated_at), source] FROM $ids;"
)
_TIMELINE_IDS = (
    "LET $ids = SELECT VALUE type::thing('memory', [$uid, $scp, $sid, record::id(id)[4], record::id(id)[5]]) "
)
LIST_FIRST: Final = (
    _TIMELINE_IDS
    + "FROM memory_order:[$uid, $scp, $sid, NONE]..[$uid, $scp, $sid, {}] LIMIT $limit;"
    + ENTRY_ROWS
)
# The page after `$after` (the timeline id parts of the last row seen), exclusive.
LIST_AFTER: Final = (
    _TIMELINE_IDS + "FROM memory_order:[$uid, $scp, $sid, $rank, $kind, $name]>..[$uid, $scp, $sid, {}] "
    "LIMIT $limit;" + ENTRY_ROWS
)
COUNT: Final = "SELECT VALUE n FROM ONLY $counter;"

# Stores written before the timeline held only ids copied every entry into it: drop the copies.
TIMELINE_INFO: Final = "INFO FOR TABLE memory_order;"
DROP_TIMELINE_COPIES: Final = """
BEGIN TRANSACTION;
REMOVE FIELD IF EXISTS key ON memory_order;
REMOVE FIELD IF EXISTS content ON memory_order;
REMOVE FIELD IF EXISTS created_at ON memory_order;
REMOVE FIELD IF EXISTS updated_at ON memory_order;
UPDATE memory_order CONTENT {} RETURN NONE;
COMMIT TRANSACTION;
"""

# The counters are derived from the entries; an engine opened twice (before the store directory was
# locked too) could leave them wrong. The check is a key-only scan of the entries.
TOTALS: Final = "RETURN [(SELECT count() FROM memory GROUP ALL)[0].count ?? 0, math::sum(SELECT VALUE n FROM memory_count)];"
RECOUNT: Final = """
BEGIN TRANSACTION;
LET $counts = SELECT user, scope, session, count() AS n FROM memory GROUP BY user, scope, session;
DELETE memory_count;
FOR $c IN $counts {
    UPSERT type::thing('memory_count', [$c.user, $c.scope, $c.session]) SET n = $c.n RETURN NONE;
};
COMMIT TRANSACTION;
"""

SESSION: Final = "SELECT * FROM ONLY $srec;"
TOUCH: Final = "UPSERT $srec SET user = $uid, session = $sid, last_active = $now;"

# Removes a session's entries only if it is still idle (a concurrent write may have revived it).
PURGE_SESSION: Final = """
BEGIN TRANSACTION;
LET $last = SELECT VALUE last_active FROM ONLY $srec;
IF $last = NONE OR $last < $cutoff {
    DELETE memory:[$uid, 'session', $sid, NONE]..[$uid, 'session', $sid, {}];
    DELETE memory_order:[$uid, 'session', $sid, NONE]..[$uid, 'session', $sid, {}];
    DELETE $counter;
    DELETE $srec;
};
COMMIT TRANSACTION;
"""

IDLE_SESSIONS: Final = "SELECT user, session FROM memory_session WHERE last_active < $cutoff LIMIT $limit;"
USER_SESSIONS: Final = (
    "SELECT session, last_active FROM memory_session:[$uid, NONE]..[$uid, {}] WHERE last_active >= $cutoff;"
)
