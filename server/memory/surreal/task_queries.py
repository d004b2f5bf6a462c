"""The SurrealQL of the task store (`task_store.py`).

task:[user, task_id]    one task; every lookup knows the user, so another user's id finds nothing
"""

from __future__ import annotations

from typing import Final

TASK_SCHEMA: Final = """
DEFINE TABLE IF NOT EXISTS task SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS session ON task TYPE string;
DEFINE FIELD IF NOT EXISTS era ON task TYPE string;
DEFINE FIELD IF NOT EXISTS status ON task TYPE string;
DEFINE FIELD IF NOT EXISTS status_message ON task TYPE option<string>;
DEFINE FIELD IF NOT EXISTS created_at ON task TYPE datetime;
DEFINE FIELD IF NOT EXISTS updated_at ON task TYPE datetime;
DEFINE FIELD IF NOT EXISTS ttl_ms ON task TYPE int;
DEFINE FIELD IF NOT EXISTS expires_at ON task TYPE datetime;
DEFINE FIELD IF NOT EXISTS runner ON task TYPE string;
DEFINE FIELD IF NOT EXISTS lease_until ON task TYPE datetime;
DEFINE FIELD IF NOT EXISTS result ON task TYPE option<string>;
DEFINE FIELD IF NOT EXISTS error ON task TYPE option<string>;
DEFINE INDEX IF NOT EXISTS task_expiry ON task FIELDS expires_at;
DEFINE INDEX IF NOT EXISTS task_runner ON task FIELDS runner, status;
"""

CREATE_TASK: Final = "CREATE ONLY $rid CONTENT $content;"
GET_TASK: Final = "SELECT * FROM ONLY $rid;"
USER_TASKS: Final = "SELECT * FROM task:[$uid, NONE]..[$uid, {}] WHERE expires_at >= $now LIMIT $limit;"
USER_TASKS_AFTER: Final = (
    "SELECT * FROM task:[$uid, $after]>..[$uid, {}] WHERE expires_at >= $now LIMIT $limit;"
)
COUNT_RUNNING: Final = (
    "RETURN count(SELECT VALUE id FROM task:[$uid, NONE]..[$uid, {}] "
    "WHERE status = 'working' AND lease_until >= $now);"
)

# Conditional writes: each changes a task only while it is still working, so a late runner never
# overwrites a cancel, and a cancel never overwrites a result.
PROGRESS: Final = """
UPDATE $rid SET
    updated_at = IF status_message = $message THEN updated_at ELSE $now END,
    status_message = $message,
    lease_until = $lease
WHERE status = 'working' AND runner = $runner;
"""
FINISH: Final = """
UPDATE $rid SET status = $status, status_message = $message, result = $result, error = $error, updated_at = $now
WHERE status = 'working' AND runner = $runner;
"""
CANCEL: Final = """
UPDATE $rid SET status = 'cancelled', status_message = $message, updated_at = $now
WHERE status IN ['working', 'input_required'];
"""
LOSE_LEASE: Final = """
UPDATE $rid SET status = 'failed', status_message = $message, updated_at = $now
WHERE status = 'working' AND lease_until < $now;
"""
FAIL_RUNNER: Final = """
UPDATE task SET status = 'failed', status_message = $message, updated_at = $now
WHERE runner = $runner AND status = 'working' RETURN VALUE id;
"""
SWEEP_TASKS: Final = "DELETE task WHERE expires_at < $now RETURN VALUE $before.id;"
