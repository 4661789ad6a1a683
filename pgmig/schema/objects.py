"""Schema objects: a key, an equality over the fields that matter, and dependencies.

Every kind (built-in or from a plugin) describes its objects with a frozen
dataclass deriving from `SchemaObject`. The diff engine only ever uses the
key, `==`, `dependencies` and `parent`, so a plugin's kind slots into diffing
and ordering without the engine knowing anything about it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, FrozenSet, Iterable, Iterator, Mapping, Optional, Tuple, Type, TypeVar

Key = Tuple[str, ...]
"""(kind, schema, name, ...): unique across all kinds in one schema state.

Read its parts with `key_kind`, `key_schema`, `key_name` and `key_scope`,
not by position, so a reader sees what a comparison means.
"""


def key_kind(key: Key) -> str:
    """The kind a key names: `column` for ("column", "public", "article", "title")."""
    return key[0]


def key_schema(key: Key) -> str:
    """The schema of a key: `public` for ("column", "public", "article", "title")."""
    return key[1]


def key_name(key: Key) -> str:
    """The third part of a key: the name of an object that lives in a schema (a table,
    an enum, an index, a view: `article` for ("table", "public", "article")), the
    name of the table an object within a table belongs to (a column, a constraint,
    a trigger: `article` for ("column", "public", "article", "title"))."""
    return key[2]


def key_scope(key: Key) -> Tuple[str, ...]:
    """(schema, name) of the schema-level object a key names or lies within:
    ("public", "article") for the table `article` and for each of its columns and
    constraints. A key of fewer parts gives what it has (an extension's (kind, name))."""
    return key[1:3]


O = TypeVar("O", bound="SchemaObject")


class _Constructor:
    """`Cls.of(**fields)`: `Cls(**fields)` in half the time.

    A frozen dataclass's `__init__` sets each field through
    `object.__setattr__`; a diff builds an object per column, constraint and
    index on both sides (some 40,000 at 1,000 tables), and that was a tenth
    of its time. `of` is a function generated per class, keyword-only with
    the same defaults, that hands the instance its `__dict__` whole: Python
    checks the arguments as it would for `__init__`. Classes with a
    `__post_init__`, a default factory, init=False fields or `__slots__` get
    their own `__init__`.
    """

    def __get__(self, obj: Any, owner: Type[O]) -> Callable[..., O]:
        built = _CONSTRUCTORS.get(owner)
        if built is None:
            built = _CONSTRUCTORS[owner] = _constructor(owner)
        return built  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SchemaObject:
    """Base of every schema object. Subclasses are frozen dataclasses.

    Fields declared with `field(compare=False)` (generated names, the order of
    columns in a table) are carried along but never cause a change.
    """

    kind: ClassVar[str] = "object"

    # `Cls.of(**fields)`, set below the class: the dataclass machinery would call
    # the descriptor while the class is being made.
    of: ClassVar[_Constructor]

    def evolve(self: O, **changes: Any) -> O:
        """`dataclasses.replace(self, **changes)` for the classes `of` builds fast, as fast."""
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None or not changes.keys() <= names:
            return dataclasses.replace(self, **changes)
        obj = _new(cls)
        values = dict(self.__dict__)
        values.update(changes)
        _set(obj, "__dict__", values)
        return obj

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

    @property
    def names(self) -> Tuple[Key, ...]:
        """The names this object takes in Postgres's namespaces, as keys: ("relation", schema, name)
        for what lives in pg_class, ("constraint_name", schema, table, name) for a constraint.
        An object taking a name waits for the drop of any other object holding it."""
        return ()

    def creates_with_itself(self, child: "SchemaObject") -> bool:
        """True: when both are new, `child` (whose `parent` is this object) is created by this
        object's own statement (a table's columns and keys in its CREATE TABLE), not after it.

        The plan then orders the two as one (the child's dependencies are the
        parent's) and asks the parent's handler for both (`ObjectHandler.create_with`).
        """
        return False

    def may_create_with_itself(self, child: "SchemaObject") -> bool:
        """True: a new `child` joins this new object's own statement when everything it needs is
        created before that statement (a foreign key to a table created earlier), and is created
        on its own, after, otherwise (tables referencing each other)."""
        return False

    @property
    def definition_key(self) -> Optional[Tuple[Any, ...]]:
        """What the object is apart from its own name, for kinds whose name does not identify them
        (constraints, indexes); None (the default) for the others.

        The diff pairs a dropped object with a created one of the same
        definition key: equal, they are the same object (a constraint the models
        leave unnamed takes whatever name the database has); else the handler's
        `migrate` turns one into the other (renames it: RENAME CONSTRAINT,
        ALTER INDEX ... RENAME TO), in both directions.
        """
        return None

    @property
    def precedes_users_of(self) -> Tuple[Key, ...]:
        """Keys whose users may need this object first without naming it as a dependency: a
        create or change of another object that depends on one of these keys, and that
        `precedes` accepts, waits for this object's create or change; its drop (or the drop
        before a change) goes before this object's drop or change.

        For a plugin's kind that other kinds cannot know about: a Citus distribution must exist
        before a foreign key on or to its table, which names only the tables (pgmig-citus).
        """
        return ()

    def precedes(self, other: "SchemaObject") -> bool:
        """Whether `other`, which depends on one of `precedes_users_of`, needs this object first
        (asked only of those; default False)."""
        return False

    @property
    def holds_rows(self) -> bool:
        """True for objects holding rows (tables, columns): never dropped and created again to
        carry them through a rebuild, their rows would go (a generated column holds none)."""
        return self.kind in ("table", "column")

    def must_replace(self, new: "SchemaObject") -> bool:
        """True: changing into `new` is a drop (before what it depends on changes) and a create (after)."""
        return False

    def rebuilds(self, new: "SchemaObject") -> Tuple[Key, ...]:
        """Keys of objects Postgres rebuilds in place when this object changes into `new`.

        An enum type swap re-types every column of the type; a column type
        change rewrites the column. Whatever depends on a rebuilt key and is
        not `rebuilt_with` it is dropped before the change and created again
        after it (see pgmig.plan.rebuilds).
        """
        return ()

    def drops_along(self, new: "SchemaObject", dependent: "SchemaObject") -> bool:
        """True when changing into `new` drops `dependent` (an object depending on a key that
        `rebuilds(new)` names), whatever `dependent.rebuilt_with` says: the planner then drops it
        before the change and creates it again after. Default False.

        Citus's alter_distributed_table drops the foreign keys between the table it moves and
        other distributed tables (pgmig-citus).
        """
        return False

    def displaces(self, dependent: "SchemaObject") -> bool:
        """True when creating or dropping this object (on objects that stay) cannot be done while
        `dependent` exists: an object that depends on one of `precedes_users_of` and is kept or
        changed by the plan. The planner then drops `dependent` before this object's create or
        drop and creates it again after (see pgmig.plan.rebuilds). Default False.

        Citus refuses create_distributed_table and undistribute_table while foreign keys link the
        table to others (pgmig-citus).
        """
        return False

    def rebuilt_with(self, key: Key) -> bool:
        """True when Postgres carries this object through a rebuild of `key` (one of its
        dependencies) by itself, with the same result as creating it afresh.

        Default False: the planner drops it before and creates it again after.
        A plain index over a column is rebuilt by ALTER COLUMN TYPE; an index
        predicate or a CHECK comparing the column with a constant of the old
        type is not (Postgres re-reads the stored expression against the new
        type, and fails or prints something else).
        """
        return False

    def as_of(self, state: "Mapping[Key, SchemaObject]") -> "SchemaObject":
        """This object as it stands when its change runs: `state` holds every object
        after the changes ordered before it. Default: itself.

        An enum's type swap converts the columns that exist at that moment,
        with the defaults they have then (see EnumHandler.migrate).
        """
        return self

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
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.compare}

    def differences(self, other: "SchemaObject") -> Dict[str, Tuple[Any, Any]]:
        """Fields that differ between `self` (old) and `other` (new): name -> (old, new)."""
        mine, theirs = self.compared_fields(), other.compared_fields()
        return {name: (mine[name], theirs.get(name)) for name in mine if mine[name] != theirs.get(name)}

    def to_json(self) -> Dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"kind": self.kind, **{k: _jsonable(v) for k, v in data.items()}}


_new = object.__new__
_set = object.__setattr__
# Classes `of` builds without __init__ -> their field names (what `evolve` may change).
_FIELD_NAMES: Dict[type, FrozenSet[str]] = {}


_CONSTRUCTORS: Dict[type, Any] = {}
SchemaObject.of = _Constructor()


def _constructor(cls: type) -> Any:
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__") or "__slots__" in vars(cls):
        return cls
    params, items = [], []
    namespace: Dict[str, Any] = {"_new": _new, "_set": _set, "_cls": cls}
    for f in dataclasses.fields(cls):
        if not f.init or f.default_factory is not dataclasses.MISSING:
            return cls
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        items.append(f"{f.name!r}: {f.name}")
    if not params:
        return cls
    source = (
        f"def of(*, {', '.join(params)}):\n"
        f"    obj = _new(_cls)\n"
        f"    _set(obj, '__dict__', {{{', '.join(items)}}})\n"
        f"    return obj\n"
    )
    exec(source, namespace)
    _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    function = namespace["of"]
    function.__qualname__ = f"{cls.__qualname__}.of"
    return function


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
        pairs = list(pairs)
        state = cls()
        state._objects = dict(pairs)
        if len(state._objects) < len(pairs):  # a key given twice: equal objects are fine, others an error
            state._objects = {}
            for key, obj in pairs:
                state.add(obj, key)
        return state

    def add(self, obj: SchemaObject, key: Optional[Key] = None) -> None:
        if key is None:
            key = obj.key  # a property that builds a tuple: once per object, not per use
        existing = self._objects.get(key)
        if existing is not None and existing != obj:
            from pgmig.errors import SchemaError

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
