"""What `MemoryService.preamble` chooses when the facts do not all fit: relevance to the turn,
blended with recency, never another user's facts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from mcp import Client, types
from memory_facts import DOG, DOG_QUESTION, old_dog_among, seed, unrelated

from server.config import Settings
from server.mcp.server import build_server
from server.memory.preamble import Preamble
from server.memory.storage import Owner, Scope
from server.runtime import open_memory

ALICE = Owner(user="alice", session="s1")
BOB = Owner(user="bob", session="s1")


def keys(preamble: Preamble) -> list[str | None]:
    return [fact.key for fact in preamble.context.included]


async def test_an_old_fact_relevant_to_the_query_is_chosen_past_300_newer_ones(settings: Settings) -> None:
    async with open_memory(settings) as memory:
        await seed(memory.store, ALICE, old_dog_among(300))
        preamble = await memory.preamble(ALICE, query=DOG_QUESTION)
        without_query = await memory.preamble(ALICE)
    assert preamble.context.selection == "relevance"
    assert "Biscuit" in preamble.text and DOG[0] in keys(preamble)
    # The newest quarter of the item budget keeps its place, then the rest fills with newer facts.
    assert keys(preamble)[:12] == [f"note-{i}" for i in range(299, 287, -1)]
    assert len(preamble.context.included) + preamble.context.left_out == 301
    assert len(preamble.context.included) > 40 and len(preamble.text) <= memory.budget.max_chars
    assert without_query.context.selection == "newest" and "Biscuit" not in without_query.text


async def test_when_every_fact_fits_all_are_given_newest_first_whatever_the_query(
    settings: Settings,
) -> None:
    async with open_memory(settings) as memory:
        await seed(memory.store, ALICE, old_dog_among(9))
        preamble = await memory.preamble(ALICE, query=DOG_QUESTION)
    assert preamble.context.selection == "all" and preamble.context.left_out == 0
    assert keys(preamble) == [*(f"note-{i}" for i in range(8, -1, -1)), DOG[0]]


async def test_a_5000_character_fact_among_20_short_ones_leaves_the_short_ones_in(
    settings: Settings,
) -> None:
    facts = [*(unrelated(i) for i in range(20)), ("essay", "long words " * 500)]
    async with open_memory(settings) as memory:
        await seed(memory.store, ALICE, facts)
        for query in (None, "the essay", "meeting room"):
            preamble = await memory.preamble(ALICE, query=query)
            assert {f"note-{i}" for i in range(20)} <= set(keys(preamble)), query
            assert "more remembered" not in preamble.text or "essay" not in keys(preamble)
            assert len(preamble.text) <= memory.budget.max_chars


async def test_another_users_facts_never_appear_in_or_change_a_selection(settings: Settings) -> None:
    async with open_memory(settings) as memory:
        await seed(memory.store, ALICE, old_dog_among(300))
        before = await memory.preamble(ALICE, query=DOG_QUESTION)
        # Bob's facts all match the query, and would change term statistics were they shared.
        await seed(memory.store, BOB, [(f"dog-{i}", f"my dog {i} has a name") for i in range(400)])
        await seed(memory.store, BOB, [("pet", "dog is named Rex")], Scope.SESSION)
        after = await memory.preamble(ALICE, query=DOG_QUESTION)
        bobs = await memory.preamble(BOB, query=DOG_QUESTION)
    assert after.context == before.context and after.text == before.text
    assert "Rex" not in after.text and "Biscuit" not in bobs.text
    assert not {f.handle for f in bobs.context.included} & {f.handle for f in after.context.included}


async def test_session_facts_are_chosen_by_relevance_too(settings: Settings) -> None:
    async with open_memory(settings) as memory:
        await seed(memory.store, ALICE, old_dog_among(300), Scope.SESSION)
        await seed(memory.store, ALICE, [unrelated(i) for i in range(5)])
        preamble = await memory.preamble(ALICE, query=DOG_QUESTION)
    assert preamble.context.selection == "relevance"
    assert ("pet", Scope.SESSION) in {(f.key, f.scope) for f in preamble.context.included}


async def test_the_preamble_resource_and_recall_show_the_selection_for_a_query(
    settings: Settings, tmp_path: Path
) -> None:
    on_disk = settings.model_copy(update={"store": f"surrealkv://{tmp_path / 'store'}"})
    async with open_memory(on_disk) as memory:
        await seed(memory.store, ALICE, old_dog_among(300))
    query = quote(DOG_QUESTION)
    async with Client(build_server(on_disk)) as client:
        resource = await client.read_resource(f"memory://preamble?query={query}")
        plain = await client.read_resource("memory://preamble")
        recalled = await client.call_tool("recall", {"query": DOG_QUESTION})
    [content] = resource.contents
    assert isinstance(content, types.TextResourceContents) and content.meta is not None
    manifest = content.meta["memory_context"]
    assert "Biscuit" in content.text and manifest["selection"] == "relevance"
    assert DOG[0] in [fact["key"] for fact in manifest["included"]]
    [plain_content] = plain.contents
    assert plain_content.meta is not None
    assert plain_content.meta["memory_context"]["selection"] == "newest"
    assert recalled.structured_content is not None
    assert recalled.structured_content["memory_context"] == manifest
