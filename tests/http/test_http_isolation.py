"""Two users on one HTTP server: neither can read, list, forget, overwrite, subscribe to or learn of
the other's memories, and neither can reach the other's sessions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
import httpx
import pytest
from http_helpers import INITIALIZE, MCP_HEADERS, connect, memory, running
from mcp import Client, types
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError
from mcp_helpers import read_json, text_of
from pydantic import SecretStr

from server.config import Settings
from server.mcp.auth import build_token_verifier
from server.mcp.http import build_http_app


@pytest.fixture
async def base(auth_settings: Settings) -> AsyncIterator[str]:
    with anyio.fail_after(20):
        async with running(auth_settings) as url:
            yield url


async def read_error(client: Client, uri: str) -> str:
    with pytest.raises(MCPError) as failed:
        await client.read_resource(uri)
    return f"{failed.value.error.code} {failed.value.error.message}"


async def test_another_users_memories_are_absent_from_every_resource(
    base: str, tokens: dict[str, str]
) -> None:
    async with connect(base, token=tokens["alice"]) as alice, connect(base, token=tokens["bob"]) as bob:
        missing_before = await read_error(bob, "memory://user/secret")
        missing_session_before = await read_error(bob, "memory://session/note")
        await memory(alice, "record", "user", "secret", value="alice's diary")
        await memory(alice, "record", "session", "note", value="alice's note")

        assert await read_json(bob, "memory://user") == []
        assert await read_json(bob, "memory://session") == []
        assert await read_error(bob, "memory://user/secret") == missing_before
        assert await read_error(bob, "memory://session/note") == missing_session_before
        bob_preamble = (await bob.read_resource("memory://preamble")).contents[0]
        assert "alice" not in bob_preamble.model_dump_json()
        completion = await bob.complete(
            types.ResourceTemplateReference(type="ref/resource", uri="memory://user/{key}"),
            {"name": "key", "value": "se"},
        )
        assert completion.completion.values == []
        assert [m["content"] for m in await read_json(alice, "memory://user")] == ["alice's diary"]


async def test_another_users_memory_cannot_be_forgotten_or_overwritten(
    base: str, tokens: dict[str, str]
) -> None:
    async with connect(base, token=tokens["alice"]) as alice, connect(base, token=tokens["bob"]) as bob:
        await memory(alice, "record", "user", "secret", value="alice's diary")
        forgotten = await memory(bob, "forget", "user", "secret")
        assert text_of(forgotten) == 'No user memory found for "secret".'
        await memory(bob, "record", "user", "secret", value="bob's diary")
        assert (await read_json(alice, "memory://user/secret"))["content"] == "alice's diary"
        assert (await read_json(bob, "memory://user/secret"))["content"] == "bob's diary"


async def test_a_session_id_names_a_different_session_for_each_user(
    base: str, tokens: dict[str, str]
) -> None:
    modern: Final = "2026-07-28"
    async with (
        connect(base, token=tokens["alice"], mode=modern) as alice,
        connect(base, token=tokens["bob"], mode=modern) as bob,
    ):
        await memory(alice, "record", "session", "note", value="alice's", session_id="shared")
        forgotten = await memory(bob, "forget", "session", "note", session_id="shared")
        assert text_of(forgotten) == 'No session memory found for "note".'
        mine = await memory(alice, "forget", "session", "note", session_id="shared")
        assert text_of(mine) == 'Forgot session memory "note".'


async def test_another_users_streamable_http_session_answers_404(base: str, tokens: dict[str, str]) -> None:
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    async with httpx.AsyncClient(base_url=base, headers=MCP_HEADERS) as http:
        opened = await http.post(
            "/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer {tokens['alice']}"}
        )
        session = opened.headers["mcp-session-id"]
        as_bob = await http.post(
            "/mcp", json=ping, headers={"Authorization": f"Bearer {tokens['bob']}", "Mcp-Session-Id": session}
        )
        as_alice = await http.post(
            "/mcp",
            json=ping,
            headers={"Authorization": f"Bearer {tokens['alice']}", "Mcp-Session-Id": session},
        )
    assert as_bob.status_code == 404
    assert as_alice.status_code == 200


async def test_another_users_sse_session_answers_404(auth_settings: Settings, tokens: dict[str, str]) -> None:
    sessions: list[str] = []
    ping = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
    with anyio.fail_after(20):
        async with running(auth_settings, "sse") as url:
            stream = sse_client(
                f"{url}/sse",
                headers={"Authorization": f"Bearer {tokens['alice']}"},
                on_session_created=sessions.append,
            )
            async with (
                Client(stream, mode="legacy", cache=None) as alice,
                httpx.AsyncClient(base_url=url) as http,
            ):
                await memory(alice, "record", "session", "note", value="alice's")
                as_bob = await http.post(
                    f"/messages/?session_id={sessions[0]}",
                    json=ping,
                    headers={"Authorization": f"Bearer {tokens['bob']}"},
                )
    assert as_bob.status_code == 404


def openai_reply(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-test",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
    )


async def test_route_completion_gives_the_model_only_the_callers_memories(
    auth_settings: Settings, tokens: dict[str, str]
) -> None:
    sent: list[dict[str, Any]] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return openai_reply(request)

    settings = auth_settings.model_copy(
        update={"openai_api_key": SecretStr("sk-test"), "openai_base_url": "https://openai.test/v1"}
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as fake_openai:
        app = build_http_app(settings, verifier=build_token_verifier(settings), http_client=fake_openai)
        with anyio.fail_after(20):
            async with (
                running(settings, app=app) as url,
                connect(url, token=tokens["alice"]) as alice,
                connect(url, token=tokens["bob"]) as bob,
            ):
                await memory(alice, "record", "user", "secret", value="alice-diary-entry")
                await memory(bob, "record", "user", "drink", value="bob-likes-tea")
                call = {"model": "openai/gpt-test", "messages": [{"role": "user", "content": "hi"}]}
                result = await bob.call_tool("route_completion", call)
    assert not result.is_error, result
    assert "bob-likes-tea" in json.dumps(sent[-1])
    assert "alice-diary-entry" not in json.dumps(sent)
