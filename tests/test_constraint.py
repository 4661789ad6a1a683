"""Constraints against a real server: no false positives after create_all, and round trips."""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional

import pytest
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from pgmig.ops.constraint import AddCheck, AddForeignKey, AddPrimaryKey, AddUnique, DropConstraint
from pgmig.schema.handlers.constraint import Constraint, ConstraintHandler
from tests.helpers import create_all, diff, fetch, migrate, run_sql, snapshot, steps

CONSTRAINTS_QUERY = """
SELECT cl.relname AS table_name, con.conname AS name, con.contype::text AS contype,
       pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint con
JOIN pg_class cl ON cl.oid = con.conrelid
JOIN pg_namespace n ON n.oid = cl.relnamespace
WHERE n.nspname = $1 AND con.contype IN ('p', 'u', 'f', 'c')
ORDER BY 1, 3, 4
"""

_DEFAULT_NAME = re.compile(r"_(pkey|key\d*|fkey\d*|check\d*)$")


def constraint_snapshot(url: str, schema: str = "public") -> List[Dict[str, Any]]:
    """Every constraint as pg_get_constraintdef prints it; names only where the model chose one."""
    rows = fetch(url, CONSTRAINTS_QUERY, schema)
    for row in rows:
        if _DEFAULT_NAME.search(row["name"]):
            row["name"] = None
    return sorted(rows, key=lambda r: (r["table_name"], r["contype"], r["definition"], r["name"] or ""))


def catalog(url: str) -> Dict[str, Any]:
    return {**snapshot(url), "constraints": constraint_snapshot(url)}


def built_from_scratch(pgmig_server: Any, metadata: MetaData) -> Dict[str, Any]:
    url = pgmig_server.create_database()
    try:
        create_all(url, metadata)
        return catalog(url)
    finally:
        pgmig_server.drop_database(url)


def round_trip(
    pgmig_server: Any,
    url: str,
    models_a: MetaData,
    models_b: MetaData,
    seed: Optional[Callable[[str], None]] = None,
    verify: Optional[Callable[[str], None]] = None,
):
    """A from empty, seed, A -> B, then back B -> A; the catalog must match create_all each time."""
    migrate(url, models_a)
    assert diff(url, models_a).is_empty
    assert catalog(url) == built_from_scratch(pgmig_server, models_a)
    if seed:
        seed(url)
    plan = migrate(url, models_b)
    assert diff(url, models_b).is_empty
    assert catalog(url) == built_from_scratch(pgmig_server, models_b)
    if verify:
        verify(url)
    back = migrate(url, models_a)
    assert diff(url, models_a).is_empty
    assert catalog(url) == built_from_scratch(pgmig_server, models_a)
    return plan, back


def constraint_ops(plan) -> List[Any]:
    return [op for op in steps(plan) if op.name in _CONSTRAINT_OPS]


_CONSTRAINT_OPS = {"add_primary_key", "add_unique", "add_foreign_key", "add_check", "drop_constraint"}


# -- models ----------------------------------------------------------------------------

SQLMODEL_METADATA = MetaData()
_registry = registry(metadata=SQLMODEL_METADATA)


class _Base(SQLModel, registry=_registry):
    """SQLModel's way to a MetaData of one's own: a base on the registry, tables deriving from it
    (`table=True` with `registry=` on the table class itself leaves the class without a table)."""


class Team(_Base, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True)


class Hero(_Base, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    team_id: Optional[int] = Field(default=None, foreign_key="team.id", ondelete="CASCADE")


# --------------------------------------------------------------------------


def every_form(metadata: MetaData) -> MetaData:
    """Each constraint form, named and unnamed, column- and table-level."""
    Table(
        "customer",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("email", String(200), unique=True),
        Column("first", Text, nullable=False),
        Column("last", Text, nullable=False),
        Column("age", Integer, CheckConstraint("age >= 0")),
        Column("nick", Text, CheckConstraint("nick <> ''", name="nick_not_empty")),
        UniqueConstraint("first", "last"),
        UniqueConstraint("last", "email", name="uq_last_email"),
        CheckConstraint("length(first) > 0", name="first_not_empty"),
    )
    Table(
        "product",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("price", Numeric(10, 2), nullable=False),
        Column("label", String(50)),
        Column("status", String(10)),
        Column("sku", Text),
        Column("active", Boolean(create_constraint=True)),
        CheckConstraint("price > 0"),
        CheckConstraint("label <> 'O''Brien'"),
        CheckConstraint("status IN ('new', 'old')", name="status_known"),
        CheckConstraint("sku LIKE 'P-%'"),
        CheckConstraint("price < 1000 AND label IS NOT NULL"),
    )
    Table(
        "order_line",
        metadata,
        Column("order_id", Integer),
        Column("line_no", Integer),
        Column("product_id", Integer, ForeignKey("product.id", ondelete="CASCADE", onupdate="SET NULL")),
        Column("customer_email", String(200)),
        PrimaryKeyConstraint("order_id", "line_no", name="pk_order_line"),
        ForeignKeyConstraint(
            ["customer_email"],
            ["customer.email"],
            name="fk_line_customer",
            deferrable=True,
            initially="DEFERRED",
        ),
    )
    Table(
        "shipment",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("order_id", Integer),
        Column("line_no", Integer),
        Column("parent_id", Integer, ForeignKey("shipment.id", ondelete="SET DEFAULT")),
        ForeignKeyConstraint(["order_id", "line_no"], ["order_line.order_id", "order_line.line_no"]),
        ForeignKeyConstraint(
            ["line_no", "order_id"], ["order_line.line_no", "order_line.order_id"], deferrable=True, match="FULL"
        ),
        UniqueConstraint("order_id", "line_no", postgresql_nulls_not_distinct=True),
    )
    return metadata


def test_create_all_of_every_form_diffs_empty(database_url: str) -> None:
    metadata = every_form(MetaData())
    create_all(database_url, metadata)
    plan = diff(database_url, metadata)
    assert plan.is_empty, plan.statements()


def test_naming_convention_names_are_read(database_url: str) -> None:
    metadata = every_form(
        MetaData(
            naming_convention={
                "pk": "pk_%(table_name)s",
                "uq": "uq_%(table_name)s_%(column_0_N_name)s",
                "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            }
        )
    )
    create_all(database_url, metadata)
    assert diff(database_url, metadata).is_empty
    names = {row["name"] for row in fetch(database_url, CONSTRAINTS_QUERY, "public")}
    assert {"pk_customer", "uq_customer_first_last", "fk_order_line_product_id_product"} <= names
    objects = list(ConstraintHandler().from_models(_models(metadata)))
    assert "pk_customer" in {o.name for o in objects}


def _models(metadata: MetaData):
    from pgmig.plan.engine import model_context

    return model_context(metadata.sorted_tables, [metadata])


def test_migrate_every_form_from_empty_matches_create_all(pgmig_server: Any, database_url: str) -> None:
    empty = MetaData()
    plan, back = round_trip(pgmig_server, database_url, empty, every_form(MetaData()))
    names = [op.name for op in steps(plan)]
    # Keys a foreign key relies on come first.
    assert names.index("add_primary_key") < names.index("add_foreign_key")
    assert all(not op.hazards() for op in constraint_ops(plan))
    # Dropping everything needs no explicit constraint drop: the tables take them along.
    assert not [op for op in back.operations if op.name == "drop_constraint"]


def test_check_bodies_are_read_in_postgres_normal_form(database_url: str) -> None:
    metadata = every_form(MetaData())
    create_all(database_url, metadata)
    objects = _with_handler(database_url, lambda handler, db: handler.from_database(db))
    checks = {o.expression for o in objects if o.constraint_type == "check"}
    assert "(price > (0)::numeric)" in checks
    assert any("'O''Brien'" in c for c in checks)
    assert not any(o.constraint_type == "check" and o.table == "product" and "active" in o.expression for o in objects)


# -- changes on tables with rows -----------------------------------------------------


def _shop(with_constraints: bool, on_delete: Optional[str] = None) -> MetaData:
    metadata = MetaData()
    Table("parent", metadata, Column("id", Integer, primary_key=True), Column("name", Text))
    extra: List[Any] = []
    if with_constraints:
        extra = [
            UniqueConstraint("code"),
            ForeignKeyConstraint(["parent_id"], ["parent.id"], ondelete=on_delete),
            CheckConstraint("qty >= 0"),
            CheckConstraint("code <> 'it''s'", name="code_not_its"),
        ]
    Table(
        "child",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer),
        Column("code", Text),
        Column("qty", Integer),
        *extra,
    )
    return metadata


def _seed_shop(url: str) -> None:
    run_sql(
        url,
        "INSERT INTO parent (id, name) VALUES (1, 'one'), (2, 'two')",
        "INSERT INTO child (id, parent_id, code, qty) VALUES (10, 1, 'a', 3), (11, 2, 'b', 0)",
    )


def _rows_survive(url: str) -> None:
    assert fetch(url, "SELECT id, parent_id, code, qty FROM child ORDER BY id") == [
        {"id": 10, "parent_id": 1, "code": "a", "qty": 3},
        {"id": 11, "parent_id": 2, "code": "b", "qty": 0},
    ]
    assert [r["id"] for r in fetch(url, "SELECT id FROM parent ORDER BY id")] == [1, 2]


def test_add_unique_fk_check_to_table_with_rows(pgmig_server: Any, database_url: str) -> None:
    plan, back = round_trip(
        pgmig_server, database_url, _shop(False), _shop(True), seed=_seed_shop, verify=_rows_survive
    )
    ops = constraint_ops(plan)
    assert sorted(op.name for op in ops) == ["add_check", "add_check", "add_foreign_key", "add_unique"]
    assert {op.name: op.hazards() for op in ops} == {
        "add_unique": ("full_scan", "access_exclusive_lock"),
        "add_foreign_key": ("blocks_writes",),
        "add_check": ("access_exclusive_lock",),
    }
    assert sorted(op.name for op in constraint_ops(back)) == ["drop_constraint"] * 4
    assert all(op.hazards() == () for op in constraint_ops(back))
    _rows_survive(database_url)


def test_change_fk_on_delete_action(pgmig_server: Any, database_url: str) -> None:
    plan, back = round_trip(
        pgmig_server,
        database_url,
        _shop(True),
        _shop(True, on_delete="CASCADE"),
        seed=_seed_shop,
        verify=_rows_survive,
    )
    ops = constraint_ops(plan)
    assert [op.name for op in ops] == ["drop_constraint", "add_foreign_key"]
    assert ops[1].on_delete == "CASCADE"
    assert "ON DELETE CASCADE" in ops[1].statements()[0]
    assert [op.name for op in constraint_ops(back)] == ["drop_constraint", "add_foreign_key"]
    # The new action is live: deleting a parent removes its children.
    migrate(database_url, _shop(True, on_delete="CASCADE"))
    run_sql(database_url, "DELETE FROM parent WHERE id = 1")
    assert [r["id"] for r in fetch(database_url, "SELECT id FROM child")] == [11]


def _without_parent() -> MetaData:
    metadata = MetaData()
    Table(
        "child",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer),
        Column("code", Text),
        Column("qty", Integer),
        UniqueConstraint("code"),
        CheckConstraint("qty >= 0"),
        CheckConstraint("code <> 'it''s'", name="code_not_its"),
    )
    return metadata


def test_drop_referenced_table_with_its_fk(pgmig_server: Any, database_url: str) -> None:
    def child_rows_survive(url: str) -> None:
        assert [r["id"] for r in fetch(url, "SELECT id FROM child ORDER BY id")] == [10, 11]
        # The parents are gone: orphaned references would (rightly) stop the FK coming back.
        run_sql(url, "UPDATE child SET parent_id = NULL")

    def seed_only_existing_parents(url: str) -> None:
        _seed_shop(url)

    plan, back = round_trip(
        pgmig_server,
        database_url,
        _shop(True),
        _without_parent(),
        seed=seed_only_existing_parents,
        verify=child_rows_survive,
    )
    names = [op.name for op in plan.operations]
    assert names.index("drop_constraint") < names.index("drop_table")
    assert plan.operations[names.index("drop_constraint")].constraint_name == "child_parent_id_fkey"
    back_names = [op.name for op in steps(back)]
    assert back_names.index("add_primary_key") < back_names.index("add_foreign_key")


def _orders(composite_pk: bool, composite_fk: bool) -> MetaData:
    metadata = MetaData()
    pk = PrimaryKeyConstraint("order_id", "line_no") if composite_pk else PrimaryKeyConstraint("order_id")
    Table(
        "order_line",
        metadata,
        # No serial: this test is about the keys, not the column turning into a sequence.
        Column("order_id", Integer, autoincrement=False),
        # NOT NULL in both states: a column losing NOT NULL while its PK shrinks is ordered
        # before the PK change by plan.py (reported to the lead), which Postgres refuses.
        Column("line_no", Integer, nullable=False),
        Column("note", Text),
        pk,
    )
    Table(
        "shipment",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("order_id", Integer),
        Column("line_no", Integer),
        *(
            [
                ForeignKeyConstraint(
                    ["order_id", "line_no"], ["order_line.order_id", "order_line.line_no"], onupdate="CASCADE"
                )
            ]
            if composite_fk
            else []
        ),
    )
    return metadata


def test_composite_primary_key_and_foreign_key(pgmig_server: Any, database_url: str) -> None:
    def seed(url: str) -> None:
        run_sql(
            url,
            "INSERT INTO order_line (order_id, line_no, note) VALUES (1, 1, 'x'), (2, 1, 'y')",
            "INSERT INTO shipment (id, order_id, line_no) VALUES (5, 1, 1)",
        )

    def verify(url: str) -> None:
        assert fetch(url, "SELECT id, order_id, line_no FROM shipment") == [{"id": 5, "order_id": 1, "line_no": 1}]
        assert len(fetch(url, "SELECT * FROM order_line")) == 2

    plan, back = round_trip(
        pgmig_server, database_url, _orders(False, False), _orders(True, False), seed=seed, verify=verify
    )
    assert [op.name for op in constraint_ops(plan)] == ["drop_constraint", "add_primary_key"]
    assert constraint_ops(plan)[1].columns == ["order_id", "line_no"]
    assert [op.name for op in constraint_ops(back)] == ["drop_constraint", "add_primary_key"]


def test_composite_foreign_key_added_and_dropped(pgmig_server: Any, database_url: str) -> None:
    def seed(url: str) -> None:
        run_sql(
            url,
            "INSERT INTO order_line (order_id, line_no, note) VALUES (1, 1, 'x'), (1, 2, 'y')",
            "INSERT INTO shipment (id, order_id, line_no) VALUES (5, 1, 2)",
        )

    def verify(url: str) -> None:
        assert fetch(url, "SELECT id, order_id, line_no FROM shipment") == [{"id": 5, "order_id": 1, "line_no": 2}]

    plan, back = round_trip(
        pgmig_server, database_url, _orders(True, False), _orders(True, True), seed=seed, verify=verify
    )
    ops = constraint_ops(plan)
    assert [op.name for op in ops] == ["add_foreign_key"]
    assert (ops[0].columns, ops[0].referred_columns, ops[0].on_update) == (
        ["order_id", "line_no"],
        ["order_id", "line_no"],
        "CASCADE",
    )
    assert [op.name for op in constraint_ops(back)] == ["drop_constraint"]


def test_fk_dropped_before_the_key_it_uses_is_replaced(pgmig_server: Any, database_url: str) -> None:
    round_trip(pgmig_server, database_url, _orders(False, False), _orders(True, True))


def _a_and_b(with_b: bool) -> MetaData:
    metadata = MetaData()
    # "alpha" sorts before "zeta" but references it.
    Table("zeta", metadata, Column("id", Integer, primary_key=True), Column("code", Text, unique=True))
    if with_b:
        Table(
            "alpha",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("zeta_id", Integer, ForeignKey("zeta.id")),
            Column("zeta_code", Text, ForeignKey("zeta.code", ondelete="SET NULL")),
        )
    return metadata


def test_tables_from_empty_b_references_a(pgmig_server: Any, database_url: str) -> None:
    plan, back = round_trip(pgmig_server, database_url, MetaData(), _a_and_b(True))
    ops = steps(plan)
    position = {(op.name, op.table_name, tuple(getattr(op, "columns", ()))): i for i, op in enumerate(ops)}
    fk_id = position[("add_foreign_key", "alpha", ("zeta_id",))]
    fk_code = position[("add_foreign_key", "alpha", ("zeta_code",))]
    assert position[("add_primary_key", "zeta", ("id",))] < fk_id
    assert position[("add_unique", "zeta", ("code",))] < fk_code
    # Every table is new: nothing to scan.
    assert all(op.new_table and not op.hazards() for op in constraint_ops(plan))


def test_add_referencing_table_then_drop_it(pgmig_server: Any, database_url: str) -> None:
    round_trip(pgmig_server, database_url, _a_and_b(False), _a_and_b(True))


def test_changed_check_and_renamed_named_check(pgmig_server: Any, database_url: str) -> None:
    def model(expr: str, name: Optional[str]) -> MetaData:
        metadata = MetaData()
        Table(
            "item",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("price", Numeric),
            CheckConstraint(expr, name=name),
        )
        return metadata

    # Anonymous checks are keyed by their body: a new body is a new check, the old one goes.
    plan, _ = round_trip(pgmig_server, database_url, model("price > 0", None), model("price >= 1", None))
    assert sorted(op.name for op in constraint_ops(plan)) == ["add_check", "drop_constraint"]
    # A named check whose body stays is renamed in place, both ways (issue 17: it was dropped and added).
    plan, back = round_trip(
        pgmig_server, database_url, model("price > 0", "positive"), model("price > 0", "positive_price")
    )
    assert [(op.name, op.constraint_name, op.new_name) for op in steps(plan)] == [
        ("rename_constraint", "positive", "positive_price")
    ]
    assert [(op.name, op.constraint_name, op.new_name) for op in steps(back)] == [
        ("rename_constraint", "positive_price", "positive")
    ]
    # Same name, new body: dropped and added again under that name.
    plan, _ = round_trip(pgmig_server, database_url, model("price > 0", "positive"), model("price > 1", "positive"))
    ops = constraint_ops(plan)
    assert [op.name for op in ops] == ["drop_constraint", "add_check"]
    assert ops[1].constraint_name == "positive" and ops[1].expression == "price > 1"


def test_renamed_table_keeps_old_constraint_names_without_changes(database_url: str) -> None:
    old = MetaData()
    Table(
        "old",
        old,
        Column("id", Integer, primary_key=True),
        Column("code", Text, unique=True),
        Column("n", Integer, CheckConstraint("n > 0")),
    )
    create_all(database_url, old)
    run_sql(database_url, 'ALTER TABLE "old" RENAME TO "new"')
    new = MetaData()
    Table(
        "new",
        new,
        Column("id", Integer, primary_key=True),
        Column("code", Text, unique=True),
        Column("n", Integer, CheckConstraint("n > 0")),
    )
    assert diff(database_url, new).is_empty


def test_sqlmodel_models_diff_empty(pgmig_server: Any, database_url: str) -> None:
    assert sorted(SQLMODEL_METADATA.tables) == ["hero", "team"]
    create_all(database_url, SQLMODEL_METADATA)
    assert diff(database_url, SQLMODEL_METADATA).is_empty
    round_trip(pgmig_server, database_url, MetaData(), SQLMODEL_METADATA)


def _with_handler(url: str, call: Callable[[ConstraintHandler, Any], Any]) -> Any:
    """Run `await call(handler, DatabaseContext)` on a connection to `url`."""
    import asyncio

    import asyncpg

    from pgmig.schema.protocol import DatabaseContext

    async def go() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await call(ConstraintHandler(), DatabaseContext(conn))
        finally:
            await conn.close()

    return asyncio.run(go())


def _normalize(url: str, metadata: MetaData) -> List[Constraint]:
    return _with_handler(url, lambda handler, db: handler.normalize(list(handler.from_models(_models(metadata))), db))


def test_a_check_the_server_cannot_render_keeps_the_model_text(database_url: str) -> None:
    from sqlalchemy.types import UserDefinedType

    class Missing(UserDefinedType):
        cache_ok = True

        def get_col_spec(self, **kw: Any) -> str:
            return "no_such_type"

    metadata = MetaData()
    Table(
        "good",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("price", Numeric),
        CheckConstraint("price > 0"),
    )
    Table(
        "odd",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("v", Missing()),
        CheckConstraint("v IS NOT NULL AND id > 0"),
        CheckConstraint("id > 1"),
    )
    normalized = [c for c in _normalize(database_url, metadata) if c.constraint_type == "check"]
    checks = {c.table: c for c in normalized if c.source != "id > 1"}
    assert checks["good"].expression == "(price > (0)::numeric)"
    assert checks["good"].check_columns == ("price",)
    assert checks["odd"].expression == "v IS NOT NULL AND id > 0"
    # A check that does not read the unknown column renders anyway.
    assert [c.expression for c in normalized if c.source == "id > 1"] == ["(id > 1)"]
    assert not checks["good"].table_exists
    # Nothing is left behind by the rendering.
    assert fetch(database_url, "SELECT relname FROM pg_class WHERE relname LIKE 'pgmig_check_%'") == []


def test_deduplicated_checks_render_right_for_each_column_type(database_url: str) -> None:
    """Checks rendered once per shape still come out per column type: the same text on columns
    of different types renders differently. (Which shapes share a scratch table: the _pack test.)"""
    from sqlalchemy import BigInteger

    metadata = MetaData()
    for name, price_type in (("a", Integer), ("b", Numeric(10, 2)), ("c", Integer), ("d", BigInteger), ("e", Numeric)):
        Table(
            name,
            metadata,
            Column("id", Integer, primary_key=True),
            Column("price", price_type),
            Column("Odd", Text),
            CheckConstraint("price >= 0"),
            CheckConstraint('length("Odd") < 9'),
        )
    create_all(database_url, metadata)
    checks = [c for c in _normalize(database_url, metadata) if c.constraint_type == "check"]
    rendered = {(c.table, c.source): (c.expression, c.check_columns) for c in checks}
    assert rendered[("a", "price >= 0")] == ("(price >= 0)", ("price",))
    assert rendered[("c", "price >= 0")] == ("(price >= 0)", ("price",))
    assert rendered[("b", "price >= 0")] == ("(price >= (0)::numeric)", ("price",))
    assert rendered[("e", "price >= 0")] == ("(price >= (0)::numeric)", ("price",))
    assert rendered[("d", "price >= 0")] == ("(price >= 0)", ("price",))
    for table in "abcde":
        assert rendered[(table, 'length("Odd") < 9')] == ('(length("Odd") < 9)', ("Odd",))
    # Each is what the catalog says of the tables create_all made: nothing to change.
    assert not diff(database_url, metadata).changes


def test_checks_pack_into_scratch_tables_by_column_type() -> None:
    from pgmig.schema.expressions import columns_read
    from pgmig.schema.handlers.constraint import _pack

    columns = (("id", "integer"), ("price", "numeric(10,2)"), ("Name", "text"), ("note", "character varying(5)[]"))
    assert columns_read("price >= 0 AND PRICE < 10", columns) == (("price", "numeric"),)
    assert columns_read("cardinality(note) < 3", columns) == (("note", "character varying[]"),)
    assert columns_read("\"Name\" <> 'note'", columns) == (("Name", "text"), ("note", "character varying[]"))
    assert columns_read("name <> ''", columns) == ()  # unquoted, name folds to lower case: not "Name"
    shapes = [
        ("price >= 0", (("price", "numeric"),)),
        ("price >= 1", (("price", "integer"),)),
        ("id > 0", (("id", "integer"),)),
        ("price < 5", (("price", "numeric"), ("id", "integer"))),
        ("price < 6", (("price", "bigint"),)),
    ]
    tables = _pack(shapes)
    assert [t.columns for t in tables] == [
        {"price": "numeric", "id": "integer"},
        {"price": "integer"},
        {"price": "bigint"},
    ]
    assert [len(t.shapes) for t in tables] == [3, 1, 1]


# Checks on columns with type modifiers, and what they read as without them.
TYPMOD_CASES = [
    (
        "character varying(40)",
        "character varying",
        [
            "c = 'x'",
            "length(c) < 5",
            "c IN ('a', 'b')",
            "c LIKE 'a%'",
            "c = ANY (ARRAY['a', 'b'])",
            "coalesce(c, 'd') = 'd'",
            "c = 'abc'::varchar(2)",
        ],
    ),
    (
        "numeric(10,2)",
        "numeric",
        [
            "c >= 0",
            "c > 0.5",
            "c IN (1, 2.5)",
            "c BETWEEN 0 AND 10",
            "round(c) = c",
            "c = ANY ('{1,2}')",
            "coalesce(c, 0) >= 0",
            "c::numeric(4,1) > 0",
        ],
    ),
    ("character(3)", "character", ["c = 'ab'", "length(c) = 3", "c IN ('a', 'b')"]),
    (
        "timestamp(3) without time zone",
        "timestamp without time zone",
        ["c > '2020-01-01'", "c > now() - interval '1 day'", "date_trunc('day', c) = c"],
    ),
    ("time(2) without time zone", "time without time zone", ["c BETWEEN '09:00' AND '17:00'"]),
    ("interval(3)", "interval", ["c > '1 day'"]),
    ("bit(4)", "bit", ["c <> B'0000'", "c = '1010'"]),
    ("character varying(20)[]", "character varying[]", ["'a' = ANY (c)", "c <> '{}'", "c[1] = 'x'"]),
]


def test_check_text_does_not_depend_on_type_modifiers(database_url: str) -> None:
    """What lets checks on `numeric(8,2)` and `numeric(12,4)` columns share one rendering (columns_read)."""
    import asyncio

    import asyncpg

    from pgmig.schema.expressions import columns_read

    async def render(conn: Any, data_type: str, expression: str) -> str:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(
                f"CREATE TEMPORARY TABLE t (c {data_type}); ALTER TABLE t ADD CONSTRAINT k CHECK ({expression})"
            )
            return await conn.fetchval(
                "SELECT pg_get_expr(conbin, conrelid) FROM pg_constraint WHERE conrelid = 'pg_temp.t'::regclass"
            )
        finally:
            await transaction.rollback()

    async def go() -> List[str]:
        conn = await asyncpg.connect(database_url)
        differ = []
        try:
            for modified, plain, expressions in TYPMOD_CASES:
                assert columns_read("c", [("c", modified)]) == (("c", plain),)
                for expression in expressions:
                    a, b = await render(conn, modified, expression), await render(conn, plain, expression)
                    if a != b:
                        differ.append(f"{modified}: {expression}: {a} != {b}")
        finally:
            await conn.close()
        return differ

    assert asyncio.run(go()) == []


def test_unnamed_constraints_are_dropped_by_the_name_postgres_gives_them(database_url: str) -> None:
    """`down` plans drop model-side objects, which have no name when Postgres chose it."""
    from pgmig.schema.handlers.constraint import generated_name

    long = "t" * 30 + "_é" * 8  # 54 bytes: every generated name must be shortened
    metadata = MetaData()
    Table(
        "ref",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("a", Integer),
        Column("b", Integer),
        UniqueConstraint("a", "b"),
    )
    Table(
        long,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("column_with_a_long_name_" * 2, Integer, unique=True),
        Column("a", Integer),
        Column("b", Integer),
        ForeignKeyConstraint(["a", "b"], ["ref.a", "ref.b"]),
        CheckConstraint("a > 0"),
        CheckConstraint("a > b"),
    )
    create_all(database_url, metadata)
    actual = {(r["table_name"], r["name"]) for r in fetch(database_url, CONSTRAINTS_QUERY, "public")}
    predicted = {(c.table, generated_name(c)) for c in _normalize(database_url, metadata)}
    assert predicted == actual


def test_version_table_is_ignored(database_url: str) -> None:
    run_sql(database_url, "CREATE TABLE pgmig_revisions (revision text PRIMARY KEY CHECK (revision <> ''))")
    assert diff(database_url, MetaData()).is_empty


# -- operations -------------------------------------------------------------------


def test_operations_quote_every_identifier() -> None:
    fk = AddForeignKey(
        table_name='we"ird',
        columns=["a b"],
        referred_table="Ref",
        referred_columns=["ID"],
        referred_schema="other",
        constraint_name="fk",
        on_delete="set null",
        deferrable=True,
    )
    assert fk.statements() == [
        'ALTER TABLE "public"."we""ird" ADD CONSTRAINT "fk" FOREIGN KEY ("a b") '
        'REFERENCES "other"."Ref" ("ID") ON DELETE SET NULL DEFERRABLE NOT VALID',
        'ALTER TABLE "public"."we""ird" VALIDATE CONSTRAINT "fk"',
    ]
    assert AddPrimaryKey(table_name="t", columns=["a", "b"], new_table=True).statements() == [
        'ALTER TABLE "public"."t" ADD PRIMARY KEY ("a", "b")'
    ]
    assert AddUnique(table_name="t", columns=["a"], nulls_not_distinct=True).statements() == [
        'ALTER TABLE "public"."t" ADD UNIQUE NULLS NOT DISTINCT ("a")'
    ]
    assert AddCheck(table_name="t", expression="a > 0", constraint_name="c").statements() == [
        'ALTER TABLE "public"."t" ADD CONSTRAINT "c" CHECK (a > 0) NOT VALID',
        'ALTER TABLE "public"."t" VALIDATE CONSTRAINT "c"',
    ]
    assert AddCheck(table_name="t", expression="a > 0", constraint_name="c", new_table=True).statements() == [
        'ALTER TABLE "public"."t" ADD CONSTRAINT "c" CHECK (a > 0)'
    ]
    assert DropConstraint(table_name="t", constraint_name='x"y').statements() == [
        'ALTER TABLE "public"."t" DROP CONSTRAINT "x""y"'
    ]
    with pytest.raises(ValueError):
        AddForeignKey(
            table_name="t", columns=["a"], referred_table="r", referred_columns=["b"], on_delete="CASCADE; DROP TABLE x"
        ).statements()
    assert fk.arguments()["columns"] == ["a b"]


def test_check_text_is_what_the_compiler_writes() -> None:
    """A check written as a string is taken as written only where the compiler would write it so:
    `:name` binds, `\\:` escapes and `%` (doubled by the pyformat paramstyle) go through it."""
    from sqlalchemy import text

    from pgmig.plan.engine import model_context
    from pgmig.schema.handlers.constraint import _ModelReader

    metadata = MetaData()
    table = Table("spelled", metadata, Column("a", Integer), Column("b", String(20)))
    checks = [
        "a > 0",
        "b LIKE 'x%'",
        "b ~ '^a:b$'",
        "a::text <> ''",
        "b <> E'\\\\n'",
        "b <> '\\:x'",
        "a > :floor",
        "b = 'it''s'",
        "a BETWEEN 1 AND 3",
    ]
    constraints = [CheckConstraint(body) for body in checks]
    constraints += [
        CheckConstraint(text("a < 10")),
        CheckConstraint(table.c.a > 5),
        CheckConstraint(table.c.b.like("a%")),
    ]
    for constraint in constraints:
        table.append_constraint(constraint)
    reader = _ModelReader(model_context([table], [metadata]))
    for constraint in constraints:
        compiled = reader.sql.process(constraint.sqltext, include_table=False, literal_binds=True)
        assert reader.check_text(constraint.sqltext) == compiled, constraint.sqltext


def test_keys_ignore_names() -> None:
    a = Constraint(schema="public", table="t", constraint_type="primary_key", columns=("id",), name="t_pkey")
    b = Constraint(schema="public", table="t", constraint_type="primary_key", columns=("id",), name="pk_t")
    assert a.key == b.key and a == b
    generated = Constraint(schema="public", table="t", constraint_type="check", expression="(x > 0)", name="t_x_check")
    anonymous = Constraint(schema="public", table="t", constraint_type="check", expression="(x > 0)")
    assert generated.key == anonymous.key


def _mutual(with_tables: bool) -> MetaData:
    metadata = MetaData()
    if with_tables:
        Table(
            "hen",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("egg_id", Integer, ForeignKey("egg.id", use_alter=True)),
        )
        Table("egg", metadata, Column("id", Integer, primary_key=True), Column("hen_id", Integer, ForeignKey("hen.id")))
    Table("keep", metadata, Column("id", Integer, primary_key=True))
    return metadata


def test_tables_referencing_each_other_are_dropped_together(pgmig_server: Any, database_url: str) -> None:
    """Dropping both would be a cycle if their foreign keys went implicitly with the tables."""
    plan, back = round_trip(pgmig_server, database_url, _mutual(True), _mutual(False))
    statements = [s for op in plan.operations for s in op.statements()]
    drops = [s for s in statements if s.startswith("DROP TABLE")]
    assert len(drops) == 2
    first_drop = statements.index(drops[0])
    fk_drops = [i for i, s in enumerate(statements) if "DROP CONSTRAINT" in s and "fkey" in s]
    assert fk_drops and max(fk_drops) < first_drop
