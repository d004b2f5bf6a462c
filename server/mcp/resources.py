"""The `memory://` and `router://` resources, the memory view, and completion of their `{key}` argument.

Served at the lowlevel: what they contain depends on who asks, which `MCPServer`'s static
resources cannot see.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote

from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types.jsonrpc import INVALID_PARAMS

from server.errors import MemoryInputError
from server.mcp.sdk import lowlevel_server
from server.mcp.state import AppState, owner_of
from server.mcp.subscriptions import PREAMBLE_URI, scope_uri
from server.mcp.view import VIEW_MIME_TYPE, VIEW_RESOURCE, VIEW_RESOURCE_META, VIEW_URI, memories_html
from server.memory.storage import MemoryRecord, Owner, Scope
from server.routing.catalog import describe_models
from server.runtime import Runtime

MODELS_URI = "router://models"
MAX_COMPLETIONS = 100

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
        description="The exact text that route_completion appends to the system prompt now; "
        "`?query=TEXT` chooses the facts for that turn's text, as route_completion does.",
        mime_type="text/plain",
    ),
    types.Resource(
        uri=MODELS_URI,
        name="models",
        description="Configured providers, their default models, aliases, and whether each is usable now.",
        mime_type="application/json",
    ),
    VIEW_RESOURCE,
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


def record_json(record: MemoryRecord) -> dict[str, Any]:
    return {
        "handle": record.handle,
        "key": record.key,
        "content": record.content,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "source": record.source.model_dump(mode="json", exclude_none=True) if record.source else None,
    }


def records_json(records: Sequence[MemoryRecord]) -> str:
    return json.dumps([record_json(r) for r in records], ensure_ascii=False, indent=2)


def add_memory_resources(mcp: MCPServer[AppState]) -> None:
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
        parameters = parse_qs(query, keep_blank_values=True) if query else {}
        session_id = parameters.get("session_id", [None])[0]
        try:
            owner = owner_of(ctx, session_id)
        except MemoryInputError as e:
            raise MCPError(code=INVALID_PARAMS, message=str(e), data={"uri": uri}) from None
        turn = parameters.get("query", [None])[0]
        content = await _read_resource(ctx.lifespan_context.runtime, owner, resource, turn)
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=uri, mime_type=content.mime_type, text=content.text, _meta=content.meta
                )
            ]
        )

    lowlevel = lowlevel_server(mcp)
    lowlevel.add_request_handler("resources/list", types.PaginatedRequestParams, list_resources)
    lowlevel.add_request_handler("resources/templates/list", types.PaginatedRequestParams, list_templates)
    lowlevel.add_request_handler("resources/read", types.ReadResourceRequestParams, read)


def _not_found(uri: str, what: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=f"Resource not found: {what}", data={"uri": uri})


class ResourceText(NamedTuple):
    text: str
    mime_type: str
    meta: dict[str, Any] | None = None


async def _read_resource(runtime: Runtime, owner: Owner, uri: str, query: str | None) -> ResourceText:
    memory = runtime.memory
    if uri == PREAMBLE_URI:
        # The budget, so that a reader (the memory view) can show how much of it the preamble uses;
        # the manifest, so that it can show which facts went in and how they were chosen.
        budget = {"max_chars": memory.budget.max_chars, "max_items": memory.budget.max_items}
        preamble = await memory.preamble(owner, query=query)
        meta = {"budget": budget, "memory_context": preamble.context.model_dump(mode="json")}
        return ResourceText(preamble.text, "text/plain", meta)
    if uri == MODELS_URI:
        return ResourceText(json.dumps(await describe_models(runtime.router), indent=2), "application/json")
    if uri == VIEW_URI:
        return ResourceText(memories_html(), VIEW_MIME_TYPE, VIEW_RESOURCE_META)
    for scope in Scope:
        if uri == scope_uri(scope):
            records = await memory.store.list(owner, scope, limit=runtime.settings.list_limit)
            return ResourceText(records_json(records), "application/json")
        prefix = scope_uri(scope) + "/"
        if uri.startswith(prefix):
            key = unquote(uri.removeprefix(prefix))
            try:
                record = await memory.store.get(owner, scope, key)
            except MemoryInputError:
                record = None
            if record is None:
                raise _not_found(uri, f"no {scope.value} memory found for {key!r}.")
            return ResourceText(
                json.dumps(record_json(record), ensure_ascii=False, indent=2), "application/json"
            )
    raise _not_found(uri, f"{uri} is not a memory-router resource.")


def add_key_completion(mcp: MCPServer[AppState]) -> None:
    """`completion/complete` for the `key` of `memory://user/{key}` and `memory://session/{key}`,
    among the newest MEMORY_ROUTER_LIST_LIMIT memories (a full scan would grow with the store).

    Not `MCPServer.completion()`: its handlers are not given the request, so not the caller."""

    async def complete(
        ctx: ServerRequestContext[AppState], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        keys: list[str] = []
        ref, argument = params.ref, params.argument
        if isinstance(ref, types.ResourceTemplateReference) and argument.name == "key":
            for scope in Scope:
                if ref.uri == scope_uri(scope) + "/{key}":
                    runtime = ctx.lifespan_context.runtime
                    records = await runtime.store.list(
                        owner_of(ctx), scope, limit=runtime.settings.list_limit
                    )
                    keys = [r.key for r in records if r.key is not None and r.key.startswith(argument.value)]
        return types.CompleteResult(
            completion=types.Completion(
                values=keys[:MAX_COMPLETIONS], total=len(keys), has_more=len(keys) > MAX_COMPLETIONS
            )
        )

    lowlevel_server(mcp).add_request_handler("completion/complete", types.CompleteRequestParams, complete)
