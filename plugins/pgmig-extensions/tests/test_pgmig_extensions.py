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
