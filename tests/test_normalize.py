"""The normalization service (pgmig.normalize): one path for every kind, without TEMP, and its cache."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, List, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import CheckConstraint, Column, Enum, Index, Integer, MetaData, Numeric, String, Table, func, text

from pgmig.plan.diff import Plan
from pgmig.plan.engine import diff_database, model_context
from pgmig.plan.normalize import NormalForms, normal_forms, normal_types, render
from pgmig.schema.protocol import DatabaseContext
from tests.helpers import create_all, fetch, handlers, run_sql


def _metadata(tables: int = 3) -> MetaData:
    """Checks (named and not), partial indexes over an enum column, expression indexes, defaults, enums."""
    metadata = MetaData()
    status = Enum("v0", "v1", "v2", name="status_0")
    for n in range(tables):
        table = Table(
            f"item_{n}",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("status", status, nullable=False, server_default="v1"),
            Column("price", Numeric(10, 2), server_default="0"),
            Column("name", String(40), nullable=False, server_default=""),
            Column("created", String(20), server_default=text("now()::text")),
            CheckConstraint("price >= 0", name=f"ck_item_{n}_price"),
            CheckConstraint("length(name) < 50"),
        )
        Index(f"ix_item_{n}_live", table.c.id, postgresql_where=table.c.status != "v0")
        Index(f"ix_item_{n}_lower", func.lower(table.c.name))
        Index(f"ix_item_{n}_dear", table.c.status, postgresql_where=table.c.price > 10)
    return metadata


def _diff(url: str, metadata: MetaData, service: Optional[NormalForms] = None) -> Plan:
    import asyncpg

    models = model_context(list(metadata.sorted_tables), [metadata], "public")

    async def go() -> Plan:
        conn = await asyncpg.connect(url)
        try:
            return await diff_database(
                conn, models, handlers(), connect=lambda: asyncpg.connect(url), normal_forms=service
            )
        finally:
            await conn.close()

    return asyncio.run(go())


def _as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:secret@{host}"))


def test_unchanged_schema_read_by_a_role_without_temp_has_no_changes(database_url: str) -> None:
    """No TEMPORARY privilege: the scratch objects go to the target schema, and nothing is reported."""
    database = urlsplit(database_url).path.lstrip("/")
    role = f"nt_{database}"[:60]
    run_sql(
        database_url,
        f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'secret'",
        f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
        f'GRANT ALL ON SCHEMA public TO "{role}"',
    )
    try:
        url = _as_role(database_url, role)
        assert fetch(url, "SELECT has_database_privilege(current_database(), 'TEMPORARY') AS t") == [{"t": False}]
        metadata = _metadata()
        create_all(url, metadata)
        service = NormalForms()
        plan = _diff(url, metadata, service)
        assert plan.changes == []
        # It did normalize (the partial indexes over the enum differ in spelling), in the target schema.
        assert service.scratch_statements
        assert all("TEMPORARY" not in script for script in service.scratch_statements)
        # Nothing is left behind.
        assert fetch(url, "SELECT relname FROM pg_class WHERE relname LIKE 'pgmig\\_%'") == []
    finally:
        run_sql(database_url, f'DROP OWNED BY "{role}" CASCADE', f'DROP ROLE "{role}"')


def test_a_role_that_can_create_nowhere_reports_no_unverified_change(database_url: str) -> None:
    """Neither TEMPORARY nor CREATE on the schema: nothing is normalized, a warning says so, and
    objects that differ from the database's only in spelling are not reported as changes."""
    from pgmig.plan.normalize import NormalizationWarning

    database = urlsplit(database_url).path.lstrip("/")
    role = f"ro_{database}"[:60]
    metadata = _metadata(2)
    create_all(database_url, metadata)
    run_sql(
        database_url,
        f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'secret'",
        f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC',
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
    )
    try:
        service = NormalForms()
        with pytest.warns(NormalizationWarning):
            plan = _diff(_as_role(database_url, role), metadata, service)
        assert plan.changes == []
        assert service.refused and service.scratch_statements == []
        # A real change is still reported.
        changed = _metadata(2)
        changed.tables["item_0"].append_column(Column("extra", Integer))
        with pytest.warns(NormalizationWarning):
            plan = _diff(_as_role(database_url, role), changed, NormalForms())
        assert [change.key for change in plan.changes] == [("column", "public", "item_0", "extra")]
        # So is a changed expression: without the server the texts are compared loosely, not ignored.
        changed = _metadata(2)
        table = changed.tables["item_1"]
        for constraint in list(table.constraints):
            if constraint.name == "ck_item_1_price":
                table.constraints.remove(constraint)
        table.append_constraint(CheckConstraint("price >= 5", name="ck_item_1_price"))
        with pytest.warns(NormalizationWarning):
            plan = _diff(_as_role(database_url, role), changed, NormalForms())
        assert [change.key[-1] for change in plan.changes] == ["ck_item_1_price"]
    finally:
        run_sql(database_url, f'DROP OWNED BY "{role}" CASCADE', f'DROP ROLE "{role}"')


def test_the_same_schema_with_temp_has_no_changes_either(database_url: str) -> None:
    metadata = _metadata()
    create_all(database_url, metadata)
    service = NormalForms()
    assert _diff(database_url, metadata, service).changes == []
    assert service.scratch_statements and all("TEMPORARY" in s for s in service.scratch_statements)


def test_second_diff_of_an_unchanged_schema_builds_nothing(database_url: str, tmp_path: Path) -> None:
    metadata = _metadata()
    create_all(database_url, metadata)
    path = tmp_path / ".pgmig" / "normal-forms.json"
    first = NormalForms(path)
    assert _diff(database_url, metadata, first).changes == []
    assert first.scratch_statements  # what the server said is now on disk
    assert path.exists()
    second = NormalForms(path)
    assert _diff(database_url, metadata, second).changes == []
    assert second.scratch_statements == []
    # The enum the partial indexes and the checks' table read changes: the kept renderings could be stale.
    run_sql(database_url, "ALTER TYPE status_0 RENAME VALUE 'v2' TO 'v3'")
    third = NormalForms(path)
    _diff(database_url, metadata, third)
    assert any("INDEX" in script for script in third.scratch_statements)
    # A different search path is another key as well.
    run_sql(database_url, "ALTER TYPE status_0 RENAME VALUE 'v3' TO 'v2'")
    assert _diff(database_url, metadata, NormalForms(path)).changes == []


def _render_in(url: str, work: Any) -> Any:
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await work(DatabaseContext(connection=conn))
        finally:
            await conn.close()

    return asyncio.run(go())


def test_a_failing_item_falls_back_one_by_one(database_url: str) -> None:
    async def work(db: DatabaseContext) -> Any:
        return await normal_types(db, ["integer", "no_such_type", "varchar(20)"])

    assert _render_in(database_url, work) == {
        "integer": "integer",
        "no_such_type": "no_such_type",
        "varchar(20)": "character varying(20)",
    }


def test_chunks_stay_within_the_lock_budget(database_url: str) -> None:
    """Each chunk's savepoint is rolled back once read, releasing its locks; a tiny budget makes many chunks."""
    from pgmig.schema.handlers.index import IndexSpelling

    run_sql(database_url, "CREATE TABLE t (a integer, b text)")
    on_t = ("public", "t")
    shapes: List[Any] = [(on_t, (), (f"(a + {n})",), False, "btree", None, (), False, None) for n in range(7)] + [
        (on_t, (), ("nope",), False, "btree", None, (), False, None)
    ]

    async def work(db: DatabaseContext) -> Any:
        service = NormalForms()
        service._budget = 4  # two indexes (and their table copies) a chunk
        async with normal_forms(service):
            rendered = await render(db, IndexSpelling(), shapes)
        return service, rendered

    service, rendered = _render_in(database_url, work)
    assert rendered[shapes[-1]] is None  # no such column: could not render
    assert all(f"a + {n}" in rendered[shape] for n, shape in enumerate(shapes[:7]))
    assert len(service.scratch_statements) >= 4


@pytest.mark.parametrize("cached", [False, True])
def test_no_path_no_file(database_url: str, tmp_path: Path, cached: bool) -> None:
    metadata = _metadata(1)
    create_all(database_url, metadata)
    _diff(database_url, metadata, NormalForms(tmp_path / "nf.json" if cached else None))
    assert (tmp_path / "nf.json").exists() is cached


def test_the_user_types_print_reads_every_user_type_once(database_url: str) -> None:
    """Renderers that read user types (views) get a cache key; a failed print query never aborts the reading transaction.

    The print's subquery has a `pg_type t` of its own: an outer `t` made its
    WHERE always true, so with two user types the query failed ("more than one
    row returned by a subquery"), the views' cache was off, and the snapshot
    transaction of the catalog read was left aborted.
    """
    from pgmig.plan.normalize import _stamp, _user_types

    run_sql(database_url, "CREATE TYPE mood AS ENUM ('a', 'b')", "CREATE TYPE pair AS (x int, y text)")

    async def go() -> "tuple[Optional[str], Optional[str], int]":
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction(isolation="repeatable_read"):
                db = DatabaseContext(connection=conn, schema="public", version_table="pgmig_revisions")
                before = await _user_types(db)
                stamp = await _stamp(db)
                return before, stamp, int(await conn.fetchval("SELECT 1"))  # the transaction still works
        finally:
            await conn.close()

    user_types, stamp, one = asyncio.run(go())
    assert user_types is not None and stamp is not None and one == 1
