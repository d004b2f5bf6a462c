"""What `route_completion` adds, end to end, over a direct httpx call to the same provider.

The fake model server of the routing tests (tests/routing/fake_llm.py) runs in a child process and
answers every request instantly, in OpenAI's format. The same request is sent:

- directly, as a bare `httpx` POST of the very body our OpenAI adapter builds (the baseline);
- through our `Router.route` alone, with no MCP around it (what our code adds, memory off);
- through `route_completion` in process (the SDK's in-memory client), memory off and on;
- through `route_completion` over stdio (`python -m server serve` as a subprocess), memory off;
- through `litellm.acompletion`, when LiteLLM is installed (`pip install -e .[bench]`).

For 1 and 32 concurrent calls it prints p50/p99 latency, what each path adds over the direct call
at p50 and p99, throughput, and ratios to the direct call.

    python bench/route.py [--calls 200] [--concurrent-calls 320]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client, StdioServerParameters
from pydantic import SecretStr

from server.config import Settings
from server.mcp.server import build_server
from server.memory.storage import Owner
from server.providers.openai import OpenAIProvider
from server.providers.types import CompletionRequest, Message
from server.routing.router import RouteRequest
from server.runtime import open_runtime

FAKE = Path(__file__).resolve().parents[1] / "tests" / "routing" / "fake_llm.py"
KEY = "sk-bench-0123456789"
MODEL = "gpt-bench"
QUESTION = "What is the capital of France?"

Call = Callable[[], Awaitable[None]]


@dataclass
class Row:
    path: str
    concurrency: int
    latencies: list[float]  # seconds
    wall: float

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall


@asynccontextmanager
async def fake_provider() -> AsyncIterator[str]:
    """The fake in a child process, so that its work does not run on the measured event loop."""
    async with await anyio.open_process([sys.executable, str(FAKE)], stderr=None) as process:
        assert process.stdout is not None
        url = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 200)
        try:
            yield url.decode().strip()
        finally:
            process.terminate()


def env_for(url: str) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": f"{url}/v1",
        "MEMORY_ROUTER_STORE": "mem://",
        "MEMORY_ROUTER_USER": "bench",
        "MEMORY_ROUTER_SESSION": "bench",
    }


async def measure(path: str, call: Call, calls: int, concurrency: int) -> Row:
    for _ in range(min(20, calls)):  # warm up connections, caches and code paths
        await call()
    latencies: list[float] = []
    limiter = anyio.Semaphore(concurrency)

    async def one() -> None:
        async with limiter:
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(one)
    return Row(path, concurrency, latencies, time.perf_counter() - start)


def route_call(client: Client, memory: bool) -> Call:
    arguments = {
        "model": f"openai/{MODEL}",
        "messages": [{"role": "user", "content": QUESTION}],
        "memory": memory,
    }

    async def call() -> None:
        result = await client.call_tool("route_completion", arguments)
        if result.is_error:
            raise RuntimeError(f"route_completion failed: {result.content}")

    return call


async def run_all(url: str, plans: list[tuple[int, int]]) -> list[Row]:
    rows: list[Row] = []
    settings = Settings.model_validate(
        {"store": "mem://", "user": "bench", "session": "bench", **env_for(url)}
    )

    async def each(path: str, opened: AbstractAsyncContextManager[Call]) -> None:
        async with opened as call:
            for calls, concurrency in plans:
                rows.append(await measure(path, call, calls, concurrency))
                print(f"  measured {path} x{concurrency}", file=sys.stderr)

    @asynccontextmanager
    async def direct() -> AsyncIterator[Call]:
        adapter = OpenAIProvider(
            client=httpx.AsyncClient(), base_url=f"{url}/v1", api_key=SecretStr(KEY), default_model=MODEL
        )
        request = CompletionRequest(model=MODEL, messages=[Message(role="user", content=QUESTION)])
        wire = adapter.build_request(request, stream=False)
        async with httpx.AsyncClient(timeout=30) as http:

            async def call() -> None:
                response = await http.post(wire.url, headers=wire.headers, content=wire.content())
                response.raise_for_status()
                response.json()

            yield call

    @asynccontextmanager
    async def router_only() -> AsyncIterator[Call]:
        async with open_runtime(settings) as runtime:
            router = runtime.router
            request = RouteRequest(
                model=f"openai/{MODEL}", messages=[Message(role="user", content=QUESTION)], memory=False
            )
            owner = Owner(user="bench", session="bench")

            async def call() -> None:
                await router.route(request, owner)

            yield call

    @asynccontextmanager
    async def in_process(memory: bool) -> AsyncIterator[Call]:
        async with Client(build_server(settings)) as client:
            yield route_call(client, memory)

    @asynccontextmanager
    async def stdio() -> AsyncIterator[Call]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "server", "serve"], env=env_for(url)
        )
        async with Client(params) as client:
            yield route_call(client, False)

    await each("direct httpx", direct())
    await each("Router.route alone (no MCP), memory off", router_only())
    await each("route_completion in process, memory off", in_process(False))
    await each("route_completion in process, memory on", in_process(True))
    await each("route_completion over stdio, memory off", stdio())
    litellm = litellm_call(url)
    if litellm is not None:
        await each("litellm.acompletion", litellm)
    return rows


def litellm_call(url: str) -> AbstractAsyncContextManager[Call] | None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of its price list at import
    try:
        import litellm  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None

    litellm.suppress_debug_info = True
    logging.getLogger("LiteLLM").setLevel(logging.WARNING)

    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        async def call() -> None:
            await litellm.acompletion(
                model=f"openai/{MODEL}",
                messages=[{"role": "user", "content": QUESTION}],
                api_base=f"{url}/v1",
                api_key=KEY,
            )

        yield call

    return opened()


def table(rows: list[Row]) -> str:
    baseline = {row.concurrency: row for row in rows if row.path == "direct httpx"}
    header = (
        f"{'path':<42} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} "
        f"{'calls/s':>8} {'p50 x':>6} {'tput x':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in sorted(rows, key=lambda r: r.concurrency):
        base = baseline[row.concurrency]
        p50, p99 = row.quantile(0.5) * 1e3, row.quantile(0.99) * 1e3
        added50, added99 = p50 - base.quantile(0.5) * 1e3, p99 - base.quantile(0.99) * 1e3
        lines.append(
            f"{row.path:<42} {row.concurrency:>4} {p50:>8.2f} {p99:>8.2f} {added50:>+8.2f} {added99:>+8.2f} "
            f"{row.throughput:>8.0f} {p50 / (base.quantile(0.5) * 1e3):>6.2f} "
            f"{row.throughput / base.throughput:>6.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200, help="calls one at a time, per path")
    parser.add_argument("--concurrent-calls", type=int, default=320, help="calls 32 at a time, per path")
    args = parser.parse_args()
    # The SDK logs every provider request at INFO in process; `memory-router serve` does not.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.pop("MEMORY_ROUTER_CONFIG", None)

    async def run() -> list[Row]:
        async with fake_provider() as url:
            return await run_all(url, [(args.calls, 1), (args.concurrent_calls, 32)])

    rows = anyio.run(run)
    print(table(rows))
    print(
        "\n+p50/+p99: added over the direct httpx call at the same concurrency; p50 x, tput x: ratios to it."
    )
    try:
        import litellm  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        print("litellm.acompletion: skipped, LiteLLM is not installed (pip install -e .[bench]).")


if __name__ == "__main__":
    main()
