"""Operations: one change object, several views of it.

An `Operation` is one schema change with plain, printable arguments. The same
object gives the SQL that runs it (`statements`), the line a revision file
calls (`migrator.actor.<name>(**arguments)`) and its hazards. Built-in and
plugin operations register by name: the typed actor has one method per
built-in operation (generated from this registry), and plugin operations are
run by name or with `actor.run(operation)`.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from pgmig.errors import PgmigError, RevisionError

OPERATIONS: Dict[str, Type["Operation"]] = {}

O = TypeVar("O", bound=Type["Operation"])
Op = TypeVar("Op", bound="Operation")


class Hazard(str, Enum):
    """What running an operation can cost, as shown in the preview, `--json` and revision comments.

    Members are strings (`Hazard.DELETES_DATA == "deletes_data"`), so JSON,
    the preview and code comparing with the plain strings see the values.
    """

    DELETES_DATA = "deletes_data"
    """Rows, columns or values are gone for good (DROP, a narrowing type change, removed enum labels)."""
    REWRITES_TABLE = "rewrites_table"
    """Postgres writes a new copy of the table (and its indexes) under ACCESS EXCLUSIVE."""
    ACCESS_EXCLUSIVE_LOCK = "access_exclusive_lock"
    """Reads and writes of the table wait while the statement runs."""
    BLOCKS_WRITES = "blocks_writes"
    """Writes wait (SHARE or SHARE ROW EXCLUSIVE), reads go on."""
    FULL_SCAN = "full_scan"
    """Every row is read (to check a constraint, fill a column or a materialized view)."""
    INDEX_BUILD = "index_build"
    """An index is built from every row of an existing table."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        # Python 3.11+ formats a mixed-in enum as `Hazard.FULL_SCAN`; f-strings must show the value.
        return self.value.__format__(spec)


@dataclass(frozen=True)
class Operation:
    """Base of every schema change. Subclasses are frozen dataclasses registered by `register`."""

    name: ClassVar[str] = ""
    transactional: ClassVar[bool] = True
    """False: Postgres refuses the statement inside a transaction block (CONCURRENTLY)."""
    commit_before_use: ClassVar[bool] = False
    """True: what it makes cannot be used in the transaction that made it (an enum label),
    so the runner commits it on its own before the rest of the revision goes on."""
    argument_types: ClassVar[Mapping[str, Any]] = {}
    """How a revision file spells a field when that differs from the field's type (a dict for
    pairs): the typed actor's parameter type. Other fields' lists and tuples are `Sequence`s."""

    def statements(self) -> List[str]:
        """The SQL, one statement an item, as it runs and as `--sql` prints it."""
        raise NotImplementedError

    def ahead_of(self, earlier: Sequence["Operation"]) -> Optional["Operation"]:
        """For a `commit_before_use` step: the step to commit before the revision's transaction
        begins, given the steps `earlier` that precede it in the revision; None when it must
        run in place, inside the transaction (what it changes is made there).

        Committed first, it cannot wait on a lock the transaction holds (the
        transaction would wait on it in turn: a deadlock). Default: itself.
        """
        return self

    def bound_statements(self) -> List[Tuple[str, Tuple[Any, ...]]]:
        """What the actor executes: each statement with its `$n` parameters (none unless overridden)."""
        return [(statement, ()) for statement in self.statements()]

    def hazards(self) -> Tuple[Hazard, ...]:
        return ()

    def arguments(self) -> Dict[str, Any]:
        """Arguments that differ from their defaults, in declaration order, for the revision file."""
        args: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
                continue
            args[f.name] = list(value) if isinstance(value, tuple) else value
        return args

    def to_json(self) -> Dict[str, Any]:
        arguments = {name: _json_value(value) for name, value in self.arguments().items()}
        return {"operation": self.name, "arguments": arguments, "sql": self.statements()}


def _json_value(value: Any) -> Any:
    """A plain JSON value for an argument: parts of an operation (a `create_table`'s columns) as their dicts."""
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    to_json = getattr(value, "to_json", None)
    return to_json() if callable(to_json) else value


def register(cls: O) -> O:
    """Class decorator: make an operation callable as `actor.<cls.name>(...)`.

    Raises `PgmigError` when another module already registered the name.
    """
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} needs a `name`")
    existing = OPERATIONS.get(cls.name)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise PgmigError(f"operation {cls.name!r} is defined by both {existing.__module__} and {cls.__module__}")
    OPERATIONS[cls.name] = cls
    return cls


class UnknownOperationError(RevisionError, AttributeError):
    """A revision called `migrator.actor.<name>` and no registered operation has that name.

    An `AttributeError` too, so `getattr(actor, name, default)` and `hasattr` keep working.
    """


def lookup(name: str) -> Type[Operation]:
    """The operation class registered as `name`.

    Raises `UnknownOperationError` naming the closest registered names
    (`add_colum` -> "did you mean add_column?").
    """
    if name not in OPERATIONS:
        # Built-in operations live in pgmig.ops; import them on first need only.
        from pgmig import ops  # noqa: F401
    try:
        return OPERATIONS[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, OPERATIONS, n=1)
    hint = f"did you mean {close[0]}?" if close else "is the plugin that provides it installed and imported?"
    raise UnknownOperationError(f"the actor has no operation {name!r}: {hint}")


def build(operation_class: Type[Op], **arguments: Any) -> Op:
    """`operation_class(**arguments)`, with a TypeError naming the actor method that was called wrong."""
    try:
        return operation_class(**arguments)
    except TypeError as exc:
        raise TypeError(f"actor.{operation_class.name}(): {exc}") from None
