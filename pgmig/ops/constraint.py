"""Operations on table constraints: primary keys, unique constraints, foreign keys, checks.

Every `add_*` takes the table, the constraint's own arguments and an optional
`constraint_name` (None lets Postgres choose its usual name, as `create_all`
does); `drop_constraint` removes any of them by name, because Postgres drops
every kind the same way. `new_table=True` says the table is created in the
same plan and is therefore empty: adding the constraint scans nothing.

Locks, as PostgreSQL takes them (checked in tests/test_zero_downtime.py):

- ADD PRIMARY KEY / UNIQUE: ACCESS EXCLUSIVE on the table while the index is
  built from every row.
- ADD FOREIGN KEY: SHARE ROW EXCLUSIVE on the table and on the referenced
  table (writes blocked, reads not); ADD CHECK: ACCESS EXCLUSIVE.
- VALIDATE CONSTRAINT: SHARE UPDATE EXCLUSIVE on the table (ROW SHARE on a
  referenced table): reads and writes go on during the scan.
- DROP CONSTRAINT: ACCESS EXCLUSIVE, for a catalog update only.

So a foreign key or check on a table that already has rows is added
`NOT VALID` (no scan: the lock is held for a moment) and then validated in a
statement of its own. Each lock lasts until the transaction ends: the scan
runs without blocking writes only when the two statements are committed
separately, as in a revision marked `transactional = False`; in one
transaction the pair costs what the plain form costs and changes nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, Optional, Sequence, Tuple

from pgmig.db.quoting import ident_list, qualified, quote_ident
from pgmig.ops.base import Hazard, Operation, register

_ACTIONS = ("NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT")
_MATCHES = ("SIMPLE", "FULL", "PARTIAL")


def _alter(schema: str, table: str) -> str:
    return f"ALTER TABLE {qualified(schema, table)}"


def named(constraint_name: Optional[str]) -> str:
    """`CONSTRAINT "name" ` before a constraint's body, or nothing when Postgres chooses the name."""
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


def primary_key_body(
    columns: Sequence[str], deferrable: bool = False, initially_deferred: bool = False, include: Sequence[str] = ()
) -> str:
    """`PRIMARY KEY (...) [INCLUDE (...)]`, as ALTER TABLE ... ADD and CREATE TABLE both spell it."""
    return f"PRIMARY KEY ({ident_list(columns)})" + _include(include) + _deferrability(deferrable, initially_deferred)


def unique_body(
    columns: Sequence[str],
    nulls_not_distinct: bool = False,
    deferrable: bool = False,
    initially_deferred: bool = False,
    include: Sequence[str] = (),
) -> str:
    """`UNIQUE [NULLS NOT DISTINCT] (...) [INCLUDE (...)]`, as ALTER TABLE ... ADD and CREATE TABLE both spell it."""
    nulls = " NULLS NOT DISTINCT" if nulls_not_distinct else ""
    return f"UNIQUE{nulls} ({ident_list(columns)})" + _include(include) + _deferrability(deferrable, initially_deferred)


def _include(columns: Sequence[str]) -> str:
    """The index parameter INCLUDE (covered columns), which comes before DEFERRABLE (CREATE TABLE's grammar)."""
    return f" INCLUDE ({ident_list(columns)})" if columns else ""


def foreign_key_body(
    columns: Sequence[str],
    referred: str,
    referred_columns: Sequence[str],
    on_delete: str = "NO ACTION",
    on_update: str = "NO ACTION",
    match: str = "SIMPLE",
    deferrable: bool = False,
    initially_deferred: bool = False,
) -> str:
    """`FOREIGN KEY (...) REFERENCES referred (...) ...` (`referred`: the quoted, qualified table),
    as ALTER TABLE ... ADD and CREATE TABLE both spell it. Raises ValueError for an unknown action."""
    body = f"FOREIGN KEY ({ident_list(columns)}) REFERENCES {referred} ({ident_list(referred_columns)})"
    phrase = _phrase(match, _MATCHES, "match")
    if phrase != "SIMPLE":
        body += f" MATCH {phrase}"
    for clause, action in (("ON UPDATE", on_update), ("ON DELETE", on_delete)):
        phrase = _phrase(action, _ACTIONS, clause.lower())
        if phrase != "NO ACTION":
            body += f" {clause} {phrase}"
    return body + _deferrability(deferrable, initially_deferred)


def check_body(expression: str) -> str:
    """`CHECK (expression)`, as ALTER TABLE ... ADD and CREATE TABLE both spell it."""
    return f"CHECK ({expression})"


@dataclass(frozen=True)
class _AddConstraint(Operation):
    """Shared shape of the `add_*` operations: an ALTER TABLE ... ADD.

    `lock_hazard` names the lock the ADD takes on an existing table.
    """

    lock_hazard: ClassVar[Hazard] = Hazard.ACCESS_EXCLUSIVE_LOCK

    def _add(self, body: str) -> List[str]:
        return [f"{_alter(self.schema, self.table_name)} ADD {named(self.constraint_name)}{body}"]  # type: ignore[attr-defined]

    def hazards(self) -> Tuple[Hazard, ...]:
        # Postgres checks every existing row (and builds an index for PK/unique) under that lock.
        return () if self.new_table else (Hazard.FULL_SCAN, self.lock_hazard)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _ValidatedConstraint(_AddConstraint):
    """A foreign key or check: on an existing table, added NOT VALID and then validated.

    The two steps need the constraint's name (VALIDATE CONSTRAINT names it);
    without one (a hand-written or older revision) the plain single ADD is
    kept, scanning under the ADD's lock.
    """

    @property
    def validated_separately(self) -> bool:
        return not self.new_table and bool(self.constraint_name)  # type: ignore[attr-defined]

    def _add_validated(self, body: str) -> List[str]:
        if not self.validated_separately:
            return self._add(body)
        validate = f"{_alter(self.schema, self.table_name)} VALIDATE CONSTRAINT {quote_ident(self.constraint_name)}"  # type: ignore[attr-defined]
        return self._add(body + " NOT VALID") + [validate]

    def hazards(self) -> Tuple[Hazard, ...]:
        if self.validated_separately:
            # The ADD checks no row; VALIDATE's scan takes SHARE UPDATE EXCLUSIVE only.
            return (self.lock_hazard,)
        return super().hazards()


@register
@dataclass(frozen=True)
class AddPrimaryKey(_AddConstraint):
    """Add a primary key on `columns`, building its unique index (ACCESS EXCLUSIVE on an existing table)."""

    name = "add_primary_key"
    table_name: str
    columns: List[str]
    constraint_name: Optional[str] = None
    deferrable: bool = False
    initially_deferred: bool = False
    new_table: bool = False
    schema: str = "public"

    include: Tuple[str, ...] = ()

    def statements(self) -> List[str]:
        return self._add(primary_key_body(self.columns, self.deferrable, self.initially_deferred, self.include))


@register
@dataclass(frozen=True)
class AddUnique(_AddConstraint):
    """Add a unique constraint on `columns`, building its index (ACCESS EXCLUSIVE on an existing table)."""

    name = "add_unique"
    table_name: str
    columns: List[str]
    constraint_name: Optional[str] = None
    nulls_not_distinct: bool = False
    deferrable: bool = False
    initially_deferred: bool = False
    new_table: bool = False
    schema: str = "public"

    include: Tuple[str, ...] = ()

    def statements(self) -> List[str]:
        body = unique_body(
            self.columns, self.nulls_not_distinct, self.deferrable, self.initially_deferred, self.include
        )
        return self._add(body)


@register
@dataclass(frozen=True)
class AddForeignKey(_ValidatedConstraint):
    """Add a foreign key from `columns` to `referred_table` (`referred_schema=None`: the table's own schema).

    On an existing table with `constraint_name` given, two statements:
    `ADD CONSTRAINT ... NOT VALID` (SHARE ROW EXCLUSIVE on this table and on the
    referenced one, no scan) and `VALIDATE CONSTRAINT` (SHARE UPDATE EXCLUSIVE
    here, ROW SHARE on the referenced table, while every row is checked).
    """

    lock_hazard = Hazard.BLOCKS_WRITES

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
        return self._add_validated(
            foreign_key_body(
                self.columns,
                qualified(self.referred_schema or self.schema, self.referred_table),
                self.referred_columns,
                self.on_delete,
                self.on_update,
                self.match,
                self.deferrable,
                self.initially_deferred,
            )
        )


@register
@dataclass(frozen=True)
class AddCheck(_ValidatedConstraint):
    """Add a CHECK constraint; `expression` is SQL (the text inside CHECK (...)) as Postgres prints it.

    On an existing table with `constraint_name` given, two statements:
    `ADD CONSTRAINT ... NOT VALID` (ACCESS EXCLUSIVE, for a catalog update
    only) and `VALIDATE CONSTRAINT` (SHARE UPDATE EXCLUSIVE during the scan).
    """

    name = "add_check"
    table_name: str
    expression: str
    constraint_name: Optional[str] = None
    new_table: bool = False
    schema: str = "public"

    def statements(self) -> List[str]:
        return self._add_validated(check_body(self.expression))


@register
@dataclass(frozen=True)
class DropConstraint(Operation):
    """Drop a constraint of any kind by name (ACCESS EXCLUSIVE, catalog only)."""

    name = "drop_constraint"
    table_name: str
    constraint_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"{_alter(self.schema, self.table_name)} DROP CONSTRAINT {quote_ident(self.constraint_name)}"]


@register
@dataclass(frozen=True)
class RenameConstraint(Operation):
    """Rename a constraint (a primary key's or unique constraint's index is renamed with it);
    ACCESS EXCLUSIVE, catalog only (ALTER TABLE ... RENAME CONSTRAINT)."""

    name = "rename_constraint"
    table_name: str
    constraint_name: str
    new_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"{_alter(self.schema, self.table_name)} RENAME CONSTRAINT {quote_ident(self.constraint_name)}"
            f" TO {quote_ident(self.new_name)}"
        ]
