"""The agent loop: inject memory, call the provider, run `memory` calls here, hand host calls back.

Provider-agnostic: it speaks only the neutral types of `server.providers.types`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, Literal

import anyio
import httpx
from pydantic import BaseModel, Field

from server.config import Settings
from server.errors import MemoryInputError, ProviderError, RoutingError
from server.memory.service import MemoryService
from server.memory.storage import Owner
from server.memory.tool import (
    MEMORY_TOOL_DESCRIPTION,
    MEMORY_TOOL_INPUT_SCHEMA,
    MEMORY_TOOL_NAME,
    MemoryArguments,
    MemoryOpResult,
)
from server.providers import Provider, make_provider
from server.providers.types import (
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
)
from server.routing.targets import Target, resolve_chain

MEMORY_TOOL = ToolSpec(
    name=MEMORY_TOOL_NAME, description=MEMORY_TOOL_DESCRIPTION, input_schema=MEMORY_TOOL_INPUT_SCHEMA
)

TextSink = Callable[[str], Awaitable[None]]


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


def system_with_memory(system: str | None, preamble: str) -> str | None:
    """The caller's system text stays first and intact; the preamble is appended."""
    if not preamble:
        return system
    return f"{system}\n\n{preamble}" if system else preamble


class Router:
    """Routes completions. One per server; providers are built once and share one HTTP client."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, memory: MemoryService) -> None:
        self.settings = settings
        self.http = http
        self.memory = memory
        self._providers: dict[str, Provider] = {}

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            self._providers[name] = make_provider(name, self.settings, self.http)
        return self._providers[name]

    async def route(
        self, request: RouteRequest, owner: Owner, on_text: TextSink | None = None
    ) -> RouteResult:
        chain = resolve_chain(request.model, request.fallbacks, self.settings)
        tools = list(request.tools)
        system = request.system
        if request.memory:
            if any(tool.name == MEMORY_TOOL_NAME for tool in tools):
                raise RoutingError(
                    "Invalid request: a host tool is named 'memory', which is the router's own memory tool. "
                    "Rename the host tool, or pass memory: false to route without memory."
                )
            tools.append(MEMORY_TOOL)
            system = system_with_memory(system, await self.memory.preamble(owner))
        history = list(request.messages)
        produced: list[Message] = []
        ops: list[MemoryOpResult] = []
        usage = Usage()
        streamed = False

        async def sink(text: str) -> None:
            nonlocal streamed
            streamed = True
            if on_text is not None:
                await on_text(text)

        target_index = 0
        rounds = 0
        while True:
            target = chain[target_index]
            call = CompletionRequest(
                model=target.model,
                system=system,
                messages=history + produced,
                tools=tools,
                tool_choice=request.tool_choice,
                parameters=request.parameters,
                provider_options=request.provider_options.get(target.provider),
            )
            try:
                response = await self._call(target, call, sink if on_text is not None else None)
            except ProviderError as e:
                # Fall back only while nothing has reached the caller.
                if e.retryable and not streamed and target_index + 1 < len(chain):
                    target_index += 1
                    continue
                raise
            usage = usage + response.usage
            produced.append(response.message())
            internal = [c for c in response.tool_calls if c.name == MEMORY_TOOL_NAME and request.memory]
            host = [c for c in response.tool_calls if not (c.name == MEMORY_TOOL_NAME and request.memory)]
            for tool_call in internal:
                reply, op = await self._run_memory(owner, tool_call)
                produced.append(reply)
                if op is not None:
                    ops.append(op)
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
                )
            rounds += 1
            if rounds >= self.settings.max_internal_rounds:
                raise RoutingError(
                    f"The model kept calling the memory tool for {rounds} rounds without answering "
                    f"(limit MEMORY_ROUTER_MAX_INTERNAL_ROUNDS={self.settings.max_internal_rounds})."
                )

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

    async def _run_memory(self, owner: Owner, call: ToolCall) -> tuple[Message, MemoryOpResult | None]:
        """The tool message that answers one memory call, and the operation it ran (None when the
        model's arguments were invalid: it is told what to fix, and nothing ran)."""
        try:
            arguments = MemoryArguments.from_call(call.arguments)
        except MemoryInputError as e:
            return self._memory_reply(call, str(e), is_error=True), None
        # Shielded: a memory op the model asked for is applied fully or not at all, even on cancel.
        with anyio.CancelScope(shield=True):
            result = await self.memory.apply(owner, arguments)
        return self._memory_reply(call, result.text, is_error=result.is_error), result

    @staticmethod
    def _memory_reply(call: ToolCall, text: str, *, is_error: bool) -> Message:
        return Message(
            role="tool", tool_call_id=call.id, name=MEMORY_TOOL_NAME, content=text, is_error=is_error
        )
