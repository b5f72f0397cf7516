"""Full-text search over message text: SQLite FTS5 or PostgreSQL tsvector, fed with
the n-gram terms of :mod:`imhub.domain.ngrams` so Chinese is findable on both."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from imhub.domain.model import Draft, Media, Message
from imhub.domain.ngrams import Phrase, index_terms

# Which fields of which media kinds are searchable text.
SEARCHABLE: dict[int, tuple[str, ...]] = {
    Media.TEXT: ("content",),
    Media.NEWS: ("content", "memo"),
    Media.RED_PACKET: ("memo",),
    Media.CONTACT: ("memo",),
    Media.FILE: ("content",),  # the file name
}


def searchable_text(m: Message | Draft) -> str:
    """What the index holds of ``m`` (its searchable fields, space-separated)."""
    return " ".join(getattr(m, f) for f in SEARCHABLE.get(m.media, ()))


class SearchIndex:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sqlite = engine.dialect.name == "sqlite"

    def add(self, conn: Connection, docs: Sequence[tuple[int, str]]) -> None:
        rows = [{"id": i, "terms": index_terms(t)} for i, t in docs if t.strip()]
        rows = [r for r in rows if r["terms"]]
        if not rows:
            return
        if self._sqlite:
            conn.execute(text("INSERT INTO message_fts (rowid, terms) VALUES (:id, :terms)"), rows)
        else:
            conn.execute(
                text("INSERT INTO message_search (id, tsv) VALUES (:id, to_tsvector('simple', :terms))"), rows
            )

    def remove(self, conn: Connection, message_id: int) -> None:
        table = "message_fts WHERE rowid" if self._sqlite else "message_search WHERE id"
        conn.execute(text(f"DELETE FROM {table} = :id"), {"id": message_id})  # noqa: S608 - fixed names

    def search(
        self, conn: Connection, convs: list[str], phrases: Sequence[Phrase], before_id: int, limit: int
    ) -> list[int]:
        """Ids of matching, unrecalled messages in ``convs``, newest first, id < before_id."""
        if not convs or not phrases:
            return []
        params: dict[str, object] = {"convs": convs, "before": before_id, "limit": limit}
        if self._sqlite:
            # Every phrase quoted: user text never reaches FTS5's query syntax. A
            # trailing * makes the phrase's last term a prefix.
            params["q"] = " AND ".join(
                '"' + " ".join(p.terms).replace('"', '""') + '"' + (" *" if p.prefix else "") for p in phrases
            )
            sql = (
                "SELECT m.id FROM message_fts f JOIN messages m ON m.id = f.rowid "
                "WHERE message_fts MATCH :q AND m.conv IN :convs AND m.id < :before AND NOT m.recalled "
                "ORDER BY m.id DESC LIMIT :limit"
            )
        else:
            clauses = []
            for i, p in enumerate(phrases):
                if p.prefix:
                    # 'a' <-> 'b':* — the terms are letters and digits only (ngrams._RUN),
                    # quoted all the same so nothing in them is tsquery syntax.
                    quoted = ["'" + t.replace("'", "''").replace("\\", "\\\\") + "'" for t in p.terms]
                    params[f"p{i}"] = " <-> ".join(quoted) + ":*"
                    clauses.append(f"s.tsv @@ to_tsquery('simple', :p{i})")
                else:
                    params[f"p{i}"] = " ".join(p.terms)
                    clauses.append(f"s.tsv @@ phraseto_tsquery('simple', :p{i})")
            sql = (
                "SELECT m.id FROM message_search s JOIN messages m ON m.id = s.id "  # noqa: S608 - fixed names
                f"WHERE {' AND '.join(clauses)} AND m.conv IN :convs AND m.id < :before AND NOT m.recalled "
                "ORDER BY m.id DESC LIMIT :limit"
            )
        stmt = text(sql).bindparams(bindparam("convs", expanding=True))
        return [int(r[0]) for r in conn.execute(stmt, params)]
