"""Resource-change notifications, scoped to the user (and session) they concern.

Part of the MCP layer. Two protocol eras, one rule: a subscriber hears only about its own memories.
- Handshake-era clients subscribe with `resources/subscribe`; we remember the connection, its
  owner and its URIs, and send `notifications/resources/updated` on that connection.
- 2026-era clients open `subscriptions/listen`; the SDK's ListenHandler registers a listener on
  our bus while the request's identity is in context, so the bus files it under that user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import anyio
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourceUpdated, ServerEvent

from server.memory.records import Owner, Scope

logger = logging.getLogger(__name__)

PREAMBLE_URI = "memory://preamble"


def scope_uri(scope: Scope) -> str:
    return f"memory://{scope.value}"


def key_uri(scope: Scope, key: str) -> str:
    """Keys are arbitrary text: percent-encode every reserved character, `/` included."""
    return f"memory://{scope.value}/{quote(key, safe='')}"


def affected_uris(scope: Scope, key: str | None) -> list[str]:
    uris = [scope_uri(scope), PREAMBLE_URI]
    if key is not None:
        uris.append(key_uri(scope, key))
    return uris


class UserScopedBus:
    """A `SubscriptionBus` whose listeners belong to the user in context when they subscribe."""

    def __init__(self, current_user: Callable[[], str]) -> None:
        self._current_user = current_user
        self._listeners: dict[object, tuple[str, Callable[[ServerEvent], None]]] = {}

    async def publish(self, event: ServerEvent) -> None:
        # Events without an owner (list changes) go to everyone; resource updates use publish_for.
        for _, listener in list(self._listeners.values()):
            listener(event)

    def publish_for(self, user: str, uris: list[str]) -> None:
        for owner, listener in list(self._listeners.values()):
            if owner == user:
                for uri in uris:
                    listener(ResourceUpdated(uri=uri))

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        token = object()
        self._listeners[token] = (self._current_user(), listener)

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe


@dataclass
class _Subscriber:
    owner: Owner
    uris: set[str] = field(default_factory=set[str])


class LegacySubscriptions:
    """`resources/subscribe` bookkeeping for handshake-era connections."""

    def __init__(self) -> None:
        self._subscribers: dict[ServerSession, _Subscriber] = {}

    def subscribe(self, connection: ServerSession, owner: Owner, uri: str) -> None:
        self._subscribers.setdefault(connection, _Subscriber(owner)).uris.add(uri)

    def unsubscribe(self, connection: ServerSession, uri: str) -> None:
        subscriber = self._subscribers.get(connection)
        if subscriber is not None:
            subscriber.uris.discard(uri)

    async def notify(self, owner: Owner, scope: Scope, uris: list[str]) -> None:
        for connection, subscriber in list(self._subscribers.items()):
            if subscriber.owner.user != owner.user:
                continue
            if scope is Scope.SESSION and subscriber.owner.session != owner.session:
                continue
            for uri in uris:
                if uri not in subscriber.uris:
                    continue
                try:
                    await connection.send_resource_updated(uri)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    logger.debug("dropping subscriptions of a closed connection")
                    self._subscribers.pop(connection, None)
                    break
