"""Resource-change notifications, scoped to the user (and session) they concern.

Two protocol eras, one rule: a subscriber hears only about its own memories.
- Handshake-era clients subscribe with `resources/subscribe`; we remember the connection, its
  owner and its URIs, and send `notifications/resources/updated` on that connection.
- 2026-era clients open `subscriptions/listen`; the SDK's ListenHandler registers a listener on
  our bus while the request's identity is in context, so the bus files it under that user.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import anyio
from mcp.server.connection import Connection
from mcp.server.subscriptions import ResourceUpdated, ServerEvent

from server.memory.storage import Owner, Scope

logger = logging.getLogger(__name__)

PREAMBLE_URI = "memory://preamble"


def scope_uri(scope: Scope) -> str:
    return f"memory://{scope.value}"


def key_uri(scope: Scope, key: str) -> str:
    """Keys are arbitrary text: percent-encode every reserved character, `/` included."""
    return f"memory://{scope.value}/{quote(key, safe='')}"


def affected_uris(owner: Owner, scope: Scope, key: str | None) -> tuple[list[str], list[str]]:
    """The URIs a change touches: (plain URIs, which mean "my current session" for session scope;
    URIs that name the session with `?session_id=`, which any client of the user may read)."""
    plain = [scope_uri(scope), PREAMBLE_URI]
    if key is not None:
        plain.append(key_uri(scope, key))
    if scope is Scope.USER:
        return plain, []
    query = "?" + urlencode({"session_id": owner.session})
    return plain, [uri + query for uri in plain]


def _hears(listener: Owner, changed: Owner, scope: Scope) -> bool:
    return listener.user == changed.user and (scope is Scope.USER or listener.session == changed.session)


class UserScopedBus:
    """A `SubscriptionBus` whose listeners belong to the caller (user and session) in context when
    they subscribe: a change is published only to listeners of the owner it concerns."""

    def __init__(self, current_owner: Callable[[], Owner]) -> None:
        self._current_owner = current_owner
        self._listeners: dict[object, tuple[Owner, Callable[[ServerEvent], None]]] = {}

    async def publish(self, event: ServerEvent) -> None:
        # Events without an owner (list changes) go to everyone; memory changes use publish_for.
        for _, listener in list(self._listeners.values()):
            listener(event)

    def publish_for(self, owner: Owner, scope: Scope, key: str | None) -> None:
        plain, named = affected_uris(owner, scope, key)
        for listening, listener in list(self._listeners.values()):
            if listening.user != owner.user:
                continue
            for uri in (plain if _hears(listening, owner, scope) else []) + named:
                listener(ResourceUpdated(uri=uri))

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        token = object()
        self._listeners[token] = (self._current_owner(), listener)

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe


@dataclass
class _Subscriber:
    owner: Owner
    uris: set[str] = field(default_factory=set[str])


class LegacySubscriptions:
    """`resources/subscribe` bookkeeping for handshake-era connections.

    Keyed weakly by the connection: one that goes away takes its subscriptions with it."""

    def __init__(self) -> None:
        self._subscribers: weakref.WeakKeyDictionary[Connection, _Subscriber] = weakref.WeakKeyDictionary()

    def subscribe(self, connection: Connection, owner: Owner, uri: str) -> None:
        subscriber = self._subscribers.get(connection)
        if subscriber is None:
            subscriber = self._subscribers[connection] = _Subscriber(owner)
        subscriber.uris.add(uri)

    def unsubscribe(self, connection: Connection, uri: str) -> None:
        subscriber = self._subscribers.get(connection)
        if subscriber is not None:
            subscriber.uris.discard(uri)

    async def notify(self, owner: Owner, scope: Scope, key: str | None) -> None:
        plain, named = affected_uris(owner, scope, key)
        for connection, subscriber in list(self._subscribers.items()):
            if subscriber.owner.user != owner.user:
                continue
            uris = (plain if _hears(subscriber.owner, owner, scope) else []) + named
            for uri in uris:
                if uri not in subscriber.uris:
                    continue
                try:
                    await connection.send_resource_updated(uri)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    logger.debug("dropping subscriptions of a closed connection")
                    self._subscribers.pop(connection, None)
                    break
