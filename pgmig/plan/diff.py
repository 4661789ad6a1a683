"""Diffing two schema states and ordering the work.

Diffing is set arithmetic over keys. Ordering is a dependency graph sorted
with graphlib: a create or change waits for the objects its new version
depends on, and a drop waits for everything whose old version depended on
the dropped object. There is no phase list, so a plugin's kind slots in by
declaring its dependencies.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

if sys.version_info >= (3, 9):
    from graphlib import CycleError, TopologicalSorter
else:  # pragma: no cover
    from graphlib import CycleError, TopologicalSorter  # graphlib-backport

from pgmig.config.discovery import HandlerSet
from pgmig.db.quoting import NAMEDATALEN, clip_bytes
from pgmig.errors import SchemaError
from pgmig.ops.base import Operation
from pgmig.schema.catalog import ColumnDependent
from pgmig.schema.objects import Key, SchemaObject, SchemaState, key_kind, key_schema, key_scope, key_text
from pgmig.schema.protocol import ObjectHandler

CREATE, MIGRATE, DESTROY = "create", "migrate", "destroy"
Node = Tuple[str, Key]
Edge = Tuple[Node, Node]
SYMBOLS = {CREATE: "+", MIGRATE: "~", DESTROY: "-"}


@dataclass
class Change:
    """One object created, changed or dropped, and the operations that do it."""

    action: str
    old: Optional[SchemaObject]
    new: Optional[SchemaObject]
    operations: List[Operation] = field(default_factory=list)
    implicit: bool = False
    """No statement of its own: dropped by Postgres along with its parent, or created by the
    parent's own statement (a new table's columns and keys, in its CREATE TABLE)."""
    parts: List["Change"] = field(default_factory=list)
    """The creates of new children this create makes in its own statement (see
    `SchemaObject.creates_with_itself`); each of them is `implicit`."""
    temporary: bool = False
    """The first half of a rename through a free temporary name, which breaks a cycle of renames
    (see `through_temporary_names`): its node differs from the second half's, under one key."""

    @property
    def obj(self) -> SchemaObject:
        obj = self.new if self.new is not None else self.old
        assert obj is not None
        return obj

    @property
    def key(self) -> Key:
        return self.obj.key

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def node(self) -> Tuple[str, Key]:
        return (self.action, self.key + ("(temporary name)",)) if self.temporary else (self.action, self.key)

    @property
    def hazards(self) -> Tuple[str, ...]:
        seen: Dict[str, None] = {}
        for op in self.operations:
            for hazard in op.hazards():
                seen.setdefault(hazard, None)
        return tuple(seen)

    def differences(self) -> Dict[str, Tuple[Any, Any]]:
        if self.old is None or self.new is None:
            return {}
        return self.old.differences(self.new)

    def to_json(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "key": list(self.key),
            "action": self.action,
            "implicit": self.implicit,
            "changes": {k: {"old": o, "new": n} for k, (o, n) in self.differences().items()},
            "hazards": list(self.hazards),
            "operations": [op.to_json() for op in self.operations],
            "sql": [s for op in self.operations for s in op.statements()],
        }


@dataclass
class Plan:
    changes: List[Change]
    warnings: List[str] = field(default_factory=list)
    """What would fail on the database's data (a NOT NULL column on a table with rows, ...), and what
    the models declare that no kind carries (pgmig.schema.unmodeled: said with every plan)."""
    unmodeled: List[ColumnDependent] = field(default_factory=list)
    """Objects no installed kind models that depend on a column the plan drops or rebuilds
    (pgmig.plan.rebuilds): Postgres would refuse the plan's statement."""

    @property
    def is_empty(self) -> bool:
        return not self.changes

    @property
    def operations(self) -> List[Operation]:
        return [op for change in self.changes for op in change.operations]

    def statements(self) -> List[str]:
        return [s for op in self.operations for s in op.statements()]

    def to_json(self) -> Dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "warnings": self.warnings,
            "unmodeled_dependents": [d.to_json() for d in self.unmodeled],
        }


def diff_states(current: SchemaState, desired: SchemaState) -> List[Change]:
    """Unordered changes taking `current` to `desired`, in a stable order (models first)."""
    changes: List[Change] = []
    for key, obj in desired.items():
        old = current.get(key)
        if old is None:
            changes.append(Change(CREATE, None, obj))
        elif old is obj or old == obj:
            continue
        elif old.must_replace(obj):
            changes.append(Change(DESTROY, old, None))
            changes.append(Change(CREATE, None, obj))
        else:
            changes.append(Change(MIGRATE, old, obj))
    for key, obj in current.items():
        if key not in desired:
            changes.append(Change(DESTROY, obj, None))
    return _paired_by_definition(changes)


def _paired_by_definition(changes: List[Change]) -> List[Change]:
    """`changes` with each drop and create of one definition (`SchemaObject.definition_key`) made one:
    nothing when the two are equal, else a change from the dropped to the created object (a rename).

    A change of definition under one name (index `b` on other columns) takes
    part as its drop and its create: when the old `b`'s definition is created
    under another name, `b` is renamed to it and the new `b` created; when the
    new `b`'s definition is dropped under another name, that one is renamed to
    `b` once the old `b` is dropped. Pairs are made in the order the changes
    come in; a drop and a create under one key (a replacement) stay as they are.
    """
    halves: List[Change] = []  # the changes, with each change of definition split into a drop and a create
    split: Dict[int, Change] = {}  # id(half) -> the change of definition it was split from
    for change in changes:
        old, new = change.old, change.new
        if (
            change.action == MIGRATE
            and old is not None
            and new is not None
            and old.definition_key is not None
            and old.definition_key != new.definition_key
        ):
            for half in (Change(DESTROY, old, None), Change(CREATE, None, new)):
                split[id(half)] = change
                halves.append(half)
        else:
            halves.append(change)
    created: Dict[Any, List[Change]] = {}
    for change in halves:
        if change.action == CREATE:
            definition = change.obj.definition_key
            if definition is not None:
                created.setdefault(definition, []).append(change)
    if not created:
        return changes
    becomes: Dict[int, Optional[Change]] = {}  # id(half) -> what takes its place
    for change in halves:
        if change.action != DESTROY:
            continue
        definition = change.obj.definition_key
        waiting = created.get(definition) if definition is not None else None
        match = next((c for c in waiting or () if c.key != change.key), None)
        if match is None:
            continue
        assert waiting is not None and match.new is not None and change.old is not None
        waiting.remove(match)
        becomes[id(change)] = None
        becomes[id(match)] = None if change.old == match.new else Change(MIGRATE, change.old, match.new)
    if not becomes:
        return changes
    paired = {id(split[half]) for half in becomes if half in split}  # changes of definition taken apart
    out: List[Change] = []
    whole: Set[int] = set()  # changes of definition kept whole (neither half paired)
    for change in halves:
        original = split.get(id(change))
        if original is not None and id(original) not in paired:
            if id(original) not in whole:
                whole.add(id(original))
                out.append(original)
            continue
        instead = becomes.get(id(change), change)
        if instead is not None:
            out.append(instead)
    return out


def order_changes(changes: Sequence[Change], edges: Sequence[Tuple[Node, Node]] = ()) -> List[Change]:
    """Sort changes so every dependency holds, keeping each table's work together.

    Objects dropped with their table need no statement of their own; but when
    two dropped tables reference each other that would be a cycle, so then
    the objects that reach outside their table (foreign keys) are dropped
    explicitly first. Likewise a new table's columns and keys are created in
    its CREATE TABLE; should that ever close a cycle (a column whose type
    needs what needs the table), they are created one by one after it.
    `edges` are further (first, then) pairs of nodes.
    """
    for explicit_cross_table, fold in ((False, True), (True, True)):
        try:
            return _order(changes, explicit_cross_table=explicit_cross_table, fold=fold, edges=edges)
        except SchemaError:
            pass
    return _order(changes, explicit_cross_table=True, fold=False, edges=edges)


def _reaches_outside(obj: SchemaObject, dropped: Set[Tuple[str, ...]]) -> bool:
    """Depends on a part of another table (or whatever else has parts) that is dropped too: a
    foreign key between two dropped tables. A dependency on a type does not count: the type
    is dropped after every table using it, so a column of an enum goes with its table."""
    scope = key_scope(obj.group)
    return any(key_scope(dep) != scope and key_scope(dep) in dropped for dep in obj.dependencies)


def _new_parent(change: Change, by_key: Dict[Key, Change]) -> Optional[Change]:
    """The create of `change`'s parent, when both are new (and the parent has no parent itself)."""
    parent = change.obj.parent if change.action == CREATE else None
    owner = by_key.get(parent) if parent is not None else None
    if owner is None or owner.action != CREATE or owner.key != parent or owner.obj.parent is not None:
        return None
    return owner


def _absorbed(changes: Sequence[Change], by_key: Dict[Key, Change]) -> Dict[Tuple[str, Key], Change]:
    """Creates made by their new parent's own statement -> that parent's create."""
    out: Dict[Tuple[str, Key], Change] = {}
    for change in changes:
        owner = _new_parent(change, by_key)
        if owner is not None and owner.obj.creates_with_itself(change.obj):
            out[change.node] = owner
    return out


def _group_ranks(changes: Sequence[Change], by_key: Dict[Key, Change]) -> Dict[Key, int]:
    """The order in which to prefer each group's (table's) changes, where dependencies leave a choice.

    Groups come in the order the changes name them, except that a group comes
    after the groups whose creates its creates need (a table after the tables
    its foreign keys reference and the enum its column uses), so a foreign
    key can join its CREATE TABLE, as create_all sorts tables; a cycle among
    them keeps the first-named order.
    """
    first: Dict[Key, None] = {}
    after: Dict[Key, List[Key]] = {}
    for change in changes:
        group = change.obj.group
        first.setdefault(group, None)
        if change.action == CREATE:
            for dep in change.obj.dependencies:
                needed = by_key.get(dep)
                if needed is not None and needed.action == CREATE and needed.obj.group != group:
                    after.setdefault(group, []).append(needed.obj.group)
    ranks: Dict[Key, int] = {}
    for start in first:
        if start in ranks:
            continue
        # Depth first, without recursion (a chain of a thousand tables), each group after its needs.
        visiting = {start}
        stack = [(start, iter(after.get(start, ())))]
        while stack:
            group, needs = stack[-1]
            following = next((g for g in needs if g not in ranks and g not in visiting), None)
            if following is None:
                stack.pop()
                visiting.discard(group)
                ranks[group] = len(ranks)
            else:
                visiting.add(following)
                stack.append((following, iter(after.get(following, ()))))
    return ranks


def _join_ready(
    ordered: List[Change],
    by_key: Dict[Key, Change],
    graph: Dict[Tuple[str, Key], Set[Tuple[str, Key]]],
    dropping: Dict[Key, Change],
) -> List[Change]:
    """`ordered`, with each create its new parent `may_create_with_itself` moved into the parent's
    statement when everything it waits for already comes before that statement.

    Moving a create earlier keeps every dependency: what it waits for is
    before its new place, and what waits for it was after its old one. So
    tables referencing each other cannot cycle: the first table's foreign
    key stays an ALTER TABLE after the second table, the second one's joins it.
    """
    position = {change.node: index for index, change in enumerate(ordered)}
    moved = False
    for change in ordered:
        if change.implicit or change.key in dropping:
            continue
        owner = _new_parent(change, by_key)
        if owner is None or not owner.obj.may_create_with_itself(change.obj):
            continue
        at = position[owner.node]
        if all(node == owner.node or position.get(node, at) < at for node in graph[change.node]):
            owner.parts.append(change)
            change.implicit = moved = True
    if not moved:
        return ordered
    out: List[Change] = []
    for change in ordered:
        if not (change.implicit and change.action == CREATE):
            out.append(change)
            out.extend(change.parts)
    return out


def _order(
    changes: Sequence[Change], explicit_cross_table: bool, fold: bool = True, edges: Sequence[Tuple[Node, Node]] = ()
) -> List[Change]:
    # A replaced object has two changes under one key: its drop and its create.
    by_key: Dict[Key, Change] = {c.key: c for c in changes if c.action != DESTROY}
    dropping: Dict[Key, Change] = {c.key: c for c in changes if c.action == DESTROY}
    for change in changes:  # a dependency on a provided key (a type) means its provider
        for provided in change.obj.provides:
            (by_key if change.action != DESTROY else dropping).setdefault(provided, change)
    destroyed = set(dropping)
    # Scopes of dropped objects that have parts (tables): what a foreign key between them reaches.
    dropped_scopes = {key_scope(c.obj.parent) for c in dropping.values() if c.obj.parent in destroyed}

    # A drop whose parent is dropped too happens implicitly; its ordering
    # constraints pass to the parent's drop, which is what really removes it.
    def carrier(change: Change) -> Change:
        if explicit_cross_table and change.action == DESTROY and _reaches_outside(change.obj, dropped_scopes):
            return change
        current = change
        while current.action == DESTROY and current.obj.parent in destroyed:
            current = dropping[current.obj.parent]
        return current

    absorbed = _absorbed(changes, by_key) if fold else {}
    for change in changes:
        change.implicit = (change.action == DESTROY and carrier(change) is not change) or change.node in absorbed
        change.parts = []

    # Names in Postgres's namespaces that a drop (or a change's drop-and-add) frees.
    freeing: Dict[Key, List[Change]] = {}
    for change in changes:
        if change.old is not None:
            for name in change.old.names:
                freeing.setdefault(name, []).append(change)

    graph: Dict[Tuple[str, Key], Set[Tuple[str, Key]]] = {c.node: set() for c in changes}
    for change in changes:
        if change.action == CREATE and change.key in dropping:  # a replacement: drop, then create
            graph[change.node].add(dropping[change.key].node)
        # Taking a name: after whatever else frees it. A temporary name is free by construction
        # (the second half of its rename frees it again, after).
        if change.new is not None and freeing and not change.temporary:
            own = set(change.old.names) if change.old is not None else set()
            for name in change.new.names:
                for holder in freeing.get(name, ()):
                    if name not in own and holder is not change:
                        graph[change.node].add(carrier(holder).node)
        if change.new is not None:  # create / migrate: after what the new object needs
            for dep in _needs(change.new, change.key):
                needed = by_key.get(dep)
                if needed is not None and needed.action != DESTROY:
                    graph[change.node].add(needed.node)
        if change.old is not None:  # migrate / destroy: before dropping what the old object needed
            still_needed = set(change.new.dependencies) if change.new is not None else set()
            for dep in _needs(change.old, change.key):
                needed = dropping.get(dep) or by_key.get(dep)
                if needed is not None and needed.action == MIGRATE and dep not in still_needed:
                    # An object that stops using X goes first, so X's change
                    # (an enum type swap, say) no longer has to carry it.
                    before = carrier(change)
                    if before.node != needed.node:
                        graph[needed.node].add(before.node)
                if needed is not None and needed.action == DESTROY:
                    before = carrier(change)
                    target = carrier(needed)
                    if before is not target:
                        graph[target.node].add(before.node)
                    if before is not change:
                        graph[needed.node].add(change.node)

    for first, then in _precedences(changes, carrier):
        graph[then].add(first)
    for first, then in edges:
        graph[then].add(first)

    # A create made by its parent's statement is ordered as that statement: it waits for what the
    # child needs, and whatever needs the child waits for the parent.
    for node, owner in absorbed.items():
        graph[owner.node] |= graph.pop(node)
    for node, needs in graph.items():
        graph[node] = {absorbed[n].node if n in absorbed else n for n in needs} - {node}
    for change in changes:
        if change.node in absorbed:
            absorbed[change.node].parts.append(change)

    groups = _group_ranks(changes, by_key) if fold else {}
    rank: Dict[Tuple[str, Key], Tuple[int, int]] = {}
    for index, change in enumerate(changes):
        group = groups.setdefault(change.obj.group, len(groups))
        rank[change.node] = (group, index)

    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = exc.args[1] if len(exc.args) > 1 else []
        names = " -> ".join(f"{action} {key_text(key)}" for action, key in cycle)
        raise SchemaError(f"the changes depend on each other in a cycle: {names}") from None

    by_node = {c.node: c for c in changes}
    ready: List[Tuple[Tuple[int, int], Tuple[str, Key]]] = []
    ordered: List[Change] = []
    while sorter.is_active():
        for node in sorter.get_ready():
            heapq.heappush(ready, (rank[node], node))
        _, node = heapq.heappop(ready)
        ordered.append(by_node[node])
        ordered.extend(by_node[node].parts)
        sorter.done(node)
    return _join_ready(ordered, by_key, graph, dropping) if fold else ordered


def _precedences(changes: Sequence[Change], carrier: Callable[[Change], Change]) -> List[Edge]:
    """(first, then) pairs for objects that must come before users that do not name them
    (`SchemaObject.precedes_users_of`): a create or change after the lead's create or change,
    a drop (or the drop half of a change) before the lead's drop or change. Nothing is built
    when no object asks for it."""
    leads = [
        change
        for change in changes
        if any(obj is not None and obj.precedes_users_of for obj in (change.old, change.new))
    ]
    if not leads:
        return []
    creating: Dict[Key, List[Change]] = {}
    dropping: Dict[Key, List[Change]] = {}
    for change in changes:
        if change.action != DESTROY and change.new is not None:
            for dep in change.new.dependencies:
                creating.setdefault(dep, []).append(change)
        if change.action == DESTROY and change.old is not None:
            for dep in change.old.dependencies:
                dropping.setdefault(dep, []).append(change)
    out: List[Edge] = []
    for lead in leads:
        if lead.action != DESTROY and lead.new is not None:
            for key in lead.new.precedes_users_of:
                for user in creating.get(key, ()):
                    if user is not lead and user.new is not None and lead.new.precedes(user.new):
                        out.append((lead.node, user.node))
        if lead.action != CREATE and lead.old is not None:
            for key in lead.old.precedes_users_of:
                for user in dropping.get(key, ()):
                    first, then = carrier(user), carrier(lead)
                    if user.old is not None and first is not then and lead.old.precedes(user.old):
                        out.append((first.node, then.node))
    return out


def _needs(obj: SchemaObject, key: Key) -> Tuple[Key, ...]:
    """`obj`'s dependencies and, for an object within a schema, that schema's object (see
    pgmig.schema.handlers.schema): created before anything in it, dropped after. A key of fewer
    parts names no schema (an extension's, unique per database): its object's `schema` field does."""
    if key_kind(key) == "schema":
        return obj.dependencies
    schema = key_schema(key) if len(key) >= 3 else getattr(obj, "schema", None)
    return obj.dependencies + (("schema", schema),) if isinstance(schema, str) else obj.dependencies


def _renamed(change: Change) -> bool:
    """A change of name only, by meaning (`SchemaObject.definition_key`): RENAME CONSTRAINT, ALTER INDEX ... RENAME."""
    old, new = change.old, change.new
    return (
        change.action == MIGRATE
        and not change.temporary
        and old is not None
        and new is not None
        and old.definition_key is not None
        and old.definition_key == new.definition_key
        and isinstance(getattr(old, "name", None), str)
        and set(new.names) != set(old.names)
    )


def _renames_cycle(renames: Sequence[Change]) -> Optional[List[Change]]:
    """Renames each waiting for the next to free the name it takes, the last for the first; None
    when the renames can be ordered."""
    given_up = [set(change.old.names) if change.old is not None else set() for change in renames]
    graph: Dict[int, Set[int]] = {}
    for index, change in enumerate(renames):
        taking = set(change.new.names if change.new is not None else ()) - given_up[index]
        graph[index] = {i for i, names in enumerate(given_up) if i != index and taking & names}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return [renames[i] for i in dict.fromkeys(exc.args[1])]
    return None


def _temporary(obj: SchemaObject, taken: Set[Key]) -> SchemaObject:
    """`obj` under a name none of `taken` holds (nor any other object of either side), as Postgres
    keeps it (at most NAMEDATALEN - 1 = 63 bytes of UTF-8, `clip_bytes`): `<name>_pgmig_tmp<n>`."""
    name = str(getattr(obj, "name", ""))  # a kind with a definition_key has a name (constraints, indexes)
    for attempt in itertools.count():
        suffix = f"_pgmig_tmp{attempt or ''}"
        candidate = obj.evolve(name=clip_bytes(name, NAMEDATALEN - 1 - len(suffix)) + suffix)
        if not taken & set(candidate.names):
            taken.update(candidate.names)
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def through_temporary_names(changes: List[Change], current: SchemaState, desired: SchemaState) -> List[Edge]:
    """Break each cycle of renames (two checks, uniques or indexes swapping names; a key's index
    name and an index's swapping) by renaming one of them to a free temporary name first.

    Renames by meaning take the names other renames give up, so each waits for
    those (`SchemaObject.names`); a cycle can wait for none first. One rename of
    each cycle becomes two changes in `changes` (edited in place): its old name
    to a temporary one (`Change.temporary`, taking no name another holds, so it
    runs first), then the temporary name to the final one, after the name is
    freed. Returns the (first, then) edges between the halves. Both directions
    get it, `down` being planned like `up` with the sides swapped.
    """
    renames = [change for change in changes if _renamed(change)]
    if len(renames) < 2:
        return []
    edges: List[Edge] = []
    taken: Optional[Set[Key]] = None
    while True:
        cycle = _renames_cycle(renames)
        if cycle is None:
            return edges
        if taken is None:  # every name either side holds (built once, only for a cycle: rare)
            taken = {name for state in (current, desired) for obj in state for name in obj.names}
        position = {id(c): index for index, c in enumerate(changes)}
        change = min(cycle, key=lambda c: position[id(c)])  # the first the diff names: a stable choice
        assert change.old is not None
        middle = _temporary(change.old, taken)
        first = Change(MIGRATE, change.old, middle, temporary=True)
        changes.insert(position[id(change)], first)
        change.old = middle
        renames.remove(change)
        edges.append((first.node, change.node))


def build_plan(current: SchemaState, desired: SchemaState, handlers: HandlerSet) -> Plan:
    """Diff, order, and ask each kind's handler for the operations of each change.

    Raises SchemaError when a handler does not return a list of operations
    (an `async def create`, written for the API where handlers called the actor).
    """
    from pgmig.plan.rebuilds import StateAsOf, carry_dependents

    changes = diff_states(current, desired)
    edges = carry_dependents(changes, current, desired)
    edges += through_temporary_names(changes, current, desired)
    ordered = order_changes(changes, edges)
    moment = StateAsOf(current)  # the objects as each change finds them
    for change in ordered:
        if change.implicit:
            moment.advance(change)
            continue
        handler = handlers.by_kind(change.kind)
        if change.action == CREATE and change.parts:
            parts: List[Operation] = []
            for part in change.parts:
                part_handler = handlers.by_kind(part.kind)
                parts += _checked(part_handler.create(part.new), part_handler, part)
            operations = handler.create_with(change.new, parts)
        elif change.action == CREATE:
            operations = handler.create(change.new)
        elif change.action == MIGRATE:
            operations = handler.migrate(moment.of(change.old), change.new)
        else:
            operations = handler.destroy(change.old)
        change.operations = _checked(operations, handler, change)
        moment.advance(change)
    return Plan(ordered)


def _checked(operations: Any, handler: ObjectHandler, change: Change) -> List[Operation]:
    """`operations`, when it is a list of operations; a SchemaError naming the handler otherwise."""
    if isinstance(operations, list) and all(isinstance(op, Operation) for op in operations):
        return operations
    if asyncio.iscoroutine(operations):
        operations.close()  # never awaited: say so here rather than as a RuntimeWarning later
    raise SchemaError(
        f"{type(handler).__qualname__}.{change.action}() for {key_text(change.key)} returned "
        f"{type(operations).__name__}, not a list of operations"
    )
