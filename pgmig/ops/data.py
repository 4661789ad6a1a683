"""Data operations: filling a column before it becomes NOT NULL, and a revision's own SQL."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, List, Mapping, Tuple

from pgmig.db.quoting import highest_parameter, qualified, quote_ident, quote_literal, sql_parts
from pgmig.errors import RevisionError
from pgmig.ops.base import Hazard, Operation, register


class StepArgumentError(RevisionError):
    """A data step's values do not fit its SQL (a count other than its highest `$n`, a dict)."""


@register
@dataclass(frozen=True)
class BackfillColumn(Operation):
    """Set `column` to `expression` (SQL) where it is NULL, so SET NOT NULL can succeed."""

    name = "backfill_column"
    locks = 2
    rerunnable = True  # only rows still NULL are set
    table_name: str
    column_name: str
    expression: str
    schema: str = "public"

    def statements(self) -> List[str]:
        column = quote_ident(self.column_name)
        return [
            f"UPDATE {qualified(self.schema, self.table_name)} SET {column} = {self.expression} WHERE {column} IS NULL"
        ]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (Hazard.FULL_SCAN, Hazard.BLOCKS_WRITES)


def sql_literal(value: Any) -> str:
    """`value` written as SQL, for showing a parameterized statement in `--sql`.

    Raises StepArgumentError for a dict (neither asyncpg nor SQL takes one as such).
    Numbers and booleans as themselves (negative ones in parentheses, NaN and
    infinities quoted), bytes as a bytea literal, lists as
    ARRAY[...] ('{}' when empty), anything else (text, dates, UUIDs) as a string literal of its
    `str()`, which Postgres casts from `unknown` by context as it would the
    parameter.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, Decimal)):
        if not math.isfinite(value):  # NaN and infinities have no numeric syntax: 'NaN', 'inf' cast by context
            return quote_literal(str(value))
        text = str(value)
        # A sign in parentheses: `x-$1` must not become `x--1`, the start of a comment.
        return f"({text})" if text.startswith("-") else text
    if isinstance(value, (bytes, bytearray)):
        return quote_literal("\\x" + bytes(value).hex()) + "::bytea"
    if isinstance(value, Mapping):
        # Not what the server would bind either (asyncpg takes JSON as text): json.dumps(value) is.
        raise StepArgumentError(
            f"a dict ({value!r}) cannot be a bound parameter: pass it as JSON text, json.dumps(value), "
            "cast in the SQL where needed ($1::jsonb)"
        )
    if isinstance(value, (list, tuple)):
        if not value:  # ARRAY[] has no type to take; '{}' is cast by context, as the parameter would be
            return "'{}'"
        return "ARRAY[" + ", ".join(sql_literal(item) for item in value) + "]"
    return quote_literal(str(value))


@register
@dataclass(frozen=True)
class ExecuteSQL(Operation):
    """Run one SQL statement of a revision's own (a data step); `$1`, `$2`... are bound to `parameters`.

    Revision files call it as `await migrator.actor.execute(sql, *args)`. The
    server binds the parameters when it runs; `--sql` shows the statement
    with them written in as literals (`sql_literal`).
    """

    name = "execute_sql"
    touches_any_rows = True
    sql: str
    parameters: Tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", tuple(self.parameters))
        if not self.parameters:
            return  # sent as is (the simple protocol): a `$1` of PREPARE or a function body is left alone
        expected = highest_parameter(self.sql)
        if expected != len(self.parameters):
            # The server expects as many values as the highest $n; asyncpg refuses any other count at run time.
            raise StepArgumentError(
                f"execute({self.sql!r}, ...) was given {len(self.parameters)} value(s) and its SQL expects "
                f"{expected} (its highest $n outside quotes and comments): give one value for each of $1..${expected}"
            )
        for value in self.parameters:
            sql_literal(value)  # refused as it would be by --sql, before anything runs

    def statements(self) -> List[str]:
        if not self.parameters:
            return [self.sql]
        return [
            "".join(
                sql_literal(self.parameters[int(text[1:]) - 1]) if kind == "param" else text
                for kind, text in sql_parts(self.sql)
            )
        ]

    def bound_statements(self) -> List[Tuple[str, Tuple[Any, ...]]]:
        return [(self.sql, self.parameters)]
