"""A dependent carried around a rebuild keeps its rows when its new form holds rows (issue 17).

A generated column reading a column that is replaced (plain -> generated) is
carried: dropped before the replacement and added after. When the models make
the dependent a plain column at the same time, carrying it would add it back
empty; its own change (DROP EXPRESSION) goes first instead and keeps its values.

No `from __future__ import annotations` here: table models are defined in this module.
"""

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pgmig.ops.column import DropColumn, DropColumnExpression

from .helpers import fetch, migrate, run_sql, steps
from .test_generated_identity_collation import round_trip, virtual_only


def _model(a_generated: bool) -> sa.MetaData:
    """Before: `a` plain, `b` generated from it. After: `a` generated from id, `b` plain."""
    metadata = sa.MetaData()
    a = (
        sa.Column("a", sa.Integer, sa.Computed("id * 10", persisted=True))
        if a_generated
        else sa.Column("a", sa.Integer)
    )
    b = sa.Column("b", sa.Integer) if a_generated else sa.Column("b", sa.Integer, sa.Computed("a + 1", persisted=True))
    sa.Table("t", metadata, sa.Column("id", sa.Integer, primary_key=True), a, b)
    return metadata


def test_generated_column_becoming_plain_keeps_its_values_while_what_it_read_is_replaced(
    pgmig_server: Any, tmp_path: Path, database_url: str
) -> None:
    plan = round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        _model(a_generated=False),
        _model(a_generated=True),
        seed=["INSERT INTO t (id, a) VALUES (1, 1), (2, 5)"],
        # b keeps its values in up (checked below); down recomputes it from a, which keeps up's values.
        rows_query="SELECT id FROM t ORDER BY id",
    )
    ops = steps(plan)
    dropped = [op.column_name for op in ops if isinstance(op, DropColumn)]
    assert dropped == ["a"], dropped  # b is not dropped to be carried
    (expression,) = [op for op in ops if isinstance(op, DropColumnExpression)]
    assert expression.column_name == "b"
    assert ops.index(expression) < next(i for i, op in enumerate(ops) if isinstance(op, DropColumn))


def test_generated_column_becoming_plain_keeps_its_rows_in_up(database_url: str) -> None:
    migrate(database_url, _model(a_generated=False))
    run_sql(database_url, "INSERT INTO t (id, a) VALUES (1, 1), (2, 5)")
    plan = migrate(database_url, _model(a_generated=True))
    assert [op.column_name for op in steps(plan) if "deletes_data" in op.hazards()] == ["a"]
    assert fetch(database_url, "SELECT id, a, b FROM t ORDER BY id") == [
        {"id": 1, "a": 10, "b": 2},
        {"id": 2, "a": 20, "b": 6},
    ]


def _virtual_or_plain(virtual: bool) -> sa.MetaData:
    metadata = sa.MetaData()
    b = sa.Column("b", sa.Integer, sa.Computed("a + 1", persisted=False)) if virtual else sa.Column("b", sa.Integer)
    sa.Table("t", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("a", sa.Integer), b)
    return metadata


def test_virtual_generated_column_becoming_plain_keeps_its_values(
    pgmig_server: Any, tmp_path: Path, database_url: str
) -> None:
    """DROP EXPRESSION takes stored columns only: a virtual one is copied into a plain column that
    takes its place (it was dropped and added back empty, silently)."""
    virtual_only(database_url)
    plan = round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        _virtual_or_plain(virtual=True),
        _virtual_or_plain(virtual=False),
        seed=["INSERT INTO t (id, a) VALUES (1, 1), (2, 5)"],
        rows_query="SELECT id, a FROM t ORDER BY id",
    )
    assert not any("deletes_data" in op.hazards() for op in steps(plan))
    migrate(database_url, _virtual_or_plain(virtual=True))
    migrate(database_url, _virtual_or_plain(virtual=False))
    assert fetch(database_url, "SELECT id, b FROM t ORDER BY id") == [{"id": 1, "b": 2}, {"id": 2, "b": 6}]
