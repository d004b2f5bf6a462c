from hypothesis import given, settings
from hypothesis import strategies as st

from server.memory.relevance import MAX_QUERY_TERMS, RelevanceIndex, query_terms, tokens


def test_tokens_fold_case_stem_english_and_drop_stop_words() -> None:
    assert tokens("My DOGS are Running") == ["dog", "run"]


def test_words_of_other_scripts_match_as_exact_tokens() -> None:
    index = RelevanceIndex()
    index.add("h1", "city", "住在 東京")
    index.add("h2", "drink", "Ich trinke gern Kaffee")
    assert [h for h, _ in index.search(query_terms("東京"), 5)] == ["h1"]
    assert [h for h, _ in index.search(query_terms("KAFFEE"), 5)] == ["h2"]


def test_an_old_fact_sharing_the_query_terms_ranks_above_unrelated_newer_ones() -> None:
    index = RelevanceIndex()
    index.add("dog", "pet", "My dog is named Biscuit")
    for i in range(300):
        index.add(f"n{i}", f"note {i}", f"meeting notes about project {i} and the quarterly plan")
    best = index.search(query_terms("What is my dog's name?"), 3)
    assert best[0][0] == "dog"
    assert all(handle.startswith("n") is False for handle, _ in best[:1])


def test_a_key_counts_more_than_the_same_word_in_a_content() -> None:
    index = RelevanceIndex()
    index.add("in-content", "misc", "coffee is fine")
    index.add("in-key", "coffee", "black, no sugar")
    assert index.search(query_terms("coffee"), 2)[0][0] == "in-key"


def test_rewriting_or_removing_a_fact_updates_what_it_is_found_by() -> None:
    index = RelevanceIndex()
    index.add("h", "k", "likes tea")
    index.add("h", "k", "likes coffee")
    assert index.search(query_terms("tea"), 5) == []
    assert [h for h, _ in index.search(query_terms("coffee"), 5)] == ["h"]
    index.remove("h")
    assert index.search(query_terms("coffee"), 5) == [] and len(index) == 0


def test_a_query_contributes_a_bounded_number_of_terms() -> None:
    assert len(query_terms(" ".join(f"word{i}" for i in range(500)))) == MAX_QUERY_TERMS


@settings(max_examples=60, deadline=None)
@given(
    facts=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=200)), max_size=30),
    query=st.text(max_size=100),
)
def test_search_only_returns_indexed_handles_best_first(facts: list[tuple[str, str]], query: str) -> None:
    index = RelevanceIndex()
    for i, (key, content) in enumerate(facts):
        index.add(f"h{i}", key, content)
    found = index.search(query_terms(query), 10)
    assert len(found) <= 10
    assert {h for h, _ in found} <= {f"h{i}" for i in range(len(facts))}
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
