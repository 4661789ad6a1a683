"""Operations: one change object, several views of it.

An `Operation` is one schema change with plain, printable arguments. The same
object gives the SQL that runs it (`statements`), the line a revision file
calls (`migrator.actor.<name>(**arguments)`), the preview's summary and its
hazards. Built-in and plugin operations register by name; the actor exposes
each registered name as an async method.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Tuple, Type, TypeVar

from pgmig.errors import PgmigError

OPERATIONS: Dict[str, Type["Operation"]] = {}

O = TypeVar("O", bound=Type["Operation"])


@dataclass(frozen=True)
class Operation:
    """Base of every schema change. Subclasses are frozen dataclasses registered by `register`."""

    name: ClassVar[str] = ""
    transactional: ClassVar[bool] = True
    """False: Postgres refuses the statement inside a transaction block (CONCURRENTLY)."""
    commit_before_use: ClassVar[bool] = False
    """True: what it makes cannot be used in the transaction that made it (an enum label),
    so the runner commits it on its own before the rest of the revision goes on."""

    def statements(self) -> List[str]:
        raise NotImplementedError

    def summary(self) -> str:
        return self.name.replace("_", " ")

    def hazards(self) -> Tuple[str, ...]:
        return ()

    def arguments(self) -> Dict[str, Any]:
        """Arguments that differ from their defaults, in declaration order, for the revision file."""
        args: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and value == f.default_factory():  # type: ignore[misc]
                continue
            args[f.name] = list(value) if isinstance(value, tuple) else value
        return args

    def to_json(self) -> Dict[str, Any]:
        return {"operation": self.name, "arguments": self.arguments(), "sql": self.statements()}


def register(cls: O) -> O:
    """Class decorator: make an operation callable as `actor.<cls.name>(...)`."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} needs a `name`")
    existing = OPERATIONS.get(cls.name)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise PgmigError(f"operation {cls.name!r} is defined by both {existing.__module__} and {cls.__module__}")
    OPERATIONS[cls.name] = cls
    return cls


def lookup(name: str) -> Type[Operation]:
    if name not in OPERATIONS:
        # Built-in operations live in pgmig.ops; import them on first need only.
        from pgmig import ops  # noqa: F401
    try:
        return OPERATIONS[name]
    except KeyError:
        raise AttributeError(
            f"the actor has no operation {name!r}; is the plugin that provides it installed and imported?"
        ) from None
