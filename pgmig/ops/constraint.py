"""Operations on table constraints: primary keys, unique constraints, foreign keys, checks.

Every `add_*` takes the table, the constraint's own arguments and an optional
`constraint_name` (None lets Postgres choose its usual name, as `create_all`
does); `drop_constraint` removes any of them by name, because Postgres drops
every kind the same way. `new_table=True` says the table is created in the
same plan and is therefore empty: adding the constraint scans nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..operations import Operation, register
from ..sql import ident_list, qualified, quote_ident

_ACTIONS = ("NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT")
_MATCHES = ("SIMPLE", "FULL", "PARTIAL")


def _alter(schema: str, table: str) -> str:
    return f"ALTER TABLE {qualified(schema, table)}"


def _named(constraint_name: Optional[str]) -> str:
    return f"CONSTRAINT {quote_ident(constraint_name)} " if constraint_name else ""


def _deferrability(deferrable: bool, initially_deferred: bool) -> str:
    if initially_deferred:
        return " DEFERRABLE INITIALLY DEFERRED"
    return " DEFERRABLE" if deferrable else ""


def _phrase(value: str, allowed: Tuple[str, ...], what: str) -> str:
    """Actions are keywords, not identifiers or values: accept only the ones Postgres knows."""
    phrase = " ".join(value.upper().split())
    if phrase not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return phrase


@dataclass(frozen=True)
class _AddConstraint(Operation):
    """Shared shape of the `add_*` operations: an ALTER TABLE ... ADD with a scan hazard."""

    def _add(self, body: str) -> List[str]:
        return [f"{_alter(self.schema, self.table_name)} ADD {_named(self.constraint_name)}{body}"]  # type: ignore[attr-defined]

    def hazards(self) -> Tuple[str, ...]:
        # Postgres checks every existing row (and builds an index for PK/unique).
        return () if self.new_table else ("full_scan",)  # type: ignore[attr-defined]


@register
@dataclass(frozen=True)
class AddPrimaryKey(_AddConstraint):
    name = "add_primary_key"
    table_name: str
    columns: List[str]
    constraint_name: Optional[str] = None
    deferrable: bool = False
    initially_deferred: bool = False
    new_table: bool = False
    schema: str = "public"

    def statements(self) -> List[str]:
        return self._add(
            f"PRIMARY KEY ({ident_list(self.columns)})"
            + _deferrability(self.deferrable, self.initially_deferred)
        )

    def summary(self) -> str:
        return f"add primary key ({', '.join(self.columns)})"


@register
@dataclass(frozen=True)
class AddUnique(_AddConstraint):
    name = "add_unique"
    table_name: str
    columns: List[str]
    constraint_name: Optional[str] = None
    nulls_not_distinct: bool = False
    deferrable: bool = False
    initially_deferred: bool = False
    new_table: bool = False
    schema: str = "public"

    def statements(self) -> List[str]:
        nulls = " NULLS NOT DISTINCT" if self.nulls_not_distinct else ""
        return self._add(
            f"UNIQUE{nulls} ({ident_list(self.columns)})"
            + _deferrability(self.deferrable, self.initially_deferred)
        )

    def summary(self) -> str:
        return f"add unique ({', '.join(self.columns)})"


@register
@dataclass(frozen=True)
class AddForeignKey(_AddConstraint):
    """`referred_schema=None` means the table's own schema."""

    name = "add_foreign_key"
    table_name: str
    columns: List[str]
    referred_table: str
    referred_columns: List[str]
    referred_schema: Optional[str] = None
    constraint_name: Optional[str] = None
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    match: str = "SIMPLE"
    deferrable: bool = False
    initially_deferred: bool = False
    new_table: bool = False
    schema: str = "public"

    def statements(self) -> List[str]:
        referred = qualified(self.referred_schema or self.schema, self.referred_table)
        body = (
            f"FOREIGN KEY ({ident_list(self.columns)}) "
            f"REFERENCES {referred} ({ident_list(self.referred_columns)})"
        )
        match = _phrase(self.match, _MATCHES, "match")
        if match != "SIMPLE":
            body += f" MATCH {match}"
        for clause, action in (("ON UPDATE", self.on_update), ("ON DELETE", self.on_delete)):
            phrase = _phrase(action, _ACTIONS, clause.lower())
            if phrase != "NO ACTION":
                body += f" {clause} {phrase}"
        return self._add(body + _deferrability(self.deferrable, self.initially_deferred))

    def summary(self) -> str:
        return (
            f"add foreign key ({', '.join(self.columns)}) -> "
            f"{self.referred_table} ({', '.join(self.referred_columns)})"
        )


@register
@dataclass(frozen=True)
class AddCheck(_AddConstraint):
    """`expression` is SQL (the text inside CHECK (...)), as Postgres prints it where possible."""

    name = "add_check"
    table_name: str
    expression: str
    constraint_name: Optional[str] = None
    new_table: bool = False
    schema: str = "public"

    def statements(self) -> List[str]:
        return self._add(f"CHECK ({self.expression})")

    def summary(self) -> str:
        return f"add check {self.constraint_name or self.expression}"


@register
@dataclass(frozen=True)
class DropConstraint(Operation):
    name = "drop_constraint"
    table_name: str
    constraint_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"{_alter(self.schema, self.table_name)} DROP CONSTRAINT {quote_ident(self.constraint_name)}"]

    def summary(self) -> str:
        return f"drop constraint {self.constraint_name}"
