"""Reading the database side: the handlers' catalog reads, on two connections sharing one snapshot.

Each handler reads its kind with one or two set-based queries; on one
connection they run one after another. When the caller can open another
connection (`connect`), the handlers' reads are shared between two, both
inside REPEATABLE READ transactions on the snapshot the first one exported
(as pg_dump's parallel mode does): every handler sees the same catalog,
whatever DDL other sessions commit meanwhile.

Two, not more: at 1,000 tables on a 2-core machine a second connection
took the median diff from ~620 ms to ~540 ms and a third lost it again
(opening a connection costs both sides CPU, and the largest read, columns,
is a third of the total anyway).

The transactions are not READ ONLY: the engine normalizes each kind's model
objects on one of these connections once the reading is shared out, and
that creates scratch tables (in savepoints that are rolled back; nothing is
written).

A connection already inside a transaction is read alone: another session
could not see what that transaction has changed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from pgmig.db.quoting import quote_literal
from pgmig.schema.objects import SchemaObject
from pgmig.schema.protocol import DatabaseContext, ObjectHandler

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg

Connect = Callable[[], Awaitable["asyncpg.Connection"]]
Jobs = Iterator[Tuple[int, ObjectHandler]]
Results = List[Optional[List[SchemaObject]]]
Then = Callable[[ObjectHandler, DatabaseContext, List[SchemaObject]], Awaitable[None]]

# The column list of 5,000 tables (60,000 rows with their defaults) sorts on
# disk with the default 4MB; for these transactions only.
_WORK_MEM = "SET LOCAL work_mem = '64MB'"


async def read_all(
    db: DatabaseContext,
    handlers: Sequence[ObjectHandler],
    connect: Optional[Connect] = None,
    then: Optional[Then] = None,
    started: Optional[Callable[[], None]] = None,
    ready: Callable[[], bool] = lambda: False,
) -> List[List[SchemaObject]]:
    """Each handler's `from_database`, in the handlers' order.

    `then(handler, db, objects)`, when given, runs after a handler's read, on
    a reading connection (the engine normalizes that kind's model objects
    there): right after a read if `ready()` says what it needs is there (the
    model objects, built meanwhile on a thread), else on the first
    connection left with nothing to read; so no connection waits on it while
    there is reading to do. `started()`, when given, is called as the
    reads begin, after the round trips that set up the transactions: work
    that competes with the event loop for the interpreter (that thread)
    starts there rather than slowing them down.
    """
    results: Results = [None] * len(handlers)
    # Heaviest reads first (stable: handlers' order otherwise); results keep the handlers' order.
    jobs: Jobs = iter(sorted(enumerate(handlers), key=lambda job: -getattr(job[1], "read_weight", 1)))
    worker = _Worker(jobs, results, then, ready)
    if connect is None or len(handlers) < 2 or db.connection.is_in_transaction():
        if started is not None:
            started()
        await worker.run(db)
        return [found if found is not None else [] for found in results]
    # Not READ ONLY: normalizing creates scratch tables (in savepoints, rolled back).
    async with db.connection.transaction(isolation="repeatable_read"):
        # One round trip: SET LOCAL work_mem, and the snapshot the second connection joins.
        snapshot: str = await db.connection.fetchval(
            "SELECT pg_catalog.pg_export_snapshot() FROM pg_catalog.set_config('work_mem', '64MB', true)"
        )
        if started is not None:
            started()
        tasks = [
            asyncio.ensure_future(worker.run(db)),
            asyncio.ensure_future(_helper(db, connect, snapshot, worker)),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            # The helper closes its connection on the way out: wait for it.
            await asyncio.gather(*tasks, return_exceptions=True)
    return [found if found is not None else [] for found in results]


def _kept(found: Iterable[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
    """`found` without the objects `db.exclude` leaves out: the same filter for every kind, plugins' too."""
    if not db.exclude:
        return list(found)
    return [obj for obj in found if not db.exclude.excludes(obj)]


class _Worker:
    """The loop each connection runs: reads, and the `then` calls, whichever connection is free.

    The reads come from one shared iterator, so each runs once. A finished
    read's `then` call waits in a shared list until `ready()` (what it needs
    is there: the model objects) or until a connection has nothing left to
    read; a connection that finishes a read while `ready()` runs the waiting
    calls before it takes the next read. So no connection waits on `then`
    while there is reading to do, and none leaves the calls to the end once
    they can run (any connection of the snapshot will do for them).
    """

    def __init__(self, jobs: Jobs, results: Results, then: Optional[Then], ready: Callable[[], bool]) -> None:
        self.jobs = jobs
        self.results = results
        self.then = then
        self.ready = ready
        self.held: List[Tuple[ObjectHandler, List[SchemaObject]]] = []

    async def run(self, db: DatabaseContext) -> None:
        for index, handler in self.jobs:
            found = self.results[index] = _kept(await handler.from_database(db), db)
            if self.then is not None:
                self.held.append((handler, found))
                if self.ready():
                    await self._release(db)
        await self._release(db)

    async def _release(self, db: DatabaseContext) -> None:
        while self.held:
            assert self.then is not None
            handler, found = self.held.pop(0)
            await self.then(handler, db, found)


async def _helper(db: DatabaseContext, connect: Connect, snapshot: str, worker: _Worker) -> None:
    """The second reader; if it cannot connect or join the snapshot, the first reads everything."""
    try:
        conn = await connect()
    except Exception:  # a full server, a refused login: not worth failing the diff for
        return
    try:
        try:
            # asyncpg's own transaction, so that savepoints (normalizing) work inside it.
            await conn.transaction(isolation="repeatable_read").start()
            await conn.execute(f"SET TRANSACTION SNAPSHOT {quote_literal(snapshot)}; {_WORK_MEM}")
        except Exception:  # e.g. a transaction-pooling proxy in between
            return
        await worker.run(replace(db, connection=conn))
    finally:
        await _close(conn)


async def _close(conn: Any) -> None:
    try:
        await asyncio.wait_for(conn.close(), timeout=5)
    except Exception:
        conn.terminate()


# -- objects that depend on columns, whatever their kind (pg_depend) ---------------------------

# Everything with a normal dependency on one of the given columns, except what
# pgmig's own kinds are (indexes and sequences: pg_class; constraints; defaults),
# named as Postgres describes it. A view depends through its rewrite rule.
COLUMN_DEPENDENTS_QUERY = """
SELECT wanted.table_name, wanted.column_name,
       CASE d.classid
           WHEN 'pg_catalog.pg_trigger'::regclass THEN 'trigger'
           WHEN 'pg_catalog.pg_rewrite'::regclass THEN 'view'
           WHEN 'pg_catalog.pg_policy'::regclass THEN 'policy'
           WHEN 'pg_catalog.pg_statistic_ext'::regclass THEN 'statistics'
           ELSE d.classid::regclass::text
       END AS kind,
       COALESCE(tg.tgname, vc.relname, pol.polname, st.stxname) AS name,
       pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS description
FROM unnest($2::text[], $3::text[]) AS wanted(table_name, column_name)
JOIN pg_catalog.pg_namespace n ON n.nspname = $1
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = wanted.table_name
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = wanted.column_name
JOIN pg_catalog.pg_depend d
  ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid = a.attnum
 AND d.deptype = 'n'
LEFT JOIN pg_catalog.pg_trigger tg ON d.classid = 'pg_catalog.pg_trigger'::regclass AND tg.oid = d.objid
LEFT JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.oid = d.objid
LEFT JOIN pg_catalog.pg_class vc ON vc.oid = r.ev_class
LEFT JOIN pg_catalog.pg_policy pol ON d.classid = 'pg_catalog.pg_policy'::regclass AND pol.oid = d.objid
LEFT JOIN pg_catalog.pg_statistic_ext st ON d.classid = 'pg_catalog.pg_statistic_ext'::regclass AND st.oid = d.objid
WHERE d.classid NOT IN ('pg_catalog.pg_class'::regclass, 'pg_catalog.pg_constraint'::regclass,
                        'pg_catalog.pg_attrdef'::regclass)
  AND NOT COALESCE(tg.tgisinternal, false)
  AND (r.oid IS NULL OR r.ev_class <> c.oid)
ORDER BY 1, 2, 3, 4
"""


# Objects that depend on a type the plan drops or replaces (an enum's type swap), other than
# the columns of tables and views (the swap converts those; views over them are found through
# their columns), indexes and constraints (a predicate's constant of the type: modeled, and
# carried around the swap) and the type's own array type (an internal dependency).
TYPE_DEPENDENTS_QUERY = """
SELECT wanted.type_name,
       CASE d.classid
           WHEN 'pg_catalog.pg_proc'::regclass THEN 'function'
           WHEN 'pg_catalog.pg_type'::regclass THEN 'type'
           WHEN 'pg_catalog.pg_class'::regclass THEN 'type'
           WHEN 'pg_catalog.pg_rewrite'::regclass THEN 'view'
           ELSE d.classid::regclass::text
       END AS kind,
       COALESCE(p.proname, t.typname, c.relname, vc.relname) AS name,
       pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS description
FROM unnest($2::text[]) AS wanted(type_name)
JOIN pg_catalog.pg_namespace n ON n.nspname = $1
JOIN pg_catalog.pg_type ty ON ty.typnamespace = n.oid AND ty.typname = wanted.type_name
JOIN pg_catalog.pg_depend d
  ON d.refclassid = 'pg_catalog.pg_type'::regclass AND d.refobjid = ty.oid AND d.deptype = 'n'
LEFT JOIN pg_catalog.pg_proc p ON d.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = d.objid
LEFT JOIN pg_catalog.pg_type t ON d.classid = 'pg_catalog.pg_type'::regclass AND t.oid = d.objid
LEFT JOIN pg_catalog.pg_class c ON d.classid = 'pg_catalog.pg_class'::regclass AND c.oid = d.objid
LEFT JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.oid = d.objid
LEFT JOIN pg_catalog.pg_class vc ON vc.oid = r.ev_class
WHERE NOT (d.classid = 'pg_catalog.pg_class'::regclass AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'i', 'I'))
  AND d.classid NOT IN ('pg_catalog.pg_constraint'::regclass, 'pg_catalog.pg_attrdef'::regclass)
ORDER BY 1, 2, 3, 4
"""


@dataclass(frozen=True)
class ColumnDependent:
    """An object of the database that depends on a column, or on a type (`column` empty, `table`
    the type's name): `kind` is the pgmig kind that would model it (`trigger`, `view`, `policy`,
    `statistics`, `function`, `type`, else the catalog's name)."""

    kind: str
    name: str
    table: str
    column: str
    description: str

    @property
    def depends_on(self) -> str:
        """What it depends on, in words: `column provider of account`, `type ws_status`."""
        return f"column {self.column} of {self.table}" if self.column else f"type {self.table}"

    def to_json(self) -> Dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "table": self.table,
            "column": self.column,
            "description": self.description,
        }


async def column_dependents(
    connection: "asyncpg.Connection", schema: str, columns: Sequence[Tuple[str, str]]
) -> List[ColumnDependent]:
    """What depends on each (table, column) of `schema` in `pg_depend` (a normal dependency),
    apart from indexes, constraints and defaults. One query; none when `columns` is empty."""
    if not columns:
        return []
    rows = await connection.fetch(
        COLUMN_DEPENDENTS_QUERY, schema, [table for table, _ in columns], [column for _, column in columns]
    )
    return [
        ColumnDependent(row["kind"], row["name"] or "", row["table_name"], row["column_name"], row["description"])
        for row in rows
    ]


async def type_dependents(connection: "asyncpg.Connection", schema: str, types: Sequence[str]) -> List[ColumnDependent]:
    """What depends on each type of `schema` named in `types` in `pg_depend` (a normal dependency),
    apart from table and view columns: functions, domains, composite types. One query; none when
    `types` is empty."""
    if not types:
        return []
    rows = await connection.fetch(TYPE_DEPENDENTS_QUERY, schema, list(types))
    return [ColumnDependent(row["kind"], row["name"] or "", row["type_name"], "", row["description"]) for row in rows]


__all__ = ["ColumnDependent", "Connect", "column_dependents", "read_all", "type_dependents"]
