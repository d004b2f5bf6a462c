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
DEFINE FIELD IF NOT EXISTS key ON memory_order TYPE option<string>;
DEFINE FIELD IF NOT EXISTS content ON memory_order TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON memory_order TYPE datetime;
DEFINE FIELD IF NOT EXISTS updated_at ON memory_order TYPE datetime;
DEFINE FIELD IF NOT EXISTS source ON memory_order TYPE option<object>;
DEFINE FIELD IF NOT EXISTS source.via ON memory_order TYPE string;
DEFINE FIELD IF NOT EXISTS source.client ON memory_order TYPE option<string>;
DEFINE FIELD IF NOT EXISTS source.session ON memory_order TYPE option<string>;
DEFINE FIELD IF NOT EXISTS source.model ON memory_order TYPE option<string>;
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

# Writes one entry (and its timeline copy, which `list` reads without fetching the entry).
# New entries are counted against the limit; a replaced entry moves in the timeline.
PUT: Final = """
BEGIN TRANSACTION;
IF $srec != NONE AND ((SELECT VALUE last_active FROM ONLY $srec) ?? $active) < $cutoff {
    THROW $expired_mark;
};
LET $old = SELECT ordered, created_at FROM ONLY $rid;
IF $old = NONE {
    IF (SELECT VALUE n FROM ONLY $counter) ?? 0 >= $max { THROW $limit_mark; };
    UPSERT $counter SET n = (n ?? 0) + 1;
} ELSE {
    DELETE $old.ordered;
};
IF $srec != NONE { UPSERT $srec SET user = $uid, session = $sid, last_active = $active; };
LET $created = $created_at ?? $old.created_at ?? $now;
UPSERT $order CONTENT {
    key: $key, content: $content, created_at: $created, updated_at: $now, source: $source
} RETURN NONE;
UPSERT $rid CONTENT {
    user: $uid, scope: $scp, session: $sid, key: $key, content: $content,
    created_at: $created, updated_at: $now, ordered: $order, source: $source
} RETURN NONE;
RETURN time::micros($created);
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

TIMELINE_ROW: Final = (
    "SELECT VALUE [record::id(id)[4], record::id(id)[5], key, content, "
    "time::micros(created_at), time::micros(updated_at), source] "
)
LIST_FIRST: Final = (
    TIMELINE_ROW + "FROM memory_order:[$uid, $scp, $sid, NONE]..[$uid, $scp, $sid, {}] LIMIT $limit;"
)
# The page after `$after` (the timeline id parts of the last row seen), exclusive.
LIST_AFTER: Final = (
    TIMELINE_ROW + "FROM memory_order:[$uid, $scp, $sid, $rank, $kind, $name]>..[$uid, $scp, $sid, {}] "
    "LIMIT $limit;"
)
COUNT: Final = "SELECT VALUE n FROM ONLY $counter;"

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

# Many entries of one owner in one transaction (bulk import, `restore_many`). `$rows` holds each
# entry's `rid`, `order` and fields, no id twice; the counter grows by the entries that are new.
RESTORE_MANY: Final = """
BEGIN TRANSACTION;
LET $new = array::len($rows) - array::len(SELECT VALUE id FROM $rows.rid);
IF ((SELECT VALUE n FROM ONLY $counter) ?? 0) + $new > $max { THROW $limit_mark; };
FOR $r IN $rows {
    LET $moved = SELECT VALUE ordered FROM ONLY $r.rid;
    IF $moved != NONE { DELETE $moved; };
    UPSERT $r.order CONTENT {
        key: $r.key, content: $r.content, created_at: $r.created_at, updated_at: $r.updated_at,
        source: $r.source
    } RETURN NONE;
    UPSERT $r.rid CONTENT {
        user: $uid, scope: $scp, session: $sid, key: $r.key, content: $r.content,
        created_at: $r.created_at, updated_at: $r.updated_at, ordered: $r.order, source: $r.source
    } RETURN NONE;
};
UPSERT $counter SET n = (n ?? 0) + $new;
IF $srec != NONE { UPSERT $srec SET user = $uid, session = $sid, last_active = $active; };
COMMIT TRANSACTION;
"""
