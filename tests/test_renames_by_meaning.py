"""Constraints and indexes by meaning (issue 17): one rule for every kind.

A constraint or index whose definition stays and whose name the models give is
renamed in place (ALTER TABLE ... RENAME CONSTRAINT, ALTER INDEX ... RENAME TO),
both ways; one the models leave unnamed is the database's of the same definition,
whatever that is called.
"""

from typing import Any, Callable, List, Optional, Tuple

import pytest
import sqlalchemy as sa

from tests.helpers import create_all, diff, fetch, run_sql, steps
from tests.test_constraint import catalog, round_trip


def _shop(names: Callable[[str], Optional[str]]) -> sa.MetaData:
    """A parent and a child table with every constraint kind and an index, each named by `names(kind)`."""
    metadata = sa.MetaData()
    sa.Table(
        "account",
        metadata,
        sa.Column("id", sa.Integer),
        sa.Column("email", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name=names("pk")),
        sa.UniqueConstraint("email", name=names("unique")),
    )
    sa.Table(
        "purchase",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("price", sa.Numeric, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], name=names("fk")),
        sa.CheckConstraint("price > 0", name=names("check")),
        sa.Index(names("index") or "ix_purchase_price", "price"),
        sa.Index(names("expression_index") or "ix_purchase_price_floor", sa.text("floor(price)"), unique=False),
    )
    return metadata


def _seed(url: str) -> None:
    run_sql(
        url,
        "INSERT INTO account (id, email) VALUES (1, 'a@example.org')",
        "INSERT INTO purchase (id, account_id, price) VALUES (1, 1, 9.5)",
    )


def _rows_kept(url: str) -> None:
    assert fetch(url, "SELECT id, account_id FROM purchase") == [{"id": 1, "account_id": 1}]


KINDS = ["pk", "unique", "fk", "check", "index", "expression_index"]


def _renames(plan: Any) -> List[Tuple[str, str, str]]:
    out = []
    for op in steps(plan):
        old = getattr(op, "constraint_name", None) or getattr(op, "index_name", None)
        out.append((op.name, old, op.new_name if hasattr(op, "new_name") else None))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_a_renamed_constraint_or_index_is_renamed_in_place_both_ways(
    pgmig_server: Any, database_url: str, kind: str
) -> None:
    before = _shop(lambda k: f"{k}_old")
    after = _shop(lambda k: f"{k}_new" if k == kind else f"{k}_old")
    up, down = round_trip(pgmig_server, database_url, before, after, seed=_seed, verify=_rows_kept)
    operation = "rename_index" if kind.endswith("index") else "rename_constraint"
    assert _renames(up) == [(operation, f"{kind}_old", f"{kind}_new")]
    assert _renames(down) == [(operation, f"{kind}_new", f"{kind}_old")]
    _rows_kept(database_url)


def test_every_kind_renamed_at_once(pgmig_server: Any, database_url: str) -> None:
    before, after = _shop(lambda k: f"{k}_old"), _shop(lambda k: f"{k}_new")
    up, down = round_trip(pgmig_server, database_url, before, after, seed=_seed, verify=_rows_kept)
    assert sorted(_renames(up)) == sorted(
        ("rename_index" if k.endswith("index") else "rename_constraint", f"{k}_old", f"{k}_new") for k in KINDS
    )
    assert len(_renames(down)) == len(KINDS)


@pytest.mark.parametrize("kind", ["pk", "unique", "fk", "check"])
def test_an_unnamed_model_constraint_is_the_database_one_of_that_definition(database_url: str, kind: str) -> None:
    """The database names it (create_all of a named model); the models leave it unnamed: no change."""
    create_all(database_url, _shop(lambda k: f"{k}_given"))
    plan = diff(database_url, _shop(lambda k: None if k == kind else f"{k}_given"))
    assert plan.is_empty, [c.to_json() for c in plan.changes]


def test_a_renamed_check_whose_body_changes_too_is_replaced(pgmig_server: Any, database_url: str) -> None:
    def model(name: str, body: str) -> sa.MetaData:
        metadata = sa.MetaData()
        sa.Table("item", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.CheckConstraint(body, name=name))
        return metadata

    up, down = round_trip(pgmig_server, database_url, model("id_positive", "id > 0"), model("id_big", "id > 10"))
    assert sorted(op.name for op in steps(up)) == ["add_check", "drop_constraint"]
    assert sorted(op.name for op in steps(down)) == ["add_check", "drop_constraint"]


def test_a_renamed_index_takes_the_name_another_one_gives_up(pgmig_server: Any, database_url: str) -> None:
    """Index a is renamed to b while the old b (another definition) goes: the drop runs first."""

    def model(first: str, second: Optional[str]) -> sa.MetaData:
        metadata = sa.MetaData()
        table = sa.Table("t", metadata, sa.Column("x", sa.Integer), sa.Column("y", sa.Integer))
        sa.Index(first, table.c.x)
        if second:
            sa.Index(second, table.c.y)
        return metadata

    up, down = round_trip(pgmig_server, database_url, model("ix_a", "ix_b"), model("ix_b", None))
    assert [op.name for op in steps(up)] == ["drop_index", "rename_index"]
    # Back: ix_b (on x) is renamed ix_a, then the new ix_b (on y) takes the name it gave up.
    assert [op.name for op in steps(down)] == ["rename_index", "add_index"]
    assert {row["indexname"] for row in catalog(database_url)["indexes"]} == {"ix_a", "ix_b"}


def test_renames_written_as_a_revision_file(pgmig_server: Any, database_url: str, tmp_path: Any) -> None:
    """The revision file generate writes calls rename_index / rename_constraint; up, down, up again."""
    from tests.test_rebuilds import revision_round_trip

    before, after = _shop(lambda k: f"{k}_old"), _shop(lambda k: f"{k}_new")
    up = revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        before,
        after,
        seed=[
            "INSERT INTO account (id, email) VALUES (1, 'a@example.org')",
            "INSERT INTO purchase (id, account_id, price) VALUES (1, 1, 9.5)",
        ],
        rows_query="SELECT p.id, a.email FROM purchase p JOIN account a ON a.id = p.account_id",
    )
    written = "\n".join(path.read_text() for path in tmp_path.glob("*.py"))
    assert "rename_index(" in written and "rename_constraint(" in written
    assert {op.name for op in steps(up)} == {"rename_index", "rename_constraint"}


def _over_an_enum(version: int) -> sa.MetaData:
    """v1: labels a, b, c; a named check and an index over the enum column. v2: label b removed
    (a type swap), the check unnamed, the index renamed: both are carried around the swap."""
    labels = ("a", "b", "c") if version == 1 else ("a", "c")
    metadata = sa.MetaData()
    table = sa.Table(
        "task",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("stage", sa.Enum(*labels, name="stage"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.CheckConstraint("length(title) > 0", name="title_not_empty" if version == 1 else None),
    )
    sa.Index("ix_task_stage" if version == 1 else "ix_task_stage_renamed", table.c.stage, table.c.title)
    return metadata


def test_renamed_and_unnamed_dependents_of_a_type_swap(pgmig_server: Any, database_url: str) -> None:
    from tests.test_rebuild_order import revision_round_trip

    up, down = revision_round_trip(
        pgmig_server,
        database_url,
        _over_an_enum(1),
        _over_an_enum(2),
        seed=["INSERT INTO task VALUES (1, 'a', 'x'), (2, 'c', 'y')"],
        rows_query="SELECT id, stage::text, title FROM task ORDER BY id",
    )
    assert "swap_type_values" in {op.name for op in steps(up)}
