"""Resource-change notifications, scoped to the user (and session) they concern.

Two protocol eras, one rule: a subscriber hears only about its own memories.
- Handshake-era clients subscribe with `resources/subscribe`; we remember the connection, its
  owner and its URIs, and send `notifications/resources/updated` on that connection, from a
  bounded queue: a write never waits for a subscriber.
- 2026-era clients open `subscriptions/listen`; the SDK's ListenHandler registers a listener on
  our bus while the request's identity is in context, so the bus files it under that user.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
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
            try:
                for uri in (plain if _hears(listening, owner, scope) else []) + named:
                    listener(ResourceUpdated(uri=uri))
            except Exception:  # a listener's failure is its own, never the write's
                logger.warning("a subscription listener failed", exc_info=True)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        token = object()
        self._listeners[token] = (self._current_owner(), listener)

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe


MAX_PENDING_NOTIFICATIONS = 64
"""Notifications queued for one handshake-era subscriber; past that it is not reading, and is dropped."""


@dataclass
class _Subscriber:
    owner: Owner
    pending: MemoryObjectSendStream[str]
    uris: set[str] = field(default_factory=set[str])


class LegacySubscriptions:
    """`resources/subscribe` bookkeeping for handshake-era connections.

    A change is queued for each subscriber (never awaited by the write that made it) and sent by
    that subscriber's own task. A subscriber whose queue fills up has stopped reading: its
    subscriptions are dropped, so it can neither block writes nor hold memory. Keyed weakly by the
    connection; a connection that ends takes its subscriptions and its task with it."""

    def __init__(self, task_group: TaskGroup) -> None:
        self._task_group = task_group
        self._subscribers: weakref.WeakKeyDictionary[Connection, _Subscriber] = weakref.WeakKeyDictionary()

    @classmethod
    @asynccontextmanager
    async def running(cls) -> AsyncIterator[LegacySubscriptions]:
        async with anyio.create_task_group() as task_group:
            yield cls(task_group)
            task_group.cancel_scope.cancel()

    def subscribe(self, connection: Connection, owner: Owner, uri: str) -> None:
        subscriber = self._subscribers.get(connection)
        if subscriber is None:
            pending, queued = anyio.create_memory_object_stream[str](MAX_PENDING_NOTIFICATIONS)
            subscriber = self._subscribers[connection] = _Subscriber(owner, pending)
            connection.exit_stack.callback(pending.close)
            self._task_group.start_soon(_deliver, weakref.ref(connection), queued)
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
            try:
                for uri in uris:
                    if uri in subscriber.uris:
                        subscriber.pending.send_nowait(uri)
            except anyio.WouldBlock:
                logger.warning(
                    "a subscriber stopped reading (%d notifications waiting): its resource subscriptions "
                    "were dropped",
                    MAX_PENDING_NOTIFICATIONS,
                )
                self._drop(connection, subscriber)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._drop(connection, subscriber)

    def _drop(self, connection: Connection, subscriber: _Subscriber) -> None:
        self._subscribers.pop(connection, None)
        subscriber.pending.close()


async def _deliver(connection: weakref.ref[Connection], queued: MemoryObjectReceiveStream[str]) -> None:
    """Send one subscriber's queued notifications until its queue closes (dropped, or its
    connection ended). Holds the connection weakly, so that the connection can still go away."""
    with queued:
        async for uri in queued:
            live = connection()
            if live is None:
                return
            try:
                await live.send_resource_updated(uri)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                logger.debug("a subscriber's connection closed")
                return
            except Exception:  # one subscriber's failure must not end the others' deliveries
                logger.warning("could not notify a subscriber; its subscriptions end", exc_info=True)
                return
            del live
