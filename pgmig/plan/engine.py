"""The library API: read both sides into schema states and plan the difference.

Everything the CLI does goes through here, so pgmig works the same when
embedded in a test suite or a deploy script.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from pgmig.config.discovery import HandlerSet
from pgmig.db.quoting import NulCharacterError
from pgmig.errors import ModelsError, plural
from pgmig.plan.diff import Plan, build_plan
from pgmig.plan.normalize import NormalForms, NormalizationWarning, normal_forms, reconcile_unverified
from pgmig.plan.rebuilds import note_unmodeled_dependents
from pgmig.schema.catalog import Connect, read_all
from pgmig.schema.exclude import NOTHING, Exclusions
from pgmig.schema.objects import Key, SchemaObject, SchemaState
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler, managed_schemas
from pgmig.schema.unmodeled import unmodeled_warnings
from pgmig.timing import NoTimings, Timings

if TYPE_CHECKING:  # pragma: no cover
    import os

    import asyncpg

# What the library entry points take for the normalization cache: a path
# (kept across runs), a service (tests read its statement log), or None.
NormalFormsOption = Union[NormalForms, str, "os.PathLike[str]", None]


def _service(option: NormalFormsOption) -> NormalForms:
    return option if isinstance(option, NormalForms) else NormalForms(option)


def model_context(
    tables: Sequence[Any],
    metadata: Sequence[Any] = (),
    schema: str = "public",
    schemas: Sequence[str] = (),
    exclude: Exclusions = NOTHING,
) -> ModelContext:
    """The models' context: `tables` of `metadata` (default: the tables' own), in the managed
    `schemas` (default: `schema` alone; the first is where a table without a schema goes),
    without the objects `exclude` leaves out."""
    if not metadata:
        seen: Dict[int, Any] = {}
        for table in tables:
            seen.setdefault(id(table.metadata), table.metadata)
        metadata = list(seen.values())
    return ModelContext(
        metadata=list(metadata), tables=list(tables), schema=schema, schemas=tuple(schemas), exclude=exclude
    )


def desired_objects(models: ModelContext, handlers: HandlerSet) -> List[SchemaObject]:
    """Every handler's objects read from the models.

    Raises ModelsError where SQLAlchemy finds the models inconsistent while they are read (a
    foreign key to a table or column the models lack: what `create_all` reports too).
    """
    from sqlalchemy.exc import NoReferencedColumnError, NoReferencedTableError

    objects: List[SchemaObject] = []
    for handler in handlers.handlers:
        try:
            objects.extend(handler.from_models(models))
        except (NoReferencedTableError, NoReferencedColumnError) as exc:
            raise ModelsError(f"the models reference what they do not define: {exc}") from exc
        except NulCharacterError as exc:  # met while building (a type's collation): no object to name yet
            raise ModelsError(f"reading the models' {handler.kind} objects: {exc}") from exc
    if models.exclude:
        objects = [obj for obj in objects if not models.exclude.excludes(obj)]
    return objects


def refuse_nul(obj: SchemaObject) -> None:
    """Raise ModelsError when a field of `obj` (a name, comment, default, label, expression...) holds
    a NUL character: PostgreSQL's text types cannot store U+0000 (datatype-character), so no
    statement could carry it. Said naming the object, before any SQL or revision is written.

    Asked of every model object that is not equal to the database's under its key (see
    `_normal_forms`): an equal one holds what the database holds, which has no NUL, and
    skipping those keeps this off an unchanged schema's diff (a few fields per object add
    up to tens of ms at 1,000 tables)."""
    for field, value in vars(obj).items():
        # Most fields are names or flags: decided without a call (this runs for every model object).
        if isinstance(value, str):
            holds = "\x00" in value
        else:
            holds = type(value) not in _TEXTLESS and _holds_nul(value)
        if holds:
            where = ".".join(str(part) for part in obj.key[1:]).replace("\x00", "\\x00")
            raise ModelsError(
                f"the models give {obj.kind} {where} a NUL character (\\x00) in its {field}: "
                "PostgreSQL cannot store it in a name, comment, default or expression; remove it from the models"
            )


_TEXTLESS = frozenset({type(None), bool, int, float})


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (tuple, list, frozenset, set)):
        try:  # names, most often: one scan of them joined
            return "\x00" in "".join(value)
        except TypeError:
            pass
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return False


async def desired_state(
    models: ModelContext,
    handlers: HandlerSet,
    db: Optional[DatabaseContext],
    current: Optional[SchemaState] = None,
    objects: Optional[List[SchemaObject]] = None,
) -> SchemaState:
    """The models' objects (`objects` when already built), normalized through the server when one is connected.

    See `_normal_forms` for what is normalized and what is not.
    """
    if objects is None:
        objects = desired_objects(models, handlers)
    if db is None:
        for obj in objects:
            refuse_nul(obj)
        return SchemaState(objects)
    keys = [obj.key for obj in objects]  # a key is a property building a tuple: once per object
    by_kind = {handler.kind: handler for handler in handlers.handlers}
    final, _ = await _normal_forms(by_kind, objects, keys, current.get if current is not None else _nothing, db)
    return SchemaState.keyed(final[id(obj)] for obj in objects)


def _nothing(key: Key) -> None:
    return None


async def _normal_forms(
    handlers: Mapping[str, ObjectHandler],
    objects: Sequence[SchemaObject],
    keys: Sequence[Key],
    current: Callable[[Key], Optional[SchemaObject]],
    db: DatabaseContext,
) -> "tuple[Dict[int, Tuple[Key, SchemaObject]], Set[Key]]":
    """id(object) -> (key, object to compare) for model objects, normalized through their handlers;
    and the keys under which the database has an object equal to the model's final one.

    Objects already equal to the database's (`current`), or that their
    handler finds `equivalent` to it, are in normal form by definition and
    skip the server round trip: on an unchanged schema that is nearly all of
    them, and normalizing is the costly part of a diff. Those found only
    `equivalent` are replaced by the database's object, which is their normal
    form; equal ones stay the model's, whose dependencies are the models'.
    """
    final: Dict[int, Tuple[Key, SchemaObject]] = {}
    pending: Dict[str, List[SchemaObject]] = {}
    same: Set[Key] = set()
    for key, obj in zip(keys, objects):
        old = current(key)
        if old is not None and old == obj:
            # The model's own object, not the database's equal one: what depends on what can
            # differ between the sides (a foreign key on a unique index the models turn into a
            # constraint), and a dependent carried through a rebuild is created from the models.
            final[id(obj)] = (key, obj)
            same.add(key)
            continue
        refuse_nul(obj)  # before the server is asked about it, or it is compared
        if old is not None and _equivalent(handlers, old, obj):
            final[id(obj)] = (key, old)  # equal only once normalized: the database's object is the normal form
            same.add(key)
        else:
            final[id(obj)] = (key, obj)
            pending.setdefault(obj.kind, []).append(obj)
    for kind, mine in pending.items():
        handler = handlers.get(kind)
        if handler is None:
            continue
        for before, after in zip(mine, await handler.normalize(mine, db)):
            if after is not before:
                key = after.key  # a normal form may change the key (unnamed checks)
                final[id(before)] = (key, after)
            else:
                key = final[id(before)][0]
            if current(key) == after:
                same.add(key)
    return final, same


def _equivalent(handlers: Mapping[str, ObjectHandler], old: SchemaObject, new: SchemaObject) -> bool:
    handler = handlers.get(new.kind)
    return handler is not None and handler.equivalent(old, new)


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
    schemas: Sequence[str] = (),
    version_table: str = "pgmig_revisions",
    timings: Optional[Timings] = None,
    connect: Optional[Connect] = None,
    normal_forms: NormalFormsOption = None,
    exclude: Exclusions = NOTHING,
) -> Plan:
    """The plan that takes the database behind `connection` to the models.

    `connect` (an async callable opening another connection to the same
    database) lets the catalog reads run side by side; see introspection.py.
    `normal_forms`: where what the server said of the models' expressions is
    kept between runs (a JSON file, e.g. `.pgmig/normal-forms.json`), so an
    unchanged schema builds no scratch objects on its next diff; see
    pgmig.normalize. None: nothing is kept. `exclude`: the database objects
    left out of the comparison (the models' are left out by their context).
    """
    managed = managed_schemas(schema, schemas)
    up, _ = await _plans(
        connection, models, handlers, managed, version_table, timings, False, connect, _service(normal_forms), exclude
    )
    return up


async def _plans(
    connection: "asyncpg.Connection",
    models: ModelContext,
    handlers: HandlerSet,
    schemas: Sequence[str],
    version_table: str,
    timings: Optional[Timings],
    both: bool,
    connect: Optional[Connect],
    service: Optional[NormalForms] = None,
    exclude: Exclusions = NOTHING,
) -> "tuple[Plan, Optional[Plan]]":
    """Both sides, kind by kind, then the plan (or plans).

    Building the model objects is Python work and reading the catalog is
    mostly the server's, so the models are built on a worker thread while
    the catalog queries run. Once a kind has been read and the models are
    built, its model objects are compared with it and the differing ones
    normalized on a reading connection (see read_all for which, and when)
    while the other may still be reading: the `load` and `introspect`
    phases overlap.
    """
    timings = timings or NoTimings()
    service = service or NormalForms()
    db = DatabaseContext(connection=connection, schemas=schemas, version_table=version_table, exclude=exclude)
    by_kind = {handler.kind: handler for handler in handlers.handlers}

    def build() -> "tuple[List[SchemaObject], List[Key], Dict[str, tuple[List[SchemaObject], List[Key]]]]":
        with timings.phase("load"):
            objects = desired_objects(models, handlers)
            keys = [obj.key for obj in objects]  # a key is a property building a tuple: once per object
            groups: Dict[str, "tuple[List[SchemaObject], List[Key]]"] = {}
            for key, obj in zip(keys, objects):
                group = groups.setdefault(obj.kind, ([], []))
                group[0].append(obj)
                group[1].append(key)
            return objects, keys, groups

    loop = asyncio.get_running_loop()
    threads: List["asyncio.Future[Any]"] = []

    def start_building() -> None:
        """On a thread; read_all calls this once the transactions are set up (see there)."""
        if not threads:
            threads.append(loop.run_in_executor(None, build))

    async def built() -> "tuple[List[SchemaObject], List[Key], Dict[str, tuple[List[SchemaObject], List[Key]]]]":
        start_building()
        return await threads[0]  # type: ignore[no-any-return]

    read: Dict[str, List["tuple[Key, SchemaObject]"]] = {}
    final: Dict[int, Tuple[Key, SchemaObject]] = {}
    # Objects read, distinct keys read, and keys where both sides are equal.
    tally = {"read": 0, "distinct": 0, "same": 0}

    async def settle(handler: ObjectHandler, reader: DatabaseContext, found: List[SchemaObject]) -> None:
        """After a kind is read: its model objects in normal form, on a reading connection."""
        pairs = read[handler.kind] = [(obj.key, obj) for obj in found]
        current = dict(pairs)
        tally["read"] += len(pairs)
        tally["distinct"] += len(current)
        _, _, groups = await built()
        if handler.kind in groups:
            mine, keys = groups[handler.kind]
            with timings.phase("load"):
                normal, same = await _normal_forms(by_kind, mine, keys, current.get, reader)
                final.update(normal)
                tally["same"] += len(same)

    try:
        with timings.phase("introspect"):
            async with normal_forms(service):  # one service for every kind and both connections
                await read_all(
                    db,
                    handlers.handlers,
                    connect,
                    then=settle,
                    started=start_building,
                    ready=lambda: bool(threads) and threads[0].done(),
                )
        objects, keys, _ = await built()
    finally:
        if threads and not threads[0].done():  # a read failed: let the thread finish before the error goes up
            await asyncio.gather(threads[0], return_exceptions=True)
    # What the models declare and no kind carries: said with every plan, changes or not.
    unmodeled = [str(warning) for warning in models.derived(unmodeled_warnings)]
    with timings.phase("compare"):
        if tally["same"] == len(objects) == tally["read"] == tally["distinct"]:
            # Each model object equals the database's object under its key, no
            # two share a key, and the database has no other object: no change.
            # The common case (a check, a diff right after `up`) needs no states.
            return Plan([], warnings=list(unmodeled)), Plan([]) if both else None
    current = SchemaState.keyed(pair for handler in handlers.handlers for pair in read.get(handler.kind, ()))
    # Objects of a kind no handler reads (a handler's from_models may return other kinds) stay as built.
    pairs = [final.get(id(obj), (key, obj)) for key, obj in zip(keys, objects)]
    for obj in objects:
        if id(obj) not in final:
            refuse_nul(obj)  # `_normal_forms` saw the others
    if service is not None and service.refused:
        pairs, unverified = reconcile_unverified(pairs, dict(current.items()))
        if unverified:
            warnings.warn(
                f"{plural(unverified, 'model object')} could not be normalized by the server (see the warning "
                "before) and match the database's but for case, spaces, parentheses and casts: taken as "
                "unchanged",
                NormalizationWarning,
                stacklevel=3,
            )
    desired = SchemaState.keyed(pairs)
    with timings.phase("compare"):
        up = build_plan(current, desired, handlers)
        down = build_plan(desired, current, handlers) if both else None
    up.warnings += unmodeled
    # What no installed kind models, yet blocks a column the plan drops or retypes (pg_depend).
    await note_unmodeled_dependents(connection, up, by_kind, schemas)
    return up, down


async def apply_plan(connection: "asyncpg.Connection", plan: Plan) -> None:
    """Run a plan's operations in one transaction (tests, `diff --apply`-like tooling)."""
    from pgmig.ops.actor import DatabaseActions

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
    schemas: Sequence[str] = (),
    version_table: str = "pgmig_revisions",
    timings: Optional[Timings] = None,
    connect: Optional[Connect] = None,
    normal_forms: NormalFormsOption = None,
    exclude: Exclusions = NOTHING,
) -> "tuple[Plan, Plan]":
    """The plan from the database to the models (`up`) and the one back (`down`); `normal_forms` and
    `exclude` as for diff_database."""
    managed = managed_schemas(schema, schemas)
    up, down = await _plans(
        connection, models, handlers, managed, version_table, timings, True, connect, _service(normal_forms), exclude
    )
    assert down is not None
    return up, down
