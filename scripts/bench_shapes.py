"""The schemas scripts/bench.py measures: one deterministic SQLAlchemy MetaData per shape and size.

    from bench_shapes import SHAPES, build_metadata
    metadata = build_metadata("enum-partial", 1000)

Every builder only needs SQLAlchemy (not pgmig, not Alembic), so the same
MetaData can be handed to pgmig, to Alembic and to `metadata.create_all`,
and a builder called twice with the same arguments builds the same schema.
The shapes besides `mixed` each stress one thing a diff must normalize or
compare, on top of a small common table (a key, a name, a timestamp):

  mixed             bench.py's own schema: ten columns of mixed types, a
                    foreign key, a unique and a check, a plain and a partial index
  enum-partial      a partial index whose predicate compares a native enum column,
                    which Postgres prints back with a cast: `(status <> 'v0'::status_0)`
  identity          `sa.Identity()` primary keys (by default and always, alternating)
  named-checks      three named CHECK constraints a table, their bounds varying per table
  expression-index  indexes on expressions (`lower(name)`, a unique `lower(email)`,
                    `(lower(name), created_at)`)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

DEFAULT_SHAPE = "mixed"


@dataclass(frozen=True)
class Shape:
    """A named schema builder: `build(tables, rng)` adds `tables` tables to a new MetaData."""

    name: str
    summary: str
    build: Callable[[sa.MetaData, int, random.Random], None]


def _enum_pool(metadata: sa.MetaData, tables: int, rng: random.Random, name: str) -> List[postgresql.ENUM]:
    """One native enum per ten tables (at least one), of two to six labels v0, v1, ...; `name` formats its number."""
    return [
        postgresql.ENUM(*[f"v{k}" for k in range(rng.randint(2, 6))], name=name.format(e), metadata=metadata)
        for e in range(max(1, tables // 10))
    ]


def _common_columns() -> List[sa.Column[Any]]:
    """What every table of the focused shapes has besides its shape's feature."""
    return [
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    ]


def _mixed(metadata: sa.MetaData, tables: int, rng: random.Random) -> None:
    """Per table: a serial key, ten columns of mixed types (one a native enum from a pool of
    tables/10 enums), a foreign key to an earlier table, a unique and a check constraint, a plain
    and a partial index."""
    # The same random draws in the same order as when this was bench.py's only schema, so its numbers stay comparable.
    enums = _enum_pool(metadata, tables, rng, "bench_enum_{:04d}")
    on_delete = [None, "CASCADE", "SET NULL", "RESTRICT"]
    for i in range(tables):
        name = f"t{i:05d}"
        precision = rng.randint(8, 18)
        columns: List[sa.Column[Any]] = [
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("qty", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("total", sa.BigInteger),
            sa.Column("body", sa.Text, nullable=False, server_default=""),
            sa.Column("title", sa.String(rng.choice([40, 80, 120, 255]))),
            sa.Column("price", sa.Numeric(precision, rng.randint(0, 4))),
            sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
            sa.Column("doc", postgresql.JSONB),
            sa.Column("token", postgresql.UUID(as_uuid=True), nullable=False),
            sa.Column("kind", enums[i % len(enums)]),
        ]
        if i:
            target = f"t{rng.randrange(i):05d}"
            columns.append(
                sa.Column("parent_id", sa.Integer, sa.ForeignKey(f"{target}.id", ondelete=rng.choice(on_delete)))
            )
        table = sa.Table(
            name,
            metadata,
            *columns,
            sa.UniqueConstraint("token"),
            sa.CheckConstraint("qty >= 0 AND price >= 0", name=f"{name}_positive"),
        )
        sa.Index(f"ix_{name}_title", table.c.title)
        sa.Index(f"ix_{name}_recent", table.c.created_at, postgresql_where=table.c.active)


def _enum_partial(metadata: sa.MetaData, tables: int, rng: random.Random) -> None:
    """Per table: a native enum column `status` (a pool of tables/10 enums status_0, status_1...)
    and an index on created_at WHERE status <> 'v0', which the catalog holds as
    `(status <> 'v0'::status_N)`: the model's predicate only matches after the server renders it."""
    enums = _enum_pool(metadata, tables, rng, "status_{}")
    for i in range(tables):
        table = sa.Table(
            f"e{i:05d}",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            *_common_columns(),
            sa.Column("status", enums[i % len(enums)], nullable=False),
        )
        sa.Index(f"ix_e{i:05d}_open", table.c.created_at, postgresql_where=table.c.status != "v0")


def _identity(metadata: sa.MetaData, tables: int, rng: random.Random) -> None:
    """Per table: an identity primary key, GENERATED BY DEFAULT and ALWAYS on alternate tables,
    bigint or integer at random, and an identity-keyed reference to an earlier table."""
    for i in range(tables):
        key_type = rng.choice([sa.Integer, sa.BigInteger])
        columns: List[sa.Column[Any]] = [
            sa.Column("id", key_type, sa.Identity(always=bool(i % 2)), primary_key=True),
            *_common_columns(),
        ]
        if i:
            columns.append(sa.Column("parent_id", sa.BigInteger, sa.ForeignKey(f"i{rng.randrange(i):05d}.id")))
        sa.Table(f"i{i:05d}", metadata, *columns)


def _named_checks(metadata: sa.MetaData, tables: int, rng: random.Random) -> None:
    """Per table: three named CHECK constraints whose bounds vary from table to table, so most
    checks are distinct texts (not one shape repeated), as in a real schema."""
    for i in range(tables):
        name = f"c{i:05d}"
        low, high = rng.randint(0, 10), rng.randint(100, 100_000)
        sa.Table(
            name,
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            *_common_columns(),
            sa.Column("qty", sa.Integer, nullable=False, server_default=sa.text(str(low))),
            sa.Column("price", sa.Numeric(12, 2)),
            sa.Column("code", sa.String(8)),
            sa.CheckConstraint(f"qty >= {low} AND qty <= {high}", name=f"ck_{name}_qty"),
            sa.CheckConstraint("price IS NULL OR price >= 0", name=f"ck_{name}_price"),
            sa.CheckConstraint(f"char_length(code) BETWEEN 1 AND {rng.randint(3, 8)}", name=f"ck_{name}_code"),
        )


def _expression_index(metadata: sa.MetaData, tables: int, rng: random.Random) -> None:
    """Per table: an index on lower(name), a unique one on lower(email) and a two-part
    (lower(name), created_at): the catalog holds expressions, not column numbers."""
    for i in range(tables):
        name = f"x{i:05d}"
        table = sa.Table(
            name,
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            *_common_columns(),
            sa.Column("email", sa.String(rng.choice([120, 255])), nullable=False),
        )
        sa.Index(f"ix_{name}_lower_name", sa.func.lower(table.c.name))
        sa.Index(f"ux_{name}_lower_email", sa.func.lower(table.c.email), unique=True)
        sa.Index(f"ix_{name}_name_recent", sa.func.lower(table.c.name), table.c.created_at)


SHAPES: Dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape("mixed", "bench.py's own: mixed types, FKs, uniques, checks, plain and partial indexes", _mixed),
        Shape("enum-partial", "partial indexes whose predicate compares an enum column", _enum_partial),
        Shape("identity", "identity primary keys (by default / always) and FKs to them", _identity),
        Shape("named-checks", "three named CHECKs a table, bounds varying per table", _named_checks),
        Shape("expression-index", "indexes on lower(...) expressions, one unique", _expression_index),
    )
}


def build_metadata(shape: str, tables: int, seed: int = 8) -> sa.MetaData:
    """A deterministic MetaData of `tables` tables of `shape` (a key of SHAPES).

    Raises KeyError naming the known shapes for an unknown one.
    """
    try:
        builder = SHAPES[shape]
    except KeyError:
        raise KeyError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}") from None
    metadata = sa.MetaData()
    builder.build(metadata, tables, random.Random(seed))
    return metadata
