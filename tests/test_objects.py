"""SchemaObject.of and evolve: the fast constructor and replace give exactly what __init__ and dataclasses.replace give."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple

import pytest

from pgmig.schema.handlers.column import Column
from pgmig.schema.handlers.constraint import Constraint
from pgmig.schema.objects import Key, SchemaObject


@dataclass(frozen=True)
class Thing(SchemaObject):
    kind = "thing"
    name: str
    size: int = 1
    tags: Tuple[str, ...] = ()
    note: Optional[str] = field(default=None, compare=False)

    @property
    def key(self) -> Key:
        return ("thing", self.name)


@dataclass(frozen=True)
class BigThing(Thing):
    weight: int = 0


@dataclass(frozen=True)
class Checked(SchemaObject):
    kind = "checked"
    name: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a name is needed")

    @property
    def key(self) -> Key:
        return ("checked", self.name)


@dataclass(frozen=True)
class Listed(SchemaObject):
    kind = "listed"
    items: Tuple[str, ...] = field(default_factory=tuple)


def test_of_builds_what_init_builds() -> None:
    for made, expected in [
        (Thing.of(name="a"), Thing(name="a")),
        (Thing.of(name="a", size=3, tags=("x",), note="n"), Thing(name="a", size=3, tags=("x",), note="n")),
        (BigThing.of(name="b", weight=2), BigThing(name="b", weight=2)),
        (
            Column.of(schema="s", table="t", name="c", data_type="text"),
            Column(schema="s", table="t", name="c", data_type="text"),
        ),
        (
            Constraint.of(schema="s", table="t", constraint_type="check", expression="x > 0"),
            Constraint(schema="s", table="t", constraint_type="check", expression="x > 0"),
        ),
    ]:
        assert type(made) is type(expected)
        assert made == expected and hash(made) == hash(expected)
        assert dataclasses.asdict(made) == dataclasses.asdict(expected)
        assert made.key == expected.key


def test_of_checks_arguments_as_init_does() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'nmae'"):
        Thing.of(nmae="a")
    with pytest.raises(TypeError, match="name"):
        Thing.of(size=2)
    with pytest.raises(TypeError):
        Thing.of("a")  # keyword-only, as the handlers call it


def test_objects_built_by_of_stay_frozen() -> None:
    thing = Thing.of(name="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        thing.name = "b"  # type: ignore[misc]


def test_classes_of_cannot_build_fast_go_through_init() -> None:
    with pytest.raises(ValueError, match="a name is needed"):
        Checked.of(name="")
    assert Checked.of(name="x") == Checked(name="x")
    assert Listed.of() == Listed()
    assert Listed.of(items=("a",)).items == ("a",)


def test_a_subclass_gets_its_own_constructor() -> None:
    Thing.of(name="first")  # the parent's constructor is made first
    big = BigThing.of(name="b", weight=5)
    assert type(big) is BigThing and big.weight == 5


def test_evolve_is_replace() -> None:
    thing = Thing.of(name="a", size=2, note="kept")
    assert thing.evolve(size=3) == dataclasses.replace(thing, size=3)
    assert thing.evolve(size=3).note == "kept" and thing.size == 2
    assert Checked(name="x").evolve(name="y") == Checked(name="y")
    with pytest.raises(ValueError):
        Checked(name="x").evolve(name="")
    with pytest.raises(TypeError):
        thing.evolve(nmae="b")
