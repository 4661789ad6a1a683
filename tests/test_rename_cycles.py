"""Renames by meaning that swap names (issue 17): a cycle is broken through a temporary name.

Two constraints (or indexes) of one definition each that swap names in the
models wait for each other to free the name each takes. One of them is
renamed to a free temporary name first, then the others, then it takes its
final name: no drop, no add, rows kept, both ways.
"""

from pathlib import Path
from typing import Any, List, Sequence

import pytest
import sqlalchemy as sa

from .helpers import fetch, run_sql, steps
from .test_constraint import round_trip
from .test_renames_by_meaning import _renames

COLUMNS = ("a", "b", "c")


def _table(kind: str, names: Sequence[str]) -> sa.MetaData:
    """t(id, a, b, c) with one `kind` (check, unique, index) on each of the first len(names)
    columns, the i-th named names[i]."""
    metadata = sa.MetaData()
    table = sa.Table(
        "t", metadata, sa.Column("id", sa.Integer, primary_key=True), *(sa.Column(c, sa.Integer) for c in COLUMNS)
    )
    for column, name in zip(COLUMNS, names):
        if kind == "check":
            table.append_constraint(sa.CheckConstraint(f"{column} > 0", name=name))
        elif kind == "unique":
            table.append_constraint(sa.UniqueConstraint(column, name=name))
        else:
            sa.Index(name, table.c[column])
    return metadata


def _seed(url: str) -> None:
    run_sql(url, "INSERT INTO t VALUES (1, 1, 2, 3), (2, 4, 5, 6)")


def _rows_kept(url: str) -> None:
    assert fetch(url, "SELECT id, a, b, c FROM t ORDER BY id") == [
        {"id": 1, "a": 1, "b": 2, "c": 3},
        {"id": 2, "a": 4, "b": 5, "c": 6},
    ]


def _only_renames(plan: Any, count: int) -> List[str]:
    """The plan renames only (`count` renames: one more than the objects, for the temporary
    name); the temporary names it goes through."""
    renames = _renames(plan)
    assert len(renames) == count and {r[0] for r in renames} <= {"rename_constraint", "rename_index"}, renames
    olds, news = [r[1] for r in renames], [r[2] for r in renames]
    return [name for name in news if name in olds and "pgmig_tmp" in name]


@pytest.mark.parametrize("kind", ["check", "unique", "index"])
@pytest.mark.parametrize(
    "before, after",
    [
        (("x_1", "x_2"), ("x_2", "x_1")),  # a swap
        (("x_1", "x_2", "x_3"), ("x_2", "x_3", "x_1")),  # a 3-cycle
        (("x_1", "x_2", "x_3"), ("x_2", "x_1", "x_4")),  # a swap next to a plain rename
    ],
    ids=["swap", "three_cycle", "swap_and_rename"],
)
def test_names_swapped_are_renamed_through_a_temporary_name_both_ways(
    pgmig_server: Any, database_url: str, kind: str, before: Sequence[str], after: Sequence[str]
) -> None:
    renamed = sum(1 for old, new in zip(before, after) if old != new)
    up, down = round_trip(
        pgmig_server, database_url, _table(kind, before), _table(kind, after), seed=_seed, verify=_rows_kept
    )
    assert len(_only_renames(up, renamed + 1)) == 1
    assert len(_only_renames(down, renamed + 1)) == 1
    _rows_kept(database_url)


def test_a_key_and_an_index_swapping_relation_names(pgmig_server: Any, database_url: str) -> None:
    """A unique constraint's index and a plain index share pg_class's namespace: the swap cycles there."""

    def model(unique: str, index: str) -> sa.MetaData:
        metadata = sa.MetaData()
        table = sa.Table(
            "t",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            *(sa.Column(c, sa.Integer) for c in COLUMNS),
            sa.UniqueConstraint("a", name=unique),
        )
        sa.Index(index, table.c.b)
        return metadata

    up, down = round_trip(
        pgmig_server, database_url, model("n_1", "n_2"), model("n_2", "n_1"), seed=_seed, verify=_rows_kept
    )
    assert {r[0] for r in _renames(up)} == {"rename_constraint", "rename_index"}
    assert len(_only_renames(up, 3)) == 1 and len(_only_renames(down, 3)) == 1


def test_a_primary_key_swapping_names_with_a_unique_constraint(pgmig_server: Any, database_url: str) -> None:
    def model(key: str, unique: str) -> sa.MetaData:
        metadata = sa.MetaData()
        sa.Table(
            "t",
            metadata,
            sa.Column("id", sa.Integer),
            *(sa.Column(c, sa.Integer) for c in COLUMNS),
            sa.PrimaryKeyConstraint("id", name=key),
            sa.UniqueConstraint("a", name=unique),
        )
        return metadata

    up, down = round_trip(
        pgmig_server, database_url, model("k_1", "k_2"), model("k_2", "k_1"), seed=_seed, verify=_rows_kept
    )
    assert len(_only_renames(up, 3)) == 1 and len(_only_renames(down, 3)) == 1


def test_the_temporary_name_is_free_and_fits_in_63_bytes(pgmig_server: Any, database_url: str) -> None:
    """Long names (63 bytes, multibyte) and a taken `<name>_pgmig_tmp`: the temporary name is cut
    to fit, never inside a character, and steps past a name another object holds."""
    long_1 = ("ü" * 31)[:31] + "1"  # 63 bytes
    long_2 = ("ü" * 31)[:31] + "2"
    taken = long_1.encode()[: 63 - len("_pgmig_tmp")].decode(errors="ignore") + "_pgmig_tmp"

    def model(first: str, second: str) -> sa.MetaData:
        metadata = _table("index", (first, second))
        sa.Index(taken, metadata.tables["t"].c.c)
        return metadata

    up, down = round_trip(pgmig_server, database_url, model(long_1, long_2), model(long_2, long_1), seed=_seed)
    (temporary,) = _only_renames(up, 3)
    assert temporary != taken and len(temporary.encode()) <= 63
    assert len(_only_renames(down, 3)) == 1


def test_swapped_names_in_a_revision_file(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    """generate writes the three renames; up, down, up again from the file."""
    from .test_rebuilds import revision_round_trip

    up = revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        _table("check", ("ck_x", "ck_y", "ck_z")),
        _table("check", ("ck_y", "ck_x", "ck_z")),
        seed=["INSERT INTO t VALUES (1, 1, 2, 3)"],
        rows_query="SELECT id, a, b, c FROM t",
    )
    assert [op.name for op in steps(up)] == ["rename_constraint"] * 3


def test_a_chain_of_renames_takes_no_temporary_name(pgmig_server: Any, database_url: str) -> None:
    """x_2 -> x_3 and x_1 -> x_2: no cycle, the chain is ordered as it is."""
    up, down = round_trip(
        pgmig_server,
        database_url,
        _table("check", ("x_1", "x_2")),
        _table("check", ("x_2", "x_3")),
        seed=_seed,
        verify=_rows_kept,
    )
    assert _only_renames(up, 2) == [] and _only_renames(down, 2) == []
