"""What tools and resources reach through the lifespan context, and who is calling them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from server.config import Settings
from server.errors import MemoryInputError
from server.mcp.subscriptions import LegacySubscriptions, UserScopedBus
from server.mcp.tasks.runner import TaskRunner
from server.memory.storage import Owner, Source, Via
from server.runtime import Runtime

MAX_SESSION_ID_CHARS = 256


@dataclass
class AppState:
    runtime: Runtime
    process_session: str
    legacy_subscriptions: LegacySubscriptions
    bus: UserScopedBus
    tasks: TaskRunner | None = None
    """None when tasks are off (MEMORY_ROUTER_TASKS)."""


def current_user(settings: Settings) -> str:
    """The authenticated HTTP user when there is one, else the configured (stdio) user."""
    token = get_access_token()
    return token.client_id if token is not None else settings.user


def resolve_owner(state: AppState, headers: Mapping[str, str] | None, session_id: str | None) -> Owner:
    """Who is calling, and in which session.

    The session is, in order: an explicit `session_id`, the MCP session of a handshake-era HTTP
    client, or this server process (stdio; `MEMORY_ROUTER_SESSION` names it). Session ids are
    bound to their user: the same id under two users names two different sessions.
    """
    if session_id is not None:
        if not session_id or len(session_id) > MAX_SESSION_ID_CHARS:
            raise MemoryInputError(f"session_id must be 1 to {MAX_SESSION_ID_CHARS} characters long.")
        session = session_id
    else:
        session = (headers.get("mcp-session-id") if headers else None) or state.process_session
    return Owner(user=current_user(state.runtime.settings), session=session)


def caller(ctx: Context[AppState], session_id: str | None = None) -> Owner:
    """The caller of a tool."""
    try:
        return resolve_owner(ctx.request_context.lifespan_context, ctx.headers, session_id)
    except MemoryInputError as e:
        raise ToolError(str(e)) from None


def client_name(ctx: Context[AppState]) -> str | None:
    """The connecting client's "name/version" from its `clientInfo`, when it gave one."""
    params = ctx.request_context.session.client_params
    if params is None:
        return None
    info = params.client_info
    return f"{info.name}/{info.version}" if info.version else info.name


def tool_source(ctx: Context[AppState], owner: Owner) -> Source:
    """Where a memory recorded by an MCP tool call comes from."""
    return Source(via=Via.TOOL, client=client_name(ctx), session=owner.session)


def owner_of(ctx: ServerRequestContext[AppState], session_id: str | None = None) -> Owner:
    """The caller of a lowlevel request (resources, subscriptions)."""
    return resolve_owner(ctx.lifespan_context, getattr(ctx.request, "headers", None), session_id)
