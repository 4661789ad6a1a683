"""pgmig's own kinds pass the conformance suite plugin authors run on theirs."""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from pgmig.testing.conformance import ConformanceSuite, builtin_handlers


class Mood(enum.Enum):
    happy = "happy"
    sad = "sad"


def _models(version: int) -> sa.MetaData:
    """Version 1, 2 and 3 of a small schema touching every built-in kind."""
    md = sa.MetaData()
    author = sa.Table(
        "author",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80 if version == 1 else 120), nullable=False),
        sa.Column("mood", sa.Enum(Mood, name="mood"), nullable=True),
    )
    if version < 3:
        # A domain whose default and check change in place (ALTER DOMAIN), then goes with its column.
        score = pg.DOMAIN("score", sa.Integer, default=str(version), check=f"VALUE < {version * 100}")
        author.append_column(sa.Column("score", score))
    if version < 3:
        sa.Index("ix_author_name", author.c.name, unique=version == 2)
        extra = [sa.Column("views", sa.BigInteger, server_default="0", nullable=False)] if version == 2 else []
        sa.Table(
            "post",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "author_id", sa.Integer, sa.ForeignKey("author.id", ondelete="CASCADE" if version == 2 else None)
            ),
            sa.Column("title", sa.Text, nullable=False),
            sa.CheckConstraint("length(title) > 0" if version == 1 else "length(title) > 1", name="ck_post_title"),
            *extra,
        )
    return md


class TestBuiltinKinds(ConformanceSuite):
    kinds = ("table", "column", "enum", "constraint", "index", "domain")
    handlers = builtin_handlers()

    def initial(self) -> sa.MetaData:
        return _models(1)

    def changed(self) -> sa.MetaData:
        return _models(2)

    def removed(self) -> sa.MetaData:
        return _models(3)
