"""Schema objects: a key, an equality over the fields that matter, and dependencies.

Every kind (built-in or from a plugin) describes its objects with a frozen
dataclass deriving from `SchemaObject`. The diff engine only ever uses the
key, `==`, `dependencies` and `parent`, so a plugin's kind slots into diffing
and ordering without the engine knowing anything about it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Iterable, Iterator, Optional, Tuple

Key = Tuple[str, ...]
"""(kind, schema, name, ...): unique across all kinds in one schema state."""


@dataclass(frozen=True)
class SchemaObject:
    """Base of every schema object. Subclasses are frozen dataclasses.

    Fields declared with `field(compare=False)` (generated names, the order of
    columns in a table) are carried along but never cause a change.
    """

    kind: ClassVar[str] = "object"

    @property
    def key(self) -> Key:
        raise NotImplementedError

    @property
    def parent(self) -> Optional[Key]:
        """The object that owns this one: dropping the parent drops it too (a table's columns)."""
        return None

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        """Keys that must exist before this object is created (and outlive it when dropped)."""
        return (self.parent,) if self.parent else ()

    @property
    def provides(self) -> Tuple[Key, ...]:
        """Keys this object stands in for: objects depending on one of them wait for this one."""
        return ()

    def must_replace(self, new: "SchemaObject") -> bool:
        """True: changing into `new` is a drop (before what it depends on changes) and a create (after)."""
        return False

    @property
    def group(self) -> Key:
        """The key this object is shown under in the preview (its table, for most kinds)."""
        return self.parent or self.key

    @property
    def label(self) -> str:
        """A short human name, e.g. `column title`."""
        return f"{self.kind} {self.key[-1]}"

    def describe(self) -> str:
        """A one-line summary of what the object is, for the preview."""
        return self.label

    def compared_fields(self) -> Dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.compare
        }

    def differences(self, other: "SchemaObject") -> Dict[str, Tuple[Any, Any]]:
        """Fields that differ between `self` (old) and `other` (new): name -> (old, new)."""
        mine, theirs = self.compared_fields(), other.compared_fields()
        return {name: (mine[name], theirs.get(name)) for name in mine if mine[name] != theirs.get(name)}

    def to_json(self) -> Dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"kind": self.kind, **{k: _jsonable(v) for k, v in data.items()}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def key_text(key: Key) -> str:
    """`column public.article.title` style text for messages."""
    kind, *rest = key
    return f"{kind} {'.'.join(rest)}"


class SchemaState:
    """All objects of one side (models or database), by key."""

    def __init__(self, objects: Iterable[SchemaObject] = ()) -> None:
        self._objects: Dict[Key, SchemaObject] = {}
        for obj in objects:
            self.add(obj)

    @classmethod
    def keyed(cls, pairs: Iterable[Tuple[Key, SchemaObject]]) -> "SchemaState":
        """A state from (key, object) pairs whose keys the caller already computed."""
        state = cls()
        for key, obj in pairs:
            state.add(obj, key)
        return state

    def add(self, obj: SchemaObject, key: Optional[Key] = None) -> None:
        if key is None:
            key = obj.key  # a property that builds a tuple: once per object, not per use
        existing = self._objects.get(key)
        if existing is not None and existing != obj:
            from .errors import SchemaError

            raise SchemaError(f"{key_text(key)} is defined twice, differently")
        self._objects[key] = obj

    def __getitem__(self, key: Key) -> SchemaObject:
        return self._objects[key]

    def get(self, key: Key) -> Optional[SchemaObject]:
        return self._objects.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def __iter__(self) -> Iterator[SchemaObject]:
        return iter(self._objects.values())

    def __len__(self) -> int:
        return len(self._objects)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SchemaState) and self._objects == other._objects

    __hash__ = None  # type: ignore[assignment]

    def keys(self) -> Iterable[Key]:
        return self._objects.keys()

    def items(self) -> Iterable[Tuple[Key, SchemaObject]]:
        return self._objects.items()

    def of_kind(self, kind: str) -> Iterator[SchemaObject]:
        return (obj for obj in self._objects.values() if obj.kind == kind)
