"""Managed schemas other than public, and several at once (issue 17).

A managed schema is created by the first revision (the `schema` kind) and
everything in it waits for it; an enum column names its type with its schema
whatever the session's search_path; tables live in, and are read from, their
own schema.
"""

import asyncio
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pgmig.config.registries import Registry, merge_tables
from pgmig.config.settings import load_settings
from pgmig.errors import ModelsError
from pgmig.plan.diff import Plan
from pgmig.plan.engine import diff_both_ways, model_context
from tests import helpers
from tests.helpers import apply, create_all, fetch, handlers, pgmig_cli, run_sql, snapshot
from tests.sample_project import V1, V2, Project

# -- helpers: the engine over several schemas --------------------------------------------------


def _models(metadata: sa.MetaData, schemas: Sequence[str]) -> Any:
    return model_context(list(metadata.sorted_tables), [metadata], schemas=schemas)


def diff(url: str, metadata: sa.MetaData, schemas: Sequence[str]) -> Plan:
    return helpers.diff(url, metadata, schemas=schemas)


def both_ways(url: str, metadata: sa.MetaData, schemas: Sequence[str]) -> "tuple[Plan, Plan]":
    import asyncpg

    async def go() -> "tuple[Plan, Plan]":
        conn = await asyncpg.connect(url)
        try:
            return await diff_both_ways(conn, _models(metadata, schemas), handlers(), schemas=schemas)
        finally:
            await conn.close()

    return asyncio.run(go())


def migrate(url: str, metadata: sa.MetaData, schemas: Sequence[str]) -> Plan:
    plan = diff(url, metadata, schemas)
    apply(url, plan)
    return plan


def catalog(url: str, schemas: Sequence[str]) -> Dict[str, Any]:
    """Each schema's tables, columns (types with their schema), enums, constraints and indexes."""
    found: Dict[str, Any] = {"schemas": _schemas(url, schemas)}
    for schema in schemas:
        found[schema] = snapshot(url, schema)
    found["column_types"] = fetch(
        url,
        "SELECT n.nspname, c.relname, a.attname, tn.nspname AS type_schema, t.typname "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace "
        "WHERE n.nspname = ANY($1::text[]) AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped "
        "AND c.relname <> 'pgmig_revisions' ORDER BY 1, 2, 3",
        list(schemas),
    )
    return found


def _schemas(url: str, schemas: Sequence[str]) -> List[str]:
    rows = fetch(url, "SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[]) ORDER BY 1", list(schemas))
    return [row["nspname"] for row in rows]


def built_by_create_all(server: Any, metadata: sa.MetaData, schemas: Sequence[str]) -> Dict[str, Any]:
    """The catalog `create_all` builds (after creating the schemas, which create_all does not)."""
    url = server.create_database()
    try:
        run_sql(url, *(f'CREATE SCHEMA IF NOT EXISTS "{schema}"' for schema in schemas))
        create_all(url, metadata)
        return catalog(url, schemas)
    finally:
        server.drop_database(url)


@pytest.fixture(params=["audit_refers_to_public", "public_refers_to_audit"])
def direction(request: Any) -> str:
    return str(request.param)


def two_schemas(direction: str, with_audit: bool = True) -> sa.MetaData:
    """`account` and, in schema audit, `entry` with an enum of audit (plain and as an array, with a
    default) and a foreign key across the schemas, one way or the other."""
    metadata = sa.MetaData()
    level = sa.Enum("info", "warn", "error", name="level", schema="audit")
    account = sa.Table(
        "account",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    if not with_audit:
        return metadata
    entry = sa.Table(
        "entry",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("level", level, nullable=False, server_default="info"),
        sa.Column("levels", postgresql.ARRAY(level)),
        schema="audit",
    )
    if direction == "audit_refers_to_public":
        entry.append_column(sa.Column("account_id", sa.Integer, sa.ForeignKey("account.id")))
    else:
        account.append_column(sa.Column("last_entry_id", sa.Integer, sa.ForeignKey("audit.entry.id")))
    return metadata


SCHEMAS = ["public", "audit"]


def _at(statements: Sequence[str], fragment: str) -> int:
    found = [index for index, statement in enumerate(statements) if fragment in statement]
    assert len(found) == 1, (fragment, statements)
    return found[0]


# -- several schemas ---------------------------------------------------------------------------


def test_second_schema_round_trip(pgmig_server: Any, database_url: str, direction: str) -> None:
    # A: public alone is managed; B: audit too, with a table and an enum.
    before, after = two_schemas(direction, with_audit=False), two_schemas(direction)
    migrate(database_url, before, ["public"])
    assert diff(database_url, before, ["public"]).is_empty
    run_sql(database_url, "INSERT INTO account (id, name) VALUES (1, 'ann')")
    catalog_a = catalog(database_url, SCHEMAS)

    up, down = both_ways(database_url, after, SCHEMAS)
    statements = up.statements()
    # The schema before anything in it, the enum before the table that uses it, the foreign key
    # after both tables (in the CREATE TABLE of the second one, or added after it).
    schema, enum = _at(statements, 'CREATE SCHEMA "audit"'), _at(statements, 'CREATE TYPE "audit"."level"')
    table = _at(statements, 'CREATE TABLE "audit"."entry"')
    assert schema < enum < table <= _at(statements, "REFERENCES")
    assert '"level" audit.level DEFAULT' in statements[table] and '"levels" audit.level[]' in statements[table]
    apply(database_url, up)
    assert diff(database_url, after, SCHEMAS).is_empty
    assert catalog(database_url, SCHEMAS) == built_by_create_all(pgmig_server, after, SCHEMAS)
    assert fetch(database_url, "SELECT id, name FROM account") == [{"id": 1, "name": "ann"}]

    # down drops what is in audit, then the schema itself.
    assert down.statements()[-1] == 'DROP SCHEMA "audit"'
    apply(database_url, down)
    assert diff(database_url, before, ["public"]).is_empty
    assert catalog(database_url, SCHEMAS) == catalog_a
    assert fetch(database_url, "SELECT id, name FROM account") == [{"id": 1, "name": "ann"}]


def test_second_schema_from_empty_and_back(pgmig_server: Any, database_url: str, direction: str) -> None:
    models = two_schemas(direction)
    empty = sa.MetaData()
    up, down = both_ways(database_url, models, SCHEMAS)
    apply(database_url, up)
    assert diff(database_url, models, SCHEMAS).is_empty
    assert catalog(database_url, SCHEMAS) == built_by_create_all(pgmig_server, models, SCHEMAS)
    apply(database_url, down)
    assert _schemas(database_url, SCHEMAS) == ["public"]
    assert diff(database_url, empty, SCHEMAS).statements() == ['CREATE SCHEMA "audit"']


def test_tables_are_read_from_their_own_schema(database_url: str) -> None:
    # The same table name in both schemas: two tables, each compared with its own.
    metadata = sa.MetaData()
    for schema in (None, "audit"):
        sa.Table("note", metadata, sa.Column("id", sa.Integer, primary_key=True), schema=schema)
    migrate(database_url, metadata, SCHEMAS)
    assert diff(database_url, metadata, SCHEMAS).is_empty
    run_sql(database_url, "ALTER TABLE audit.note ADD COLUMN extra text")
    plan = diff(database_url, metadata, SCHEMAS)
    assert [change.key for change in plan.changes] == [("column", "audit", "note", "extra")]
    # Only the managed schemas are read: an unmanaged one is left alone.
    run_sql(database_url, "ALTER TABLE audit.note DROP COLUMN extra", "CREATE SCHEMA other", "CREATE TABLE other.x ()")
    assert diff(database_url, metadata, SCHEMAS).is_empty


def test_preview_and_json_name_the_schema(project: Project) -> None:
    _configure(project, 'schemas = ["public", "audit"]')
    project.models(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('account', metadata, sa.Column('id', sa.Integer, primary_key=True))\n"
        "sa.Table('entry', metadata, sa.Column('id', sa.Integer, primary_key=True), "
        "sa.Column('account_id', sa.Integer, sa.ForeignKey('account.id')), schema='audit')\n"
    )
    preview = project.cli("diff").stdout
    assert "+ schema audit" in preview
    lines = preview.splitlines()
    schema_line = next(i for i, line in enumerate(lines) if "schema audit" in line)
    entry_line = next(i for i, line in enumerate(lines) if "table entry" in line)
    indent = len(lines[schema_line]) - len(lines[schema_line].lstrip("│├└─ +"))
    assert entry_line > schema_line and lines[entry_line].index("table entry") > indent
    assert "-> public.account (id)" in preview  # a foreign key into another schema names it
    changes = json.loads(project.cli("diff", "--json").stdout)["changes"]
    assert ["schema", "audit"] in [change["key"] for change in changes]
    assert ["table", "audit", "entry"] in [change["key"] for change in changes]


# -- one schema other than public, through the command line ------------------------------------


def _configure(project: Project, settings: str) -> None:
    (project.root / "pyproject.toml").write_text(
        f'[project]\nname = "blog"\n\n[tool.pgmig]\nmodels = ["models.py"]\n{settings}\n'
    )


def test_schema_app_from_a_fresh_database(project: Project) -> None:
    _configure(project, 'schema = "app"')
    project.models(V1)
    first = project.generate("init")
    assert 'add_schema(schema_name="app"' in first.read_text()
    # Generated again while the database is behind (nothing applied): the scratch replays the first.
    project.models(V2)
    project.generate("more")
    project.cli("up")
    assert "No changes" in project.cli("diff").stdout
    assert fetch(project.url, "SELECT count(*) AS n FROM app.pgmig_revisions") == [{"n": 2}]
    assert fetch(
        project.url,
        "SELECT tn.nspname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "JOIN pg_namespace tn ON tn.oid = t.typnamespace WHERE a.attrelid = 'app.post'::regclass AND a.attname = 'status'",
    ) == [{"nspname": "app"}]
    assert _schemas(project.url, ["public", "app"]) == ["app", "public"]
    project.cli("check")
    assert "drift: none" in project.cli("status", "--exit-code").stdout
    # Drift in app is seen (read from app, compared with what the revisions build there).
    run_sql(project.url, "ALTER TABLE app.author ADD COLUMN extra text")
    drifted = project.cli("status", "--exit-code", ok=False)
    assert drifted.returncode == 1 and "extra" in drifted.stdout
    run_sql(project.url, "ALTER TABLE app.author DROP COLUMN extra")

    # Down to base: the tables and the type go; the schema stays with the version table.
    project.cli("down", "base", "--yes")
    rows = fetch(project.url, "SELECT relname FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind = 'r'")
    assert rows == [{"relname": "pgmig_revisions"}]
    assert (
        fetch(project.url, "SELECT typname FROM pg_type WHERE typnamespace = 'app'::regnamespace AND typtype = 'e'")
        == []
    )
    project.cli("up")
    assert "No changes" in project.cli("diff").stdout


def test_schema_app_with_a_public_enum_of_the_same_name(project: Project) -> None:
    # The models' enum `status` lives in app; public.status (other labels) must not be used.
    run_sql(project.url, "CREATE TYPE public.status AS ENUM ('other')")
    _configure(project, "")
    project.models(V1)
    for flags in (["--schema", "app"],):
        project.cli(*flags, "generate", "-m", "init")
        project.cli(*flags, "up")
        assert "No changes" in project.cli(*flags, "diff").stdout
    run_sql(project.url, "INSERT INTO app.post (title) VALUES ('t')")
    assert fetch(project.url, "SELECT status::text AS s FROM app.post") == [{"s": "draft"}]


# -- the search_path -----------------------------------------------------------------------------


def _colors(schema: str = "app") -> sa.MetaData:
    metadata = sa.MetaData()
    color = sa.Enum("red", "green", name="color")
    sa.Table(
        "paint",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("color", color, nullable=False, server_default="red"),
        sa.Column("mix", postgresql.ARRAY(color)),
        schema=None if schema == "public" else schema,
    )
    return metadata


def _type_schemas(url: str, table: str) -> List[Dict[str, Any]]:
    return fetch(
        url,
        "SELECT a.attname, tn.nspname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "JOIN pg_namespace tn ON tn.oid = t.typnamespace "
        "WHERE a.attrelid = $1::regclass AND a.attname IN ('color', 'mix') ORDER BY 1",
        table,
    )


@pytest.fixture
def legacy_first(database_url: str) -> Iterator[str]:
    """A database whose search_path is `legacy, public`, with an enum `color` in both."""
    run_sql(
        database_url,
        "CREATE SCHEMA legacy",
        "CREATE TYPE legacy.color AS ENUM ('red', 'green')",
        "CREATE TYPE public.color AS ENUM ('red', 'green')",
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = legacy, public', current_database()); END $$",
    )
    yield database_url


@pytest.mark.parametrize("schema", ["app", "public"])
def test_enum_columns_get_their_own_schema_whatever_the_search_path(legacy_first: str, schema: str) -> None:
    url, schemas = legacy_first, [schema]
    if schema == "public":  # public.color is the models' own: start without it
        run_sql(url, "DROP TYPE public.color")
    models = _colors(schema)
    up, down = both_ways(url, models, schemas)
    assert any(f'"color" {schema}.color DEFAULT' in s and f'"mix" {schema}.color[]' in s for s in up.statements())
    apply(url, up)
    assert _type_schemas(url, f"{schema}.paint") == [
        {"attname": "color", "nspname": schema, "typname": "color"},
        {"attname": "mix", "nspname": schema, "typname": "_color"},
    ]
    assert diff(url, models, schemas).is_empty
    run_sql(url, f"INSERT INTO {schema}.paint (id) VALUES (1)")
    assert fetch(url, f"SELECT color::text AS c FROM {schema}.paint") == [{"c": "red"}]
    run_sql(url, f"DELETE FROM {schema}.paint")
    apply(url, down)
    assert diff(url, sa.MetaData(), schemas).statements() == (
        [] if schema == "public" else ['CREATE SCHEMA IF NOT EXISTS "app"']
    )


def test_a_column_of_the_other_enum_is_a_change(legacy_first: str) -> None:
    # Built by hand with the enum the search_path finds first (legacy's): not what the models say.
    url = legacy_first
    run_sql(url, "CREATE TABLE public.paint (id integer PRIMARY KEY, color color NOT NULL DEFAULT 'red', mix color[])")
    plan = diff(url, _colors("public"), ["public"])
    changed = {change.key: change.differences() for change in plan.changes}
    assert changed[("column", "public", "paint", "color")]["data_type"] == ("legacy.color", "public.color")
    assert changed[("column", "public", "paint", "mix")]["data_type"] == ("legacy.color[]", "public.color[]")
    apply(url, plan)
    assert _type_schemas(url, "public.paint")[0]["nspname"] == "public"
    assert diff(url, _colors("public"), ["public"]).is_empty


# -- settings and models -----------------------------------------------------------------------


def test_schemas_setting_spellings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGMIG_SCHEMA", raising=False)
    pyproject = tmp_path / "pyproject.toml"
    for text, expected in [
        ("", ("public",)),
        ('schema = "app"', ("app",)),
        ('schemas = ["public", "audit"]', ("public", "audit")),
        ('schema = ["app", "audit"]', ("app", "audit")),
    ]:
        pyproject.write_text(f"[tool.pgmig]\n{text}\n")
        settings = load_settings(cwd=tmp_path)
        assert settings.schema_names == expected and settings.schema_name == expected[0]
    assert load_settings({"schema": ["x", "y"]}, cwd=tmp_path).schema_names == ("x", "y")
    monkeypatch.setenv("PGMIG_SCHEMA", "billing, audit")
    assert load_settings(cwd=tmp_path).schema_names == ("billing", "audit")


@pytest.mark.parametrize(
    "text, says",
    [
        ('schemas = ["a", "a"]', "named twice"),
        ("schemas = []", "at least one schema"),
        ('schema = "app"\nschemas = ["b"]', "either schema or schemas"),
    ],
)
def test_bad_schemas_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, says: str) -> None:
    from pgmig.errors import ConfigError

    monkeypatch.delenv("PGMIG_SCHEMA", raising=False)
    (tmp_path / "pyproject.toml").write_text(f"[tool.pgmig]\n{text}\n")
    with pytest.raises(ConfigError, match=says):
        load_settings(cwd=tmp_path)


def test_schema_flag_is_repeatable(project: Project) -> None:
    _configure(project, "")
    project.models(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('a', metadata, sa.Column('id', sa.Integer, primary_key=True))\n"
        "sa.Table('b', metadata, sa.Column('id', sa.Integer, primary_key=True), schema='audit')\n"
    )
    result = project.cli("diff", ok=False)
    assert result.returncode == 2
    assert "table audit.b" in result.stderr and "--schema public --schema audit" in result.stderr
    preview = project.cli("--schema", "public", "--schema", "audit", "diff").stdout
    assert "+ schema audit" in preview and "table b" in preview and "table a" in preview
    env_preview = pgmig_cli(
        "diff", cwd=project.root, env={"PGMIG_DATABASE_URL": project.url, "PGMIG_SCHEMA": "public,audit"}
    )
    assert env_preview.returncode == 0 and env_preview.stdout == preview


def test_a_table_in_an_unmanaged_schema_is_an_error() -> None:
    metadata = sa.MetaData()
    sa.Table("a", metadata, sa.Column("id", sa.Integer))
    sa.Table("b", metadata, sa.Column("id", sa.Integer), schema="other")
    registry = Registry("models.py", "the models setting", [metadata])
    with pytest.raises(ModelsError, match=r"table other\.b .*schema 'other'.*not manage") as info:
        merge_tables([registry], ["public"])
    assert info.value.hint is not None and info.value.hint.option == "schemas"
    assert [t.name for t in merge_tables([registry], ["public", "other"])] == ["a", "b"]


def test_schema_app_sql_output_runs_in_psql(project: Project) -> None:
    import shutil
    import subprocess

    psql = shutil.which("psql") or (
        Path("/usr/lib/postgresql/15/bin/psql") if Path("/usr/lib/postgresql/15/bin/psql").exists() else None
    )
    if psql is None:
        pytest.skip("psql is not installed")
    _configure(project, 'schema = "app"')
    project.models(V2)
    project.generate("initial")
    sql = project.cli("up", "--sql").stdout
    # The schema first, the version table with the first revision's row (after the schema exists).
    assert sql.index('CREATE SCHEMA IF NOT EXISTS "app"') < sql.index('"app"."pgmig_revisions"')
    ran = subprocess.run(
        [str(psql), "-X", "-v", "ON_ERROR_STOP=1", "-q", "-d", project.url], input=sql, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert project.cli("diff", "--exit-code").returncode == 0
    assert "pending: none" in project.cli("status").stdout


def _billing(labels: Sequence[str], wide: bool) -> sa.MetaData:
    """A schema whose name needs quoting, with an enum, a check, a unique constraint and an index."""
    metadata = sa.MetaData()
    kind = sa.Enum(*labels, name="Kind", schema="Billing")
    sa.Table("customer", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "Invoice",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.String(40 if wide else 20), nullable=False),
        sa.Column("kind", kind, nullable=False, server_default=labels[0]),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id")),
        sa.Column("total", sa.Numeric(10, 2), sa.CheckConstraint("total >= 0", name="total_positive")),
        sa.UniqueConstraint("number"),
        sa.Index("ix_invoice_kind", "kind", postgresql_where=sa.text(f"kind <> '{labels[-1]}'")),
        schema="Billing",
    )
    return metadata


def test_changes_inside_a_second_schema_round_trip(pgmig_server: Any, database_url: str) -> None:
    schemas = ["public", "Billing"]
    before = _billing(["draft", "sent", "void"], wide=False)
    after = _billing(["draft", "sent", "paid", "void"], wide=True)
    migrate(database_url, before, schemas)
    assert diff(database_url, before, schemas).is_empty
    assert catalog(database_url, schemas) == built_by_create_all(pgmig_server, before, schemas)
    run_sql(
        database_url,
        "INSERT INTO customer (id) VALUES (1)",
        """INSERT INTO "Billing"."Invoice" (id, number, kind, customer_id, total) VALUES (1, 'A-1', 'sent', 1, 5)""",
    )
    rows = 'SELECT id, number, kind::text AS kind, customer_id, total FROM "Billing"."Invoice"'
    kept = fetch(database_url, rows)
    catalog_a = catalog(database_url, schemas)
    up, down = both_ways(database_url, after, schemas)
    assert not any("SCHEMA" in s for s in up.statements())
    apply(database_url, up)
    assert diff(database_url, after, schemas).is_empty
    assert catalog(database_url, schemas) == built_by_create_all(pgmig_server, after, schemas)
    assert fetch(database_url, rows) == kept
    apply(database_url, down)  # the label back out (a type swap), the column narrower again
    assert diff(database_url, before, schemas).is_empty
    assert catalog(database_url, schemas) == catalog_a
    assert fetch(database_url, rows) == kept


def test_two_schemas_neither_public_through_the_cli(project: Project) -> None:
    _configure(project, 'schemas = ["app", "audit"]')
    project.models(
        V1
        + "\n\nclass Event(SQLModel, table=True):\n"
        + "    __table_args__ = {'schema': 'audit'}\n"
        + "    id: Optional[int] = Field(default=None, primary_key=True)\n"
        + "    post_id: Optional[int] = Field(default=None, foreign_key='post.id')\n"
        + "    status: Status = Field(sa_column=sa.Column(sa.Enum(Status, schema='audit'), nullable=False))\n"
    )
    text = project.generate("init").read_text()
    assert 'add_schema(schema_name="app", if_not_exists=True)' in text and 'add_schema(schema_name="audit")' in text
    project.cli("up")
    assert "No changes" in project.cli("diff").stdout
    project.cli("check")
    assert "drift: none" in project.cli("status").stdout
    project.cli("down", "base", "--yes")
    # audit is gone; app stays, holding the version table alone.
    assert _schemas(project.url, ["app", "audit"]) == ["app"]
    project.cli("up")
    assert "No changes" in project.cli("diff").stdout
    assert _schemas(project.url, ["app", "audit"]) == ["app", "audit"]
