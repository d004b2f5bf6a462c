"""Relevance of remembered facts to a turn: a small BM25 index over each owner's facts.

Measured before choosing this (surrealdb 2.0 embedded, 2 cores): SurrealDB's own `SEARCH ... BM25`
index made every write 5-8 ms slower (record is ~3.5 ms in all), indexing took 14 ms per fact, and
a query with OR between terms fell back to a table scan (3-5 s at 20k facts). So the index is
ours: kept in memory by the process that holds the store, built from the store on first need and
updated on every write that process makes; a write costs about one tokenization (~30 us).

Tokens: NFKC, case-folded runs of word characters; English stop words dropped and English words
stemmed (Snowball), so "Dogs" finds "dog"; words of other scripts match as exact tokens.
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
import unicodedata
from array import array
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

import snowballstemmer

MAX_QUERY_TERMS = 16
"""Distinct terms a query contributes at most (the first ones): bounds the work per selection."""
MAX_POSTINGS_SCORED = 1000
"""Of the facts holding one term, only the newest this many are scored: a term held by thousands
of facts says little about any one of them, and this keeps a selection's cost flat as facts grow."""

_K1 = 1.2
_B = 0.75
_KEY_WEIGHT = 2
"""A key's tokens count twice: the key names the topic."""

_WORD = re.compile(r"\w+")
_STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "s",
        "t",
        "don",
    ]
)
_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    if not (word.isascii() and word.isalpha()):
        return word  # other scripts, numbers and codes match as they are (and stemming is the cost)
    stem: str = _STEMMER.stemWord(word)
    return stem


def tokens(text: str) -> list[str]:
    """The index terms of `text`, in order, repeats kept."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [_stem(w) for w in _WORD.findall(folded) if w not in _STOP_WORDS]


def query_terms(text: str) -> list[str]:
    """The distinct terms of a query, first ones first, at most MAX_QUERY_TERMS."""
    return list(dict.fromkeys(tokens(text)))[:MAX_QUERY_TERMS]


def document_terms(key: str | None, content: str) -> Counter[str]:
    counts = Counter(tokens(content))
    for term in tokens(key or ""):
        counts[term] += _KEY_WEIGHT
    return counts


@dataclass
class RelevanceIndex:
    """BM25 over the facts of one owner and scope, addressed by their handles.

    Postings are compact arrays of document slots; a removed fact's slot is left empty and its
    postings dropped, so a rewrite of one fact costs what its own terms cost.
    """

    _slots: list[str | None] = field(default_factory=list["str | None"])
    _slot_of: dict[str, int] = field(default_factory=dict[str, int])
    _lengths: array[int] = field(default_factory=lambda: array("I"))
    _terms: dict[int, tuple[str, ...]] = field(default_factory=dict[int, tuple[str, ...]])
    _postings: dict[str, array[int]] = field(default_factory=dict[str, "array[int]"])
    _frequencies: dict[str, array[int]] = field(default_factory=dict[str, "array[int]"])
    _total_length: int = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    def add(self, handle: str, key: str | None, content: str) -> None:
        """Index a fact; a handle indexed before is replaced."""
        self.remove(handle)
        counts = document_terms(key, content)
        slot = len(self._slots)
        self._slots.append(handle)
        self._slot_of[handle] = slot
        length = sum(counts.values())
        self._lengths.append(length)
        self._total_length += length
        self._terms[slot] = tuple(counts)
        for term, n in counts.items():
            self._postings.setdefault(term, array("I")).append(slot)
            self._frequencies.setdefault(term, array("I")).append(n)

    def remove(self, handle: str) -> None:
        slot = self._slot_of.pop(handle, None)
        if slot is None:
            return
        self._slots[slot] = None
        self._total_length -= self._lengths[slot]
        for term in self._terms.pop(slot):
            slots, frequencies = self._postings[term], self._frequencies[term]
            i = bisect.bisect_left(slots, slot)  # slots are ascending; index() compared each one in Python
            del slots[i], frequencies[i]
            if not slots:
                del self._postings[term], self._frequencies[term]

    def search(self, terms: list[str], limit: int) -> list[tuple[str, float]]:
        """The best `limit` handles for the query terms, best first; only facts sharing a term."""
        n = len(self._slot_of)
        if n == 0 or limit <= 0:
            return []
        # BM25: idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average)), constants hoisted.
        base, per_length = _K1 * (1.0 - _B), _K1 * _B / (self._total_length / n or 1.0)
        lengths = self._lengths
        scores: dict[int, float] = {}
        score_of = scores.get
        newest = slice(-MAX_POSTINGS_SCORED, None)  # slots grow with time
        for term in terms:
            slots = self._postings.get(term)
            if slots is None:
                continue
            df = len(slots)
            weight = math.log(1.0 + (n - df + 0.5) / (df + 0.5)) * (_K1 + 1.0)
            for slot, tf in zip(slots[newest], self._frequencies[term][newest], strict=True):
                scores[slot] = score_of(slot, 0.0) + weight * tf / (tf + base + per_length * lengths[slot])
        # Best score first, the newer fact (higher slot) first among equals.
        best = heapq.nlargest(limit, zip(scores.values(), scores.keys(), strict=True))
        return [(handle, score) for score, slot in best if (handle := self._slots[slot]) is not None]
