"""The SurrealDB SDK, loaded only as far as the store URL needs it. Import SDK names from here.

`surrealdb/__init__` imports every connection class, so any `import surrealdb...` loads the remote
clients' stack (aiohttp, requests, urllib3), more than half of the SDK's import time, which an
embedded store never uses. Until the SDK loads those lazily itself (PEP 562 in its `__init__`), the
package is registered here without running its `__init__`, the submodules an embedded store needs
are imported directly, and the `__init__` runs the first time anything asks the package for another
name (`remote_connection`, or `from surrealdb import X` anywhere).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any


def _register_without_init() -> None:
    if "surrealdb" in sys.modules:
        return
    spec = importlib.util.find_spec("surrealdb")
    if spec is None or spec.loader is None:
        raise ImportError("the surrealdb package is not installed; reinstall memory-router")
    package = importlib.util.module_from_spec(spec)
    running = False

    def load_the_rest(name: str) -> Any:
        nonlocal running
        if running or name.startswith("__"):
            raise AttributeError(f"module 'surrealdb' has no attribute {name!r}")
        running = True
        assert spec.loader is not None
        spec.loader.exec_module(package)
        return getattr(package, name)

    package.__dict__["__getattr__"] = load_the_rest
    sys.modules["surrealdb"] = package


_register_without_init()

from surrealdb.connections.async_embedded import AsyncEmbeddedSurrealConnection  # noqa: E402
from surrealdb.data.types.record_id import RecordID  # noqa: E402
from surrealdb.errors import SurrealError  # noqa: E402

__all__ = ["RecordID", "SurrealError", "embedded_connection", "remote_connection"]


def embedded_connection(url: str) -> AsyncEmbeddedSurrealConnection:
    return AsyncEmbeddedSurrealConnection(url)


def remote_connection(url: str) -> Any:
    """A connection to a SurrealDB server (ws, wss, http, https): loads the rest of the SDK."""
    package: ModuleType = sys.modules["surrealdb"]
    return package.AsyncSurreal(url)
