"""A per-user limit on tool calls, as MCP server middleware.

Each user has a token bucket of `per_minute` calls that refills continuously; one user's calls never
spend another's. A call over the limit is answered with a tool error that says when to try again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from mcp import types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext


class ToolCallRateLimit:
    """`ServerMiddleware` for `tools/call`: at most `per_minute` calls per user, bursts included."""

    def __init__(
        self, per_minute: int, current_user: Callable[[], str], clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self._current_user = current_user
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, at)

    def try_acquire(self, user: str) -> float:
        """Spend one call for `user`; 0 when allowed, else the seconds until the next call is."""
        now = self._clock()
        rate = self.per_minute / 60.0
        tokens, at = self._buckets.get(user, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * rate)
        if tokens >= 1.0:
            self._buckets[user] = (tokens - 1.0, now)
            return 0.0
        self._buckets[user] = (tokens, now)
        return (1.0 - tokens) / rate

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        wait = self.try_acquire(self._current_user())
        if wait > 0:
            return types.CallToolResult(
                content=[
                    types.TextContent(
                        text=(
                            f"Rate limit reached: at most {self.per_minute} tool calls per minute per user. "
                            f"Try again in {math.ceil(wait)} s."
                        )
                    )
                ],
                is_error=True,
            )
        return await call_next(ctx)
