"""How users declare functions and triggers next to their models (on a MetaData)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Tuple

from pgmig.api import declare


@dataclass(frozen=True)
class FunctionDeclaration:
    name: str
    arguments: str
    returns: str
    body: str
    language: str = "sql"
    options: str = ""
    schema: Optional[str] = None
    depends_on: Tuple[str, ...] = ()


@dataclass(frozen=True)
class TriggerDeclaration:
    table: str
    name: str
    function: str
    timing: str = "BEFORE"
    events: Tuple[str, ...] = ("INSERT",)
    for_each: str = "ROW"
    when: Optional[str] = None
    schema: Optional[str] = None


def function(
    target: Any,
    name: str,
    *,
    returns: str,
    body: str,
    arguments: str = "",
    language: str = "sql",
    options: str = "",
    schema: Optional[str] = None,
    depends_on: Iterable[str] = (),
) -> FunctionDeclaration:
    """Declare a function: `arguments` and `returns` as in CREATE FUNCTION (`"a integer, b text"`).

    `options` is any further clause text (`IMMUTABLE STRICT`, `SECURITY
    DEFINER`, `SET search_path = public`). `depends_on` names the tables the
    body touches: Postgres does not track that for function bodies, and it
    is what creates the function after them.
    """
    return declare(
        target, FunctionDeclaration(name, arguments, returns, body, language, options, schema, tuple(depends_on))
    )


def trigger(
    target: Any,
    table: str,
    name: str,
    *,
    function: str,
    timing: str = "BEFORE",
    events: Iterable[str] = ("INSERT",),
    for_each: str = "ROW",
    when: Optional[str] = None,
    schema: Optional[str] = None,
) -> TriggerDeclaration:
    """Declare a trigger on `table` calling `function()` (a trigger function in the same schema)."""
    return declare(
        target,
        TriggerDeclaration(
            table, name, function, timing.upper(), tuple(e.upper() for e in events), for_each.upper(), when, schema
        ),
    )
