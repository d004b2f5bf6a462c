"""Tasks over streamable HTTP: bound to their user, kept across reconnects, failed by a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from fake_llm import FakeLLM, Turn
from http_helpers import connect, running
from mcp.shared.exceptions import MCPError
from mcp_helpers import text_of
from task_clients import ANSWER, ARGS, MODES, Mode, TaskDriver, TasksExtension

from server.config import Settings
from server.mcp.auth import TokensFile
from server.mcp.tasks.runner import SHUTDOWN_MESSAGE


@pytest.fixture
def tokens(tmp_path: Path) -> dict[str, str]:
    file = TokensFile(tmp_path / "tokens")
    return {"alice": file.add("alice"), "bob": file.add("bob")}


@pytest.fixture
def served(settings: Settings, tmp_path: Path, tokens: dict[str, str]) -> Settings:
    """Two token users, a store on disk (it outlives a server), quick polls."""
    return settings.model_copy(
        update={
            "tokens_file": tmp_path / "tokens",
            "store": f"surrealkv://{tmp_path / 'store'}",
            "task_poll_ms": 10,
        }
    )


def extensions(mode: Mode) -> list[Any]:
    return [TasksExtension()] if mode != "legacy" else []


@pytest.mark.parametrize("mode", MODES)
async def test_another_users_task_id_answers_exactly_like_an_unknown_one(
    fake: FakeLLM, served: Settings, tokens: dict[str, str], mode: Mode
) -> None:
    fake.script(Turn(text=ANSWER))
    async with running(served) as base:
        async with connect(base, token=tokens["alice"], mode=mode, extensions=extensions(mode)) as alice:
            task_id = (await TaskDriver(alice, mode).create(ARGS))["taskId"]
            await TaskDriver(alice, mode).outcome(task_id)
        async with connect(base, token=tokens["bob"], mode=mode, extensions=extensions(mode)) as bob:
            answers = []
            for asked in (task_id, "no-such-task"):
                with pytest.raises(MCPError) as refused:
                    await TaskDriver(bob, mode).get(asked)
                answers.append(refused.value.error)
            with pytest.raises(MCPError) as cancel_refused:
                await TaskDriver(bob, mode).cancel(task_id)

    theirs, unknown = answers
    assert theirs == unknown
    assert (theirs.code, theirs.message) == (-32602, "Failed to retrieve task: Task not found")
    assert cancel_refused.value.error == unknown


@pytest.mark.parametrize("mode", MODES)
async def test_a_task_result_is_fetchable_after_the_client_reconnects(
    fake: FakeLLM, served: Settings, tokens: dict[str, str], mode: Mode
) -> None:
    fake.script(Turn(text=ANSWER, gated=True))
    async with running(served) as base:
        try:
            async with connect(base, token=tokens["alice"], mode=mode, extensions=extensions(mode)) as first:
                task_id = (await TaskDriver(first, mode).create(ARGS))["taskId"]
                with anyio.fail_after(30):
                    await fake.gated.wait()
        finally:
            fake.release.set()  # a failure above must not leave the server waiting on the gate
        async with connect(base, token=tokens["alice"], mode=mode, extensions=extensions(mode)) as again:
            result = await TaskDriver(again, mode).outcome(task_id)
    assert text_of(result) == ANSWER


@pytest.mark.parametrize("mode", MODES)
async def test_a_server_restart_fails_the_running_task_with_a_message(
    fake: FakeLLM, served: Settings, tokens: dict[str, str], mode: Mode
) -> None:
    fake.script(Turn(text="Thinking", hang=True))
    async with (
        running(served) as base,
        connect(base, token=tokens["alice"], mode=mode, extensions=extensions(mode)) as client,
    ):
        task_id = (await TaskDriver(client, mode).create(ARGS))["taskId"]
        with anyio.fail_after(10):
            await fake.hung.wait()
    with anyio.fail_after(5):
        await fake.disconnected.wait()  # shutting down stopped the provider request too

    async with (
        running(served) as base,
        connect(base, token=tokens["alice"], mode=mode, extensions=extensions(mode)) as client,
    ):
        task = await TaskDriver(client, mode).get(task_id)
    assert task["status"] == "failed"
    assert task["statusMessage"] == SHUTDOWN_MESSAGE
    if mode != "legacy":
        assert task["error"] == {"code": -32603, "message": SHUTDOWN_MESSAGE}
