"""Tables and columns against the real server: from empty, round trips, no false positives."""

from __future__ import annotations

import datetime
import decimal
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from pgmig.plan import CREATE, DESTROY, MIGRATE
from tests.helpers import assert_roundtrip, create_all, diff, fetch, migrate, run_sql, snapshot


def article(*extra: sa.Column, name_type: sa.types.TypeEngine = sa.String(20), **kw) -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "article",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", name_type, nullable=kw.get("title_nullable", True), server_default=kw.get("title_default")),
        *extra,
    )
    return md


def test_from_empty_then_nothing_left(database_url: str, pgmig_server) -> None:
    md = article(sa.Column("body", sa.Text, nullable=False, server_default=""))
    plan = diff(database_url, md)
    assert [c.action for c in plan.changes if c.kind in ("table", "column")] == [CREATE] * 4
    kinds = [c.kind for c in plan.changes]
    assert kinds.index("table") < kinds.index("column"), "a table is created before its columns"
    migrate(database_url, md)
    assert diff(database_url, md).is_empty
    scratch = pgmig_server.create_database()
    try:
        create_all(scratch, md)
        assert snapshot(database_url) == snapshot(scratch)
    finally:
        pgmig_server.drop_database(scratch)


def test_every_common_type_has_no_false_positive(database_url: str) -> None:
    md = sa.MetaData()
    sa.Table(
        "everything",
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("small", sa.SmallInteger, server_default="0"),
        sa.Column("flag", sa.Boolean, server_default=sa.false()),
        sa.Column("name", sa.String, server_default="it's"),
        sa.Column("code", sa.String(12)),
        sa.Column("letter", sa.CHAR(1)),
        sa.Column("body", sa.Text),
        sa.Column("price", sa.Numeric(10, 2), server_default="0"),
        sa.Column("ratio", sa.Float),
        sa.Column("real", sa.REAL),
        sa.Column("day", sa.Date, server_default=sa.text("CURRENT_DATE")),
        sa.Column("at", sa.Time),
        sa.Column("created", sa.DateTime, server_default=sa.func.now()),
        sa.Column("created_tz", sa.DateTime(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("precise", pg.TIMESTAMP(precision=3)),
        sa.Column("span", sa.Interval),
        sa.Column("uid", sa.Uuid, server_default=sa.text("gen_random_uuid()")),
        sa.Column("blob", sa.LargeBinary),
        sa.Column("doc", sa.JSON),
        sa.Column("docb", pg.JSONB, server_default=sa.text("'{}'::jsonb")),
        sa.Column("tags", pg.ARRAY(sa.String(30)), server_default="{}"),
        sa.Column("matrix", pg.ARRAY(sa.Integer, dimensions=2)),
        sa.Column("ident", sa.Integer, sa.Identity(always=True)),
        comment="all the types",
    )
    create_all(database_url, md)
    plan = diff(database_url, md)
    assert plan.is_empty, [c.to_json() for c in plan.changes]


def test_serial_and_identity_from_empty(database_url: str) -> None:
    md = sa.MetaData()
    sa.Table("a", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer))
    sa.Table("b", md, sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True))
    migrate(database_url, md)
    assert diff(database_url, md).is_empty
    run_sql(database_url, "INSERT INTO a (n) VALUES (1), (2)", "INSERT INTO b DEFAULT VALUES")
    assert [r["id"] for r in fetch(database_url, "SELECT id FROM a ORDER BY id")] == [1, 2]


def test_add_columns_keeps_rows(database_url: str, pgmig_server) -> None:
    plan = assert_roundtrip(
        pgmig_server,
        database_url,
        article(),
        article(
            sa.Column("subtitle", sa.String(50)),
            sa.Column("views", sa.Integer, nullable=False, server_default="0"),
        ),
        seed=["INSERT INTO article (title) VALUES ('a'), ('b')"],
        rows_query="SELECT id, title FROM article ORDER BY id",
    )
    assert {op.name for op in plan.operations} == {"add_column"}
    assert fetch(database_url, "SELECT count(*) AS n FROM article")[0]["n"] == 2


def test_widen_and_change_types(database_url: str, pgmig_server) -> None:
    plan = assert_roundtrip(
        pgmig_server,
        database_url,
        article(sa.Column("n", sa.Integer)),
        article(sa.Column("n", sa.BigInteger), name_type=sa.Text),
        seed=["INSERT INTO article (title, n) VALUES ('hello', 7)"],
        rows_query="SELECT id, title, n FROM article",
    )
    by_column = {op.column_name: op for op in plan.operations if op.name == "modify_column_type"}
    assert by_column["title"].using is None, "varchar -> text needs no cast"
    assert by_column["n"].using == '"n"::bigint'


def test_nullability_and_defaults(database_url: str, pgmig_server) -> None:
    plan = assert_roundtrip(
        pgmig_server,
        database_url,
        article(),
        article(title_nullable=False, title_default="untitled"),
        seed=["INSERT INTO article (title) VALUES ('kept')"],
        rows_query="SELECT title FROM article",
    )
    assert [op.name for op in plan.operations] == ["set_column_default", "add_not_null"]
    run_sql(database_url, "INSERT INTO article DEFAULT VALUES")
    assert fetch(database_url, "SELECT title FROM article ORDER BY id")[-1]["title"] is None


def test_change_default_expression(database_url: str, pgmig_server) -> None:
    assert_roundtrip(
        pgmig_server,
        database_url,
        article(sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now())),
        article(sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("'2020-01-01 00:00:00+00'"))),
    )


def test_drop_column_and_table(database_url: str) -> None:
    full = article(sa.Column("gone", sa.Integer))
    sa.Table("other", full, sa.Column("id", sa.Integer, primary_key=True), sa.Column("x", sa.Integer))
    migrate(database_url, full)
    plan = migrate(database_url, article())
    dropped = {(c.kind, c.key[-1], c.implicit) for c in plan.changes if c.action == DESTROY}
    assert ("column", "gone", False) in dropped
    assert ("table", "other", False) in dropped
    assert ("column", "x", True) in dropped, "columns of a dropped table go with it"
    statements = plan.statements()
    assert not any('"x"' in s for s in statements), statements
    assert all(op.hazards() == ("deletes_data",) for op in plan.operations if op.name.startswith("drop_"))
    assert diff(database_url, article()).is_empty


def test_comments(database_url: str, pgmig_server) -> None:
    md_a = article()
    md_b = sa.MetaData()
    sa.Table(
        "article", md_b,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(20), comment="the 'title'"),
        comment="articles",
    )
    assert_roundtrip(pgmig_server, database_url, md_a, md_b)


def test_version_table_and_other_schemas_are_ignored(database_url: str) -> None:
    run_sql(
        database_url,
        "CREATE TABLE pgmig_revisions (id text)",
        "CREATE SCHEMA other",
        "CREATE TABLE other.elsewhere (id int)",
        "CREATE VIEW article_view AS SELECT 1 AS one",
    )
    md = article()
    migrate(database_url, md)
    plan = diff(database_url, md)
    assert plan.is_empty, [c.to_json() for c in plan.changes]


def test_managed_schema(database_url: str) -> None:
    run_sql(database_url, "CREATE SCHEMA app")
    md = sa.MetaData(schema="app")
    sa.Table("things", md, sa.Column("id", sa.Integer, primary_key=True))
    plan = migrate(database_url, md, schema="app")
    assert any('"app"."things"' in s for s in plan.statements())
    assert diff(database_url, md, schema="app").is_empty
    assert fetch(database_url, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")[0]["n"] == 0


def test_hostile_names_are_quoted(database_url: str, pgmig_server) -> None:
    md_a = sa.MetaData()
    sa.Table('we"ird; DROP TABLE x', md_a, sa.Column("select", sa.Integer), sa.Column("Mixed Case ü", sa.Text))
    md_b = sa.MetaData()
    sa.Table(
        'we"ird; DROP TABLE x', md_b,
        sa.Column("select", sa.BigInteger, server_default="1"),
        sa.Column("Mixed Case ü", sa.Text, server_default="it's; --"),
    )
    assert_roundtrip(pgmig_server, database_url, md_a, md_b, seed=['INSERT INTO "we""ird; DROP TABLE x" ("select") VALUES (5)'])


def test_migrate_change_shows_old_and_new(database_url: str) -> None:
    migrate(database_url, article(sa.Column("n", sa.Integer)))
    plan = diff(database_url, article(sa.Column("n", sa.BigInteger, nullable=False)))
    (change,) = [c for c in plan.changes if c.action == MIGRATE]
    assert change.differences() == {"data_type": ("integer", "bigint"), "nullable": (True, False)}


def test_preview_tree_groups_by_table(database_url: str) -> None:
    from rich.console import Console

    from pgmig.ui import print_plan

    migrate(database_url, article(sa.Column("old", sa.Integer)))
    md = article(sa.Column("new", sa.Integer))
    sa.Table("tag", md, sa.Column("id", sa.Integer, primary_key=True))
    console = Console(record=True, width=200)
    print_plan(console, diff(database_url, md), "plan")
    text = console.export_text()
    assert "+ column new integer" in text
    assert "- column old integer [deletes_data]" in text
    assert "+ table tag" in text
    assert text.index("table article") < text.index("+ column new")
