"""The SurrealDB store behind `MemoryStorage`: the store class (`store.py`), its SurrealQL
(`queries.py`), record ids and handles (`ids.py`), where SDK failures become ours (`failures.py`),
and the SDK itself, loaded as far as the store URL needs (`sdk.py`).
Only this package writes SurrealQL."""

from server.memory.surreal.failures import sdk_errors, translated_errors
from server.memory.surreal.store import SurrealMemoryStore

__all__ = ["SurrealMemoryStore", "sdk_errors", "translated_errors"]
