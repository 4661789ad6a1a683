"""A rebuild carries its dependents; `down` is built from the state it runs in (issue 16, kinds 1, 2, 5).

Every case goes the way a user's revision goes: the plan both ways is
written as a revision file, `up` runs through the runner (with its side
connection for new enum labels), a fresh diff is empty, the schema equals
`create_all` of the new models, `down` gives back the starting schema
exactly, and `up` again; rows are kept throughout.

No `from __future__ import annotations` here: SQLModel-style models may be
defined in this module.
"""

import asyncio
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pgmig.config.discovery import HandlerSet
from pgmig.plan.diff import Plan
from pgmig.plan.engine import diff_both_ways, model_context
from pgmig.revisions.files import load_chain
from pgmig.revisions.runner import Runner
from pgmig.revisions.version_table import VersionTable
from pgmig.revisions.writer import render_revision

from .helpers import create_all, diff, fetch, handlers, migrate, run_sql, snapshot

VERSIONS = VersionTable("pgmig_meta", "pgmig_revisions")


def full_snapshot(url: str) -> Dict[str, Any]:
    """helpers.snapshot with enum labels in sort order, and triggers."""
    snap = snapshot(url)
    snap["enums"] = {
        row["typname"]: list(row["labels"])
        for row in fetch(
            url,
            "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels FROM pg_enum e "
            "JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = 'public' GROUP BY t.typname ORDER BY t.typname",
        )
    }
    snap["triggers"] = fetch(
        url,
        "SELECT c.relname, pg_get_triggerdef(t.oid) AS def FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal ORDER BY 1, 2",
    )
    return snap


def plans(url: str, metadata: sa.MetaData, handler_set: Optional[HandlerSet] = None) -> "tuple[Plan, Plan]":
    """The plan from the database to `metadata` and back, as `generate` builds it."""
    tables = [t for t in metadata.sorted_tables if (t.schema or "public") == "public"]
    models = model_context(tables, [metadata], "public")

    async def go() -> "tuple[Plan, Plan]":
        conn = await asyncpg.connect(url)
        try:
            return await diff_both_ways(conn, models, handler_set or handlers(), connect=lambda: asyncpg.connect(url))
        finally:
            await conn.close()

    return asyncio.run(go())


def write_revision(folder: Path, up: Plan, down: Plan, down_revision: Optional[str] = None) -> str:
    """A revision file of these plans in `folder` (as `generate` writes it); returns its id."""
    number = len(list(folder.glob("*.py"))) + 1
    revision_id = f"20260101_00000{number}_abcdef"
    folder.mkdir(parents=True, exist_ok=True)
    text = render_revision(revision_id, down_revision, f"step {number}", up.operations, down.operations)
    (folder / f"{revision_id}_step.py").write_text(text)
    return revision_id


def runner(url: str, folder: Path) -> Runner:
    return Runner(url, load_chain(folder), VERSIONS, lock_timeout="3s")


def revision_round_trip(
    server: Any,
    url: str,
    folder: Path,
    models_a: sa.MetaData,
    models_b: sa.MetaData,
    seed: Sequence[str] = (),
    rows_query: Optional[str] = None,
    extra_a: Sequence[str] = (),
    extra_b: Sequence[str] = (),
    handler_set: Optional[HandlerSet] = None,
    snapshot_of: Callable[[str], Dict[str, Any]] = full_snapshot,
) -> Plan:
    """A built with pgmig (and `extra_a` SQL), rows seeded; a revision A -> B; up, diff empty,
    B equals create_all of B (plus `extra_b`), rows kept; down gives A back exactly; up again.
    `snapshot_of(url)` is the catalog compared (default: `full_snapshot`)."""
    migrate(url, models_a)
    if extra_a:
        run_sql(url, *extra_a)
    assert diff(url, models_a, handler_set=handler_set).is_empty, "models A did not apply cleanly"
    if seed:
        run_sql(url, *seed)
    rows = fetch(url, rows_query) if rows_query else None
    snap_a = snapshot_of(url)

    up, down = plans(url, models_b, handler_set)
    assert not up.is_empty, "A and B should differ"
    # What generate refuses on: every dependent here is modeled and carried by the plan.
    assert not up.unmodeled, [d.to_json() for d in up.unmodeled]
    write_revision(folder, up, down)
    asyncio.run(runner(url, folder).upgrade())
    leftover = diff(url, models_b, handler_set=handler_set)
    assert leftover.is_empty, [c.to_json() for c in leftover.changes]
    snap_b = snapshot_of(url)
    scratch = server.create_database()
    try:
        create_all(scratch, models_b)
        if extra_b:
            run_sql(scratch, *extra_b)
        assert snap_b == snapshot_of(scratch)
    finally:
        server.drop_database(scratch)
    if rows_query:
        assert fetch(url, rows_query) == rows

    asyncio.run(runner(url, folder).downgrade())
    assert snapshot_of(url) == snap_a
    assert diff(url, models_a, handler_set=handler_set).is_empty
    if rows_query:
        assert fetch(url, rows_query) == rows

    asyncio.run(runner(url, folder).upgrade())
    assert snapshot_of(url) == snap_b
    return up


# -- 1. what depends on a rebuilt object is dropped before and re-created after ---------------


def workspace(labels: Sequence[str], where: str = "status <> 'deleted'", check: Optional[str] = None) -> sa.MetaData:
    metadata = sa.MetaData()
    table = sa.Table(
        "ws",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", postgresql.ENUM(*labels, name="ws_status"), nullable=False),
    )
    if where:
        sa.Index("ws_name_idx", table.c.name, unique=True, postgresql_where=sa.text(where))
    if check:
        table.append_constraint(sa.CheckConstraint(check, name="ws_status_ck"))
    return metadata


WS_ROWS = "SELECT id, name, status::text FROM ws ORDER BY id"
WS_SEED = ("INSERT INTO ws (id, name, status) VALUES (1, 'a', 'active'), (2, 'a', 'deleted'), (3, 'b', 'active')",)


def test_label_removed_under_a_partial_unique_index(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    up = revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        workspace(["active", "archived", "deleted"]),
        workspace(["active", "deleted"]),
        WS_SEED,
        WS_ROWS,
    )
    statements = up.statements()
    drop = next(i for i, s in enumerate(statements) if s.startswith("DROP INDEX"))
    swap = next(i for i, s in enumerate(statements) if "__pgmig_new" in s)
    create = next(i for i, s in enumerate(statements) if "CREATE UNIQUE INDEX" in s)
    assert drop < swap < create


def test_label_removed_under_a_check(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        workspace(["active", "archived", "deleted"], where="", check="status <> 'archived' OR name <> ''"),
        workspace(["active", "deleted", "archived"], where="", check="status <> 'archived' OR name <> ''"),
        WS_SEED,
        WS_ROWS,
    )


def test_label_removed_and_index_predicate_changed_both_ways(
    pgmig_server: Any, database_url: str, tmp_path: Path
) -> None:
    """The index itself changes: in `down` the swap restores the label, then the old predicate comes back."""
    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        workspace(["active", "archived", "deleted"], check="status <> 'archived'"),
        workspace(["active", "deleted"], where="status = 'active'", check="status <> 'deleted' OR id > 0"),
        WS_SEED,
        WS_ROWS,
    )


def test_label_added_in_the_middle_keeps_dependents(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    """ADD VALUE rebuilds nothing: the index stays as it is in `up`; `down` swaps and carries it."""
    up = revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        workspace(["active", "deleted"]),
        workspace(["active", "paused", "deleted"]),
        WS_SEED,
        WS_ROWS,
    )
    assert not any("INDEX" in s for s in up.statements())


def test_column_type_change_carries_a_partial_index_and_a_check(
    pgmig_server: Any, database_url: str, tmp_path: Path
) -> None:
    """ALTER COLUMN TYPE re-reads a predicate or a CHECK against the new type: they are carried instead."""

    def models(kind: Any) -> sa.MetaData:
        metadata = sa.MetaData()
        table = sa.Table(
            "item",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("code", kind, nullable=False),
            sa.CheckConstraint("code > 0", name="item_code_ck"),
        )
        sa.Index("item_code_idx", table.c.code, postgresql_where=sa.text("code > 10"))
        return metadata

    up = revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        models(sa.Integer),
        models(sa.BigInteger),
        ("INSERT INTO item (id, code) VALUES (1, 5), (2, 50)",),
        "SELECT id, code FROM item ORDER BY id",
    )
    statements = up.statements()
    retype = next(i for i, s in enumerate(statements) if "TYPE bigint" in s)
    assert any(s.startswith("DROP INDEX") for s in statements[:retype])
    assert any("CREATE INDEX" in s for s in statements[retype:])


@pytest.mark.parametrize(
    "before, after",
    [(sa.Text, sa.String(10)), (sa.String(10), sa.Text), (sa.String(10), sa.CHAR(10))],
    ids=["text-varchar", "varchar-text", "varchar-char"],
)
def test_a_retyped_column_under_a_partial_and_an_expression_index(
    pgmig_server: Any, database_url: str, tmp_path: Path, before: Any, after: Any
) -> None:
    """A predicate and an expression print differently over another type (`code <> 'x'::text` on text,
    `(code)::text <> 'x'::text` on varchar): the re-created indexes are rendered over the models' type,
    as `create_all` builds them, in both directions."""

    def models(kind: Any) -> sa.MetaData:
        metadata = sa.MetaData()
        table = sa.Table(
            "item",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("code", kind, nullable=False),
        )
        sa.Index("item_code_live", table.c.id, postgresql_where=sa.text("code <> 'x'"))
        sa.Index("item_code_lower", sa.func.lower(table.c.code))
        return metadata

    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        models(before),
        models(after),
        ("INSERT INTO item (id, code) VALUES (1, 'a'), (2, 'x')",),
        "SELECT id, rtrim(code) AS code FROM item ORDER BY id",
    )


def test_label_removed_under_a_view(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    """A view over the enum column (pgmig-views): ALTER COLUMN TYPE refuses while it exists."""
    from pgmig_views import view

    def models(labels: Sequence[str]) -> sa.MetaData:
        metadata = workspace(labels, where="")
        view(metadata, "live_ws", "SELECT id, name FROM ws WHERE status = 'active'", depends_on=["ws"])
        return metadata

    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        models(["active", "archived", "deleted"]),
        models(["active", "deleted"]),
        WS_SEED,
        WS_ROWS,
        extra_b=("CREATE VIEW live_ws AS SELECT id, name FROM ws WHERE status = 'active'",),
    )


def test_a_replaced_view_carries_the_view_over_it(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    """A column type change replaces the view over it (pgmig-views), and so the view over that view."""
    from pgmig_views import view

    def models(kind: Any) -> sa.MetaData:
        metadata = sa.MetaData()
        sa.Table("item", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("code", kind))
        view(metadata, "item_codes", "SELECT id, code FROM item", depends_on=["item"])
        view(metadata, "big_codes", "SELECT code FROM item_codes WHERE code > 10", depends_on=["item_codes"])
        return metadata

    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        models(sa.Integer),
        models(sa.BigInteger),
        ("INSERT INTO item (id, code) VALUES (1, 5), (2, 50)",),
        "SELECT id, code FROM item ORDER BY id",
        extra_b=(
            "CREATE VIEW item_codes AS SELECT id, code FROM item",
            "CREATE VIEW big_codes AS SELECT code FROM item_codes WHERE code > 10",
        ),
    )


# -- 3. `down` built from the state it runs in (enum parts) --------------------------------------


def palette(labels: Sequence[str], default: str, extra: bool = False) -> sa.MetaData:
    metadata = sa.MetaData()
    color = postgresql.ENUM(*labels, name="color")
    columns: List[sa.Column] = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("color", color, nullable=False, server_default=default),
    ]
    if extra:
        columns.append(sa.Column("accent", color, nullable=False, server_default=labels[-1]))
    sa.Table("paint", metadata, *columns)
    return metadata


PAINT_ROWS = "SELECT id, color::text FROM paint ORDER BY id"


def test_label_added_and_made_the_default(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    """`down` swaps the type back while the default still names the new label: it must reset it first."""
    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        palette(["red", "blue"], "red"),
        palette(["red", "blue", "green"], "green"),
    )


def test_label_added_and_made_the_default_with_rows(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        palette(["red", "blue"], "red"),
        palette(["red", "blue", "green"], "green"),
        ("INSERT INTO paint (id) VALUES (1), (2)",),
        PAINT_ROWS,
    )


def test_label_added_with_a_new_column_defaulting_to_it(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    """`down` drops the new column before the swap: the swap must not list it."""
    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        palette(["red", "blue"], "red"),
        palette(["red", "blue", "green"], "red", extra=True),
        ("INSERT INTO paint (id) VALUES (1), (2)",),
        PAINT_ROWS,
    )


def test_label_removed_and_the_default_moved(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        palette(["red", "blue", "green"], "green"),
        palette(["red", "blue"], "blue"),
        ("INSERT INTO paint (id, color) VALUES (1, 'red'), (2, 'blue')",),
        PAINT_ROWS,
    )


def test_label_removed_from_a_column_the_revision_drops(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        palette(["red", "blue", "green"], "red", extra=True),
        palette(["red", "blue"], "red"),
        ("INSERT INTO paint (id, color) VALUES (1, 'red'), (2, 'blue')",),
        PAINT_ROWS,
    )


# -- 5. steps on the side connection ------------------------------------------------------------------


def status_models(labels: Sequence[str]) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "job",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("state", postgresql.ENUM(*labels, name="job_state"), nullable=False),
    )
    return metadata


def write_rename_and_add(folder: Path) -> None:
    """A revision renaming job_state's 'new' to 'queued' and adding 'running' after it."""
    from pgmig.ops.enum import AddTypeValues, RenameTypeValue

    folder.mkdir()
    text = render_revision(
        "20260101_000001_abcdef",
        None,
        "rename and add",
        [
            RenameTypeValue(type_name="job_state", old_value="new", new_value="queued"),
            AddTypeValues(type_name="job_state", values=("running",), after="queued"),
        ],
        [],
    )
    (folder / "20260101_000001_abcdef_rename.py").write_text(text)


def test_rename_and_add_a_label_in_one_revision(database_url: str, tmp_path: Path) -> None:
    """RENAME VALUE (main transaction) next to ADD VALUE (side connection) must not wait on each other."""
    folder = tmp_path / "migrations"
    migrate(database_url, status_models(["new", "done"]))
    run_sql(database_url, "INSERT INTO job VALUES (1, 'new'), (2, 'done')")
    write_rename_and_add(folder)
    asyncio.run(asyncio.wait_for(runner(database_url, folder).upgrade(), timeout=60))
    assert full_snapshot(database_url)["enums"] == {"job_state": ["queued", "running", "done"]}
    assert fetch(database_url, "SELECT state::text FROM job ORDER BY id") == [{"state": "queued"}, {"state": "done"}]


def test_a_failed_revision_names_the_labels_that_stayed(database_url: str, tmp_path: Path) -> None:
    from pgmig.errors import DatabaseError
    from pgmig.ops.data import ExecuteSQL
    from pgmig.ops.enum import AddTypeValues

    folder = tmp_path / "migrations"
    migrate(database_url, status_models(["new", "done"]))
    text = render_revision(
        "20260101_000001_abcdef",
        None,
        "add and fail",
        [
            AddTypeValues(type_name="job_state", values=("running",), after="new"),
            ExecuteSQL(sql="SELECT 1/0"),
        ],
        [],
    )
    folder.mkdir()
    (folder / "20260101_000001_abcdef_fail.py").write_text(text)
    with pytest.raises(DatabaseError) as failed:
        asyncio.run(runner(database_url, folder).upgrade())
    message = str(failed.value)
    assert "nothing of it was applied" not in message
    assert "running" in message and "job_state" in message
    assert full_snapshot(database_url)["enums"] == {"job_state": ["new", "running", "done"]}


# -- 2. objects that depend on a dropped column ------------------------------------------------------

TOUCH_BODY = "BEGIN RETURN NEW; END"
TRIGGER_B_SQL = (
    f"CREATE FUNCTION public.account_touch() RETURNS trigger LANGUAGE plpgsql AS $$ {TOUCH_BODY} $$",
    "CREATE TRIGGER account_provider BEFORE INSERT OR UPDATE OF name ON public.account "
    "FOR EACH ROW EXECUTE FUNCTION public.account_touch()",
)


def accounts(with_provider: bool, with_trigger: bool = True) -> sa.MetaData:
    from pgmig_functions import function, trigger

    metadata = sa.MetaData()
    columns = [sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text, nullable=False)]
    if with_provider:
        columns.append(sa.Column("provider", sa.Text))
    sa.Table("account", metadata, *columns)
    if with_trigger:
        function(metadata, "account_touch", returns="trigger", language="plpgsql", body=f" {TOUCH_BODY} ")
        fired_by = "provider" if with_provider else "name"
        trigger(
            metadata,
            "account",
            "account_provider",
            function="account_touch",
            events=["INSERT", f"UPDATE OF {fired_by}"],
        )
    return metadata


def test_trigger_columns_are_dependencies() -> None:
    from pgmig_functions.handler import trigger_columns

    assert trigger_columns("BEFORE INSERT OR UPDATE OF provider", "FOR EACH ROW EXECUTE FUNCTION f()") == ("provider",)
    assert trigger_columns(
        'AFTER UPDATE OF a, "B" OR DELETE', 'FOR EACH ROW WHEN ((new.c IS DISTINCT FROM OLD."D")) EXECUTE FUNCTION f()'
    ) == ("a", "B", "c", "D")


def test_column_dropped_under_a_modeled_trigger(pgmig_server: Any, database_url: str, tmp_path: Path) -> None:
    """With pgmig-functions, the trigger names its columns: it changes before the column goes, and after it is back."""
    up = revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        accounts(with_provider=True),
        accounts(with_provider=False),
        ("INSERT INTO account (id, name, provider) VALUES (1, 'a', 'x')",),
        "SELECT id, name FROM account ORDER BY id",
        extra_b=TRIGGER_B_SQL,
    )
    order = [(c.action, c.kind) for c in up.changes]
    assert order.index(("migrate", "trigger")) < order.index(("destroy", "column"))


def builtin_set() -> HandlerSet:
    from pgmig.testing.conformance import builtin_handlers, resolve_handlers

    return resolve_handlers(builtin_handlers())


TRIGGER_A_SQL = (
    f"CREATE FUNCTION public.account_touch() RETURNS trigger LANGUAGE plpgsql AS $$ {TOUCH_BODY} $$",
    "CREATE TRIGGER account_provider BEFORE INSERT OR UPDATE OF provider ON public.account "
    "FOR EACH ROW EXECUTE FUNCTION public.account_touch()",
)


def test_column_dropped_under_an_unmodeled_trigger_is_named(database_url: str) -> None:
    """Without the plugin, pg_depend finds the trigger: the plan names it (warning, JSON) instead of failing half-way."""
    create_all(database_url, accounts(with_provider=True, with_trigger=False))
    run_sql(database_url, *TRIGGER_A_SQL)
    plan = diff(database_url, accounts(with_provider=False, with_trigger=False), handler_set=builtin_set())
    assert [(d.kind, d.name, d.table, d.column) for d in plan.unmodeled] == [
        ("trigger", "account_provider", "account", "provider")
    ]
    assert any("account_provider" in w and "pgmig-functions" in w for w in plan.warnings)
    assert plan.to_json()["unmodeled_dependents"][0]["name"] == "account_provider"
    # A plan that drops no such column names nothing.
    assert (
        diff(database_url, accounts(with_provider=True, with_trigger=False), handler_set=builtin_set()).unmodeled == []
    )


def test_generate_refuses_a_column_drop_under_an_unmodeled_trigger(
    project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgmig.config.settings import load_settings
    from pgmig.errors import UsageError
    from pgmig.services.generate import GenerateOptions, UnmodeledDependentsError, generate
    from pgmig.services.project import Project as PgmigProject

    source = (
        "import sqlalchemy as sa\n\nmetadata = sa.MetaData()\n"
        "sa.Table('account', metadata, sa.Column('id', sa.Integer, primary_key=True), "
        "sa.Column('name', sa.Text, nullable=False){})\n"
    )
    project.models(source.format(", sa.Column('provider', sa.Text)"))
    create_all(project.url, accounts(with_provider=True, with_trigger=False))
    run_sql(project.url, *TRIGGER_A_SQL)
    project.models(source.format(""))
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("PGMIG_DATABASE_URL", project.url)
    library = PgmigProject(load_settings(), handlers=builtin_set())
    with pytest.raises(UnmodeledDependentsError) as refused:
        asyncio.run(generate(library, GenerateOptions("drop provider", allow_destructive=True)))
    message = str(refused.value)
    assert isinstance(refused.value, UsageError) and refused.value.exit_code == 2
    assert "trigger account_provider" in message and "provider" in message
    assert "pgmig-functions" in message and "--empty" in message
    assert project.files() == []


def test_side_steps_are_committed_first_with_anchors_under_their_old_names() -> None:
    from pgmig.ops.actor import side_steps
    from pgmig.ops.enum import AddType, AddTypeValues, RenameTypeValue

    rename = RenameTypeValue(type_name="job_state", old_value="new", new_value="queued")
    add = AddTypeValues(type_name="job_state", values=("running",), after="queued")
    other = AddTypeValues(type_name="other", values=("x",))
    planned = side_steps([rename, add, other])
    assert planned.first == (AddTypeValues(type_name="job_state", values=("running",), after="new"), other)
    assert planned.hoisted == {1, 2} and planned.in_place == frozenset()
    # A type the revision creates takes its labels in place, inside the transaction.
    created = side_steps([AddType(type_name="t", values=("a",)), AddTypeValues(type_name="t", values=("b",))])
    assert created.first == () and created.in_place == {1}
    # A label that takes the name a rename frees waits for the rename.
    reused = side_steps([rename, AddTypeValues(type_name="job_state", values=("new",), after="queued")])
    assert reused.first == () and reused.in_place == {1}


def test_sql_of_a_revision_shows_side_steps_before_its_transaction(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write_rename_and_add(folder)
    lines = asyncio.run(runner(database_url, folder).sql("up"))
    add = next(i for i, line in enumerate(lines) if "ADD VALUE" in line)
    assert "AFTER 'new'" in lines[add]
    assert add < lines.index("BEGIN;") < next(i for i, line in enumerate(lines) if "RENAME VALUE" in line)


def test_a_retyped_column_under_an_unmodeled_view_is_named(database_url: str) -> None:
    """Without pgmig-views, a view over a column whose type changes (or whose enum is swapped) is named."""
    create_all(database_url, workspace(["active", "archived", "deleted"], where=""))
    run_sql(database_url, "CREATE VIEW live_ws AS SELECT id, name FROM ws WHERE status = 'active'")
    plan = diff(database_url, workspace(["active", "deleted"], where=""), handler_set=builtin_set())
    assert [(d.kind, d.name, d.column) for d in plan.unmodeled] == [("view", "live_ws", "status")]
    assert any("pgmig-views" in w for w in plan.warnings)


IS_LIVE_SQL = (
    "CREATE FUNCTION public.is_live(s ws_status) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$SELECT s <> 'deleted'$$",
)


def with_is_live(labels: Sequence[str]) -> sa.MetaData:
    from pgmig_functions import function

    metadata = workspace(labels, where="")
    function(
        metadata,
        "is_live",
        arguments="s ws_status",
        returns="boolean",
        body="SELECT s <> 'deleted'",
        options="IMMUTABLE",
    )
    return metadata


def test_a_function_over_the_enum_is_carried_around_the_swap(
    pgmig_server: Any, database_url: str, tmp_path: Path
) -> None:
    """pgmig-functions: a function whose argument is the enum goes before the type swap and comes back
    after (DROP TYPE refuses while it exists); created after the type, dropped before it."""
    revision_round_trip(
        pgmig_server,
        database_url,
        tmp_path / "migrations",
        with_is_live(["active", "archived", "deleted"]),
        with_is_live(["active", "deleted"]),
        WS_SEED,
        WS_ROWS,
        extra_b=IS_LIVE_SQL,
    )
    up, down = plans(database_url, sa.MetaData())  # everything dropped: the function before its type
    order = [(c.action, c.kind) for c in up.changes if not c.implicit]
    assert order.index(("destroy", "function")) < order.index(("destroy", "enum"))


def test_a_function_over_a_swapped_enum_that_no_plugin_models_is_named(database_url: str) -> None:
    """Without pgmig-functions, pg_depend finds the function on the type the swap replaces."""
    create_all(database_url, workspace(["active", "archived", "deleted"], where=""))
    run_sql(database_url, *IS_LIVE_SQL)
    plan = diff(database_url, workspace(["active", "deleted"], where=""), handler_set=builtin_set())
    assert [(d.kind, d.name, d.table) for d in plan.unmodeled] == [("function", "is_live", "ws_status")]
    assert any("type ws_status" in w and "pgmig-functions" in w for w in plan.warnings)
