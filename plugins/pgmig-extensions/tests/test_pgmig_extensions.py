"""pgmig-extensions against a real PostgreSQL (citext and hstore ship with both PG 15 and 18)."""

from __future__ import annotations

import asyncio
from typing import Any, List

import pytest
import sqlalchemy as sa
from pgmig_extensions import ExtensionHandler, extension
from sqlalchemy.types import UserDefinedType

from pgmig.testing import database_url, pgmig_server  # noqa: F401  (fixtures)
from pgmig.testing.conformance import ConformanceSuite, builtin_handlers, catalog, migrate_to, plan_for

HANDLERS = [*builtin_handlers(), ExtensionHandler]


class CIText(UserDefinedType):
    """citext as a column type, the way an application without sqlalchemy-citext would write it."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "citext"


def _fetch(url: str, query: str, *args: Any) -> List[Any]:
    import asyncpg

    async def go() -> List[Any]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


def _require(url: str, *names: str) -> None:
    """Skip, naming what is missing, on a server built without an extension's files."""
    have = {r[0] for r in _fetch(url, "SELECT name FROM pg_available_extensions")}
    missing = [n for n in names if n not in have]
    if missing:
        pytest.skip(f"extension(s) {', '.join(missing)} not available on this PostgreSQL server")


def models(*names: str, version: Any = None) -> sa.MetaData:
    md = sa.MetaData()
    sa.Table("account", md, sa.Column("id", sa.Integer, primary_key=True))
    for name in names:
        extension(md, name, version=version if name == "citext" else None)
    return md


class TestExtensionConformance(ConformanceSuite):
    kinds = ("extension",)
    handlers = HANDLERS

    def test_conformance(self, database_url: str, pgmig_server: Any) -> None:
        _require(database_url, "citext", "hstore")
        super().test_conformance(database_url, pgmig_server)

    def initial(self) -> sa.MetaData:
        return models("citext")

    def changed(self) -> sa.MetaData:
        return models("citext", "hstore")

    def removed(self) -> sa.MetaData:
        return models()


def test_unpinned_version_accepts_what_is_installed(database_url: str) -> None:
    _require(database_url, "citext")
    migrate_to(database_url, models("citext"), HANDLERS)
    installed = _fetch(database_url, "SELECT extversion FROM pg_extension WHERE extname = 'citext'")[0][0]
    assert plan_for(database_url, models("citext"), HANDLERS).is_empty
    assert plan_for(database_url, models("citext", version=installed), HANDLERS).is_empty


def test_version_update_in_place(database_url: str) -> None:
    _require(database_url, "citext")
    versions = [
        r[0] for r in _fetch(database_url, "SELECT version FROM pg_available_extension_versions WHERE name = 'citext'")
    ]
    if not {"1.5", "1.6"} <= set(versions):
        pytest.skip("citext 1.5 and 1.6 are not both available on this server")
    migrate_to(database_url, models("citext", version="1.5"), HANDLERS)
    plan = migrate_to(database_url, models("citext", version="1.6"), HANDLERS)
    assert plan.statements() == ["ALTER EXTENSION \"citext\" UPDATE TO '1.6'"]
    assert plan_for(database_url, models("citext", version="1.6"), HANDLERS).is_empty


def test_a_column_using_the_type_works_once_the_extension_exists(database_url: str) -> None:
    """The supported path today: the extension comes in a revision before the columns that use it."""
    _require(database_url, "citext")
    migrate_to(database_url, models("citext"), HANDLERS)
    md = models("citext")
    sa.Table("login", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", CIText()))
    migrate_to(database_url, md, HANDLERS)
    assert plan_for(database_url, md, HANDLERS).is_empty
    assert ("extension", "citext") in catalog(database_url, HANDLERS)


def test_model_side_knows_the_types_before_the_extension_exists(database_url: str) -> None:
    _require(database_url, "citext")
    plan = plan_for(database_url, models("citext"), HANDLERS)
    (created,) = [c.new for c in plan.changes if c.kind == "extension"]
    assert ("type", "public", "citext") in created.provides
    assert _fetch(database_url, "SELECT count(*) FROM pg_extension WHERE extname = 'citext'") == [(0,)]


def test_extension_is_created_before_the_column_that_uses_its_type(database_url: str) -> None:
    _require(database_url, "citext")
    md = models("citext")
    sa.Table("login", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", CIText()))
    plan = migrate_to(database_url, md, HANDLERS)
    assert plan_for(database_url, md, HANDLERS).is_empty
    keys = [c.key for c in plan.changes]
    assert keys.index(("extension", "citext")) < keys.index(("column", "public", "login", "email"))


def _calling_fuzzystrmatch() -> sa.MetaData:
    """A table whose default, generated column, check and index call fuzzystrmatch's functions."""
    md = models("fuzzystrmatch")
    sa.Table(
        "person",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("code", sa.Text, server_default=sa.text("soundex('pgmig')")),
        sa.Column("distance", sa.Integer, sa.Computed("levenshtein(name, 'pgmig')", persisted=True)),
        sa.CheckConstraint("difference(name, 'x') >= 0", name="ck_person_difference"),
        sa.Index("ix_person_metaphone", sa.text("metaphone(name, 4)")),
    )
    return md


def test_what_calls_an_extensions_function_is_created_after_it_and_dropped_before(database_url: str) -> None:
    """A default, generated column, check or index calling an extension's function needs the extension:
    the extension `provides` its functions by name (pg_depend, deptype 'e'), and what calls one
    depends on it, both ways (uuid-ossp's uuid_generate_v4() in a default, the common case)."""
    _require(database_url, "fuzzystrmatch")
    md = _calling_fuzzystrmatch()
    plan = plan_for(database_url, md, HANDLERS)
    (created,) = [c.new for c in plan.changes if c.kind == "extension"]
    assert ("function_call", "soundex") in created.provides  # known before it exists (a trial install)
    keys = [c.key for c in migrate_to(database_url, md, HANDLERS).changes]
    extension_at = keys.index(("extension", "fuzzystrmatch"))
    assert extension_at < keys.index(("table", "public", "person")), keys
    assert plan_for(database_url, md, HANDLERS).is_empty
    _fetch(database_url, "INSERT INTO person (name) VALUES ('pgmag')")
    assert _fetch(database_url, "SELECT code, distance FROM person") == [("P252", 1)]
    # Back to nothing: the table (and what calls) goes first, then the extension.
    dropped = [c.key for c in migrate_to(database_url, sa.MetaData(), HANDLERS).changes]
    assert dropped.index(("table", "public", "person")) < dropped.index(("extension", "fuzzystrmatch")), dropped
    assert _fetch(database_url, "SELECT count(*) FROM pg_extension WHERE extname = 'fuzzystrmatch'") == [(0,)]
    # The database's side orders the same: a database that has them is rebuilt from empty in order.
    migrate_to(database_url, md, HANDLERS)
    from pgmig_extensions import EXTENSIONS_QUERY

    (functions,) = [row[4] for row in _fetch(database_url, EXTENSIONS_QUERY) if row[0] == "fuzzystrmatch"]
    assert {"soundex", "levenshtein", "difference", "metaphone"} <= set(functions)
    assert plan_for(database_url, md, HANDLERS).is_empty


def test_domains_and_views_over_an_extension_wait_for_it_both_ways(database_url: str) -> None:
    """A domain over an extension's type (citext) or whose check calls an extension's function, and a
    view calling one: created after the extension, dropped before it."""
    pytest.importorskip("pgmig_views")
    from pgmig_views import ViewHandler, view
    from sqlalchemy.dialects import postgresql

    _require(database_url, "citext", "fuzzystrmatch")
    handlers = [*HANDLERS, ViewHandler]
    md = models("citext", "fuzzystrmatch")
    email = postgresql.DOMAIN("email", CIText(), check="soundex(VALUE::text) <> ''")
    sa.Table("login", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", email))
    view(md, "codes", "SELECT soundex('pgmig') AS code")
    keys = [c.key for c in migrate_to(database_url, md, handlers).changes]
    for extension_name in ("citext", "fuzzystrmatch"):
        assert keys.index(("extension", extension_name)) < keys.index(("domain", "public", "email")), keys
    assert keys.index(("extension", "fuzzystrmatch")) < keys.index(("view", "public", "codes")), keys
    assert plan_for(database_url, md, handlers).is_empty
    assert _fetch(database_url, "SELECT code FROM codes") == [("P252",)]
    dropped = [c.key for c in migrate_to(database_url, sa.MetaData(), handlers).changes]
    assert dropped.index(("view", "public", "codes")) < dropped.index(("extension", "fuzzystrmatch")), dropped
    assert dropped.index(("domain", "public", "email")) < dropped.index(("extension", "citext")), dropped
    assert _fetch(database_url, "SELECT count(*) FROM pg_extension WHERE extname IN ('citext', 'fuzzystrmatch')") == [
        (0,)
    ]
