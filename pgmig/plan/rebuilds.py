"""A rebuild carries its dependents: what Postgres rebuilds in place takes along what depends on it.

Some changes make Postgres rebuild objects in place: an enum type swap
re-types every column of the type, a column type change rewrites the column
(`SchemaObject.rebuilds`). Postgres then re-reads whatever depends on the
rebuilt object from its stored expression, against the new type: an index
predicate `status <> 'deleted'` still compares with a constant of the old
enum (`operator does not exist: ws_status__pgmig_new <> ws_status`), a view
or a trigger naming the column makes ALTER COLUMN TYPE refuse outright.

So every object that depends on a rebuilt key (its `dependencies`, which on
the database side come from `pg_depend`, on the model side from the
expressions it reads), and that Postgres does not carry through the rebuild
by itself (`SchemaObject.rebuilt_with`), is dropped before the rebuild and
created again after it, from the other side's definition: in `up` from the
models', in `down` from the database's. Objects that change anyway are split
into their drop and their create around the rebuild. What is carried is
itself replaced, so what depends on it is carried too (a view over a view).

Both directions get this for free, since `down` is planned like `up` with
the sides swapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Collection, Dict, List, Optional, Sequence, Set, Tuple

from pgmig.plan.diff import CREATE, DESTROY, MIGRATE, Change, Plan
from pgmig.schema.catalog import ColumnDependent, column_dependents, type_dependents
from pgmig.schema.objects import Key, SchemaObject, SchemaState, key_kind, key_name, key_schema

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg

Node = Tuple[str, Key]

Edge = Tuple[Node, Node]
"""(first, then): the change `then` runs after the change `first`."""


def carry_dependents(changes: List[Change], current: SchemaState, desired: SchemaState) -> List[Edge]:
    """Add to `changes` the drops and creates that carry dependents through rebuilds; the ordering edges.

    `changes` is edited in place: a dependent's MIGRATE becomes a DESTROY and
    a CREATE, and unchanged dependents gain both. Each returned edge puts a
    dependent's drop before the rebuilding change and its create after it.
    Finding dependents reads every object's dependencies, so it is done only
    when some change rebuilds something (rare: a type swap, a type change).
    """
    by_key: Dict[Key, List[Change]] = {}
    # (the change's drop side, its create side, the keys it rebuilds, whether it replaces them,
    # whether dependents that change anyway are split around it too, and the object whose create
    # or drop displaces the dependents it names: only those are carried)
    rebuilding: List[Tuple[Change, Change, Tuple[Key, ...], bool, bool, Optional[SchemaObject]]] = []
    for change in changes:
        by_key.setdefault(change.key, []).append(change)
        if change.action == MIGRATE:
            assert change.old is not None and change.new is not None
            rebuilt = change.old.rebuilds(change.new)
            if rebuilt:
                rebuilding.append((change, change, rebuilt, False, True, None))
    scanned = {id(change) for change in changes}
    rebuilding += _displacing(changes)
    for key, pair in by_key.items():
        if len(pair) == 2:  # replaced (must_replace): whatever depends on it goes and comes back with it
            drop, create = sorted(pair, key=lambda c: c.action != DESTROY)
            rebuilding.append((drop, create, (key,), True, True, None))
        elif pair[0].action == DESTROY:
            # Dropped for good while an object that stays still depends on it (a foreign key on a
            # unique index that becomes a constraint): Postgres refuses the drop, so the dependent
            # goes first and comes back after, over what it depends on now. One that changes
            # anyway stops depending on it, and the graph already puts its change first.
            rebuilding.append((pair[0], pair[0], (key,), True, False, None))
    edges: List[Edge] = []
    if rebuilding:
        # A renamed object (the diff pairs a drop and a create of one definition) is one change
        # under both of its keys, where a dependent may name either.
        for change in list(changes):
            if change.action == MIGRATE and change.old is not None and change.old.key not in by_key:
                by_key[change.old.key] = by_key[change.key]
        dependents = _dependents(current, desired)
        # The list grows as it is walked: a create or drop carried around a rebuild (a Citus table
        # undistributed around a new type of its distribution column) may displace others in turn.
        for drop, create, rebuilt, replaced, split, displacing in rebuilding:
            edges += _carry(
                drop, create, rebuilt, replaced, split, changes, by_key, dependents, current, desired, displacing
            )
            added = [change for change in changes if id(change) not in scanned]
            scanned.update(id(change) for change in added)
            rebuilding += _displacing(added)
    return edges + _through_unchanged(changes, by_key, desired)


def _displacing(
    changes: Sequence[Change],
) -> List[Tuple[Change, Change, Tuple[Key, ...], bool, bool, Optional[SchemaObject]]]:
    """A `rebuilding` entry (see carry_dependents) for each create or drop of an object that goes
    before users not naming it (`precedes_users_of`): those it `displaces` are carried around it."""
    out: List[Tuple[Change, Change, Tuple[Key, ...], bool, bool, Optional[SchemaObject]]] = []
    for change in changes:
        made = change.new if change.action == CREATE else change.old if change.action == DESTROY else None
        if made is not None and made.precedes_users_of:
            out.append((change, change, made.precedes_users_of, False, True, made))
    return out


def _carry(
    first: Change,
    then: Change,
    rebuilt: Tuple[Key, ...],
    replacing: bool,
    split_changed: bool,
    changes: List[Change],
    by_key: Dict[Key, List[Change]],
    dependents: Dict[Key, List[Key]],
    current: SchemaState,
    desired: SchemaState,
    displacing: Optional[SchemaObject] = None,
) -> List[Edge]:
    """The dependents of `rebuilt`: drops before `first`, creates after `then` (the same
    change for a rebuild in place; the drop and the create of a replacement).
    Dependents that change anyway are split into a drop and a create only when `split_changed`.
    With `displacing` (an object `first` creates or drops), only the dependents it `displaces`
    are carried; those the plan creates or drops anyway are ordered by the graph."""
    edges: List[Edge] = []
    # (key, whether its dependents are carried whatever they say: it is replaced itself)
    pending: List[Tuple[Key, bool]] = [(key, replacing) for key in rebuilt]
    seen: Set[Key] = set()
    while pending:
        key, replaced = pending.pop()
        for dependent in dependents.get(key, ()):
            if dependent in seen or dependent == first.key or _holds_rows(dependent, current, desired):
                continue
            mine = by_key.get(dependent)
            if displacing is not None and not _displaced(displacing, dependent, mine, current, desired):
                continue
            if mine is None:
                old, new = _unchanged(dependent, current, desired)
                if displacing is None and not replaced and old.rebuilt_with(key) and not _dropped_along(first, old):
                    continue
                mine = by_key[dependent] = by_key[old.key] = by_key[new.key] = [
                    Change(DESTROY, old, None),
                    Change(CREATE, None, new),
                ]
                changes.extend(mine)
            elif any(c.action == MIGRATE for c in mine):
                if not split_changed:
                    continue
                (migrate,) = mine
                assert migrate.old is not None and migrate.new is not None
                split = [Change(DESTROY, migrate.old, None), Change(CREATE, None, migrate.new)]
                changes[changes.index(migrate)] = split[0]
                changes.append(split[1])
                mine[:] = split  # in place: a renamed object's list stands under both its keys
            seen.add(dependent)
            for change in mine:
                if change.action == DESTROY:
                    edges.append((change.node, first.node))
                elif change.action == CREATE:
                    edges.append((then.node, change.node))
            if any(c.action == CREATE for c in mine) and any(c.action == DESTROY for c in mine):
                pending.append((dependent, True))
    return edges


def _displaced(
    by: SchemaObject, key: Key, changes: Optional[List[Change]], current: SchemaState, desired: SchemaState
) -> bool:
    """Whether creating or dropping `by` displaces the object under `key`, which the plan keeps
    (`changes` None), changes in place, or drops and creates again (replaced, or carried around
    another change already) (`SchemaObject.displaces`). One the plan only creates or only drops
    is ordered by the graph (`SchemaObject.precedes_users_of`)."""
    if changes is None:
        old = current.get(key) or desired.get(key)
    elif {c.action for c in changes} in ({MIGRATE}, {DESTROY, CREATE}):
        old = next(c.old for c in changes if c.old is not None)
    else:
        return False
    return old is not None and by.displaces(old)


def _dropped_along(change: Change, dependent: SchemaObject) -> bool:
    """Whether `change` (a rebuild in place) drops `dependent` whatever it says (`SchemaObject.drops_along`)."""
    return change.old is not None and change.new is not None and change.old.drops_along(change.new, dependent)


def _holds_rows(key: Key, current: SchemaState, desired: SchemaState) -> bool:
    """Whether the object holds rows on either side (a table, a column; not a generated column):
    never dropped and created again to carry it, the rows would go.

    Either side: a generated column that becomes a plain one keeps its values
    (DROP EXPRESSION) only when it is not dropped to be carried; its own change
    then goes before the rebuild, since the graph puts a change that stops
    depending on X before X's change (pgmig.plan.diff). One that becomes
    generated is replaced by its own change (`Column.must_replace`).
    """
    return any(obj is not None and obj.holds_rows for obj in (current.get(key), desired.get(key)))


def _through_unchanged(changes: List[Change], by_key: Dict[Key, List[Change]], desired: SchemaState) -> List[Edge]:
    """A change of X goes before what is created (or changed) over an unchanged object that depends on X.

    The graph links each change to the changes of its own dependencies only:
    a CHECK naming a new enum label depends on its column, and the column
    (unchanged) on the enum, so nothing put the label's ADD VALUE first.
    Walked from the changes' side (their dependencies' dependencies), so a
    plan of a few changes costs a few lookups whatever the schema's size.
    """
    edges: List[Edge] = []
    for later in changes:
        if later.new is None:
            continue
        for middle in later.new.dependencies:
            if middle in by_key:
                continue  # changing itself: the graph orders it
            obj = desired.get(middle)
            if obj is None:
                continue
            for dep in obj.dependencies:
                for change in by_key.get(dep, ()):
                    if change.action == MIGRATE and change is not later:
                        edges.append((change.node, later.node))
    return edges


def _unchanged(key: Key, current: SchemaState, desired: SchemaState) -> Tuple[SchemaObject, SchemaObject]:
    """(old, new) of an object no change names: under `key` on both sides, or, where the diff
    found it under another key on the other side (an unnamed model constraint and the database's
    named one: the same `definition_key`), that one."""
    old, new = current.get(key), desired.get(key)
    if old is None and new is not None:
        old = _by_definition(current, new)
    elif new is None and old is not None:
        new = _by_definition(desired, old)
    assert old is not None and new is not None  # unchanged: on both sides
    return old, new


def _by_definition(state: SchemaState, obj: SchemaObject) -> Optional[SchemaObject]:
    """The object of `state` of `obj`'s kind and definition (a scan: rare, only for a rebuild)."""
    definition = obj.definition_key
    if definition is None:
        return None
    return next((o for o in state if o.kind == obj.kind and o.definition_key == definition), None)


def _dependents(*states: SchemaState) -> Dict[Key, List[Key]]:
    """Key -> keys of the objects (on either side) that depend on it, each once."""
    found: Dict[Key, Dict[Key, None]] = {}
    for state in states:
        for key, obj in state.items():
            for dep in obj.dependencies:
                if dep != key:
                    found.setdefault(dep, {})[key] = None
    return {key: list(keys) for key, keys in found.items()}


class StateAsOf:
    """The objects as they stand at one point of an ordered plan, for `SchemaObject.as_of`.

    `advance` each change as the plan passes it; `of(obj)` gives the object
    as it stands there. The state is only built (from the start and the
    changes passed so far) the first time a kind that reads it asks.
    """

    def __init__(self, start: SchemaState) -> None:
        self._start = start
        self._passed: List[Change] = []
        self._state: Optional[Dict[Key, SchemaObject]] = None

    def advance(self, change: Change) -> None:
        if self._state is None:
            self._passed.append(change)
        else:
            _apply(self._state, change)

    def of(self, obj: Optional[SchemaObject]) -> Optional[SchemaObject]:
        if obj is None or type(obj).as_of is SchemaObject.as_of:
            return obj
        if self._state is None:
            self._state = dict(self._start.items())
            for change in self._passed:
                _apply(self._state, change)
            self._passed = []
        return obj.as_of(self._state)


def _apply(state: Dict[Key, SchemaObject], change: Change) -> None:
    if change.old is not None:
        state.pop(change.old.key, None)
    if change.new is not None:
        state[change.new.key] = change.new


# The plugin that models a kind pg_depend reports, for the way on.
PLUGINS = {"trigger": "pgmig-functions", "function": "pgmig-functions", "view": "pgmig-views"}


def touched_columns(plan: Plan, schema: str) -> List[Tuple[str, str]]:
    """(table, column) of `schema` that the plan drops explicitly or rebuilds in place, each once."""
    found: Dict[Tuple[str, str], None] = {}
    for change in plan.changes:
        keys: Tuple[Key, ...] = ()
        if change.action == DESTROY and not change.implicit and key_kind(change.key) == "column":
            keys = (change.key,)
        elif change.action == MIGRATE and change.old is not None and change.new is not None:
            keys = change.old.rebuilds(change.new)
        for key in keys:
            if key_kind(key) == "column" and key_schema(key) == schema:
                found[(key_name(key), key[3])] = None
    return list(found)


async def note_unmodeled_dependents(
    connection: "asyncpg.Connection", plan: Plan, kinds: Collection[str], schemas: Sequence[str]
) -> None:
    """Fill `plan.unmodeled` (and a warning line each) with what depends, in pg_depend, on a column
    the plan drops or rebuilds and is of a kind no installed handler models: Postgres would refuse
    the DROP COLUMN or ALTER COLUMN TYPE. Kinds that are modeled carry their objects through
    their declared dependencies instead (carry_dependents and the graph)."""
    found: List[ColumnDependent] = []
    for schema in schemas:  # the managed schemas, one query each only where the plan touches them
        found += await column_dependents(connection, schema, touched_columns(plan, schema))
        found += await type_dependents(connection, schema, touched_types(plan, schema))
    seen: Set[Tuple[str, str]] = set()
    for dependent in found:
        if dependent.kind in kinds or (dependent.kind, dependent.name) in seen:
            continue  # modeled; or named already (a view over a column of the type, and its constants)
        seen.add((dependent.kind, dependent.name))
        plan.unmodeled.append(dependent)
        plan.warnings.append(
            f"{described(dependent)} depends on {dependent.depends_on}, "
            f"which the plan drops or replaces, and no installed plugin models it: "
            f"{ways_on(dependent)}"
        )


def touched_types(plan: Plan, schema: str) -> List[str]:
    """Names of the types of `schema` that the plan drops, or replaces (an enum's type swap)."""
    from pgmig.ops.enum import SwapTypeValues

    found: Dict[str, None] = {}
    for change in plan.changes:
        if key_kind(change.key) != "enum" or key_schema(change.key) != schema:
            continue
        if change.action == DESTROY or any(isinstance(op, SwapTypeValues) for op in change.operations):
            found[key_name(change.key)] = None
    return list(found)


def described(dependent: ColumnDependent) -> str:
    """`trigger account_provider on table account`; a view by its name, not by its rewrite rule."""
    if dependent.kind == "view":
        return f"view {dependent.name}"
    return dependent.description


def ways_on(dependent: ColumnDependent) -> str:
    """What a user can do about an unmodeled dependent, in words."""
    plugin = PLUGINS.get(dependent.kind)
    name = described(dependent)
    first = f"install {plugin}, which models {dependent.kind}s, and declare it in the models" if plugin else ""
    by_hand = (
        f"drop {name} before this change and create it again after, by hand, in a blank revision "
        "(generate --empty) applied first"
    )
    # Not `exclude`: an excluded dependent is left out of what pgmig reads, yet Postgres still refuses
    # the DROP or ALTER under it.
    return f"{first}; or {by_hand}" if first else by_hand


__all__ = [
    "Edge",
    "StateAsOf",
    "carry_dependents",
    "note_unmodeled_dependents",
    "touched_columns",
    "described",
    "touched_types",
    "ways_on",
]
