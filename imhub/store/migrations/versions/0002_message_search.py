"""message search index (SQLite FTS5 / PostgreSQL tsvector)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # rowid = messages.id; terms come from imhub.domain.ngrams.index_terms.
        op.execute("CREATE VIRTUAL TABLE message_fts USING fts5(terms, tokenize='unicode61')")
    else:
        op.execute(
            "CREATE TABLE message_search ("
            " id BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,"
            " tsv tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_message_search_tsv ON message_search USING GIN (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE message_fts")
    else:
        op.execute("DROP TABLE message_search")
