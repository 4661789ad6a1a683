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
from pgmig.errors import RevisionError
from pgmig.ops.base import Hazard, Operation, register
from pgmig.ops.column import SetColumnComment, column_definition
from pgmig.ops.constraint import check_body, foreign_key_body, named, primary_key_body, unique_body
from pgmig.ops.index import create_index_sql


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
    "always" or "by default", with `identity_options` its sequence options; `generated`
    is a generated column's expression (STORED, or VIRTUAL with `virtual=True`);
    `collation` a collation other than the type's default.
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
    generated: Optional[str] = None
    virtual: bool = False
    collation: Optional[str] = None
    identity_options: Optional[str] = None

    def sql(self, schema: str) -> str:
        return column_definition(
            self.name,
            self.data_type,
            self.nullable,
            self.default,
            self.autoincrement,
            self.identity,
            self.generated,
            self.virtual,
            self.collation,
            self.identity_options,
        )


@dataclass(frozen=True)
class PrimaryKey(TablePart):
    """The primary key of a `create_table` (`name=None`: Postgres's `<table>_pkey`)."""

    part_kind = "primary_key"

    columns: Sequence[str]
    name: Optional[str] = None
    deferrable: bool = False
    initially_deferred: bool = False
    include: Sequence[str] = ()

    def sql(self, schema: str) -> str:
        return named(self.name) + primary_key_body(self.columns, self.deferrable, self.initially_deferred, self.include)


@dataclass(frozen=True)
class Unique(TablePart):
    """A unique constraint of a `create_table` (`name=None`: Postgres's `<table>_<columns>_key`)."""

    part_kind = "unique"

    columns: Sequence[str]
    name: Optional[str] = None
    nulls_not_distinct: bool = False
    deferrable: bool = False
    initially_deferred: bool = False
    include: Sequence[str] = ()

    def sql(self, schema: str) -> str:
        body = unique_body(
            self.columns, self.nulls_not_distinct, self.deferrable, self.initially_deferred, self.include
        )
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


@dataclass(frozen=True)
class Index(TablePart):
    """An index of a `create_table`, built by its own CREATE INDEX right after the table.

    `columns` are keys as for `add_index` (a bare name is a column, anything
    else SQL); `where`, `options` are SQL; `include` names columns.
    """

    positional = 2
    part_kind = "index"

    name: str
    columns: Sequence[str]
    unique: bool = False
    method: str = "btree"
    where: Optional[str] = None
    include: Sequence[str] = ()
    nulls_not_distinct: bool = False
    options: Optional[str] = None

    def statement(self, schema: str, table_name: str) -> str:
        return create_index_sql(
            schema=schema,
            table_name=table_name,
            index_name=self.name,
            columns=self.columns,
            unique=self.unique,
            method=self.method,
            where=self.where,
            include=self.include,
            nulls_not_distinct=self.nulls_not_distinct,
            options=self.options,
        )


TableConstraint = Union[PrimaryKey, Unique, Check, ForeignKey]
TABLE_PARTS: Tuple[type, ...] = (Column, PrimaryKey, Unique, Check, ForeignKey, Index)


async def _exists(connection: Any, schema: str, table: str) -> bool:
    return bool(await connection.fetchval("SELECT pg_catalog.to_regclass($1) IS NOT NULL", qualified(schema, table)))


@register
@dataclass(frozen=True)
class CreateTable(Operation):
    """Create a table whole: its columns and constraints in one CREATE TABLE, then its indexes
    (CREATE INDEX each) and comments.

    Constraints keep their order: Postgres numbers the names it generates
    (`t_a_check`, `t_a_check1`) in the order it meets them. Foreign keys name
    tables that exist already. No hazards: the table is new and empty.
    """

    name = "create_table"
    table_name: str
    columns: Sequence[Column] = ()
    constraints: Sequence[TableConstraint] = ()
    indexes: Sequence[Index] = ()
    comment: Optional[str] = None
    schema: str = "public"

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "constraints", tuple(self.constraints))
        object.__setattr__(self, "indexes", tuple(self.indexes))

    def steps(self) -> List[Operation]:
        """The same work as one operation a step (`add_table`, `add_column`, `add_primary_key`, ...,
        each with `new_table=True`), in the order CREATE TABLE does it: for tools and tests that
        look at a plan part by part. Running them one by one evaluates column defaults (ADD COLUMN)."""
        from pgmig.ops.base import lookup

        steps: List[Operation] = [AddTable(table_name=self.table_name, schema=self.schema)]
        if self.comment is not None:
            steps.append(SetTableComment(table_name=self.table_name, comment=self.comment, schema=self.schema))
        table = {"table_name": self.table_name, "schema": self.schema}
        for part in (*self.columns, *self.constraints, *self.indexes):
            name = next(n for n, (cls, _) in _AS_PART.items() if isinstance(part, cls))
            operation_class = lookup(name)
            arguments = {field: getattr(part, attribute) for field, attribute in _AS_PART[name][1].items()}
            if "new_table" in {f.name for f in fields(operation_class)}:
                arguments["new_table"] = True
            steps.append(operation_class(**table, **arguments))
            if isinstance(part, Column) and part.comment is not None:
                steps.append(SetColumnComment(column_name=part.name, comment=part.comment, **table))
        return steps

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the table is there with these columns, in this order, and these indexes (an
        earlier run created it); a table of this name without them is a RevisionError (what an
        attempt cut between its CREATE TABLE and its CREATE INDEX leaves: drop the table, then run
        again)."""
        where = qualified(self.schema, self.table_name)
        found = await connection.fetchrow(
            "SELECT ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.oid "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns, "
            "ARRAY(SELECT c.relname::text FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = t.oid) AS indexes FROM (SELECT pg_catalog.to_regclass($1) AS oid) t WHERE t.oid IS NOT NULL",
            where,
        )
        if found is None:
            return False
        columns = [column.name for column in self.columns]
        missing = [index.name for index in self.indexes if index.name not in found["indexes"]]
        if list(found["columns"]) == columns and not missing:
            return True
        lacks = f"; it lacks the indexes {', '.join(missing)}" if missing else ""
        raise RevisionError(
            f"table {where} exists with the columns ({', '.join(found['columns'])}), while the step creates "
            f"({', '.join(columns)}){lacks}: if an earlier run of this revision made it, drop it and run again; "
            "otherwise rename it or change the step"
        )

    def lock_estimate(self) -> int:
        """The new table, its TOAST table and index and the schema (6); a lock on the type or
        collation each column names (1 a column); a key or unique constraint's index and the
        table's share lock, a foreign key's referenced table, its key's index and trigger
        objects (4 a constraint); an index and its share lock (3); a serial or identity
        column's sequence and its objects (3). Measured by tests/test_lock_budget.py."""
        sequences = sum(1 for column in self.columns if column.autoincrement or column.identity)
        return 6 + len(self.columns) + 4 * len(self.constraints) + 3 * len(self.indexes) + 3 * sequences

    def statements(self) -> List[str]:
        parts = [part.sql(self.schema) for part in (*self.columns, *self.constraints)]
        body = "".join(f"\n    {part}," for part in parts).rstrip(",") + ("\n" if parts else "")
        statements = [f"CREATE TABLE {qualified(self.schema, self.table_name)} ({body})"]
        if self.comment is not None:
            statements += SetTableComment(
                table_name=self.table_name, comment=self.comment, schema=self.schema
            ).statements()
        statements += [index.statement(self.schema, self.table_name) for index in self.indexes]
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
    locks = 6
    table_name: str
    schema: str = "public"

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the table is there (an earlier run created it; its columns are steps of their own)."""
        return await _exists(connection, self.schema, self.table_name)

    def statements(self) -> List[str]:
        return [f"CREATE TABLE {qualified(self.schema, self.table_name)} ()"]


@register
@dataclass(frozen=True)
class DropTable(Operation):
    """Drop a table with its rows, indexes and constraints."""

    name = "drop_table"
    # The step knows the table by name only, while DROP TABLE locks everything that goes with it
    # (its indexes, TOAST table, sequences, row and array types, constraints, defaults, foreign-key
    # triggers on both ends: AcquireDeletionLock for each): a generous bound for a table of
    # a dozen columns, constraints and indexes (the benchmark's shape takes about 30).
    locks = 64
    table_name: str
    schema: str = "public"

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the table is gone (an earlier run dropped it)."""
        return not await _exists(connection, self.schema, self.table_name)

    def statements(self) -> List[str]:
        return [f"DROP TABLE {qualified(self.schema, self.table_name)}"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (Hazard.DELETES_DATA,)


@register
@dataclass(frozen=True)
class SetTableComment(Operation):
    """Set (or, with `comment=None`, remove) a table's comment."""

    name = "set_table_comment"
    locks = 2
    keeps_rows = True
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
    locks = 6
    table_name: str
    new_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"ALTER TABLE {qualified(self.schema, self.table_name)} RENAME TO {quote_ident(self.new_name)}"]


# How an operation on the new table becomes a part of its create_table: the part's class and the
# names of the operation's fields the part's take (the table's own fields, and `new_table`, drop out).
_AS_PART: Dict[str, Tuple[type, Dict[str, str]]] = {
    "add_column": (
        Column,
        {
            n: n
            for n in (
                "data_type",
                "nullable",
                "default",
                "autoincrement",
                "identity",
                "generated",
                "virtual",
                "collation",
                "identity_options",
            )
        }
        | {"column_name": "name"},
    ),
    "add_primary_key": (
        PrimaryKey,
        {
            "columns": "columns",
            "constraint_name": "name",
            "deferrable": "deferrable",
            "initially_deferred": "initially_deferred",
            "include": "include",
        },
    ),
    "add_unique": (
        Unique,
        {
            "columns": "columns",
            "constraint_name": "name",
            "nulls_not_distinct": "nulls_not_distinct",
            "deferrable": "deferrable",
            "initially_deferred": "initially_deferred",
            "include": "include",
        },
    ),
    "add_check": (Check, {"expression": "expression", "constraint_name": "name"}),
    "add_foreign_key": (
        ForeignKey,
        {n: n for n in ("columns", "referred_table", "referred_columns", "referred_schema", "on_delete", "on_update")}
        | {n: n for n in ("match", "deferrable", "initially_deferred")}
        | {"constraint_name": "name"},
    ),
    "add_index": (
        Index,
        {n: n for n in ("columns", "unique", "method", "where", "include", "nulls_not_distinct", "options")}
        | {"index_name": "name"},
    ),
}
_TABLE_FIELDS = {"table_name", "schema", "new_table"}


def _as_part(op: Operation) -> Optional[TablePart]:
    """The part of a create_table that does what `op` does, or None when no part can (an
    argument no part takes: a concurrent index build, a field a later version added)."""
    found = _AS_PART.get(op.name)
    if found is None:
        return None
    cls, names = found
    arguments = {name: value for name, value in op.arguments().items() if name not in _TABLE_FIELDS}
    if not arguments.keys() <= names.keys():
        return None
    part: TablePart = cls(**{names[name]: value for name, value in arguments.items()})
    return part


def create_table_with(
    table_name: str, parts: Sequence[Operation], comment: Optional[str] = None, schema: str = "public"
) -> List[Operation]:
    """One `CreateTable` holding what `parts` add to the new table `schema.table_name`: its columns
    (with their comments), keys, checks, foreign keys and indexes; the operations it cannot hold
    follow it, in their order.

    `parts` are the operations the handlers return for the table's new
    columns, constraints and indexes (`AddColumn`, `SetColumnComment`,
    `AddPrimaryKey`, `AddUnique`, `AddCheck`, `AddForeignKey`, `AddIndex`).
    """
    columns: List[Column] = []
    constraints: List[TableConstraint] = []
    indexes: List[Index] = []
    rest: List[Operation] = []
    for op in parts:
        part = (
            _as_part(op)
            if (getattr(op, "table_name", None), getattr(op, "schema", None)) == (table_name, schema)
            else None
        )
        if isinstance(part, Column):
            columns.append(part)
        elif isinstance(part, Index):
            indexes.append(part)
        elif isinstance(part, (PrimaryKey, Unique, Check, ForeignKey)):
            constraints.append(part)
        elif (
            isinstance(op, SetColumnComment)
            and op.table_name == table_name
            and op.schema == schema
            and any(c.name == op.column_name for c in columns)
        ):
            columns = [replace(c, comment=op.comment) if c.name == op.column_name else c for c in columns]
        else:
            rest.append(op)
    # The primary key first, as create_all writes it; the others keep their order (see CreateTable).
    constraints.sort(key=lambda part: not isinstance(part, PrimaryKey))
    table = CreateTable(
        table_name=table_name, columns=columns, constraints=constraints, indexes=indexes, comment=comment, schema=schema
    )
    return [table, *rest]
