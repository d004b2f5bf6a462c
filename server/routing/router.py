"""The agent loop: inject memory, call the provider, run `memory` calls here, hand host calls back.

Provider-agnostic: it speaks only the neutral types of `server.providers.types`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx
from pydantic import BaseModel, Field, ValidationError

from server.config import Settings
from server.errors import MemoryInputError, ProviderError, RoutingError
from server.memory.preamble import MemoryContext
from server.memory.service import MemoryService
from server.memory.storage import Owner, Source, Via
from server.memory.tool import (
    MEMORY_TOOL_DESCRIPTION,
    MEMORY_TOOL_INPUT_SCHEMA,
    MEMORY_TOOL_NAME,
    MemoryArguments,
    MemoryOpResult,
)
from server.providers import Clock, Provider, ProviderDirectory
from server.providers.types import (
    MAX_FALLBACKS,
    MAX_JSON_SIZE,
    MAX_MESSAGES,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    MAX_TOOLS,
    CompletionRequest,
    CompletionResponse,
    FinalResponse,
    FinishReason,
    Message,
    Parameters,
    TextDelta,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
    json_size_problem,
)
from server.routing.targets import Target, resolve_targets

MEMORY_TOOL = ToolSpec(
    name=MEMORY_TOOL_NAME, description=MEMORY_TOOL_DESCRIPTION, input_schema=MEMORY_TOOL_INPUT_SCHEMA
)

TextSink = Callable[[str], Awaitable[None]]
StatusSink = Callable[[str], Awaitable[None]]
"""Told, in a sentence, what the route is doing: which model it waits for, a fallback, a memory op."""


class RouteRequest(BaseModel):
    model: str | None = None
    messages: list[Message]
    system: str | None = None
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parameters: Parameters = Field(default_factory=Parameters)
    memory: bool = True
    fallbacks: list[str] = Field(default_factory=list)
    provider_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Extra request-body fields per provider name, sent only to that provider (e.g. Anthropic thinking)."""

    def check_limits(self) -> None:
        """Refuse what is over the size limits at the top level; the neutral types bound what they hold."""
        problem = self._over_limit()
        if problem is not None:
            raise RoutingError(
                f"Invalid request: {problem}. See the limits of route_completion in the README."
            )

    def _over_limit(self) -> str | None:
        counts = (
            ("messages", len(self.messages), MAX_MESSAGES, "entries"),
            ("tools", len(self.tools), MAX_TOOLS, "entries"),
            ("fallbacks", len(self.fallbacks), MAX_FALLBACKS, "entries"),
            ("system", len(self.system or ""), MAX_TEXT_CHARS, "characters"),
        )
        for field, count, limit, unit in counts:
            if count > limit:
                return f"`{field}` has {count:,} {unit}; at most {limit:,} are allowed"
        for name in [self.model or "", *self.fallbacks]:
            if len(name) > MAX_NAME_CHARS:
                return f"a model name has {len(name):,} characters; at most {MAX_NAME_CHARS} are allowed"
        problem = json_size_problem(self.provider_options, MAX_JSON_SIZE)
        return None if problem is None else f"`provider_options` {problem}"


class RouteResult(BaseModel):
    status: Literal["completed", "tool_calls"]
    text: str
    tool_calls: list[ToolCall]
    messages: list[Message]
    finish_reason: FinishReason
    usage: Usage
    provider: str
    model: str
    memory_ops: list[MemoryOpResult]
    memory_context: MemoryContext | None = None
    """The manifest of the memory preamble the model got; None with `memory: false`."""


def memory_query(messages: list[Message]) -> str | None:
    """The text the turn's facts are chosen for: the latest user message's text (its text parts)."""
    for message in reversed(messages):
        if message.role == "user":
            return message.text() or None
    return None


def system_with_memory(system: str | None, preamble: str) -> str | None:
    """The caller's system text stays first and intact; the preamble is appended."""
    if not preamble:
        return system
    return f"{system}\n\n{preamble}" if system else preamble


@dataclass(frozen=True, slots=True)
class PreparedRoute:
    """A request ready to send: its targets in order, and the system text and tools every round sends."""

    request: RouteRequest
    chain: list[Target]
    system: str | None
    tools: list[ToolSpec]
    memory_context: MemoryContext | None = None

    def request_for(self, target: Target, produced: list[Message]) -> CompletionRequest:
        request = self.request
        return CompletionRequest(
            model=target.model,
            system=self.system,
            messages=[*request.messages, *produced],
            tools=self.tools,
            tool_choice=request.tool_choice,
            parameters=request.parameters,
            provider_options=request.provider_options.get(target.provider),
        )

    def split_calls(self, calls: list[ToolCall]) -> tuple[list[ToolCall], list[ToolCall]]:
        """(the router's own memory calls, the host's calls); with memory off every call is the host's."""
        internal: list[ToolCall] = []
        host: list[ToolCall] = []
        for call in calls:
            (internal if self.request.memory and call.name == MEMORY_TOOL_NAME else host).append(call)
        return internal, host


class _FallbackChain:
    """The target answering now. A retryable failure moves on to the next target, but only while no
    text has reached the caller: a later model cannot take back what an earlier one showed."""

    def __init__(self, targets: list[Target], on_text: TextSink | None) -> None:
        self._targets = targets
        self._position = 0
        self._shown = False
        self._on_text = on_text
        # Streaming is asked for only by a caller that wants the text as it comes.
        self.sink: TextSink | None = self._show if on_text is not None else None

    @property
    def current(self) -> Target:
        return self._targets[self._position]

    def fall_back(self, error: ProviderError) -> bool:
        """Move to the next target if `error` allows it; False when it must reach the caller."""
        if not error.retryable or self._shown or self._position + 1 >= len(self._targets):
            return False
        self._position += 1
        return True

    async def _show(self, text: str) -> None:
        self._shown = True
        if self._on_text is not None:
            await self._on_text(text)


def _history_turn(target: Target, response: CompletionResponse) -> Message:
    """The answer as a turn of history, which is held to the same limits as the caller's messages."""
    try:
        return response.message()
    except ValidationError as e:
        fields = ", ".join(sorted({".".join(str(p) for p in error["loc"]) for error in e.errors()}))
        raise RoutingError(
            f"{target} answered with more than a message may hold ({fields} over the limits of "
            "route_completion in the README)."
        ) from None


async def _ignore(_: str) -> None:
    return None


class Router:
    """Routes completions. One per server; providers are built once and share one HTTP client."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        memory: MemoryService,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.memory = memory
        # The clock times the providers' deadlines and backoff; tests pass a fake one.
        self.providers = ProviderDirectory(settings, http, clock=clock)

    def provider(self, name: str) -> Provider:
        return self.providers.adapter(name)

    async def route(
        self,
        request: RouteRequest,
        owner: Owner,
        on_text: TextSink | None = None,
        on_status: StatusSink | None = None,
    ) -> RouteResult:
        prepared = await self._prepare(request, owner)
        chain = _FallbackChain(prepared.chain, on_text)
        status_sink = on_status or _ignore
        produced: list[Message] = []
        ops: list[MemoryOpResult] = []
        usage = Usage()
        # At least one round, so a limit of 0 still reports the model's memory calls as too many.
        rounds = max(1, self.settings.max_internal_rounds)
        for _ in range(rounds):
            target, response = await self._complete_with_fallback(prepared, produced, chain, status_sink)
            usage = usage + response.usage
            produced.append(_history_turn(target, response))
            internal, host = prepared.split_calls(response.tool_calls)
            asker = Source(via=Via.ROUTE_COMPLETION, session=owner.session, model=str(target))
            ops.extend(await self._run_memory_calls(owner, internal, produced, status_sink, asker))
            if host or not internal:
                return RouteResult(
                    status="tool_calls" if host else "completed",
                    text=response.text,
                    tool_calls=host,
                    messages=produced,
                    finish_reason=FinishReason.TOOL_CALLS if host else response.finish_reason,
                    usage=usage,
                    provider=target.provider,
                    model=response.model or target.model,
                    memory_ops=ops,
                    memory_context=prepared.memory_context,
                )
        raise RoutingError(
            f"The model kept calling the memory tool for {rounds} rounds without answering "
            f"(limit MEMORY_ROUTER_MAX_INTERNAL_ROUNDS={self.settings.max_internal_rounds})."
        )

    async def _prepare(self, request: RouteRequest, owner: Owner) -> PreparedRoute:
        """Check the sizes, resolve the targets and add the memory tool and preamble when memory is on."""
        request.check_limits()
        chain = await resolve_targets(request.model, request.fallbacks, self.settings, self.providers)
        if not request.memory:
            return PreparedRoute(request, chain, request.system, list(request.tools))
        if any(tool.name == MEMORY_TOOL_NAME for tool in request.tools):
            raise RoutingError(
                "Invalid request: a host tool is named 'memory', which is the router's own memory tool. "
                "Rename the host tool, or pass memory: false to route without memory."
            )
        preamble = await self.memory.preamble(owner, query=memory_query(request.messages))
        system = system_with_memory(request.system, preamble.text)
        return PreparedRoute(request, chain, system, [*request.tools, MEMORY_TOOL], preamble.context)

    async def _complete_with_fallback(
        self,
        prepared: PreparedRoute,
        produced: list[Message],
        chain: _FallbackChain,
        on_status: StatusSink,
    ) -> tuple[Target, CompletionResponse]:
        """One model answer, from the current target or, after retryable failures, a later one."""
        status = f"Waiting for {chain.current}"
        while True:
            target = chain.current
            await on_status(status)
            try:
                response = await self._call(target, prepared.request_for(target, produced), chain.sink)
            except ProviderError as error:
                if not chain.fall_back(error):
                    raise
                status = f"{target} failed ({error.category.value}); waiting for the fallback {chain.current}"
            else:
                return target, response

    async def _run_memory_calls(
        self,
        owner: Owner,
        calls: list[ToolCall],
        produced: list[Message],
        on_status: StatusSink,
        source: Source,
    ) -> list[MemoryOpResult]:
        """Apply the model's memory calls in order, appending each reply to `produced`."""
        ops: list[MemoryOpResult] = []
        for call in calls:
            reply, op = await self._run_memory(owner, call, source)
            produced.append(reply)
            if op is not None:
                ops.append(op)
                await on_status(f"The model used its memory tool: {op.text}")
        return ops

    async def _call(
        self, target: Target, request: CompletionRequest, on_text: TextSink | None
    ) -> CompletionResponse:
        provider = self.provider(target.provider)
        if on_text is None:
            return await provider.complete(request)
        final: CompletionResponse | None = None
        # aclosing: a stream left early (cancellation, an error in on_text) closes its HTTP response now.
        async with aclosing(provider.stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    await on_text(event.text)
                elif isinstance(event, FinalResponse):
                    final = event.response
        if final is None:
            raise RoutingError(f"{target} ended its stream without a final response.")
        return final

    async def _run_memory(
        self, owner: Owner, call: ToolCall, source: Source
    ) -> tuple[Message, MemoryOpResult | None]:
        """The tool message that answers one memory call, and the operation it ran (None when the
        model's arguments were invalid: it is told what to fix, and nothing ran)."""
        try:
            arguments = MemoryArguments.from_call(call.arguments)
        except MemoryInputError as e:
            return self._memory_reply(call, str(e), is_error=True), None
        # Shielded: a memory op the model asked for is applied fully or not at all, even on cancel.
        with anyio.CancelScope(shield=True):
            result = await self.memory.apply(owner, arguments, source)
        return self._memory_reply(call, result.text, is_error=result.is_error), result

    @staticmethod
    def _memory_reply(call: ToolCall, text: str, *, is_error: bool) -> Message:
        return Message(
            role="tool", tool_call_id=call.id, name=MEMORY_TOOL_NAME, content=text, is_error=is_error
        )
