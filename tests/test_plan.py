"""The planner on its own: set diffs and graph ordering, with a kind no built-in knows about."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import pytest

from pgmig.errors import SchemaError
from pgmig.plan.diff import diff_states, order_changes
from pgmig.revisions.files import new_revision_id
from pgmig.schema.handlers.column import Column
from pgmig.schema.handlers.table import Table
from pgmig.schema.objects import Key, SchemaObject, SchemaState


@dataclass(frozen=True)
class View(SchemaObject):
    """A plugin-style kind: depends on the columns it reads, owned by no table."""

    kind = "view"
    schema: str
    name: str
    reads: Tuple[Key, ...] = ()

    @property
    def key(self) -> Key:
        return ("view", self.schema, self.name)

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        return self.reads


def col(table: str, name: str, data_type: str = "integer") -> Column:
    return Column(schema="public", table=table, name=name, data_type=data_type)


def test_plugin_kind_is_ordered_by_its_dependencies() -> None:
    view = View("public", "a_view", reads=(("column", "public", "zz", "x"),))
    desired = SchemaState([view, Table("public", "zz"), col("zz", "x")])
    ordered = order_changes(diff_states(SchemaState(), desired))
    keys = [c.key for c in ordered]
    assert keys.index(("table", "public", "zz")) < keys.index(("column", "public", "zz", "x")) < keys.index(view.key)
    # Dropping everything: the view goes first, the column with its table.
    dropped = order_changes(diff_states(desired, SchemaState()))
    assert dropped[0].key == view.key
    assert [c.implicit for c in dropped if c.kind == "column"] == [True]


def test_a_dependency_changing_type_is_changed_after_its_dependents_stop_needing_it() -> None:
    old_view = View("public", "v", reads=(("column", "public", "t", "x"),))
    new_view = View("public", "v", reads=())
    current = SchemaState([Table("public", "t"), col("t", "x"), old_view])
    desired = SchemaState([Table("public", "t"), col("t", "x", "bigint"), new_view])
    ordered = order_changes(diff_states(current, desired))
    assert [c.key for c in ordered] == [new_view.key, ("column", "public", "t", "x")]


def test_cycle_is_a_clear_error() -> None:
    a = View("public", "a", reads=(("view", "public", "b"),))
    b = View("public", "b", reads=(("view", "public", "a"),))
    with pytest.raises(SchemaError, match=r"cycle: .*view public\.(a|b)"):
        order_changes(diff_states(SchemaState(), SchemaState([a, b])))


def test_diff_is_set_arithmetic() -> None:
    current = SchemaState([Table("public", "t"), col("t", "gone"), col("t", "same")])
    desired = SchemaState([Table("public", "t", comment="new"), col("t", "same"), col("t", "added")])
    actions = {(c.action, c.key[-1]) for c in diff_states(current, desired)}
    assert actions == {("migrate", "t"), ("create", "added"), ("destroy", "gone")}
    assert {c.action for c in diff_states(desired, desired)} == set()


def test_revision_ids_sort_in_creation_order_and_never_collide() -> None:
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 11, 25, 19, 15, 12, tzinfo=timezone.utc)
    same_second = {new_revision_id(now) for _ in range(50)}
    assert len(same_second) > 45  # 16 bits of randomness: collisions in one second are rare
    assert all(i.startswith("20261125_191512_") for i in same_second)
    assert new_revision_id(now) < new_revision_id(now + timedelta(seconds=1))


@dataclass(frozen=True)
class Gate(SchemaObject):
    """A kind that views of its table must wait for, though they never name it (as a Citus
    distribution comes before the foreign keys on its table)."""

    kind = "gate"
    table: str

    @property
    def key(self) -> Key:
        return ("gate", "public", self.table)

    @property
    def parent(self) -> Key:
        return ("table", "public", self.table)

    @property
    def precedes_users_of(self) -> Tuple[Key, ...]:
        return (("table", "public", self.table),)

    def precedes(self, other: SchemaObject) -> bool:
        return other.kind == "view"


def test_an_object_goes_before_the_users_that_do_not_name_it() -> None:
    view = View("public", "a_view", reads=(("table", "public", "t"),))
    gate = Gate("t")
    base = [Table("public", "t"), col("t", "x")]
    keys = [c.key for c in order_changes(diff_states(SchemaState(base), SchemaState([*base, view, gate])))]
    assert keys == [gate.key, view.key]
    # Undone: the view goes first; the column, which `precedes` leaves out, is not held back.
    keys = [c.key for c in order_changes(diff_states(SchemaState([*base, view, gate]), SchemaState(base)))]
    assert keys == [view.key, gate.key]
    keys = [c.key for c in order_changes(diff_states(SchemaState(), SchemaState([*base, view, gate])))]
    assert keys.index(gate.key) < keys.index(view.key)
    assert keys.index(("column", "public", "t", "x")) < keys.index(gate.key)


@dataclass(frozen=True)
class Mover(SchemaObject):
    """A kind whose change drops the views of its table, though they say a rebuild keeps them."""

    kind = "mover"
    table: str
    place: int = 0

    @property
    def key(self) -> Key:
        return ("mover", "public", self.table)

    def rebuilds(self, new: SchemaObject) -> Tuple[Key, ...]:
        return (("table", "public", self.table),)

    def drops_along(self, new: SchemaObject, dependent: SchemaObject) -> bool:
        return dependent.kind == "view"


@dataclass(frozen=True)
class KeptView(View):
    def rebuilt_with(self, key: Key) -> bool:
        return True


def test_a_change_that_drops_its_dependents_carries_them_around_itself() -> None:
    from pgmig.plan.rebuilds import carry_dependents

    view = KeptView("public", "v", reads=(("table", "public", "t"),))
    base = [Table("public", "t"), view]
    changes = diff_states(SchemaState([*base, Mover("t", 1)]), SchemaState([*base, Mover("t", 2)]))
    ordered = order_changes(changes, carry_dependents(changes, SchemaState(base), SchemaState(base)))
    assert [(c.action, c.key) for c in ordered] == [
        ("destroy", view.key),
        ("migrate", ("mover", "public", "t")),
        ("create", view.key),
    ]
