"""`route_completion` as an MCP task in both eras, in memory: progress, result, cancel, errors, limits."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fake_llm import FakeLLM, Turn
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_helpers import text_of
from task_clients import ANSWER, ARGS, EXTENSION, MODES, Mode, StatusWatcher, TaskDriver, client_options

from server.config import Settings
from server.mcp.server import build_server


@pytest.fixture
def quick(settings: Settings) -> Settings:
    return settings.model_copy(update={"task_poll_ms": 10})


@pytest.mark.parametrize("mode", MODES)
async def test_a_task_reports_working_with_progress_then_completes_with_the_synchronous_result(
    fake: FakeLLM, quick: Settings, mode: Mode
) -> None:
    fake.script(Turn(text=ANSWER, gated=True), Turn(text=ANSWER))
    async with Client(build_server(quick), **client_options(mode)) as client:
        tasks = TaskDriver(client, mode)
        created = await tasks.create(ARGS)
        assert created["status"] == "working"
        with anyio.fail_after(10):
            await fake.gated.wait()
        received = "Waiting for openai/model-a: 14 characters received so far."
        working = await tasks.poll_until(created["taskId"], lambda t: t.get("statusMessage") == received)
        assert working["status"] == "working"

        fake.release.set()
        result = await tasks.outcome(created["taskId"])

    async with Client(build_server(quick), mode=mode) as plain:
        synchronous = await plain.call_tool("route_completion", ARGS)
    assert text_of(result) == ANSWER
    assert result.content == synchronous.content
    assert result.structured_content == synchronous.structured_content
    assert not result.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_cancelling_a_task_aborts_the_provider_request_and_leaves_it_cancelled(
    fake: FakeLLM, quick: Settings, mode: Mode
) -> None:
    fake.script(Turn(text="Thinking", hang=True))
    async with Client(build_server(quick), **client_options(mode)) as client:
        tasks = TaskDriver(client, mode)
        created = await tasks.create(ARGS)
        with anyio.fail_after(10):
            await fake.hung.wait()

        answer = await tasks.cancel(created["taskId"])

        with anyio.fail_after(5):
            await fake.disconnected.wait()
        if mode == "legacy":  # the answer is the task, already cancelled
            assert answer["status"] == "cancelled"
        else:  # an acknowledgement
            assert "status" not in answer
        task = await tasks.get(created["taskId"])
        assert task["status"] == "cancelled"
        assert task["statusMessage"] == "Cancelled by the client."


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_error_fails_the_task_in_2025_and_completes_it_in_2026(
    fake: FakeLLM, quick: Settings, mode: Mode
) -> None:
    fake.script(Turn(error=(400, "The prompt is too long.")))
    async with Client(build_server(quick), **client_options(mode)) as client:
        tasks = TaskDriver(client, mode)
        created = await tasks.create(ARGS)
        ended = await tasks.poll_until(created["taskId"], lambda t: t["status"] != "working")
        result = await tasks.outcome(created["taskId"])

    assert ended["status"] == ("failed" if mode == "legacy" else "completed")
    assert result.is_error
    assert "The prompt is too long." in text_of(result)


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_does_not_opt_in_gets_the_synchronous_answer(
    fake: FakeLLM, quick: Settings, mode: Mode
) -> None:
    fake.script(Turn(text=ANSWER))
    async with Client(build_server(quick), mode=mode) as client:
        result = await client.call_tool("route_completion", ARGS)
        assert text_of(result) == ANSWER
        if mode != "legacy":
            with pytest.raises(MCPError) as refused:
                await TaskDriver(client, mode).get("anything")
            assert refused.value.error.code == -32021


@pytest.mark.parametrize("mode", MODES)
async def test_running_tasks_past_the_per_user_limit_get_a_clear_error(
    fake: FakeLLM, quick: Settings, mode: Mode
) -> None:
    fake.script(Turn(text="Thinking", hang=True))
    limited = quick.model_copy(update={"max_running_tasks": 1})
    async with Client(build_server(limited), **client_options(mode)) as client:
        tasks = TaskDriver(client, mode)
        await tasks.create(ARGS)
        expected = "1 route_completion tasks are already running for you (MEMORY_ROUTER_MAX_RUNNING_TASKS=1)"
        if mode == "legacy":
            with pytest.raises(MCPError) as refused:
                await tasks.create(ARGS)
            assert refused.value.error.code == -32600
            assert expected in refused.value.error.message
        else:
            result = await client.call_tool("route_completion", ARGS)
            assert result.is_error and expected in text_of(result)


@pytest.mark.parametrize("mode", MODES)
async def test_an_unknown_task_id_is_not_found(quick: Settings, mode: Mode) -> None:
    async with Client(build_server(quick), **client_options(mode)) as client:
        with pytest.raises(MCPError) as unknown:
            await TaskDriver(client, mode).get("no-such-task")
    assert (unknown.value.error.code, unknown.value.error.message) == (
        -32602,
        "Failed to retrieve task: Task not found",
    )


async def test_2025_clients_see_the_tasks_capability_and_route_completions_task_support(
    quick: Settings,
) -> None:
    async with Client(build_server(quick), mode="legacy") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        capabilities = client.server_capabilities
    assert capabilities is not None and capabilities.tasks is not None
    assert capabilities.tasks.requests is not None
    route, memory = tools["route_completion"], tools["memory"]
    assert route.execution is not None and route.execution.task_support == "optional"
    assert memory.execution is None


async def test_2026_clients_see_the_tasks_extension_in_discovery(quick: Settings) -> None:
    async with Client(build_server(quick)) as client:  # "auto" discovers
        assert client.protocol_version == "2026-07-28"
        capabilities = client.server_capabilities
    assert EXTENSION in (capabilities.extensions or {})


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_with_tasks_turned_off_nothing_is_advertised(quick: Settings, mode: Any) -> None:
    # "auto" discovers the 2026 capabilities; "legacy" reads them from initialize
    async with Client(build_server(quick.model_copy(update={"tasks": False})), mode=mode) as client:
        capabilities = client.server_capabilities
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert capabilities is not None and capabilities.tasks is None
    assert EXTENSION not in (capabilities.extensions or {})
    assert tools["route_completion"].execution is None


async def test_2025_tasks_list_shows_the_callers_tasks_and_a_finished_task_cannot_be_cancelled(
    fake: FakeLLM, quick: Settings
) -> None:
    fake.script(Turn(text=ANSWER), Turn(text=ANSWER))
    async with Client(build_server(quick), mode="legacy") as client:
        tasks = TaskDriver(client, "legacy")
        ids = {(await tasks.create(ARGS))["taskId"] for _ in range(2)}
        for task_id in ids:
            await tasks.outcome(task_id)
        listed = await tasks.list()
        with pytest.raises(MCPError) as refused:
            await tasks.cancel(next(iter(ids)))

    assert {task["taskId"] for task in listed["tasks"]} == ids
    assert {task["status"] for task in listed["tasks"]} == {"completed"}
    assert refused.value.error.code == -32602


async def test_task_ids_are_long_random_and_never_repeat(fake: FakeLLM, quick: Settings) -> None:
    fake.script(*[Turn(text=ANSWER)] * 3)
    async with Client(build_server(quick), mode="legacy") as client:
        tasks = TaskDriver(client, "legacy")
        ids = [(await tasks.create(ARGS))["taskId"] for _ in range(3)]
        for task_id in ids:
            await tasks.outcome(task_id)
    assert len(set(ids)) == 3
    assert all(len(task_id) >= 32 for task_id in ids)


async def test_a_2025_client_hears_a_status_notification_when_its_task_ends(
    fake: FakeLLM, quick: Settings
) -> None:
    fake.script(Turn(text=ANSWER))
    watcher = StatusWatcher()
    async with Client(build_server(quick), mode="legacy", extensions=[watcher]) as client:
        task_id = (await TaskDriver(client, "legacy").create(ARGS))["taskId"]
        with anyio.fail_after(10):
            await watcher.arrived.wait()
    [heard] = watcher.heard
    assert (heard.task_id, heard.status, heard.status_message) == (task_id, "completed", "Done.")


async def test_a_task_still_running_at_its_ttl_is_stopped_and_then_gone(
    fake: FakeLLM, quick: Settings
) -> None:
    fake.script(Turn(text="Thinking", hang=True))
    async with Client(build_server(quick), mode="legacy") as client:
        tasks = TaskDriver(client, "legacy")
        created = await tasks.create(ARGS, ttl=200)
        assert created["ttl"] == 200
        with anyio.fail_after(10):
            await fake.disconnected.wait()
        with pytest.raises(MCPError) as gone:
            await tasks.get(created["taskId"])
    assert gone.value.error.code == -32602


async def test_a_2025_task_with_invalid_arguments_fails_with_the_synchronous_error(quick: Settings) -> None:
    invalid = {"model": "openai/model-a", "messages": "not a list"}
    async with Client(build_server(quick), mode="legacy") as client:
        tasks = TaskDriver(client, "legacy")
        created = await tasks.create(invalid)
        ended = await tasks.poll_until(created["taskId"], lambda t: t["status"] != "working")
        result = await tasks.outcome(created["taskId"])
        synchronous = await client.call_tool("route_completion", invalid)
    assert ended["status"] == "failed"
    assert result.is_error and synchronous.is_error
    assert result.content == synchronous.content
