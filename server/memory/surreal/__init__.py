"""The SurrealDB store behind `MemoryStorage`: the store class (`store.py`), its SurrealQL
(`queries.py`), record ids and handles (`ids.py`), and where SDK failures become ours (`failures.py`).
Only this package writes SurrealQL."""

from server.memory.surreal.failures import SDK_ERRORS, translated_errors
from server.memory.surreal.store import SurrealMemoryStore

__all__ = ["SDK_ERRORS", "SurrealMemoryStore", "translated_errors"]
