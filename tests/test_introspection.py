"""Reading the catalog on two connections: same result as one, one snapshot, safe fallbacks."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, List

import asyncpg
import pytest

from pgmig.errors import DatabaseError
from pgmig.plan.engine import current_state, diff_database, model_context
from pgmig.schema.catalog import read_all
from pgmig.schema.handlers.table import TableHandler
from pgmig.schema.objects import SchemaObject
from pgmig.schema.protocol import DatabaseContext, ObjectHandler
from tests.everything import build as everything_metadata
from tests.helpers import create_all, handlers


def _with_connection(url: str, body: Callable[[Any], Awaitable[None]]) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            await body(conn)
        finally:
            await conn.close()

    asyncio.run(go())


class _Opener:
    """A `connect` that records the connections it opened."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url, self.options, self.opened = url, options, []  # type: ignore[var-annotated]

    async def __call__(self) -> Any:
        self.opened.append(await asyncpg.connect(self.url, **self.options))
        return self.opened[-1]


async def _refuse() -> Any:
    raise AssertionError("no second connection was expected")


class _Busy(ObjectHandler):
    """Keeps the first connection busy so the second reads the next handler."""

    kind = "busy"

    async def from_database(self, db: DatabaseContext) -> List[SchemaObject]:
        await db.connection.fetchval("SELECT pg_sleep(0.3)")
        return []


class _Spy(TableHandler):
    def __init__(self) -> None:
        self.connections: List[Any] = []

    async def from_database(self, db: DatabaseContext) -> List[Any]:
        self.connections.append(db.connection)
        return await super().from_database(db)


class _Broken(ObjectHandler):
    kind = "broken"

    async def from_database(self, db: DatabaseContext) -> List[SchemaObject]:
        await db.fetch("SELECT * FROM no_such_catalog_table")
        return []


def test_two_connections_read_what_one_reads(database_url: str) -> None:
    create_all(database_url, everything_metadata())

    async def body(conn: Any) -> None:
        opener = _Opener(database_url)
        alone = await current_state(DatabaseContext(conn), handlers())
        shared = await current_state(DatabaseContext(conn), handlers(), opener)
        assert len(alone) > 50
        assert shared == alone
        assert len(opener.opened) == 1 and opener.opened[0].is_closed()
        assert not conn.is_in_transaction()

    _with_connection(database_url, body)


def test_the_second_connection_reads_the_first_ones_snapshot(database_url: str) -> None:
    """A table committed after the diff began is seen by neither connection."""

    async def body(conn: Any) -> None:
        other = await asyncpg.connect(database_url)

        async def connect() -> Any:
            await other.execute("CREATE TABLE late (id integer)")  # commits before the second reader starts
            return await asyncpg.connect(database_url)

        try:
            await conn.execute("CREATE TABLE early (id integer)")
            spy = _Spy()
            found = await read_all(DatabaseContext(conn), [_Busy(), spy], connect)
            assert [t.name for t in found[1]] == ["early"]
            assert spy.connections and spy.connections[0] is not conn, "the second connection read the tables"
            names = await conn.fetch("SELECT relname FROM pg_class WHERE relname IN ('early', 'late')")
            assert {r["relname"] for r in names} == {"early", "late"}
        finally:
            await other.close()

    _with_connection(database_url, body)


def test_a_connection_inside_a_transaction_is_read_alone(database_url: str) -> None:
    """Another session could not see the transaction's uncommitted tables."""

    async def body(conn: Any) -> None:
        async with conn.transaction():
            await conn.execute("CREATE TABLE pending (id integer)")
            found = await read_all(DatabaseContext(conn), [_Busy(), TableHandler()], _refuse)
            assert [t.name for t in found[1]] == ["pending"]

    _with_connection(database_url, body)


def test_a_second_connection_that_fails_leaves_the_first_to_read_everything(database_url: str) -> None:
    async def body(conn: Any) -> None:
        await conn.execute("CREATE TABLE only_one (id integer)")
        opener = _Opener(database_url, database="no_such_database_here")
        found = await read_all(DatabaseContext(conn), [_Busy(), TableHandler(), _Busy()], opener)
        assert [[t.name for t in f] for f in found] == [[], ["only_one"], []]
        assert not conn.is_in_transaction()

    _with_connection(database_url, body)


def test_a_failing_read_fails_the_diff_and_closes_the_second_connection(database_url: str) -> None:
    async def body(conn: Any) -> None:
        opener = _Opener(database_url)
        with pytest.raises(DatabaseError, match="no_such_catalog_table"):
            await read_all(DatabaseContext(conn), [_Busy(), _Broken(), TableHandler()], opener)
        assert opener.opened and all(c.is_closed() for c in opener.opened)
        assert not conn.is_in_transaction()

    _with_connection(database_url, body)


class _Logged(TableHandler):
    """Tables, read under another kind name, noting each read in `log`."""

    def __init__(self, kind: str, log: List[Any]) -> None:
        self.kind, self.log = kind, log  # type: ignore[misc]

    async def from_database(self, db: DatabaseContext) -> List[Any]:
        found = list(await super().from_database(db))
        self.log.append(("read", self.kind, db.connection))
        return found


def test_then_waits_until_a_connection_has_nothing_left_to_read(database_url: str) -> None:
    """The second connection reads both quick kinds before normalizing either, while the first is still busy;
    each `then` runs once, on a connection whose transaction allows scratch tables."""

    async def body(conn: Any) -> None:
        log: List[Any] = []

        async def then(handler: ObjectHandler, db: DatabaseContext, found: List[SchemaObject]) -> None:
            async with db.connection.transaction():
                await db.connection.execute("CREATE TEMPORARY TABLE scratch_probe (id integer)")
                await db.connection.execute("DROP TABLE scratch_probe")
            log.append(("then", handler.kind, db.connection, len(found)))

        class _LoggedBusy(_Busy):
            async def from_database(self, db: DatabaseContext) -> List[SchemaObject]:
                found = await super().from_database(db)
                log.append(("read", "busy", db.connection))
                return found

        await conn.execute("CREATE TABLE t (id integer)")
        opener = _Opener(database_url)
        await read_all(DatabaseContext(conn), [_LoggedBusy(), _Logged("one", log), _Logged("two", log)], opener, then)
        helper = opener.opened[0]
        assert [(event[0], event[1], event[2] is helper) for event in log] == [
            ("read", "one", True),
            ("read", "two", True),
            ("then", "one", True),
            ("then", "two", True),
            ("read", "busy", False),
            ("then", "busy", False),
        ]
        assert [event[3] for event in log if event[0] == "then"] == [1, 1, 0]

    _with_connection(database_url, body)


def test_a_diff_inside_the_callers_transaction_sees_its_changes(database_url: str) -> None:
    """Read alone on the caller's connection, normalizing in savepoints that leave the transaction usable."""
    from sqlalchemy import CheckConstraint, Column, Integer, MetaData, Table, Text

    metadata = MetaData()
    Table(
        "t",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("note", Text, server_default="x"),
        CheckConstraint("id > 0"),
    )

    async def body(conn: Any) -> None:
        async with conn.transaction():
            await conn.execute("CREATE TABLE t (id serial PRIMARY KEY, note text DEFAULT 'x', CHECK (id > 0))")
            models = model_context(metadata.sorted_tables, [metadata])
            plan = await diff_database(conn, models, handlers(), connect=_refuse)
            assert plan.is_empty, plan.changes
            assert await conn.fetchval("SELECT count(*) FROM t") == 0  # the transaction is still usable

    _with_connection(database_url, body)


def test_after_a_diff_the_collector_runs_again_with_nothing_young_and_nothing_frozen() -> None:
    """paused_gc promotes what the diff allocated instead of leaving it for the first young collection,
    and leaves no object frozen: a cycle made during the diff is still collected."""
    import gc
    import weakref

    from pgmig.cli.context import paused_gc

    class Node:
        pass

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        kept = [[i] for i in range(50_000)]
        cycle = Node()
        cycle.me = cycle  # type: ignore[attr-defined]
        gone = weakref.ref(cycle)
        del cycle
    assert gc.isenabled()
    assert gc.get_count()[0] < 1_000
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None
    assert len(kept) == 50_000


def test_an_unchanged_schema_is_settled_without_building_a_plan(database_url: str, monkeypatch: Any) -> None:
    """Every model object equal to the database's, and nothing else there: the empty plan
    comes without building states or a plan (checks are normalized, and still count as equal)."""
    import pgmig.plan.engine
    from tests.helpers import diff

    metadata = everything_metadata()
    create_all(database_url, metadata)

    def no_plan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a plan was built for an unchanged schema")

    monkeypatch.setattr(pgmig.plan.engine, "build_plan", no_plan)
    assert diff(database_url, metadata).is_empty


def test_a_database_object_the_models_lack_is_still_dropped(database_url: str) -> None:
    import sqlalchemy as sa

    from pgmig.plan.diff import DESTROY
    from tests.helpers import diff, run_sql

    metadata = sa.MetaData()
    sa.Table(
        "t",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note", sa.Text),
        sa.CheckConstraint("id > 0"),
    )
    create_all(database_url, metadata)
    run_sql(database_url, "CREATE INDEX extra ON t (note)")
    plan = diff(database_url, metadata)
    assert [(c.action, c.kind, c.old.name) for c in plan.changes] == [(DESTROY, "index", "extra")]


def test_a_model_object_given_twice_does_not_hide_a_drop(database_url: str) -> None:
    """Two equal model objects under one key match one database object; the other one is dropped."""
    from pgmig.config.discovery import handler_set
    from pgmig.plan.diff import DESTROY
    from pgmig.schema.handlers.table import Table
    from tests.helpers import run_sql

    class Twice(TableHandler):
        def from_models(self, models: Any) -> List[Any]:
            return [Table(schema="public", name="a"), Table(schema="public", name="a")]

    run_sql(database_url, "CREATE TABLE a ()", "CREATE TABLE b ()")

    async def body(conn: Any) -> None:
        plan = await diff_database(conn, model_context([]), handler_set([Twice()]), connect=_Opener(database_url))
        assert [(c.action, c.old.name) for c in plan.changes] == [(DESTROY, "b")]

    _with_connection(database_url, body)


def test_no_catalog_read_makes_asyncpg_look_up_a_type(database_url: str, monkeypatch: Any) -> None:
    """Every array a handler's query returns is text[] (not name[]): an unknown result type makes
    asyncpg run its type introspection query first, on each new connection (60 ms on a cold one)."""
    from asyncpg import connection as asyncpg_connection

    from tests.helpers import diff

    looked_up: List[Any] = []
    original = asyncpg_connection.Connection._introspect_types

    async def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(args[0] if args else None)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg_connection.Connection, "_introspect_types", spy)
    metadata = everything_metadata()
    create_all(database_url, metadata)
    assert diff(database_url, metadata).is_empty
    assert looked_up == []
