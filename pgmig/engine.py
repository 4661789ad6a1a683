"""The library API: read both sides into schema states and plan the difference.

Everything the CLI does goes through here, so pgmig works the same when
embedded in a test suite or a deploy script.
"""

from __future__ import annotations

import asyncio
import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence

from .handler import DatabaseContext, ModelContext
from .introspection import Connect, read_all
from .objects import SchemaObject, SchemaState
from .plan import Plan, build_plan
from .plugins import HandlerSet
from .timing import NoTimings, Timings

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg


def model_context(tables: Sequence[Any], metadata: Sequence[Any] = (), schema: str = "public") -> ModelContext:
    if not metadata:
        seen: dict = {}
        for table in tables:
            seen.setdefault(id(table.metadata), table.metadata)
        metadata = list(seen.values())
    return ModelContext(metadata=list(metadata), tables=list(tables), schema=schema)


def desired_objects(models: ModelContext, handlers: HandlerSet) -> List[SchemaObject]:
    objects: List[SchemaObject] = []
    for handler in handlers.handlers:
        objects.extend(handler.from_models(models))
    return objects


async def desired_state(
    models: ModelContext,
    handlers: HandlerSet,
    db: Optional[DatabaseContext],
    current: Optional[SchemaState] = None,
    objects: Optional[List[SchemaObject]] = None,
) -> SchemaState:
    """The models' objects (`objects` when already built), normalized through the server when one is connected.

    Objects already equal to the database's (`current`) are in normal form by
    definition and skip the server round trip: on an unchanged schema that is
    nearly all of them, and normalizing is the costly part of a diff.
    """
    if objects is None:
        objects = desired_objects(models, handlers)
    if db is None:
        return SchemaState(objects)
    by_kind: Dict[str, List[SchemaObject]] = {}
    for obj in objects:
        if current is None:
            by_kind.setdefault(obj.kind, []).append(obj)
            continue
        old = current.get(obj.key)
        if old is None or old != obj:
            by_kind.setdefault(obj.kind, []).append(obj)
    replacements: Dict[int, SchemaObject] = {}
    for handler in handlers.handlers:
        mine = by_kind.get(handler.kind)
        if mine:
            normalized = await handler.normalize(mine, db)
            replacements.update({id(a): b for a, b in zip(mine, normalized)})
    return SchemaState(replacements.get(id(obj), obj) for obj in objects)


async def current_state(db: DatabaseContext, handlers: HandlerSet, connect: Optional[Connect] = None) -> SchemaState:
    """The database's objects; with `connect`, read on two connections sharing one snapshot."""
    found = await read_all(db, handlers.handlers, connect)
    return SchemaState(obj for objects in found for obj in objects)


async def diff_database(
    connection: "asyncpg.Connection",
    models: ModelContext,
    handlers: HandlerSet,
    *,
    schema: str = "public",
    version_table: str = "pgmig_revisions",
    timings: Optional[Timings] = None,
    connect: Optional[Connect] = None,
) -> Plan:
    """The plan that takes the database behind `connection` to the models.

    `connect` (an async callable opening another connection to the same
    database) lets the catalog reads run side by side; see introspection.py.
    """
    up, _ = await _plans(connection, models, handlers, schema, version_table, timings, both=False, connect=connect)
    return up


async def _plans(
    connection: "asyncpg.Connection",
    models: ModelContext,
    handlers: HandlerSet,
    schema: str,
    version_table: str,
    timings: Optional[Timings],
    both: bool,
    connect: Optional[Connect] = None,
) -> "tuple[Plan, Optional[Plan]]":
    with paused_gc():
        return await _plans_unpaused(connection, models, handlers, schema, version_table, timings, both, connect)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while diffing.

    A diff allocates a few objects per column and per catalog row and frees
    them all at the end; on a large schema the collector would otherwise run
    full collections over everything the process holds (SQLAlchemy, the
    models) several times, which cost up to a third of a diff at 1,000 tables.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _plans_unpaused(
    connection: "asyncpg.Connection",
    models: ModelContext,
    handlers: HandlerSet,
    schema: str,
    version_table: str,
    timings: Optional[Timings],
    both: bool,
    connect: Optional[Connect],
) -> "tuple[Plan, Optional[Plan]]":
    """Both sides, then the plan(s).

    Building the model objects is Python work and reading the catalog is
    mostly the server's, so the models are built on a worker thread while
    the catalog queries run: the `load` and `introspect` phases overlap.
    """
    timings = timings or NoTimings()
    db = DatabaseContext(connection=connection, schema=schema, version_table=version_table)

    async def introspect() -> SchemaState:
        with timings.phase("introspect"):
            return await current_state(db, handlers, connect)

    reading = asyncio.ensure_future(introspect())
    try:
        with timings.phase("load"):
            objects = await asyncio.get_running_loop().run_in_executor(None, desired_objects, models, handlers)
        current = await reading
    finally:
        if not reading.done():
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
    with timings.phase("load"):
        desired = await desired_state(models, handlers, db, current, objects)
    with timings.phase("compare"):
        up = await build_plan(current, desired, handlers)
        down = await build_plan(desired, current, handlers) if both else None
    return up, down


async def apply_plan(connection: "asyncpg.Connection", plan: Plan) -> None:
    """Run a plan's operations in one transaction (tests, `diff --apply`-like tooling)."""
    from .actions import DatabaseActions

    actor = DatabaseActions(connection)
    async with connection.transaction():
        for op in plan.operations:
            await actor.run(op)


async def diff_both_ways(
    connection: "asyncpg.Connection",
    models: ModelContext,
    handlers: HandlerSet,
    *,
    schema: str = "public",
    version_table: str = "pgmig_revisions",
    timings: Optional[Timings] = None,
    connect: Optional[Connect] = None,
) -> "tuple[Plan, Plan]":
    """The plan from the database to the models (`up`) and the one back (`down`)."""
    up, down = await _plans(connection, models, handlers, schema, version_table, timings, both=True, connect=connect)
    assert down is not None
    return up, down
