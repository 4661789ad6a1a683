"""A conformance suite for object-type handlers, run against a real PostgreSQL.

A handler is correct when its objects survive every trip pgmig makes: built
from nothing, changed, removed, and taken back again, each time ending with a
database that diffs empty against the models and a catalog that equals the
one reached by another route. This module checks exactly that, using only
the public engine, so pgmig's built-in kinds and every plugin are held to the
same rules.

Use it from pytest by subclassing `ConformanceSuite` (a `Test...` subclass is
collected; the base class is not):

    from pgmig.testing.conformance import ConformanceSuite

    class TestViewConformance(ConformanceSuite):
        kinds = ("view",)

        def initial(self):  return build_models(version=1)   # -> MetaData
        def changed(self):  return build_models(version=2)
        def removed(self):  return build_models(version=None)

with `database_url` and `pgmig_server` imported from `pgmig.testing` in the
plugin's conftest.py. Or call `check_conformance(...)` from any test.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

from pgmig.config.discovery import HandlerSet, handler_set, load_handlers
from pgmig.errors import agree
from pgmig.ops.base import Operation, lookup
from pgmig.plan.diff import CREATE, DESTROY, Plan
from pgmig.plan.engine import apply_plan, current_state, desired_state, diff_database, model_context
from pgmig.schema.expressions import FUNCTION_CALL
from pgmig.schema.objects import Key, SchemaState, key_text
from pgmig.schema.protocol import DatabaseContext, ObjectHandler

HandlerList = Union[HandlerSet, Sequence[Union[ObjectHandler, type]], None]
Catalog = Dict[Key, Dict[str, Any]]

STATES = ("initial", "changed", "removed")

T = TypeVar("T")


class ConformanceError(AssertionError):
    """A handler broke one of the rules; the message names the step and the objects."""


# -- running the engine synchronously, the way a test does ----------------------------


def resolve_handlers(handlers: HandlerList) -> HandlerSet:
    """A HandlerSet from a list of handlers, or every installed one when None.

    Installed handlers are what a user's project runs with, so testing
    against them also catches clashes with other plugins' kinds.
    """
    if handlers is None:
        return load_handlers()
    if isinstance(handlers, HandlerSet):
        return handlers
    return handler_set(handlers)


def _run(url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    async def go() -> T:
        from pgmig.db.connect import connect

        # pgmig's own session settings (SESSION_SETTINGS): the catalog is read as pgmig reads it.
        connection = await connect(url)
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(go())


def plan_for(url: str, metadata: Any, handlers: HandlerList = None, schema: str = "public") -> Plan:
    """The plan that takes the database at `url` to `metadata` (nothing is applied)."""
    found = resolve_handlers(handlers)
    tables = [t for t in metadata.sorted_tables if (t.schema or schema) == schema]
    models = model_context(tables, [metadata], schema)
    return _run(url, lambda conn: diff_database(conn, models, found, schema=schema))


def migrate_to(url: str, metadata: Any, handlers: HandlerList = None, schema: str = "public") -> Plan:
    """Plan and apply in one transaction; return the plan that ran."""
    plan = plan_for(url, metadata, handlers, schema)
    _run(url, lambda conn: apply_plan(conn, plan))
    return plan


def catalog(url: str, handlers: HandlerList = None, schema: str = "public") -> Catalog:
    """What the handlers read from the database: key -> compared fields.

    This is the catalog as each kind understands it, which is what "going
    back restores the earlier catalog" must mean for a kind pgmig itself
    knows nothing about.
    """
    found = resolve_handlers(handlers)

    async def read(conn: Any) -> SchemaState:
        return await current_state(DatabaseContext(connection=conn, schema=schema), found)

    state = _run(url, read)
    return {obj.key: obj.compared_fields() for obj in state}


def _database_state(url: str, handlers: HandlerSet, schema: str) -> SchemaState:
    async def read(conn: Any) -> SchemaState:
        return await current_state(DatabaseContext(connection=conn, schema=schema), handlers)

    return _run(url, read)


# -- the checks ---------------------------------------------------------------------------


def _changes_text(plan: Plan) -> str:
    return "; ".join(f"{c.action} {key_text(c.key)} {c.differences() or ''}".strip() for c in plan.changes)


def _catalog_diff(before: Catalog, after: Catalog) -> str:
    lines = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            lines.append(f"{key_text(key)}: {before.get(key)} != {after.get(key)}")
    return "; ".join(lines[:10])


def check_empty(url: str, metadata: Any, handlers: HandlerSet, schema: str, step: str) -> None:
    leftover = plan_for(url, metadata, handlers, schema)
    if not leftover.is_empty:
        raise ConformanceError(f"{step}: a fresh diff is not empty (normal form mismatch?): {_changes_text(leftover)}")


def check_dependencies_exist(state: SchemaState, kinds: Sequence[str], step: str) -> None:
    """Every dependency key of the kinds under test names an object of the same state.

    A key spelled differently from the object it means (a missing schema,
    another kind name) silently orders nothing; this catches it. A key some object
    `provides` (a domain's or an extension's ("type", schema, name)) counts: the plan
    orders a dependency on it after its provider.
    """
    provided = {key for obj in state for key in obj.provides}
    for obj in state:
        if obj.kind not in kinds:
            continue
        for dep in obj.dependencies:
            # A function called by name may be a built-in one, which no object provides.
            if dep not in state and dep not in provided and dep[0] != FUNCTION_CALL:
                raise ConformanceError(
                    f"{step}: {key_text(obj.key)} depends on {key_text(dep)}, which no handler reports"
                )


def check_order(plan: Plan, step: str) -> None:
    """Creates come after what they need; drops come before what they needed is dropped."""
    position = {change.node: i for i, change in enumerate(plan.changes)}
    for i, change in enumerate(plan.changes):
        if change.new is not None:
            for dep in change.new.dependencies:
                for action in (CREATE, "migrate"):
                    j = position.get((action, dep))
                    if j is not None and j > i:
                        raise ConformanceError(
                            f"{step}: {change.action} {key_text(change.key)} runs before {action} {key_text(dep)}"
                        )
        if change.action == DESTROY and change.old is not None and not change.implicit:
            for dep in change.old.dependencies:
                j = position.get((DESTROY, dep))
                if j is not None and j < i and not plan.changes[j].implicit:
                    raise ConformanceError(
                        f"{step}: drop {key_text(dep)} runs before drop {key_text(change.key)}, which needs it"
                    )


def check_revision_arguments(plan: Plan, step: str) -> None:
    """Every operation survives being written into a revision file and read back.

    Revision files call `actor.<name>(**arguments)`: the arguments must be
    printable literals that rebuild an equal operation, through the name
    the operation registered.
    """
    from pgmig.revisions.writer import literal

    for op in plan.operations:
        try:
            rebuilt = lookup(op.name)(**op.arguments())
            for value in op.arguments().values():
                literal(value)
        except Exception as exc:  # any failure here is the handler's or the operation's
            raise ConformanceError(
                f"{step}: operation {op.name} does not round-trip through a revision: {exc}"
            ) from exc
        if _op_fields(rebuilt) != _op_fields(op):
            raise ConformanceError(
                f"{step}: operation {op.name} rebuilt from its arguments differs: {rebuilt!r} != {op!r}"
            )


def _op_fields(op: Operation) -> Dict[str, Any]:
    import dataclasses

    return {f.name: getattr(op, f.name) for f in dataclasses.fields(op)}


@dataclass
class Report:
    """What the suite saw, for assertions a test wants to add."""

    plans: Dict[str, Plan]
    catalogs: Dict[str, Catalog]


def check_conformance(
    url: str,
    states: Mapping[str, Callable[[], Any]],
    *,
    kinds: Sequence[str],
    handlers: HandlerList = None,
    server: Any = None,
    schema: str = "public",
) -> Report:
    """Run every conformance step on the empty database at `url`.

    `states` maps "initial", "changed" and "removed" to callables returning a
    MetaData (with the plugin's declarations attached); "removed" must drop
    at least one object of the kinds under test. With `server` (the
    `pgmig_server` fixture), each state reached by migration is also compared
    with the same state built from nothing in a second database.
    """
    missing = [name for name in STATES if name not in states]
    if missing:
        raise ValueError(f"conformance states missing: {', '.join(missing)}")
    found = resolve_handlers(handlers)
    absent = [kind for kind in kinds if kind not in {h.kind for h in found.handlers}]
    if absent:
        raise ConformanceError(
            f"no handler for {agree(len(absent), 'kind', 'kinds')} {', '.join(absent)} in the handler set"
        )
    models = {name: states[name]() for name in STATES}
    plans: Dict[str, Plan] = {}
    catalogs: Dict[str, Catalog] = {}

    def step(name: str, target: str, expect: Optional[str]) -> None:
        plan = migrate_to(url, models[target], found, schema)
        plans[name] = plan
        if expect is not None and not any(c.kind in kinds and c.action == expect for c in plan.changes):
            raise ConformanceError(
                f"{name}: expected a {expect} of {'/'.join(kinds)}, the plan was: {_changes_text(plan) or 'empty'}"
            )
        check_order(plan, name)
        check_revision_arguments(plan, name)
        check_empty(url, models[target], found, schema, name)
        check_dependencies_exist(_database_state(url, found, schema), kinds, name)
        seen = catalog(url, found, schema)
        if target in catalogs and catalogs[target] != seen:
            raise ConformanceError(
                f"{name}: going back did not restore the {target} catalog: {_catalog_diff(catalogs[target], seen)}"
            )
        catalogs.setdefault(target, seen)

    step("create", "initial", CREATE)
    step("change", "changed", None)
    if not any(c.kind in kinds for c in plans["change"].changes):
        raise ConformanceError("change: the changed models produced no change of the kinds under test")
    step("destroy", "removed", DESTROY)
    step("back to changed", "changed", None)
    step("back to initial", "initial", None)

    if server is not None:
        for target in STATES:
            scratch = server.create_database()
            try:
                migrate_to(scratch, models[target], found, schema)
                built = catalog(scratch, found, schema)
            finally:
                server.drop_database(scratch)
            if target in catalogs and built != catalogs[target]:
                raise ConformanceError(
                    f"{target}: migrating there differs from building it from nothing: "
                    f"{_catalog_diff(built, catalogs[target])}"
                )
    return Report(plans, catalogs)


class ConformanceSuite:
    """Base class: subclass as `Test<Something>`, set `kinds`, define the three states.

    `handlers` is a list of handler classes or instances (include the
    built-ins your objects depend on), or None for every installed handler.
    Each test method gets a fresh database from `pgmig.testing`'s fixtures.
    """

    kinds: Tuple[str, ...] = ()
    handlers: HandlerList = None
    schema: str = "public"

    def initial(self) -> Any:
        raise NotImplementedError

    def changed(self) -> Any:
        raise NotImplementedError

    def removed(self) -> Any:
        raise NotImplementedError

    def states(self) -> Dict[str, Callable[[], Any]]:
        return {"initial": self.initial, "changed": self.changed, "removed": self.removed}

    def test_conformance(self, database_url: str, pgmig_server: Any) -> None:
        check_conformance(
            database_url,
            self.states(),
            kinds=self.kinds,
            handlers=self.handlers,
            server=pgmig_server,
            schema=self.schema,
        )

    def test_models_side_dependencies_exist(self, database_url: str) -> None:
        """Dependencies of the model-side objects name objects the models also define."""
        found = resolve_handlers(self.handlers)
        for name, build in self.states().items():
            metadata = build()
            tables = [t for t in metadata.sorted_tables if (t.schema or self.schema) == self.schema]
            models = model_context(tables, [metadata], self.schema)
            state = _run(
                database_url,
                lambda conn, models=models: desired_state(  # type: ignore[misc]
                    models, found, DatabaseContext(connection=conn, schema=self.schema)
                ),
            )
            check_dependencies_exist(state, self.kinds, f"models {name}")


def builtin_handlers() -> List[type]:
    """pgmig's own handlers, for a plugin's handler list (tables and columns are what most kinds need)."""
    from pgmig.schema.handlers.column import ColumnHandler
    from pgmig.schema.handlers.constraint import ConstraintHandler
    from pgmig.schema.handlers.domain import DomainHandler
    from pgmig.schema.handlers.enum import EnumHandler
    from pgmig.schema.handlers.index import IndexHandler
    from pgmig.schema.handlers.schema import SchemaHandler
    from pgmig.schema.handlers.sequence import SequenceHandler
    from pgmig.schema.handlers.table import TableHandler

    return [
        SchemaHandler,
        TableHandler,
        ColumnHandler,
        EnumHandler,
        ConstraintHandler,
        IndexHandler,
        SequenceHandler,
        DomainHandler,
    ]


__all__ = [
    "Catalog",
    "ConformanceError",
    "ConformanceSuite",
    "Report",
    "builtin_handlers",
    "catalog",
    "check_conformance",
    "migrate_to",
    "plan_for",
    "resolve_handlers",
]
