"""How users declare views next to their models.

    from pgmig_views import view, view_index

    view(SQLModel, "active_user", select(User.id, User.email).where(User.active))
    view(metadata, "post_count", "SELECT author_id, count(*) AS n FROM post GROUP BY author_id",
         materialized=True, depends_on=["post"],
         indexes=[view_index("ix_post_count_author", "author_id", unique=True)])

Declarations live on the MetaData (see `pgmig.api.declare`), so wherever
pgmig finds the models it also finds their views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Tuple

from pgmig.api import declare


@dataclass(frozen=True)
class ViewIndex:
    """An index on a materialized view: key columns (or expressions) as in CREATE INDEX."""

    name: str
    keys: Tuple[str, ...]
    unique: bool = False
    method: str = "btree"
    where: Optional[str] = None


@dataclass(frozen=True, eq=False)
class ViewDeclaration:
    """One declared view. `query` is SQL text or a SQLAlchemy select (compiled when read)."""

    name: str
    query: Any
    materialized: bool = False
    schema: Optional[str] = None
    depends_on: Tuple[str, ...] = ()
    indexes: Tuple[ViewIndex, ...] = ()


def view_index(
    name: str, *keys: str, unique: bool = False, method: str = "btree", where: Optional[str] = None
) -> ViewIndex:
    """An index for `view(..., materialized=True, indexes=[...])`; bare names are quoted as columns."""
    if not keys:
        raise ValueError(f"index {name!r} needs at least one key")
    return ViewIndex(name, tuple(keys), unique, method, where)


def view(
    target: Any,
    name: str,
    query: Any,
    *,
    materialized: bool = False,
    schema: Optional[str] = None,
    depends_on: Iterable[str] = (),
    indexes: Sequence[ViewIndex] = (),
) -> ViewDeclaration:
    """Declare a view on `target` (a MetaData, SQLModel, or a declarative base).

    `depends_on` names tables (`"post"` or `"app.post"`) the view reads, for
    SQL text whose tables do not exist yet: once they do, Postgres itself
    reports what the view reads and this list is only a first guess. A
    select needs none: its tables and columns are read from it.
    """
    if indexes and not materialized:
        raise ValueError(f"view {name!r}: only materialized views can have indexes")
    return declare(
        target,
        ViewDeclaration(name, query, materialized, schema, tuple(depends_on), tuple(indexes)),
    )
