"""One embedded store shared by every memory-router process of the user that opens it.

The embedded engine must never be open in two processes, so the process holding the store lock
(`<store>.lock`, `lock.py`) is its *owner*: it opens the engine and serves it (`owner.py`) on a unix
socket in a private (0700) directory (`paths.py`), to processes of the same user only
(`credentials.py`). Every other process is a *peer* (`peer.py`): it sends each `MemoryStorage` call
there (`wire.py`) and waits for the reply. When the owner exits or dies, a peer's next call finds the
socket closed; the peers race for the lock, the winner opens the engine (which recovers from the
crash) and serves, the others reconnect, and the call is retried once (`shared_store.py`).

Every call is safe to retry: reads are, keyed writes upsert on their key, forgets are idempotent,
restore is idempotent by contract, and a peer's keyless put carries a request id of its own, so a
retried one lands on the same entry instead of adding a second. The owner replies only after the
engine committed (with fsync), so an acknowledged write is durable whoever dies next.
"""

from server.memory.sharing.shared_store import EngineOpener, SharedStore, open_shared

__all__ = ["EngineOpener", "SharedStore", "open_shared"]
