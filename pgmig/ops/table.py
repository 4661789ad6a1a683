"""Operations on tables.

`create_table` creates a table whole, as `create_all` does: its columns
(`Column`) and its primary key, unique and check constraints (`PrimaryKey`,
`Unique`, `Check`) in one CREATE TABLE. Postgres evaluates a column's
default once per existing row when ADD COLUMN adds it, so a default that
only works on an empty table (`current_setting('app.tenant')`) must come
with the table. Foreign keys and indexes follow as their own operations, so
tables that reference each other never need folding into one statement.
The specs write their SQL with the same functions as `add_column`,
`add_primary_key`, `add_unique` and `add_check`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Union

from pgmig.db.quoting import qualified, quote_ident, quote_literal
from pgmig.ops.base import Hazard, Operation, register
from pgmig.ops.column import SetColumnComment, column_definition
from pgmig.ops.constraint import check_body, foreign_key_body, named, primary_key_body, unique_body


@dataclass(frozen=True)
class TablePart:
    """Base of the parts of a `create_table`: plain values, written into revisions as calls.

    `positional` leading fields are written without their names
    (`Column("id", "integer", nullable=False)`); sequences are kept as tuples,
    so a part rebuilt from a revision file equals the one the plan made.
    """

    positional: ClassVar[int] = 1
    part_kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))

    def sql(self, schema: str) -> str:
        """The part's text inside CREATE TABLE (...) of a table in `schema`."""
        raise NotImplementedError

    def call_arguments(self) -> Tuple[List[Any], Dict[str, Any]]:
        """(positional values, keyword values differing from their defaults) for a revision file."""
        positional: List[Any] = []
        keywords: Dict[str, Any] = {}
        for index, f in enumerate(fields(self)):
            value = getattr(self, f.name)
            if index < self.positional:
                positional.append(value)
            elif value != f.default:
                keywords[f.name] = value
        return positional, keywords

    def to_json(self) -> Dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {"part": self.part_kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}


@dataclass(frozen=True)
class Column(TablePart):
    """A column of a `create_table`; `data_type` and `default` are SQL as Postgres prints them.

    `autoincrement=True` on smallint/integer/bigint makes it serial; `identity` is
    "always" or "by default".
    """

    positional = 2
    part_kind = "column"

    name: str
    data_type: str
    nullable: bool = True
    default: Optional[str] = None
    autoincrement: bool = False
    identity: Optional[str] = None
    comment: Optional[str] = None

    def sql(self, schema: str) -> str:
        return column_definition(
            self.name, self.data_type, self.nullable, self.default, self.autoincrement, self.identity
        )


@dataclass(frozen=True)
class PrimaryKey(TablePart):
    """The primary key of a `create_table` (`name=None`: Postgres's `<table>_pkey`)."""

    part_kind = "primary_key"

    columns: Sequence[str]
    name: Optional[str] = None
    deferrable: bool = False
    initially_deferred: bool = False

    def sql(self, schema: str) -> str:
        return named(self.name) + primary_key_body(self.columns, self.deferrable, self.initially_deferred)


@dataclass(frozen=True)
class Unique(TablePart):
    """A unique constraint of a `create_table` (`name=None`: Postgres's `<table>_<columns>_key`)."""

    part_kind = "unique"

    columns: Sequence[str]
    name: Optional[str] = None
    nulls_not_distinct: bool = False
    deferrable: bool = False
    initially_deferred: bool = False

    def sql(self, schema: str) -> str:
        body = unique_body(self.columns, self.nulls_not_distinct, self.deferrable, self.initially_deferred)
        return named(self.name) + body


@dataclass(frozen=True)
class Check(TablePart):
    """A CHECK constraint of a `create_table`: `expression` is the SQL inside CHECK (...)."""

    part_kind = "check"

    expression: str
    name: Optional[str] = None

    def sql(self, schema: str) -> str:
        return named(self.name) + check_body(self.expression)


@dataclass(frozen=True)
class ForeignKey(TablePart):
    """A foreign key of a `create_table`, to a table created before it (or existing).

    `referred_schema=None`: the table's own schema. `name=None`: Postgres's `<table>_<columns>_fkey`.
    """

    positional = 3
    part_kind = "foreign_key"

    columns: Sequence[str]
    referred_table: str
    referred_columns: Sequence[str]
    referred_schema: Optional[str] = None
    name: Optional[str] = None
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    match: str = "SIMPLE"
    deferrable: bool = False
    initially_deferred: bool = False

    def sql(self, schema: str) -> str:
        referred = qualified(self.referred_schema or schema, self.referred_table)
        body = foreign_key_body(
            self.columns,
            referred,
            self.referred_columns,
            self.on_delete,
            self.on_update,
            self.match,
            self.deferrable,
            self.initially_deferred,
        )
        return named(self.name) + body


TableConstraint = Union[PrimaryKey, Unique, Check, ForeignKey]
TABLE_PARTS: Tuple[type, ...] = (Column, PrimaryKey, Unique, Check, ForeignKey)


@register
@dataclass(frozen=True)
class CreateTable(Operation):
    """Create a table whole: its columns and constraints in one CREATE TABLE, then its comments.

    Constraints keep their order: Postgres numbers the names it generates
    (`t_a_check`, `t_a_check1`) in the order it meets them. No hazards: the
    table is new and empty.
    """

    name = "create_table"
    table_name: str
    columns: Sequence[Column] = ()
    constraints: Sequence[TableConstraint] = ()
    comment: Optional[str] = None
    schema: str = "public"

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "constraints", tuple(self.constraints))

    def statements(self) -> List[str]:
        parts = [part.sql(self.schema) for part in (*self.columns, *self.constraints)]
        body = "".join(f"\n    {part}," for part in parts).rstrip(",") + ("\n" if parts else "")
        statements = [f"CREATE TABLE {qualified(self.schema, self.table_name)} ({body})"]
        if self.comment is not None:
            statements += SetTableComment(
                table_name=self.table_name, comment=self.comment, schema=self.schema
            ).statements()
        for column in self.columns:
            if column.comment is not None:
                statements += SetColumnComment(
                    table_name=self.table_name, column_name=column.name, comment=column.comment, schema=self.schema
                ).statements()
        return statements


@register
@dataclass(frozen=True)
class AddTable(Operation):
    """Create an empty table; columns and constraints follow as their own operations."""

    name = "add_table"
    table_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"CREATE TABLE {qualified(self.schema, self.table_name)} ()"]


@register
@dataclass(frozen=True)
class DropTable(Operation):
    """Drop a table with its rows, indexes and constraints."""

    name = "drop_table"
    table_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"DROP TABLE {qualified(self.schema, self.table_name)}"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (Hazard.DELETES_DATA,)


@register
@dataclass(frozen=True)
class SetTableComment(Operation):
    """Set (or, with `comment=None`, remove) a table's comment."""

    name = "set_table_comment"
    table_name: str
    comment: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        value = "NULL" if self.comment is None else quote_literal(self.comment)
        return [f"COMMENT ON TABLE {qualified(self.schema, self.table_name)} IS {value}"]


@register
@dataclass(frozen=True)
class RenameTable(Operation):
    """Rename a table in place; its rows, columns, indexes and sequences stay (under their old names)."""

    name = "rename_table"
    table_name: str
    new_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"ALTER TABLE {qualified(self.schema, self.table_name)} RENAME TO {quote_ident(self.new_name)}"]


def create_table_with(
    table_name: str, parts: Sequence[Operation], comment: Optional[str] = None, schema: str = "public"
) -> List[Operation]:
    """One `CreateTable` holding the columns, keys, checks and column comments that `parts` add to
    the new table `schema.table_name`; the operations it cannot hold follow it, in their order.

    `parts` are the operations the column and constraint handlers return for
    the table's new columns and constraints (`AddColumn`, `SetColumnComment`,
    `AddPrimaryKey`, `AddUnique`, `AddCheck`).
    """
    from pgmig.ops.column import AddColumn
    from pgmig.ops.constraint import AddCheck, AddForeignKey, AddPrimaryKey, AddUnique

    columns: List[Column] = []
    constraints: List[TableConstraint] = []
    rest: List[Operation] = []
    for op in parts:
        if getattr(op, "table_name", None) != table_name or getattr(op, "schema", None) != schema:
            rest.append(op)
        elif isinstance(op, AddColumn):
            columns.append(
                Column(
                    op.column_name,
                    op.data_type,
                    nullable=op.nullable,
                    default=op.default,
                    autoincrement=op.autoincrement,
                    identity=op.identity,
                )
            )
        elif isinstance(op, SetColumnComment) and any(c.name == op.column_name for c in columns):
            columns = [replace(c, comment=op.comment) if c.name == op.column_name else c for c in columns]
        elif isinstance(op, AddPrimaryKey):
            constraints.append(
                PrimaryKey(
                    op.columns,
                    name=op.constraint_name,
                    deferrable=op.deferrable,
                    initially_deferred=op.initially_deferred,
                )
            )
        elif isinstance(op, AddUnique):
            constraints.append(
                Unique(
                    op.columns,
                    name=op.constraint_name,
                    nulls_not_distinct=op.nulls_not_distinct,
                    deferrable=op.deferrable,
                    initially_deferred=op.initially_deferred,
                )
            )
        elif isinstance(op, AddCheck):
            constraints.append(Check(op.expression, name=op.constraint_name))
        elif isinstance(op, AddForeignKey):
            constraints.append(
                ForeignKey(
                    op.columns,
                    op.referred_table,
                    op.referred_columns,
                    referred_schema=op.referred_schema,
                    name=op.constraint_name,
                    on_delete=op.on_delete,
                    on_update=op.on_update,
                    match=op.match,
                    deferrable=op.deferrable,
                    initially_deferred=op.initially_deferred,
                )
            )
        else:
            rest.append(op)
    # The primary key first, as create_all writes it; the others keep their order (see CreateTable).
    constraints.sort(key=lambda part: not isinstance(part, PrimaryKey))
    table = CreateTable(table_name=table_name, columns=columns, constraints=constraints, comment=comment, schema=schema)
    return [table, *rest]
