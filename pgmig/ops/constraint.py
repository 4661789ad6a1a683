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

import secrets
from dataclasses import dataclass, replace
from typing import Any, ClassVar, List, Optional, Sequence, Tuple

from pgmig.db.quoting import ident_list, qualified, quote_ident
from pgmig.errors import RevisionError
from pgmig.ops.base import Hazard, Operation, read_rolled_back, register

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


def _bare(definition: str) -> str:
    """A constraint definition without quotes, blanks and case: `UNIQUE ("a", b)` ~ `unique (a, b)`."""
    return "".join(definition.replace('"', "").split()).lower()


def check_body(expression: str) -> str:
    """`CHECK (expression)`, as ALTER TABLE ... ADD and CREATE TABLE both spell it."""
    return f"CHECK ({expression})"


@dataclass(frozen=True)
class _AddConstraint(Operation):
    """Shared shape of the `add_*` operations: an ALTER TABLE ... ADD.

    `lock_hazard` names the lock the ADD takes on an existing table.
    """

    lock_hazard: ClassVar[Hazard] = Hazard.ACCESS_EXCLUSIVE_LOCK
    contype: ClassVar[str] = ""
    """pg_constraint.contype of what the step adds: p, u, f, c."""

    def tells_done(self) -> bool:
        return self.constraint_name is not None or self.contype in ("p", "u")  # type: ignore[attr-defined]

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the table has the constraint already, valid (an earlier run added it): by
        its name, or, unnamed, a primary key, or a unique constraint on the same columns. One of
        that name and another kind, or left NOT VALID (a run cut before its VALIDATE), is a
        RevisionError saying what to do. An unnamed check or foreign key cannot be told apart
        from others: False (it is added again)."""
        name: Optional[str] = self.constraint_name  # type: ignore[attr-defined]
        columns = list(getattr(self, "columns", ()))
        if name is None and self.contype not in ("p", "u"):
            return False
        row = await connection.fetchrow(
            "SELECT k.conname, k.contype::text AS contype, k.convalidated, pg_catalog.pg_get_constraintdef(k.oid) AS definition "
            "FROM pg_catalog.pg_constraint k WHERE k.conrelid = pg_catalog.to_regclass($1) "
            "AND (k.conname = $2 OR ($2 IS NULL AND k.contype::text = $3::text AND ($3::text = 'p' OR ARRAY(SELECT a.attname::text "
            "FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, n) JOIN pg_catalog.pg_attribute a "
            "ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.n) = $4::text[])))",
            qualified(self.schema, self.table_name),  # type: ignore[attr-defined]
            name,
            self.contype,
            columns,
        )
        if row is None:
            return False
        where = f"constraint {row['conname']} of {qualified(self.schema, self.table_name)}"  # type: ignore[attr-defined]
        if row["contype"] != self.contype:
            raise RevisionError(
                f"{where} exists as {row['definition']}, another kind than the step adds: rename or drop it"
            )
        if not row["convalidated"]:
            raise RevisionError(
                f"{where} exists NOT VALID (an earlier run was cut before validating it): drop it, "
                "or validate it (ALTER TABLE ... VALIDATE CONSTRAINT), then run again"
            )
        wanted = await self._definition(connection)
        if wanted is not None and _bare(wanted) != _bare(row["definition"]):
            raise RevisionError(
                f"{where} exists as {row['definition']}, while the step adds {wanted}: rename or drop it, "
                "or change the step"
            )
        return True

    async def _definition(self, connection: Any) -> Optional[str]:
        """What the server makes of this step's constraint (pg_get_constraintdef), to compare with
        one found under its name. A check or foreign key is added NOT VALID (no scan) under a
        probe name in a transaction that is rolled back; a primary key or unique constraint (whose
        ADD would build an index) is spelled as ADD spells it, which names its columns as the
        catalog does. None when the server refuses the probe: the step itself will say why."""
        add = replace(self, constraint_name=f"pgmig_probe_{secrets.token_hex(4)}", new_table=False)  # type: ignore[call-arg]
        statement = add.statements()[0]
        if self.contype in ("p", "u"):
            return statement.split(quote_ident(add.constraint_name), 1)[1].strip()  # type: ignore[attr-defined]
        if not statement.endswith(" NOT VALID"):
            statement += " NOT VALID"
        definition: Optional[str] = await read_rolled_back(
            connection,
            statement,
            "SELECT pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint "
            "WHERE conrelid = pg_catalog.to_regclass($1) AND conname = $2",
            qualified(self.schema, self.table_name),  # type: ignore[attr-defined]
            add.constraint_name,  # type: ignore[attr-defined]
        )
        if definition is not None and definition.endswith(" NOT VALID"):
            definition = definition[: -len(" NOT VALID")]
        return definition

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
    locks = 6
    contype = "p"
    keeps_rows = True
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
    locks = 6
    contype = "u"
    keeps_rows = True
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
    locks = 8
    contype = "f"
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
    locks = 4
    contype = "c"
    keeps_rows = True
    keeps_rows = True
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
    locks = 10
    keeps_rows = True
    table_name: str
    constraint_name: str
    schema: str = "public"

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the table has no constraint of this name (an earlier run dropped it)."""
        found = await connection.fetchval(
            "SELECT count(*) FROM pg_catalog.pg_constraint WHERE conrelid = pg_catalog.to_regclass($1) AND conname = $2",
            qualified(self.schema, self.table_name),
            self.constraint_name,
        )
        return not found

    def statements(self) -> List[str]:
        return [f"{_alter(self.schema, self.table_name)} DROP CONSTRAINT {quote_ident(self.constraint_name)}"]


@register
@dataclass(frozen=True)
class RenameConstraint(Operation):
    """Rename a constraint (a primary key's or unique constraint's index is renamed with it);
    ACCESS EXCLUSIVE, catalog only (ALTER TABLE ... RENAME CONSTRAINT)."""

    name = "rename_constraint"
    locks = 4
    keeps_rows = True
    table_name: str
    constraint_name: str
    new_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"{_alter(self.schema, self.table_name)} RENAME CONSTRAINT {quote_ident(self.constraint_name)}"
            f" TO {quote_ident(self.new_name)}"
        ]
