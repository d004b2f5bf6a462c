"""`route_completion` chooses the facts for the turn, says which in `memory_context`, and records
where the facts its models record came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fake_llm import FORMATS, Call, FakeLLM, Turn
from mcp import Client
from mcp_helpers import read_json
from memory_facts import DOG, DOG_QUESTION, old_dog_among, seed, unrelated
from routing_helpers import QUESTION, route, structured

from server.config import Settings
from server.mcp.server import build_server
from server.memory.storage import Owner
from server.runtime import open_memory

MODEL = "anthropic/model-a"


async def seeded(settings: Settings, tmp_path: Path, facts: list[tuple[str, str]]) -> Settings:
    """Settings for a store on disk holding `facts` (oldest first) for alice."""
    on_disk = settings.model_copy(update={"store": f"surrealkv://{tmp_path / 'store'}"})
    async with open_memory(on_disk) as memory:
        await seed(memory.store, Owner(user="alice", session="s1"), facts)
    return on_disk


async def test_an_old_fact_about_the_dog_reaches_the_model_asked_about_the_dog_past_300_newer_ones(
    settings: Settings, fake: FakeLLM, tmp_path: Path
) -> None:
    fake.script(Turn(text="Biscuit."))
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": [{"type": "text", "text": DOG_QUESTION}]},
    ]
    async with Client(build_server(await seeded(settings, tmp_path, old_dog_among(300)))) as client:
        result = structured(await route(client, MODEL, history))
    system = FORMATS["anthropic"].system(fake.requests[0].body)
    assert system is not None and "Biscuit" in system
    context = result["memory_context"]
    assert context["selection"] == "relevance"
    assert DOG[0] in [fact["key"] for fact in context["included"]]
    assert context["preamble_chars"] == len(system)
    assert len(context["included"]) + context["left_out"] == 301


async def test_with_ten_facts_selection_is_all_and_every_fact_is_given(
    settings: Settings, fake: FakeLLM, tmp_path: Path
) -> None:
    fake.script(Turn(text="Biscuit."))
    facts = old_dog_among(9)
    async with Client(build_server(await seeded(settings, tmp_path, facts))) as client:
        result = structured(await route(client, MODEL, [{"role": "user", "content": DOG_QUESTION}]))
    system = FORMATS["anthropic"].system(fake.requests[0].body)
    assert system is not None and all(content in system for _, content in facts)
    context = result["memory_context"]
    assert (context["selection"], context["left_out"]) == ("all", 0)
    assert sorted(fact["key"] for fact in context["included"]) == sorted(key for key, _ in facts)


async def test_memory_context_is_in_every_result_with_memory_on_and_null_with_memory_off(
    settings: Settings, fake: FakeLLM
) -> None:
    fake.script(Turn(text="Hi."), Turn(text="Hi."), Turn(text="Hi."))
    async with Client(build_server(settings)) as client:
        empty = structured(await route(client, MODEL, QUESTION))
        await client.call_tool("memory", {"op": "record", "scope": "user", "key": "name", "value": "Alice"})
        on = structured(await route(client, MODEL, QUESTION))
        off = structured(await route(client, MODEL, QUESTION, memory=False))
    assert empty["memory_context"] == {"selection": "all", "included": [], "left_out": 0, "preamble_chars": 0}
    assert [(f["key"], f["scope"], f["shortened"]) for f in on["memory_context"]["included"]] == [
        ("name", "user", False)
    ]
    assert off["memory_context"] is None


async def test_a_fact_a_model_records_keeps_the_model_and_session_that_asked(
    settings: Settings, fake: FakeLLM
) -> None:
    record = Call("memory", {"op": "record", "scope": "user", "key": "drink", "value": "likes green tea"})
    fake.script(Turn.calling(record), Turn(text="Noted."))
    async with Client(build_server(settings)) as client:
        await route(client, MODEL, [{"role": "user", "content": "I like green tea."}], session_id="talk")
        stored = await read_json(client, "memory://user/drink")
    assert stored["source"] == {"via": "route_completion", "session": "talk", "model": MODEL}


async def test_a_long_history_chooses_by_its_latest_user_message(
    settings: Settings, fake: FakeLLM, tmp_path: Path
) -> None:
    fake.script(Turn(text="Room 3."))
    history = [
        {"role": "user", "content": DOG_QUESTION},
        {"role": "assistant", "content": "Biscuit."},
        {"role": "user", "content": "And which meeting room is booked for the review on floor 3?"},
    ]
    facts = [DOG, *(unrelated(i) for i in range(300))]
    async with Client(build_server(await seeded(settings, tmp_path, facts))) as client:
        result = structured(await route(client, MODEL, history))
    assert DOG[0] not in [fact["key"] for fact in result["memory_context"]["included"]]
