"""Search terms that make Chinese (and Japanese, Korean) text findable.

Whitespace word splitting finds nothing in "今天天气很好". We index every CJK run as
its overlapping bigrams followed by its single characters, and other text as
lower-cased words; a query becomes phrases over the same terms. The same terms feed
SQLite FTS5 (unicode61) and PostgreSQL (to_tsvector('simple')), so both backends
answer alike.
"""

from __future__ import annotations

import re

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


def query_phrases(query: str) -> list[list[str]]:
    """Each phrase must match (AND); a phrase is consecutive index terms."""
    phrases: list[list[str]] = []
    for run in _RUN.findall(query):
        if _IS_CJK.match(run):
            phrases.append(_bigrams(run) if len(run) > 1 else [run])
        else:
            phrases.append([run.lower()])
    return phrases
