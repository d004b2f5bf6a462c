"""`build_server(settings)`: the memory-router `MCPServer`.

The lifespan opens the runtime (store, HTTP client, memory service, router); tools and resources
reach it through `ctx.request_context.lifespan_context.runtime`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from mcp.server.mcpserver import MCPServer

from server import __version__
from server.config import Settings
from server.mcp.arguments import ToolArgumentCheck
from server.mcp.instructions import GUIDE, ConnectionInstructions
from server.mcp.legacy import add_legacy_subscriptions, add_logging_level
from server.mcp.memory_tool import MemoryToolArguments, add_memory_tool
from server.mcp.prompts import add_remembered_facts_prompt
from server.mcp.ratelimit import ToolCallRateLimit
from server.mcp.recall_tool import RECALL_TOOL_NAME, RecallArguments, add_recall_tool
from server.mcp.resources import add_key_completion, add_memory_resources
from server.mcp.route_tool import add_route_completion_tool
from server.mcp.state import AppState, current_user
from server.mcp.subscriptions import LegacySubscriptions, UserScopedBus
from server.mcp.tasks.extension import TasksExtension
from server.mcp.tasks.legacy import legacy_tasks
from server.mcp.tasks.runner import open_task_runner
from server.memory.storage import Owner, Scope
from server.memory.task_storage import task_storage
from server.memory.tool import MEMORY_TOOL_NAME
from server.runtime import open_runtime


def build_server(
    settings: Settings, *, http_client: httpx.AsyncClient | None = None, over_http: bool = False
) -> MCPServer[AppState]:
    """Build the server. `http_client` is the seam for tests (an `httpx.MockTransport` client);
    `over_http` picks the HTTP default for the tool-call rate limit."""
    # A stdio server is one session (unless MEMORY_ROUTER_SESSION names one); sessionless HTTP
    # clients that pass no session_id share it too.
    process_session = settings.session or uuid.uuid4().hex
    # `subscriptions/listen` comes from clients without an MCP session: they listen as this session.
    bus = UserScopedBus(lambda: Owner(current_user(settings), process_session))

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with AsyncExitStack() as stack:
            runtime = await stack.enter_async_context(open_runtime(settings, http_client=http_client))
            tasks = None
            if settings.tasks:
                tasks = await stack.enter_async_context(
                    open_task_runner(task_storage(runtime.store), settings)
                )
            legacy_subscriptions = LegacySubscriptions()

            async def notify(owner: Owner, scope: Scope, key: str | None) -> None:
                bus.publish_for(owner, scope, key)
                await legacy_subscriptions.notify(owner, scope, key)

            runtime.memory.listeners.append(notify)
            yield AppState(runtime, process_session, legacy_subscriptions, bus, tasks)

    mcp: MCPServer[AppState] = MCPServer(
        "memory-router",
        version=__version__,
        instructions=GUIDE,
        lifespan=lifespan,
        subscriptions=bus,
        extensions=[TasksExtension()] if settings.tasks else [],
    )
    add_memory_tool(mcp)
    add_recall_tool(mcp)
    add_route_completion_tool(mcp)
    add_remembered_facts_prompt(mcp)
    add_memory_resources(mcp)
    add_legacy_subscriptions(mcp)
    add_logging_level(mcp)
    add_key_completion(mcp)
    if per_minute := settings.tool_calls_per_minute(over_http=over_http):
        mcp.middleware.append(ToolCallRateLimit(per_minute, lambda: current_user(settings)))
    mcp.middleware.append(
        ToolArgumentCheck({MEMORY_TOOL_NAME: MemoryToolArguments, RECALL_TOOL_NAME: RecallArguments})
    )
    mcp.middleware.append(ConnectionInstructions())
    if settings.tasks:  # after the rate limit: creating a task spends a tool call
        mcp.middleware.append(legacy_tasks)
    return mcp
