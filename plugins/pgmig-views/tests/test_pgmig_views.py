"""pgmig-views against a real PostgreSQL: conformance, normal form, ordering, revision files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa
from pgmig_views import ViewHandler, view, view_index

from pgmig.testing import database_url, pgmig_server  # noqa: F401  (fixtures)
from pgmig.testing.conformance import ConformanceSuite, builtin_handlers, catalog, migrate_to, plan_for

HANDLERS = [*builtin_handlers(), ViewHandler]


def _run_sql(url: str, *statements: str) -> None:
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


def models(version: int = 1, email_type: sa.types.TypeEngine = sa.String(80)) -> sa.MetaData:
    """A user table with a plain view (a select) and a materialized view (SQL text) over it."""
    md = sa.MetaData()
    user = sa.Table(
        "user",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", email_type, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    if version == 3:
        return md
    wanted = user.c.active if version == 1 else sa.and_(user.c.active, user.c.email.like("%@%"))
    view(md, "active_user", sa.select(user.c.id, user.c.email).where(wanted))
    view(
        md,
        "email_domain",
        "SELECT split_part(email, '@', 2) AS domain, count(*) AS users FROM \"user\" GROUP BY 1",
        materialized=True,
        depends_on=["user"],
        indexes=[view_index("ix_email_domain", "domain", unique=version == 2)],
    )
    return md


class TestViewConformance(ConformanceSuite):
    kinds = ("view",)
    handlers = HANDLERS

    def initial(self) -> sa.MetaData:
        return models(1)

    def changed(self) -> sa.MetaData:
        return models(2)

    def removed(self) -> sa.MetaData:
        return models(3)


def test_views_written_differently_never_diff(database_url: str) -> None:
    md = models(1)
    migrate_to(database_url, md, HANDLERS)
    # The same queries, spelled the way a person would type them.
    same = sa.MetaData()
    sa.Table(
        "user",
        same,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(80), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    view(same, "active_user", 'select id, email from "user" where active', depends_on=["user"])
    view(
        same,
        "email_domain",
        "select split_part(email, '@', 2) as domain, count(*) as users\n  from public.\"user\"  group by 1;",
        materialized=True,
        indexes=[view_index("ix_email_domain", "domain")],
    )
    plan = plan_for(database_url, same, HANDLERS)
    assert plan.is_empty, [c.to_json() for c in plan.changes]


def test_view_on_view_is_created_after_it(database_url: str) -> None:
    md = models(1)
    view(md, "active_gmail", "SELECT id FROM active_user WHERE email LIKE '%@gmail.com'", depends_on=["active_user"])
    migrate_to(database_url, models(1), HANDLERS)
    plan = migrate_to(database_url, md, HANDLERS)
    assert [c.key[-1] for c in plan.changes] == ["active_gmail"]
    state = catalog(database_url, HANDLERS)
    assert ("view", "public", "active_user") in [k for k in state if k[0] == "view"]
    # Postgres now reports the dependency itself.
    assert plan_for(database_url, md, HANDLERS).is_empty


def test_views_read_by_postgres_depend_on_tables_and_columns(database_url: str) -> None:
    migrate_to(database_url, models(1), HANDLERS)
    plan = plan_for(database_url, sa.MetaData(), HANDLERS)
    drops = [(c.action, c.key) for c in plan.changes if not c.implicit]
    # Both views go before the table they read.
    table_at = drops.index(("destroy", ("table", "public", "user")))
    assert drops.index(("destroy", ("view", "public", "active_user"))) < table_at
    assert drops.index(("destroy", ("view", "public", "email_domain"))) < table_at
    view_obj = next(c.old for c in plan.changes if c.key == ("view", "public", "active_user"))
    assert ("column", "public", "user", "email") in view_obj.dependencies


def test_column_type_change_rebuilds_views_around_it(database_url: str) -> None:
    migrate_to(database_url, models(1), HANDLERS)
    _run_sql(database_url, "INSERT INTO \"user\" (email) VALUES ('a@example.com')")
    wider = models(1, email_type=sa.Text())
    plan = plan_for(database_url, wider, HANDLERS)
    steps = [op.name for op in plan.operations]
    assert steps.index("drop_view") < steps.index("modify_column_type") < steps.index("create_view")
    migrate_to(database_url, wider, HANDLERS)
    assert plan_for(database_url, wider, HANDLERS).is_empty


def test_column_type_change_replaces_the_view(database_url: str) -> None:
    """The view's drop and create are separate changes, so they can surround the column's ALTER."""
    migrate_to(database_url, models(1), HANDLERS)
    plan = plan_for(database_url, models(1, email_type=sa.Text()), HANDLERS)
    view_changes = [c for c in plan.changes if c.key == ("view", "public", "active_user")]
    assert [c.action for c in view_changes] == ["destroy", "create"]
    names = [op.name for op in plan.operations]
    assert names.index("drop_view") < names.index("modify_column_type") < names.index("create_view")


# -- revision files -------------------------------------------------------------------------

MODELS_FILE = """
import sqlalchemy as sa
from pgmig_views import view

metadata = sa.MetaData()
item = sa.Table("item", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("price", sa.Integer))
view(metadata, "cheap_item", sa.select(item.c.id).where(item.c.price < 10))
"""


def _cli(root: Path, url: str, *args: str, hide_plugin: bool = False) -> subprocess.CompletedProcess:
    """Run the pgmig CLI as a user would; `hide_plugin` makes pgmig_views fail to import, as if uninstalled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env["PGMIG_DATABASE_URL"] = url
    env["PGMIG_DEV_URL"] = url  # scratch databases on the test server, not an embedded one left running
    prelude = "import sys; sys.modules['pgmig_views'] = None; " if hide_plugin else ""
    code = prelude + "from pgmig.cli import main; sys.argv[0] = 'pgmig'; main()"
    if not hide_plugin:
        code = "import sys; " + code
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_revision_imports_the_plugin_and_fails_clearly_without_it(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    (tmp_path / "models.py").write_text(textwrap.dedent(MODELS_FILE))
    result = _cli(tmp_path, database_url, "generate", "-m", "items")
    assert result.returncode == 0, result.stdout + result.stderr
    revision = next((tmp_path / "migrations").glob("*.py")).read_text()
    assert "from pgmig_views.ops import CreateView" in revision
    assert "await migrator.actor.run(" in revision and "CreateView(" in revision

    up = _cli(tmp_path, database_url, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    down = _cli(tmp_path, database_url, "down", hide_plugin=True)
    assert down.returncode != 0
    assert "pgmig_views" in down.stderr and "not installed" in down.stderr, down.stderr
    again = _cli(tmp_path, database_url, "down")
    assert again.returncode == 0, again.stdout + again.stderr


def test_reads_only_what_the_schema_has(database_url: str) -> None:
    """No views: one query; plain views only: no index query; the views read are the same either way."""
    import asyncio

    import asyncpg
    from pgmig_views import handler as views_module

    from pgmig.api import DatabaseContext

    async def read() -> "tuple[dict, list]":
        conn = await asyncpg.connect(database_url)
        queries: list = []
        db = DatabaseContext(connection=conn)
        original = db.fetch

        async def counting(query: str, *args: object) -> list:
            queries.append(query)
            return await original(query, *args)

        db.fetch = counting  # type: ignore[method-assign]
        try:
            return await views_module.read_views(db, ["public"]), queries
        finally:
            await conn.close()

    found, queries = asyncio.run(read())
    assert found == {} and queries == [views_module.VIEWS_QUERY]
    _run_sql(database_url, "CREATE TABLE t (id int, name text)", "CREATE VIEW v AS SELECT id, name FROM t")
    found, queries = asyncio.run(read())
    assert list(found) == [("public", "v")] and views_module.VIEW_INDEXES_QUERY not in queries
    assert found["public", "v"].reads and found["public", "v"].outputs == (("id", "integer"), ("name", "text"))
    _run_sql(database_url, "CREATE MATERIALIZED VIEW m AS SELECT id FROM t", "CREATE INDEX m_id ON m (id)")
    found, queries = asyncio.run(read())
    assert sorted(found) == [("public", "m"), ("public", "v")] and views_module.VIEW_INDEXES_QUERY in queries
    assert [name for name, _, _ in found["public", "m"].indexes] == ["m_id"]
