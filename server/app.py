"""The MCP boundary: `build_server(settings)` returns the memory-router `MCPServer`.

Only this module (and `subscriptions.py`, its helper) knows MCP. The lifespan owns the store and
the shared HTTP client; tools and resources reach them through `ctx.request_context.lifespan_context`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote

import httpx
from mcp import types
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types.jsonrpc import INVALID_PARAMS
from pydantic import Field

from server import __version__
from server.config import Settings
from server.errors import ConfigError, MemoryInputError, ProviderError, RoutingError
from server.memory.preamble import PreambleBudget
from server.memory.service import MEMORY_TOOL_DESCRIPTION, MemoryService
from server.memory.storage import MemoryRecord, Owner, Scope
from server.memory.store import open_store
from server.progress import progress_stream
from server.providers.types import Message, Parameters, ToolChoice, ToolSpec
from server.ratelimit import ToolCallRateLimit
from server.routing.catalog import describe_models
from server.routing.router import Router, RouteRequest, RouteResult
from server.subscriptions import PREAMBLE_URI, LegacySubscriptions, UserScopedBus, scope_uri

logger = logging.getLogger(__name__)

MAX_SESSION_ID_CHARS = 256

INSTRUCTIONS = (
    "memory-router remembers facts about the user across sessions and hosts, and routes completions "
    "to any configured model provider. Record durable facts with the `memory` tool (scope `user`) and "
    "working notes with scope `session`; read them from the `memory://` resources."
)


@dataclass
class AppState:
    settings: Settings
    memory: MemoryService
    http: httpx.AsyncClient
    process_session: str
    legacy_subscriptions: LegacySubscriptions
    bus: UserScopedBus
    router: Router


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
    return Owner(user=current_user(state.settings), session=session)


def caller(ctx: Context[AppState], session_id: str | None = None) -> Owner:
    """The caller of a tool."""
    try:
        return resolve_owner(ctx.request_context.lifespan_context, ctx.headers, session_id)
    except MemoryInputError as e:
        raise ToolError(str(e)) from None


def record_json(record: MemoryRecord) -> dict[str, Any]:
    return {
        "handle": record.handle,
        "key": record.key,
        "content": record.content,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


def records_json(records: Sequence[MemoryRecord]) -> str:
    return json.dumps([record_json(r) for r in records], ensure_ascii=False, indent=2)


def build_server(settings: Settings, *, http_client: httpx.AsyncClient | None = None) -> MCPServer[AppState]:
    """Build the server. `http_client` is the seam for tests (an `httpx.MockTransport` client)."""
    # A stdio server is one session (unless MEMORY_ROUTER_SESSION names one); sessionless HTTP
    # clients that pass no session_id share it too.
    process_session = settings.session or uuid.uuid4().hex
    # `subscriptions/listen` comes from clients without an MCP session: they listen as this session.
    bus = UserScopedBus(lambda: Owner(current_user(settings), process_session))

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with AsyncExitStack() as stack:
            store = await stack.enter_async_context(open_store(settings))
            if http_client is None:
                timeout = httpx.Timeout(settings.request_timeout_seconds, connect=10.0)
                http = await stack.enter_async_context(httpx.AsyncClient(timeout=timeout))
            else:
                http = http_client
            budget = PreambleBudget(
                max_chars=settings.preamble_max_chars, max_items=settings.preamble_max_items
            )
            memory = MemoryService(store, budget)
            state = AppState(
                settings=settings,
                memory=memory,
                http=http,
                process_session=process_session,
                legacy_subscriptions=LegacySubscriptions(),
                bus=bus,
                router=Router(settings, http, memory),
            )

            async def notify(owner: Owner, scope: Scope, key: str | None) -> None:
                bus.publish_for(owner, scope, key)
                await state.legacy_subscriptions.notify(owner, scope, key)

            state.memory.listeners.append(notify)
            yield state

    mcp: MCPServer[AppState] = MCPServer(
        "memory-router",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        subscriptions=bus,
    )
    _add_memory_tool(mcp)
    _add_route_completion_tool(mcp)
    _add_memory_resources(mcp)
    _add_legacy_subscriptions(mcp)
    _add_logging_level(mcp)
    if settings.rate_limit_per_minute:  # when unset, build_http_app adds the HTTP default
        mcp.middleware.append(
            ToolCallRateLimit(settings.rate_limit_per_minute, lambda: current_user(settings))
        )
    _add_key_completion(mcp)
    return mcp


def _add_memory_tool(mcp: MCPServer[AppState]) -> None:
    @mcp.tool(
        name="memory",
        description=MEMORY_TOOL_DESCRIPTION,
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
        structured_output=False,
    )
    async def memory(
        op: Annotated[Literal["record", "forget"], Field(description="record or forget")],
        scope: Annotated[
            Literal["user", "session"],
            Field(description="user: durable facts about the user; session: working memory of this session"),
        ],
        key: Annotated[str, Field(description="the topic the fact is stored under")],
        ctx: Context[AppState],
        value: Annotated[
            str | None, Field(description="the fact; required for record, ignored for forget")
        ] = None,
        session_id: Annotated[
            str | None, Field(description="optional: the session, for clients without an MCP session")
        ] = None,
    ) -> str:
        state = ctx.request_context.lifespan_context
        result = await state.memory.apply(caller(ctx, session_id), op, scope, key, value)
        if result.is_error:
            raise ToolError(result.text)
        return result.text


ROUTE_COMPLETION_DESCRIPTION = (
    "Send a completion to any configured model (provider/model, e.g. anthropic/claude-sonnet-4-5, "
    "openai/gpt-4.1-mini, gemini/gemini-2.5-flash, ollama/llama3.2, or an alias). The user's memories "
    "are appended to `system`, and the model may record or forget memories itself. When the model "
    "calls one of your `tools`, the result has status `tool_calls`: run those calls, append the "
    "returned `messages` plus one `tool` message per call (with its `tool_call_id`) to your history, "
    "and call again. Otherwise the status is `completed` and `text` holds the answer."
)


def render_route_result(result: RouteResult) -> str:
    """The text rendering of a result, beside its structured form."""
    if result.status == "completed":
        return result.text
    calls = "\n".join(
        f"- {call.name} (id {call.id}): {json.dumps(call.arguments, ensure_ascii=False)}"
        for call in result.tool_calls
    )
    lead = f"{result.text}\n\n" if result.text else ""
    return f"{lead}{result.provider}/{result.model} asks the host to run:\n{calls}"


def _add_route_completion_tool(mcp: MCPServer[AppState]) -> None:
    @mcp.tool(
        name="route_completion",
        description=ROUTE_COMPLETION_DESCRIPTION,
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def route_completion(
        messages: Annotated[list[Message], Field(description="the conversation so far, oldest first")],
        ctx: Context[AppState],
        model: Annotated[
            str | None, Field(description="provider/model or an alias; default if omitted")
        ] = None,
        system: Annotated[str | None, Field(description="system prompt; memories are appended to it")] = None,
        tools: Annotated[list[ToolSpec] | None, Field(description="your own tools, run by you")] = None,
        tool_choice: ToolChoice | None = None,
        parameters: Parameters | None = None,
        memory: Annotated[bool, Field(description="false: no memory preamble and no memory tool")] = True,
        session_id: Annotated[
            str | None, Field(description="optional: the session for session memories")
        ] = None,
        fallbacks: Annotated[
            list[str] | None, Field(description="models to try in order on a retryable failure")
        ] = None,
        provider_options: Annotated[
            dict[str, dict[str, Any]] | None,
            Field(
                description="extra request-body fields per provider, sent only to that provider, e.g. "
                '{"anthropic": {"thinking": {"type": "enabled", "budget_tokens": 2048}}}'
            ),
        ] = None,
    ) -> Annotated[types.CallToolResult, RouteResult]:
        state = ctx.request_context.lifespan_context
        request = RouteRequest(
            model=model,
            messages=messages,
            system=system,
            tools=tools or [],
            tool_choice=tool_choice,
            parameters=parameters or Parameters(),
            memory=memory,
            fallbacks=fallbacks or [],
            provider_options=provider_options or {},
        )
        owner = caller(ctx, session_id)
        meta = ctx.request_context.meta
        try:
            if meta is not None and meta.get("progress_token") is not None:

                async def report(progress: float, message: str) -> None:
                    await ctx.report_progress(progress, None, message)

                async with progress_stream(report) as on_text:
                    result = await state.router.route(request, owner, on_text)
            else:
                result = await state.router.route(request, owner)
        except (ProviderError, RoutingError, ConfigError) as e:
            raise ToolError(str(e)) from None
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=render_route_result(result))],
            structured_content=result.model_dump(mode="json"),
        )


MODELS_URI = "router://models"

STATIC_RESOURCES = [
    types.Resource(
        uri="memory://user",
        name="user-memories",
        description="Your user memories (durable, across sessions and hosts), newest first.",
        mime_type="application/json",
    ),
    types.Resource(
        uri="memory://session",
        name="session-memories",
        description="Memories of the current session, newest first.",
        mime_type="application/json",
    ),
    types.Resource(
        uri=PREAMBLE_URI,
        name="memory-preamble",
        description="The exact text that route_completion appends to the system prompt now.",
        mime_type="text/plain",
    ),
    types.Resource(
        uri=MODELS_URI,
        name="models",
        description="Configured providers, their default models, aliases, and whether each is usable now.",
        mime_type="application/json",
    ),
]
RESOURCE_TEMPLATES = [
    types.ResourceTemplate(
        uri_template=f"memory://{scope.value}/{{key}}",
        name=f"{scope.value}-memory",
        description=f"One {scope.value} memory; the key is percent-encoded (every reserved character, / included).",
        mime_type="application/json",
    )
    for scope in Scope
]


def _add_memory_resources(mcp: MCPServer[AppState]) -> None:
    """Memory resources are served at the lowlevel: they depend on who asks, which MCPServer's
    static resources cannot see."""

    async def list_resources(
        ctx: ServerRequestContext[AppState], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=STATIC_RESOURCES)

    async def list_templates(
        ctx: ServerRequestContext[AppState], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=RESOURCE_TEMPLATES)

    async def read(
        ctx: ServerRequestContext[AppState], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        # `?session_id=S` names the session for clients without an MCP session; keys are
        # percent-encoded, so the first raw `?` always starts the query.
        resource, _, query = uri.partition("?")
        session_id = parse_qs(query, keep_blank_values=True).get("session_id", [None])[0] if query else None
        try:
            owner = owner_of(ctx, session_id)
        except MemoryInputError as e:
            raise MCPError(code=INVALID_PARAMS, message=str(e), data={"uri": uri}) from None
        text, mime = await _read_resource(ctx.lifespan_context, owner, resource)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=mime, text=text)]
        )

    lowlevel = _lowlevel(mcp)
    lowlevel.add_request_handler("resources/list", types.PaginatedRequestParams, list_resources)
    lowlevel.add_request_handler("resources/templates/list", types.PaginatedRequestParams, list_templates)
    lowlevel.add_request_handler("resources/read", types.ReadResourceRequestParams, read)


def _not_found(uri: str, what: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=f"Resource not found: {what}", data={"uri": uri})


async def _read_resource(state: AppState, owner: Owner, uri: str) -> tuple[str, str]:
    memory = state.memory
    if uri == PREAMBLE_URI:
        return await memory.preamble(owner), "text/plain"
    if uri == MODELS_URI:
        return json.dumps(await describe_models(state.router), indent=2), "application/json"
    for scope in Scope:
        if uri == scope_uri(scope):
            records = await memory.store.list(owner, scope, limit=state.settings.list_limit)
            return records_json(records), "application/json"
        prefix = scope_uri(scope) + "/"
        if uri.startswith(prefix):
            key = unquote(uri.removeprefix(prefix))
            try:
                record = await memory.store.get(owner, scope, key)
            except MemoryInputError:
                record = None
            if record is None:
                raise _not_found(uri, f"no {scope.value} memory found for {key!r}.")
            return json.dumps(record_json(record), ensure_ascii=False, indent=2), "application/json"
    raise _not_found(uri, f"{uri} is not a memory-router resource.")


def owner_of(ctx: ServerRequestContext[AppState], session_id: str | None = None) -> Owner:
    """The caller of a lowlevel request (resources, subscriptions)."""
    return resolve_owner(ctx.lifespan_context, getattr(ctx.request, "headers", None), session_id)


def _lowlevel(mcp: MCPServer[AppState]) -> Server[AppState]:
    # MCPServer has no public hook for these handlers yet; the lowlevel server is where they live.
    return mcp._lowlevel_server  # pyright: ignore[reportPrivateUsage]


def _add_legacy_subscriptions(mcp: MCPServer[AppState]) -> None:
    """`resources/subscribe` for handshake-era clients (MCPServer serves only the 2026 listen path)."""

    def connection(ctx: ServerRequestContext[AppState]) -> Connection:
        # A ServerSession is made per request; the connection is what lasts. No public accessor yet.
        return ctx.session._connection  # pyright: ignore[reportPrivateUsage]

    async def subscribe(
        ctx: ServerRequestContext[AppState], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        ctx.lifespan_context.legacy_subscriptions.subscribe(connection(ctx), owner_of(ctx), str(params.uri))
        return types.EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[AppState], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        ctx.lifespan_context.legacy_subscriptions.unsubscribe(connection(ctx), str(params.uri))
        return types.EmptyResult()

    lowlevel = _lowlevel(mcp)
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)


def _add_logging_level(mcp: MCPServer[AppState]) -> None:
    """`logging/setLevel` for handshake-era clients; we send no log notifications, so any level is fine."""

    async def set_level(
        ctx: ServerRequestContext[AppState], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        return types.EmptyResult()

    _lowlevel(mcp).add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)


MAX_COMPLETIONS = 100


def _add_key_completion(mcp: MCPServer[AppState]) -> None:
    """`completion/complete` for the `key` of `memory://user/{key}` and `memory://session/{key}`,
    among the newest MEMORY_ROUTER_LIST_LIMIT memories (a full scan would grow with the store)."""

    async def complete(
        ctx: ServerRequestContext[AppState], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        keys: list[str] = []
        ref, argument = params.ref, params.argument
        if isinstance(ref, types.ResourceTemplateReference) and argument.name == "key":
            for scope in Scope:
                if ref.uri == scope_uri(scope) + "/{key}":
                    state = ctx.lifespan_context
                    records = await state.memory.store.list(
                        owner_of(ctx), scope, limit=state.settings.list_limit
                    )
                    keys = [r.key for r in records if r.key is not None and r.key.startswith(argument.value)]
        return types.CompleteResult(
            completion=types.Completion(
                values=keys[:MAX_COMPLETIONS], total=len(keys), has_more=len(keys) > MAX_COMPLETIONS
            )
        )

    _lowlevel(mcp).add_request_handler("completion/complete", types.CompleteRequestParams, complete)
