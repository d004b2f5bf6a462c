"""Notifications never block a write: a subscriber that stops reading loses its subscriptions,
and the writes of the user's other connections go on."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

import anyio
from mcp import Client, types
from mcp.server.runner import serve_dual_era_loop
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.shared.memory import MessageStream, create_client_server_memory_streams
from mcp.shared.message import SessionMessage

from server.config import Settings
from server.mcp.sdk import lowlevel_server
from server.mcp.server import build_server
from server.mcp.state import AppState


@asynccontextmanager
async def connections(
    settings: Settings,
) -> AsyncIterator[Callable[[], AbstractAsyncContextManager[MessageStream]]]:
    """One server (one lifespan, one store) and a way to open in-memory connections to it."""
    mcp = build_server(settings)
    lowlevel = lowlevel_server(mcp)
    async with lowlevel.lifespan(lowlevel) as state:

        @asynccontextmanager
        async def connect(app_state: AppState) -> AsyncIterator[MessageStream]:
            async with (
                create_client_server_memory_streams() as (client, server),
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(
                    partial(
                        serve_dual_era_loop,
                        lowlevel,
                        *server,
                        lifespan_state=app_state,
                        init_options=lowlevel.create_initialization_options(),
                    )
                )
                try:
                    yield client
                finally:
                    await client[1].aclose()
                    await client[0].aclose()

        yield partial(connect, state)


async def request(streams: MessageStream, id_: int, method: str, params: dict[str, object]) -> None:
    """Send a request and wait for its answer, as a client that reads only what it asked for."""
    read, write = streams
    await write.send(
        SessionMessage(types.JSONRPCRequest(jsonrpc="2.0", id=id_, method=method, params=params))
    )
    while True:
        message = await read.receive()
        assert isinstance(message, SessionMessage)
        if getattr(message.message, "id", None) == id_:
            return


async def test_a_subscriber_that_stops_reading_never_blocks_the_users_writes(settings: Settings) -> None:
    hello: dict[str, object] = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    last_heard = anyio.Event()

    async def healthy(message: object) -> None:
        if (
            isinstance(message, types.ResourceUpdatedNotification)
            and message.params.uri == "memory://user/k49"
        ):
            last_heard.set()

    with anyio.fail_after(20):
        async with (
            connections(settings) as connect,
            connect() as stalled,
            Client(connect(), mode="legacy", message_handler=healthy) as listener,
            Client(connect(), mode="legacy") as writer,
        ):
            await request(stalled, 1, "initialize", hello)
            initialized = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")
            await stalled[1].send(SessionMessage(initialized))
            await request(stalled, 2, "resources/subscribe", {"uri": "memory://user"})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await listener.subscribe_resource("memory://user/k49")
            # From now on the stalled subscriber reads nothing, while another connection writes.
            results = [
                await writer.call_tool(
                    "memory", {"op": "record", "scope": "user", "key": f"k{i}", "value": "v"}
                )
                for i in range(50)
            ]
            await last_heard.wait()  # a subscriber that reads still hears
    assert not any(result.is_error for result in results)
