"""A new table is created whole: columns, defaults, identity, keys, checks and comments in one CREATE TABLE.

Issue 16, point 3: creating the table empty and adding each column with ADD
COLUMN makes Postgres evaluate each default (a `current_setting(...)` one
fails), where `create_all` never does. Each test builds state A, takes the
`up` plan to B and the `down` plan back (the one `generate` writes, built
from the database's objects), and compares every step with `create_all`.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Tuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from pgmig.ops.column import AddColumn
from pgmig.ops.constraint import AddCheck, AddForeignKey, AddPrimaryKey, AddUnique
from pgmig.ops.index import AddIndex
from pgmig.ops.table import AddTable, CreateTable
from pgmig.plan.diff import CREATE, Plan, diff_states, order_changes
from pgmig.schema.handlers.column import Column
from pgmig.schema.handlers.constraint import Constraint
from pgmig.schema.handlers.table import Table
from pgmig.schema.objects import SchemaState
from tests.helpers import apply, both_ways, create_all, diff, fetch, migrate, run_sql, snapshot
from tests.sample_project import V1, Project

TENANT_DEFAULT = "current_setting('app.current_tenant')::text"
PARTS = (AddColumn, AddTable, AddPrimaryKey, AddUnique, AddCheck, AddForeignKey, AddIndex)


def tenant_models() -> sa.MetaData:
    """The issue's input: a default Postgres can only evaluate once the setting exists."""
    md = sa.MetaData()
    sa.Table(
        "tenant_note",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant", sa.Text, nullable=False, server_default=sa.text(TENANT_DEFAULT)),
        sa.Column("body", sa.Text),
    )
    return md


def every_feature_models() -> sa.MetaData:
    """Two tables using every column feature and every constraint a CREATE TABLE can hold."""
    md = sa.MetaData()
    mood = sa.Enum("ok", "sad", "mad", name="mood")
    sa.Table(
        "feature_owner",
        md,
        sa.Column("org", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("num", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("email", sa.String(200), nullable=False, unique=True, comment="where to write"),
        sa.Column("handle", sa.String(40), nullable=False),
        sa.Column("mood", mood, nullable=False, server_default="ok"),
        sa.Column("score", sa.Numeric(10, 2), nullable=False, server_default="0"),
        sa.Column("tags", pg.ARRAY(sa.Text), server_default=sa.text("'{}'::text[]")),
        sa.Column("meta", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("seen", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("tenant", sa.Text, server_default=sa.text(TENANT_DEFAULT)),
        sa.UniqueConstraint("org", "handle", name="uq_owner_handle"),
        sa.UniqueConstraint("handle", "email"),
        sa.CheckConstraint("score >= 0", name="ck_owner_score"),
        # Two unnamed checks on one column: Postgres numbers their names in order.
        sa.CheckConstraint("length(handle) > 1"),
        sa.CheckConstraint("length(handle) < 40"),
        comment="people who own things",
    )
    sa.Table(
        "feature_thing",
        md,
        sa.Column("id", sa.Integer, primary_key=True),  # serial
        sa.Column("owner_org", sa.Integer, nullable=False),
        sa.Column("owner_num", sa.BigInteger, nullable=False),
        sa.Column("label", sa.Text, nullable=False, server_default=""),
        sa.Column("mood", mood),
        sa.Column("size", sa.Integer, sa.CheckConstraint("size > 0"), nullable=False, server_default="1"),
        sa.ForeignKeyConstraint(["owner_org", "owner_num"], ["feature_owner.org", "feature_owner.num"]),
        sa.Index("feature_thing_label", "label"),
    )
    return md


def cycle_models(enum: bool = True) -> sa.MetaData:
    """Tables referencing each other (a -> b -> a), an enum column and indexes in the same plan."""
    md = sa.MetaData()
    kind = sa.Enum("x", "y", name="cyc_kind") if enum else sa.Text
    sa.Table(
        "cyc_a",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("b_id", sa.Integer, sa.ForeignKey("cyc_b.id", use_alter=True, name="cyc_a_b_id_fkey")),
        sa.Column("kind", kind, nullable=False, server_default="x"),
        sa.Index("cyc_a_kind", "kind"),
    )
    sa.Table(
        "cyc_b",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("a_id", sa.Integer, sa.ForeignKey("cyc_a.id"), index=True),
    )
    return md


def constraint_names(url: str) -> List[Dict[str, Any]]:
    """Every constraint's table, name and definition: a name Postgres generated must match create_all's."""
    return fetch(
        url,
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' ORDER BY 1, 2",
    )


def catalog(url: str) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    return snapshot(url), constraint_names(url)


def built_by_create_all(server: Any, metadata: sa.MetaData) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    scratch = server.create_database()
    try:
        create_all(scratch, metadata)
        return catalog(scratch)
    finally:
        server.drop_database(scratch)


def up_down_up(server: Any, url: str, before: sa.MetaData, after: sa.MetaData) -> Tuple[Plan, Plan]:
    """`before` by create_all; up to `after` (diff empty, equal to create_all's); down (exactly
    `before` again); up again. Returns the (up, down) plans."""
    create_all(url, before)
    start = catalog(url)
    up, down = both_ways(url, after)
    apply(url, up)
    assert diff(url, after).is_empty, [c.to_json() for c in diff(url, after).changes]
    reached = catalog(url)
    assert reached == built_by_create_all(server, after)
    apply(url, down)
    assert catalog(url) == start
    assert diff(url, before).is_empty
    apply(url, up)
    assert catalog(url) == reached
    return up, down


def created_whole(plan: Plan, tables: List[str], separate: Tuple[type, ...] = ()) -> None:
    """Each of `tables` is one CreateTable; no column, key, check, index (or, unless `separate`
    says so, foreign key) of it is added on its own."""
    creates = [op for op in plan.operations if isinstance(op, CreateTable)]
    assert sorted(op.table_name for op in creates) == sorted(tables)
    loose = [
        op
        for op in plan.operations
        if isinstance(op, PARTS) and not isinstance(op, separate) and getattr(op, "table_name", None) in tables
    ]
    assert loose == []
    statements = plan.statements()
    for table in tables:
        assert len([s for s in statements if s.startswith(f'CREATE TABLE "public"."{table}" (')]) == 1
        assert not [s for s in statements if s.startswith(f'ALTER TABLE "public"."{table}" ADD COLUMN')]


def test_a_default_only_a_new_table_can_take_is_created_with_it(pgmig_server: Any, database_url: str) -> None:
    up, down = up_down_up(pgmig_server, database_url, sa.MetaData(), tenant_models())
    created_whole(up, ["tenant_note"])
    (create,) = [s for s in up.statements() if s.startswith("CREATE TABLE")]
    assert f"DEFAULT {TENANT_DEFAULT}" in create or "current_setting('app.current_tenant'" in create
    # The table works as the default means it to, once the setting is there.
    run_sql(database_url, "SET app.current_tenant = 'acme'; INSERT INTO tenant_note (body) VALUES ('hi')")
    assert fetch(database_url, "SELECT tenant FROM tenant_note") == [{"tenant": "acme"}]


def test_a_dropped_table_comes_back_whole_in_down(pgmig_server: Any, database_url: str) -> None:
    """The other direction: `down` re-creates the table from the database's objects, whole."""
    up, down = up_down_up(pgmig_server, database_url, tenant_models(), sa.MetaData())
    created_whole(down, ["tenant_note"])
    assert [op.name for op in up.operations] == ["drop_table"]


def test_every_column_feature_in_one_create_table(pgmig_server: Any, database_url: str) -> None:
    models = every_feature_models()
    up, down = up_down_up(pgmig_server, database_url, sa.MetaData(), models)
    created_whole(up, ["feature_owner", "feature_thing"])
    (owner,) = [op for op in up.operations if isinstance(op, CreateTable) and op.table_name == "feature_owner"]
    assert owner.comment == "people who own things"
    assert [c.comment for c in owner.columns if c.name == "email"] == ["where to write"]
    # The foreign key to the table created before joins the CREATE TABLE; the index follows it.
    names = [op.name for op in up.operations]
    (thing,) = [op for op in up.operations if isinstance(op, CreateTable) and op.table_name == "feature_thing"]
    assert [type(c).__name__ for c in thing.all_constraints()] == ["PrimaryKey", "Check", "ForeignKey"]
    assert [index.name for index in thing.indexes] == ["feature_thing_label"]
    statements = thing.statements()
    assert statements[0].startswith('CREATE TABLE "public"."feature_thing" (')
    assert statements[1].startswith('CREATE INDEX "feature_thing_label" ON "public"."feature_thing"')
    assert names.index("add_type") < names.index("create_table")
    # Every step of the plan is on the table's change; its columns and keys are shown but run nothing.
    owner_parts = [c for c in up.changes if c.action == CREATE and c.obj.parent == ("table", "public", "feature_owner")]
    assert owner_parts and all(c.implicit and not c.operations for c in owner_parts if c.kind == "column")
    # ... and back the other way: down drops them, a second round trip re-creates them from the catalog.
    up_again, down_again = up_down_up(pgmig_server, pgmig_server.create_database(), models, sa.MetaData())
    created_whole(down_again, ["feature_owner", "feature_thing"])


def test_tables_referencing_each_other_are_created_and_dropped_both_ways(pgmig_server: Any, database_url: str) -> None:
    # Without the enum: the `down` dropping the tables together with an enum their column uses is
    # still "a cycle" (issue 16 point 4, on main as well), which is not what this test is about.
    up, down = up_down_up(pgmig_server, database_url, sa.MetaData(), cycle_models(enum=False))
    created_whole(up, ["cyc_a", "cyc_b"], separate=(AddForeignKey,))
    # The second table's foreign key joins its CREATE TABLE; the first one's cannot, it follows.
    assert [op.name for op in up.operations] == ["create_table", "create_table", "add_foreign_key"]
    first, second = [op for op in up.operations if isinstance(op, CreateTable)]
    assert [type(c).__name__ for c in first.all_constraints()] == ["PrimaryKey"]
    assert [type(c).__name__ for c in second.all_constraints()] == ["PrimaryKey", "ForeignKey"]
    assert [index.name for op in (first, second) for index in op.indexes] != []
    other = pgmig_server.create_database()
    try:
        up_back, down_back = up_down_up(pgmig_server, other, cycle_models(enum=False), sa.MetaData())
        created_whole(down_back, ["cyc_a", "cyc_b"], separate=(AddForeignKey,))
    finally:
        pgmig_server.drop_database(other)


def test_a_new_table_and_its_parts_are_ordered_as_one_statement() -> None:
    """No database: the columns and keys of a new table wait with it for what they need (an enum),
    and an existing table's new column is still its own step."""
    enum_key = ("enum", "public", "mood")
    from pgmig.schema.handlers.enum import Enum

    new_table = [
        Table("public", "t"),
        Column(schema="public", table="t", name="id", data_type="integer", nullable=False),
        Column(schema="public", table="t", name="m", data_type="mood", type_dependency=enum_key),
        Constraint(schema="public", table="t", constraint_type="primary_key", columns=("id",)),
        Constraint(
            schema="public",
            table="t",
            constraint_type="foreign_key",
            columns=("id",),
            referred_schema="public",
            referred_table="old",
            referred_columns=("id",),
        ),
    ]
    existing = [Table("public", "old"), Column(schema="public", table="old", name="id", data_type="integer")]
    added = Column(schema="public", table="old", name="extra", data_type="text")
    current = SchemaState(existing)
    desired = SchemaState([*new_table, Enum("public", "mood", ("a",)), *existing, added])
    ordered = order_changes(diff_states(current, desired))
    keys = [c.key for c in ordered]
    assert keys.index(enum_key) < keys.index(("table", "public", "t"))
    table = next(c for c in ordered if c.key == ("table", "public", "t"))
    # The foreign key to a table that exists already joins too, after the parts that always do.
    assert [p.kind for p in table.parts] == ["column", "column", "constraint", "constraint"]
    assert table.parts[-1].obj.constraint_type == "foreign_key"  # type: ignore[attr-defined]
    at = keys.index(table.key)
    assert [c.key for c in ordered[at + 1 : at + 5]] == [p.key for p in table.parts]
    assert all(p.implicit for p in table.parts)
    extra = next(c for c in ordered if c.key == added.key)
    assert not extra.implicit and not extra.parts


def test_the_initial_revision_creates_each_table_in_one_call(project: Project) -> None:
    project.models(V1)
    path = project.generate("initial")
    text = path.read_text()
    lines = len(text.splitlines())
    print(f"initial revision of tests/sample_project.py V1: {lines} lines")
    assert text.count("await migrator.actor.create_table(") == 2
    assert "add_column" not in text and "add_table" not in text and "new_table" not in text
    assert "from pgmig import Column, MigrationRevisionBase, Migrator\n" in text
    assert 'Column("status", "public.status", nullable=False, default="\'draft\'")' in text
    assert '            Column("id", "serial", primary_key=True),\n' in text
    assert lines <= 32, text  # 66 when each column and key was a call of its own, 45 with keyword lists
    printed = project.cli("up", "--sql").stdout
    assert len(re.findall(r"^CREATE TABLE \"public\"\.", printed, flags=re.M)) == 2, printed
    assert "ADD COLUMN" not in printed and "ADD PRIMARY KEY" not in printed
    project.cli("up")
    assert project.cli("diff", "--exit-code").returncode == 0

    # A table dropped in the next revision comes back whole in its down.
    before = snapshot(project.url)
    project.models(V1.split("class Post(")[0])
    dropped = project.generate("drop post", "--allow-destructive")
    down_text = dropped.read_text().split("async def down")[1]
    assert "create_table(" in down_text and "add_column" not in down_text
    project.cli("up")
    project.cli("down")
    assert snapshot(project.url) == before


def test_preview_says_a_new_tables_parts_are_created_with_it(database_url: str) -> None:
    """The parts a CREATE TABLE carries read "(created with its table)", never "(dropped with its table)"."""
    from pgmig.cli.output import change_line

    md = sa.MetaData()
    sa.Table("article", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("title", sa.Text, index=True))
    plan = diff(database_url, md)
    lines = [change_line(c).plain for c in plan.changes]
    carried = [line for line in lines if "with its table" in line]
    assert carried and all(line.endswith("(created with its table)") for line in carried), lines
    migrate(database_url, md)
    dropped = [change_line(c).plain for c in diff(database_url, sa.MetaData()).changes]
    assert any(line.endswith("(dropped with its table)") for line in dropped), dropped
