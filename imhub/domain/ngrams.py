"""Search terms that make Chinese (and Japanese, Korean) text findable, and where a
query matches in a text (the snippet a search hit shows).

Whitespace word splitting finds nothing in "今天天气很好". We index every CJK run as
its overlapping bigrams followed by its single characters, and other text as
lower-cased words; a query becomes phrases over the same terms, its other words
matching as prefixes ("meet" finds "Meeting"). The same terms feed SQLite FTS5
(unicode61) and PostgreSQL (to_tsvector('simple')), so both backends answer alike.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_RUN = re.compile(f"[{_CJK}]+|[^\\W_{_CJK}]+", re.UNICODE)
_IS_CJK = re.compile(f"[{_CJK}]")

MAX_QUERY_CHARS = 100


def _bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]


def index_terms(text: str) -> str:
    """The space-separated terms stored in the search index for ``text``."""
    terms: list[str] = []
    for run in _RUN.findall(text):
        if _IS_CJK.match(run):
            terms.extend(_bigrams(run))
            terms.extend(run)
        else:
            terms.append(run.lower())
    return " ".join(terms)


class Phrase(NamedTuple):
    """Consecutive index terms; with ``prefix`` the last one matches any term it starts."""

    terms: tuple[str, ...]
    prefix: bool = False


def query_phrases(query: str) -> list[Phrase]:
    """Each phrase must match (AND): a CJK run as its bigrams, another word as a prefix."""
    phrases: list[Phrase] = []
    for run in _RUN.findall(query):
        if _IS_CJK.match(run):
            phrases.append(Phrase(tuple(_bigrams(run)) if len(run) > 1 else (run,)))
        else:
            phrases.append(Phrase((run.lower(),), prefix=True))
    return phrases


# --- where a query matches (search hit snippets) -----------------------------------

SNIPPET_CHARS = 80  # the longest snippet, in characters, the ellipses not counted
SNIPPET_LEAD = 16  # characters of context kept before the first match


def match_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where ``query`` matches ``text`` as the index does (a CJK run as a substring,
    another word as the start of a word, any case): sorted, merged (start, end)
    character offsets."""
    spans: list[tuple[int, int]] = []
    words = [m for m in _RUN.finditer(text) if not _IS_CJK.match(m.group())]
    for run in _RUN.findall(query):
        if _IS_CJK.match(run):
            at = text.find(run)
            while at >= 0:
                spans.append((at, at + len(run)))
                at = text.find(run, at + 1)
            continue
        word = run.lower()
        for m in words:
            lower = m.group().lower()
            if lower.startswith(word):
                # lower() can change a word's length (İ → i̇): then mark the whole word.
                end = m.start() + len(word) if len(lower) == len(m.group()) else m.end()
                spans.append((m.start(), end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _utf16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _best_anchor(text: str, spans: list[tuple[int, int]]) -> int:
    """The start of the first match whose window shows the most different matched words."""
    best, best_count = spans[0][0], 0
    for s, _ in spans:
        window = {text[a:b].casefold() for a, b in spans if s <= a and b <= s - SNIPPET_LEAD + SNIPPET_CHARS}
        if len(window) > best_count:
            best, best_count = s, len(window)
    return best


def snippet(text: str, query: str) -> tuple[str, list[tuple[int, int]]]:
    """The part of ``text`` around the first match of ``query`` — the first from which
    the most of its different words are in view — (at most SNIPPET_CHARS,
    "…" where cut, whitespace runs as one space) and where the query matches in it, in
    UTF-16 code units (JavaScript's string indexes)."""
    flat = re.sub(r"\s+", " ", text).strip()
    spans = match_spans(flat, query)
    start = 0
    if spans and len(flat) > SNIPPET_CHARS:
        anchor = _best_anchor(flat, spans)
        start = max(0, anchor - SNIPPET_LEAD)
        space = flat.find(" ", start, anchor)
        if start > 0 and 0 <= space < anchor:
            start = space + 1  # begin at a word
        start = max(0, min(start, len(flat) - SNIPPET_CHARS))
    end = min(len(flat), start + SNIPPET_CHARS)
    head = "…" if start > 0 else ""
    out = head + flat[start:end] + ("…" if end < len(flat) else "")
    marks = [
        (_utf16(head + flat[start:s]), _utf16(head + flat[start:e]))
        for s, e in ((max(s, start), min(e, end)) for s, e in spans)
        if s < e
    ]
    return out, marks


# --- names (friends and groups in search results) -------------------------------------

_MOBILE_SEPARATORS = re.compile(r"[\s\-().]")
MOBILE_QUERY_MIN_DIGITS = 3


def name_matches(name: str, query: str) -> bool:
    """Every word of ``query`` occurs in ``name``, in any case."""
    words = query.casefold().split()
    folded = name.casefold()
    return bool(words) and all(w in folded for w in words)


def mobile_matches(mobile: str, query: str) -> bool:
    """``query`` is digits (separators allowed, at least 3) that occur in ``mobile``."""
    digits = _MOBILE_SEPARATORS.sub("", query).removeprefix("+")
    return len(digits) >= MOBILE_QUERY_MIN_DIGITS and digits.isascii() and digits.isdigit() and digits in mobile
