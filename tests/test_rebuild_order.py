"""Revisions whose `up` and `down` come from one diff, as `generate` writes them (issue 16).

Each input goes up, a fresh diff is empty and the schema equals `create_all`
of the target, then `down` gives back exactly the start (constraint and index
names included), then `up` again; rows survive throughout. `migrate` in
tests/helpers.py diffs afresh for each direction, which hides a `down` built
from the wrong state, so these use `diff_both_ways`.

No `from __future__ import annotations`: this module defines SQLModel tables.
"""

import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest
import sqlalchemy as sa
from sqlalchemy import (
    CheckConstraint,
    Column,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from pgmig.plan.diff import CREATE, DESTROY, Change, Plan, order_changes
from pgmig.schema.handlers.constraint import Constraint
from pgmig.schema.objects import SchemaObject
from tests.helpers import apply, both_ways, create_all, diff, fetch, run_sql, snapshot, steps

NAMED_QUERY = """
SELECT c.relname AS table_name, k.conname AS name, k.contype::text AS type,
       pg_get_constraintdef(k.oid) AS definition
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' ORDER BY 1, 2
"""
INDEX_QUERY = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"


def exact(url: str) -> Dict[str, Any]:
    """The catalog with every constraint's and index's name: what `down` must give back."""
    return {**snapshot(url), "named": fetch(url, NAMED_QUERY), "all_indexes": fetch(url, INDEX_QUERY)}


def from_scratch(server: Any, metadata: MetaData) -> Dict[str, Any]:
    url = server.create_database()
    try:
        create_all(url, metadata)
        return snapshot(url)
    finally:
        server.drop_database(url)


def revision_round_trip(
    server: Any,
    url: str,
    models_a: MetaData,
    models_b: MetaData,
    seed: Sequence[str] = (),
    rows_query: Optional[str] = None,
    start: Optional[Callable[[str, MetaData], None]] = None,
) -> Tuple[Plan, Plan]:
    """A (create_all, or `start`) -> seed -> up -> B -> down -> exactly A -> up again; returns (up, down)."""
    (start or create_all)(url, models_a)
    assert diff(url, models_a).is_empty, "A did not build cleanly"
    if seed:
        run_sql(url, *seed)
    rows = fetch(url, rows_query) if rows_query else None
    at_a = exact(url)

    up, down = both_ways(url, models_b)
    assert not up.is_empty and not down.is_empty
    # What generate refuses on: every dependent here is modeled and carried by the plan.
    assert not up.unmodeled, [d.to_json() for d in up.unmodeled]
    apply(url, up)
    leftover = diff(url, models_b)
    assert leftover.is_empty, [c.to_json() for c in leftover.changes]
    assert snapshot(url) == from_scratch(server, models_b)
    if rows_query:
        assert fetch(url, rows_query) == rows

    apply(url, down)
    leftover = diff(url, models_a)
    assert leftover.is_empty, [c.to_json() for c in leftover.changes]
    assert exact(url) == at_a
    if rows_query:
        assert fetch(url, rows_query) == rows

    apply(url, up)
    assert diff(url, models_b).is_empty
    return up, down


def pgmig_start(url: str, metadata: MetaData) -> None:
    """Build A with pgmig itself (its names, its order) rather than create_all."""
    up, _ = both_ways(url, metadata)
    apply(url, up)


def _sqlmodel(*classes: Callable[[Any], None]) -> MetaData:
    """A fresh MetaData whose SQLModel tables are declared by `classes` in order."""
    metadata = MetaData()

    class Base(SQLModel, registry=registry(metadata=metadata)):
        pass

    for declare in classes:
        declare(Base)
    return metadata


# -- 1. a foreign key waits for the unique index it needs ------------------------------


def _child(Base: Any) -> None:
    class Child(Base, table=True):  # type: ignore[misc]
        __tablename__ = "child"
        id: Optional[int] = Field(default=None, primary_key=True)
        parent_id: Optional[uuid.UUID] = Field(default=None, foreign_key="parent.id")


def _parent(Base: Any) -> None:
    class Parent(Base, table=True):  # type: ignore[misc]
        __tablename__ = "parent"
        surrogate_id: Optional[int] = Field(default=None, primary_key=True)
        id: uuid.UUID = Field(default_factory=uuid.uuid4, unique=True, index=True)


def _keep(Base: Any) -> None:
    class Keep(Base, table=True):  # type: ignore[misc]
        __tablename__ = "keep"
        id: Optional[int] = Field(default=None, primary_key=True)


@pytest.mark.parametrize("start", [create_all, pgmig_start], ids=["create_all", "pgmig"])
def test_fk_waits_for_the_unique_index_it_references(pgmig_server: Any, database_url: str, start: Any) -> None:
    """Child declared before parent; parent's key is a unique *index* (SQLModel's unique+index)."""
    up, down = revision_round_trip(
        pgmig_server, database_url, _sqlmodel(_keep), _sqlmodel(_child, _parent, _keep), start=start
    )
    names = [op.name for op in steps(up)]
    assert names.index("add_index") < names.index("add_foreign_key")


def _referenced_by_unique_index(unique_index: bool) -> MetaData:
    metadata = MetaData()
    parent = Table("parent", metadata, Column("surrogate", Integer, primary_key=True), Column("code", Text))
    if unique_index:
        Index("parent_code_uix", parent.c.code, unique=True)
    else:
        UniqueConstraint(parent.c.code, name="parent_code_uq")
    # Declared after parent but named to sort first, and a second table using the same key.
    Table("a_child", metadata, Column("id", Integer, primary_key=True), Column("code", Text, ForeignKey("parent.code")))
    return metadata


def test_fk_added_to_existing_tables_with_a_unique_index(pgmig_server: Any, database_url: str) -> None:
    """The database side knows the index from pg_constraint.conindid: down drops the FK before it."""
    a = MetaData()
    Table("parent", a, Column("surrogate", Integer, primary_key=True), Column("code", Text))
    revision_round_trip(
        pgmig_server,
        database_url,
        a,
        _referenced_by_unique_index(True),
        seed=["INSERT INTO parent VALUES (1, 'x'), (2, 'y')"],
        rows_query="SELECT * FROM parent ORDER BY 1",
    )


def _parent_key(kind: str) -> MetaData:
    metadata = MetaData()
    parent = Table("parent", metadata, Column("surrogate", Integer, primary_key=True), Column("code", Text))
    if kind == "index":
        Index("parent_code_uix", parent.c.code, unique=True)
    else:
        UniqueConstraint(parent.c.code, name="parent_code_uq")
    Table("a_child", metadata, Column("id", Integer, primary_key=True), Column("code", Text, ForeignKey("parent.code")))
    return metadata


@pytest.mark.parametrize("before, after", [("index", "constraint"), ("constraint", "index")])
def test_unchanged_fk_whose_referenced_key_is_replaced(
    pgmig_server: Any, database_url: str, before: str, after: str
) -> None:
    """The key a foreign key uses is dropped for another: the FK goes first and comes back over the new one."""
    revision_round_trip(pgmig_server, database_url, _parent_key(before), _parent_key(after))


def test_fk_dependency_on_an_index_read_from_the_database(database_url: str) -> None:
    create_all(database_url, _referenced_by_unique_index(True))
    up, down = both_ways(database_url, MetaData())
    del up
    fk = next(c for c in down.changes if c.kind == "constraint" and c.obj.constraint_type == "foreign_key")  # type: ignore[attr-defined]
    assert ("index", "public", "parent_code_uix") in fk.obj.dependencies
    model_up, _ = both_ways(database_url, _referenced_by_unique_index(True))
    assert model_up.is_empty


# -- 2. a name is freed before it is taken again ---------------------------------------


def _account(columns: Tuple[str, ...]) -> MetaData:
    metadata = MetaData()
    Table(
        "account",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("tenant_id", Integer),
        Column("email", Text),
        UniqueConstraint(*columns, name="uq_account_email"),
    )
    return metadata


def test_named_unique_constraint_whose_columns_change(pgmig_server: Any, database_url: str) -> None:
    revision_round_trip(
        pgmig_server,
        database_url,
        _account(("email",)),
        _account(("tenant_id", "email")),
        seed=["INSERT INTO account VALUES (1, 1, 'a@x'), (2, 2, 'b@x')"],
        rows_query="SELECT * FROM account ORDER BY id",
    )


@pytest.mark.parametrize("name", ["runs_status_check", "runs_status_ck", "runs_status_check1"])
def test_named_check_whose_list_changes(pgmig_server: Any, database_url: str, name: str) -> None:
    def runs(labels: Sequence[str]) -> MetaData:
        metadata = MetaData()
        listed = ", ".join(f"'{label}'" for label in labels)
        Table(
            "runs",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("status", Text),
            CheckConstraint(f"status IN ({listed})", name=name),
        )
        return metadata

    revision_round_trip(
        pgmig_server,
        database_url,
        runs(["new", "done"]),
        runs(["new", "running", "done"]),
        seed=["INSERT INTO runs VALUES (1, 'new'), (2, 'done')"],
        rows_query="SELECT * FROM runs ORDER BY id",
    )


def _name_moves(to_index: bool) -> MetaData:
    """One name held by a unique constraint, then by a unique index on other columns (pg_class is shared)."""
    metadata = MetaData()
    table = Table("item", metadata, Column("id", Integer, primary_key=True), Column("a", Text), Column("b", Text))
    if to_index:
        Index("item_key", table.c.b, unique=True)
    else:
        UniqueConstraint(table.c.a, name="item_key")
    return metadata


def test_a_name_moves_between_a_constraint_and_an_index(pgmig_server: Any, database_url: str) -> None:
    revision_round_trip(pgmig_server, database_url, _name_moves(False), _name_moves(True))


def test_a_named_primary_key_moves_to_other_columns(pgmig_server: Any, database_url: str) -> None:
    def model(column: str) -> MetaData:
        metadata = MetaData()
        Table(
            "thing",
            metadata,
            Column("a", Integer, nullable=False),
            Column("b", Integer, nullable=False),
            sa.PrimaryKeyConstraint(column, name="thing_pk"),
            Index("thing_pk_a", "a"),
        )
        return metadata

    revision_round_trip(
        pgmig_server,
        database_url,
        model("a"),
        model("b"),
        seed=["INSERT INTO thing VALUES (1, 2), (2, 1)"],
        rows_query="SELECT * FROM thing ORDER BY a",
    )


def test_an_index_renamed_to_the_name_of_another_dropped_index(pgmig_server: Any, database_url: str) -> None:
    def model(on: str) -> MetaData:
        metadata = MetaData()
        table = Table("doc", metadata, Column("id", Integer, primary_key=True), Column("x", Text), Column("y", Text))
        Index("doc_lookup", table.c[on])
        return metadata

    revision_round_trip(pgmig_server, database_url, model("x"), model("y"))


# -- 3. what pgmig re-creates, it names explicitly --------------------------------------


def _author(Base: Any) -> None:
    class Author(Base, table=True):  # type: ignore[misc]
        __tablename__ = "author"
        id: Optional[int] = Field(default=None, primary_key=True)


def _book(ondelete: Optional[str]) -> Callable[[Any], None]:
    def declare(Base: Any) -> None:
        class Book(Base, table=True):  # type: ignore[misc]
            __tablename__ = "book"
            id: Optional[int] = Field(default=None, primary_key=True)
            author_id: Optional[int] = Field(default=None, foreign_key="author.id", ondelete=ondelete)  # type: ignore[arg-type]

    return declare


@pytest.mark.parametrize("before, after", [(None, "CASCADE"), ("CASCADE", "SET NULL")])
def test_fk_action_changes_keep_the_constraint_name(
    pgmig_server: Any, database_url: str, before: Optional[str], after: Optional[str]
) -> None:
    up, down = revision_round_trip(
        pgmig_server,
        database_url,
        _sqlmodel(_author, _book(before)),
        _sqlmodel(_author, _book(after)),
        seed=["INSERT INTO author VALUES (1)", "INSERT INTO book VALUES (1, 1)"],
        rows_query="SELECT * FROM book",
    )
    for plan in (up, down):
        names = {op.constraint_name for op in plan.operations if hasattr(op, "constraint_name")}
        assert names == {"book_author_id_fkey"}


def test_unnamed_check_replaced_keeps_names_both_ways(pgmig_server: Any, database_url: str) -> None:
    def model(bound: int) -> MetaData:
        metadata = MetaData()
        Table(
            "item",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("qty", Integer, CheckConstraint(f"qty >= {bound}")),
        )
        return metadata

    revision_round_trip(
        pgmig_server,
        database_url,
        model(0),
        model(-1),
        seed=["INSERT INTO item VALUES (1, 3)"],
        rows_query="SELECT * FROM item",
    )


# -- 4. expressions that round-trip -----------------------------------------------------


def _ticket(labels: Sequence[str], *, check: bool = True, partial_index: bool = False) -> MetaData:
    metadata = MetaData()
    listed = ", ".join(f"'{label}'" for label in labels)
    table = Table(
        "ticket",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("kind", sa.String(20)),
        *([CheckConstraint(f"kind IN ({listed})", name="ticket_kind")] if check else []),
    )
    if partial_index:
        Index("ticket_open_kind", table.c.id, postgresql_where=text(f"kind IN ({listed})"))
    return metadata


def test_named_check_list_grows_and_down_restores_it(pgmig_server: Any, database_url: str) -> None:
    up, down = revision_round_trip(
        pgmig_server,
        database_url,
        _ticket(["bug", "task"]),
        _ticket(["bug", "task", "epic"]),
        seed=["INSERT INTO ticket VALUES (1, 'bug'), (2, 'task')"],
        rows_query="SELECT * FROM ticket ORDER BY id",
    )
    (added,) = [op for op in up.operations if op.name == "add_check"]
    assert added.expression == "kind IN ('bug', 'task', 'epic')"  # type: ignore[attr-defined]  # the model's text


def test_unnamed_check_list_grows_and_down_restores_it(pgmig_server: Any, database_url: str) -> None:
    def model(labels: Sequence[str]) -> MetaData:
        metadata = MetaData()
        listed = ", ".join(f"'{label}'" for label in labels)
        Table(
            "ticket",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("kind", sa.String(20), CheckConstraint(f"kind IN ({listed})")),
        )
        return metadata

    revision_round_trip(pgmig_server, database_url, model(["bug", "task"]), model(["bug", "task", "epic"]))


def test_partial_index_added_to_existing_table_settles(pgmig_server: Any, database_url: str) -> None:
    revision_round_trip(
        pgmig_server,
        database_url,
        _ticket(["bug", "task"], check=False),
        _ticket(["bug", "task"], check=False, partial_index=True),
        seed=["INSERT INTO ticket VALUES (1, 'bug')"],
        rows_query="SELECT * FROM ticket",
    )


def test_partial_index_predicate_changes_and_down_restores_it(pgmig_server: Any, database_url: str) -> None:
    revision_round_trip(
        pgmig_server,
        database_url,
        _ticket(["bug", "task"], check=False, partial_index=True),
        _ticket(["bug", "task", "epic"], check=False, partial_index=True),
    )


@pytest.mark.parametrize("named", [True, False])
def test_check_reprinted_after_a_type_change_is_the_same_check(database_url: str, named: bool) -> None:
    """Postgres re-parses a check when its column's type changes; the re-print means the same."""

    def model(length: int) -> MetaData:
        metadata = MetaData()
        check = CheckConstraint("g IN ('A', 'B')", name="grade_g" if named else None)
        Table("grade", metadata, Column("id", Integer, primary_key=True), Column("g", sa.String(length), check))
        return metadata

    create_all(database_url, model(1))
    run_sql(database_url, "ALTER TABLE grade ALTER COLUMN g TYPE varchar(5)")
    printed = fetch(
        database_url,
        "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = 'grade'::regclass AND contype = 'c'",
    )
    assert "ARRAY[('A'::character varying)::text" in printed[0]["d"]
    assert diff(database_url, model(5)).is_empty


def test_index_predicate_reprinted_after_a_type_change_is_the_same(database_url: str) -> None:
    def model(length: int) -> MetaData:
        metadata = MetaData()
        table = Table("grade", metadata, Column("id", Integer, primary_key=True), Column("g", sa.String(length)))
        Index("grade_ab", table.c.id, postgresql_where=text("g IN ('A', 'B')"))
        return metadata

    create_all(database_url, model(1))
    run_sql(database_url, "ALTER TABLE grade ALTER COLUMN g TYPE varchar(5)")
    assert diff(database_url, model(5)).is_empty


# -- 5. cycles among foreign keys --------------------------------------------------------


def _ring(size: int, *, present: bool = True, by_code: bool = False, drop_last: bool = False) -> MetaData:
    """Tables t0 -> t1 -> ... -> t0 by foreign keys (to the id, or to a code under a unique
    index; create_all adds those last), each referencing itself too, with an index and an enum column; `drop_last`: the
    last table gone and its predecessor pointing at t0 instead."""
    metadata = MetaData()
    mood = sa.Enum("calm", "busy", name="mood")
    count = size - 1 if drop_last else size
    if present:
        for i in range(count):
            target = f"t{(i + 1) % count}"
            table = Table(
                f"t{i}",
                metadata,
                Column("id", Integer, primary_key=True),
                Column("code", Integer, nullable=False),
                Column(
                    "next_id", Integer, ForeignKey(f"{target}.code" if by_code else f"{target}.id", use_alter=by_code)
                ),
                Column("mood", mood),
                Column("label", Text),
                Column("parent_id", Integer, ForeignKey(f"t{i}.id")),
            )
            Index(f"t{i}_label_ix", table.c.label)
            Index(f"t{i}_code_uix", table.c.code, unique=True)
    other = Table(
        "other", metadata, Column("id", Integer, primary_key=True), Column("mood", mood), Column("n", Integer)
    )
    Index("other_n_ix", other.c.n)
    return metadata


def _fresh(url: str) -> None:
    run_sql(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")


# SQLAlchemy warns that it cannot sort tables in a ring; pgmig orders by its own graph.
@pytest.mark.filterwarnings("ignore:Cannot correctly sort tables")
@pytest.mark.parametrize("by_code", [False, True], ids=["to_pk", "to_unique_index"])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_foreign_key_cycles_create_and_drop(pgmig_server: Any, database_url: str, size: int, by_code: bool) -> None:
    revision_round_trip(pgmig_server, database_url, _ring(size, present=False), _ring(size, by_code=by_code))
    _fresh(database_url)
    revision_round_trip(pgmig_server, database_url, MetaData(), _ring(size, by_code=by_code))
    if size > 1:
        _fresh(database_url)
        ring, smaller = _ring(size, by_code=by_code), _ring(size, by_code=by_code, drop_last=True)
        revision_round_trip(pgmig_server, database_url, ring, smaller, start=pgmig_start)


@pytest.mark.filterwarnings("ignore:Cannot correctly sort tables")
def test_foreign_key_cycle_with_mixed_changes(pgmig_server: Any, database_url: str) -> None:
    def model(step: int) -> MetaData:
        metadata = MetaData()
        # Enum labels stay: removing one in `down` while dropping a table that uses it is the
        # enum swap's matter (issue 16 kind 2), not ordering's.
        mood = sa.Enum("calm", "busy", name="mood")
        size = sa.Enum("s", "m", name="size")
        Table(
            "a",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("b_id", Integer, ForeignKey("b.id", ondelete="CASCADE" if step else None)),
            Column("mood", mood),
        )
        Table(
            "b",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("a_id", Integer, ForeignKey("a.id")),
            Column("x", Text),
        )
        if step:
            Table(
                "c",
                metadata,
                Column("id", Integer, primary_key=True),
                Column("a_id", Integer, ForeignKey("a.id")),
                Column("mood", mood),
                Column("size", size),
            )
            Index("b_x_ix", metadata.tables["b"].c.x)
        else:
            Table(
                "d",
                metadata,
                Column("id", Integer, primary_key=True),
                Column("b_id", Integer, ForeignKey("b.id")),
                Column("a_id", Integer, ForeignKey("a.id")),
            )
        return metadata

    revision_round_trip(pgmig_server, database_url, model(0), model(1))


def _fk(table: str, target: str, column: str = "x") -> Constraint:
    return Constraint(
        schema="public",
        table=table,
        constraint_type="foreign_key",
        columns=(column,),
        referred_schema="public",
        referred_table=target,
        referred_columns=("id",),
        name=f"{table}_{column}_fkey",
        referred_key=("constraint", "public", target, "primary_key"),
    )


def test_order_changes_never_reports_a_cycle_of_foreign_keys() -> None:
    """Pure ordering: dropped tables whose foreign keys form a ring, one FK re-created (migrated)."""
    from pgmig.schema.handlers.table import Table as TableObject

    objects: List[SchemaObject] = []
    for name, target in (("a", "b"), ("b", "c"), ("c", "a")):
        objects.append(TableObject(schema="public", name=name))
        objects.append(
            Constraint(schema="public", table=name, constraint_type="primary_key", columns=("id",), name=f"{name}_pkey")
        )
        objects.append(_fk(name, target))
    changes = [Change(DESTROY, obj, None) for obj in objects]
    ordered = order_changes(changes)
    assert len(ordered) == len(changes)
    changes = [Change(CREATE, None, obj) for obj in objects]
    assert len(order_changes(changes)) == len(changes)


def test_in_list_spellings() -> None:
    """The two prints of one IN list compare equal, and the re-created text keeps the first."""
    from pgmig.schema.expressions import canonical, reparsable

    first = "((k)::text = ANY ((ARRAY['bug'::character varying, 'it''s, x'::character varying])::text[]))"
    second = "((k)::text = ANY (ARRAY[('bug'::character varying)::text, ('it''s, x'::character varying)::text]))"
    assert canonical(second) == canonical(first) == first
    assert reparsable(first) == (
        "((k)::text = ANY (((ARRAY['bug'::character varying, 'it''s, x'::character varying])"
        "::character varying[])::text[]))"
    )
    # Nothing to do: one type throughout, mixed element types, no literal elements.
    for same in (
        "(x = ANY (ARRAY['a'::text, 'b'::text]))",
        "(n = ANY (ARRAY[1, 2]))",
        "(x = ANY (ARRAY[('a'::character varying)::text, ('b'::bpchar)::text]))",
        "(x = ANY (ARRAY[(y)::text, ('b'::bpchar)::text]))",
    ):
        assert canonical(same) == same and reparsable(same) == same


def _ring_over_an_enum(present: bool) -> MetaData:
    """Two tables referencing each other, each with a column of one enum (and an index on it)."""
    metadata = MetaData()
    if not present:
        return metadata
    kind = Enum("x", "y", name="ring_kind")
    Table(
        "ring_a",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("kind", kind),
        Column("b_id", Integer, ForeignKey("ring_b.id", use_alter=True)),
    )
    ring_b = Table(
        "ring_b",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("kind", kind),
        Column("a_id", Integer, ForeignKey("ring_a.id")),
    )
    Index("ix_ring_b_kind", ring_b.c.kind)
    return metadata


def test_a_ring_of_tables_dropped_with_the_enum_their_columns_use(pgmig_server: Any, database_url: str) -> None:
    """Columns of an enum go with their table: only the foreign keys between dropped tables are dropped first
    (a dependency on a type made the enum column explicit, and the index on it closed a cycle)."""
    up, down = revision_round_trip(pgmig_server, database_url, _ring_over_an_enum(True), _ring_over_an_enum(False))
    explicit = [(c.action, c.kind) for c in up.changes if not c.implicit]
    assert ("destroy", "column") not in explicit


def _renamed_keys(version: int) -> MetaData:
    """v1: keys named *_old; v2: the same keys named *_new, and another table takes the old names."""
    suffix = "old" if version == 1 else "new"
    metadata = MetaData()
    Table(
        "tenant",
        metadata,
        Column("id", Integer),
        Column("email", Text),
        sa.PrimaryKeyConstraint("id", name=f"pk_tenant_{suffix}"),
        UniqueConstraint("email", name=f"uq_email_{suffix}"),
    )
    Table(
        "member",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("tenant_id", Integer),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=f"fk_member_tenant_{suffix}"),
        CheckConstraint("id > 0", name=f"ck_member_id_{suffix}"),
    )
    if version == 2:
        Table(
            "other",
            metadata,
            Column("id", Integer),
            Column("x", Integer),
            Column("tenant_id", Integer),
            sa.PrimaryKeyConstraint("id", name="pk_tenant_old"),
            UniqueConstraint("x", name="uq_email_old"),
            sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name="fk_member_tenant_old"),
        )
    return metadata


def test_keys_renamed_and_their_old_names_taken_again(pgmig_server: Any, database_url: str) -> None:
    """A primary key, unique constraint, foreign key and check renamed in the models are renamed in
    place (rows and indexes stay); another table may then take the old names, in the same revision."""
    up, down = revision_round_trip(
        pgmig_server,
        database_url,
        _renamed_keys(1),
        _renamed_keys(2),
        seed=["INSERT INTO tenant VALUES (1, 'a@x')", "INSERT INTO member VALUES (1, 1)"],
        rows_query="SELECT t.id, t.email, m.id AS member FROM tenant t JOIN member m ON m.tenant_id = t.id",
    )
    renames = [s for s in up.statements() if "RENAME CONSTRAINT" in s]
    assert len(renames) == 4, up.statements()  # pk, unique, fk and check (issue 17: one rule for all)
    names = fetch(
        database_url,
        "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE n.nspname = 'public' AND c.contype IN ('p', 'u', 'f', 'c') ORDER BY conname",
    )
    assert [r["conname"] for r in names] == sorted(  # at B again: renamed, and the old names on `other`
        [
            *("ck_member_id_new", "fk_member_tenant_new", "member_pkey", "pk_tenant_new", "uq_email_new"),
            *("fk_member_tenant_old", "pk_tenant_old", "uq_email_old"),
        ]
    )
