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

import re
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Union

from pgmig.db.quoting import qualified, quote_ident, quote_literal
from pgmig.errors import RevisionError
from pgmig.ops.base import Hazard, Operation, build, register
from pgmig.ops.column import SERIAL_OF, SetColumnComment, column_definition
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

    def call_text(self) -> str:
        """The part as Python calls it (`EnumColumn('t', 'c', array=True)`): what a message tells to paste."""
        positional, keywords = self.call_arguments()
        arguments = [repr(value) for value in positional] + [f"{name}={value!r}" for name, value in keywords.items()]
        return f"{type(self).__name__}({', '.join(arguments)})"

    def to_json(self) -> Dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {"part": self.part_kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}


@dataclass(frozen=True)
class Column(TablePart):
    """A column of a `create_table`; `data_type` and `default` are SQL as Postgres prints them.

    `autoincrement=True` on smallint/integer/bigint makes it serial (a revision writes
    `Column("id", "serial")`, read back as integer with `autoincrement=True`); `identity` is
    "always" or "by default", with `identity_options` its sequence options; `generated`
    is a generated column's expression (STORED, or VIRTUAL with `virtual=True`);
    `collation` a collation other than the type's default. `primary_key=True` is the
    table's primary key on this column alone, `unique=True` a unique constraint on it,
    `references="table.column"` a foreign key from it to that column of a table of
    the same schema (split at the last dot; a name holding one takes a `ForeignKey`), all
    named by Postgres (`<table>_pkey`, `<table>_<column>_key`, `<table>_<column>_fkey`), as
    CREATE TABLE's column constraints are. `nullable=None` (left out) is what the column's other
    fields imply: NOT NULL for a primary key, serial or identity column (Postgres makes
    the first and last NOT NULL whatever is asked: docs, CREATE TABLE), NULL otherwise.
    `data_type` also takes the short names of Postgres's docs (Table 8.1: `varchar(n)`,
    `timestamptz`, `timetz`, `char(n)`), kept as `format_type()` spells them.
    """

    positional = 2
    part_kind = "column"

    name: str
    data_type: str
    nullable: Optional[bool] = None
    default: Optional[str] = None
    autoincrement: bool = False
    identity: Optional[str] = None
    comment: Optional[str] = None
    generated: Optional[str] = None
    virtual: bool = False
    collation: Optional[str] = None
    identity_options: Optional[str] = None
    primary_key: bool = False
    unique: bool = False
    references: Optional[str] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.references is not None and "." not in self.references:
            raise ValueError(f"Column {self.name!r}: references={self.references!r} is not 'table.column'")
        data_type = long_type_name(self.data_type)
        if data_type in _SERIAL_TYPES:
            data_type = _SERIAL_TYPES[data_type]
            object.__setattr__(self, "autoincrement", True)
        object.__setattr__(self, "data_type", data_type)
        if self.primary_key or self.identity is not None:
            object.__setattr__(self, "nullable", False)
        elif self.nullable is None:
            object.__setattr__(self, "nullable", not self.autoincrement)

    @property
    def implied_nullable(self) -> bool:
        """Whether the column holds NULL when `nullable` is left out (see the class)."""
        return not (self.primary_key or self.identity is not None or self.autoincrement)

    def call_arguments(self) -> Tuple[List[Any], Dict[str, Any]]:
        """As `TablePart.call_arguments`, with the short spellings: a serial column's type as
        `serial`, its type's short name, and `nullable` only when it differs from what is implied."""
        positional, keywords = super().call_arguments()
        data_type = self.data_type
        if self.autoincrement and data_type in SERIAL_OF:
            data_type = SERIAL_OF[data_type]
            keywords.pop("autoincrement", None)
        positional[1] = short_type_name(data_type)
        if self.nullable == self.implied_nullable:
            keywords.pop("nullable", None)
        else:
            keywords["nullable"] = self.nullable
        return positional, keywords

    def sql(self, schema: str) -> str:
        return column_definition(
            self.name,
            self.data_type,
            bool(self.nullable),
            self.default,
            self.autoincrement,
            self.identity,
            self.generated,
            self.virtual,
            self.collation,
            self.identity_options,
        )


_SERIAL_TYPES = {serial: integer for integer, serial in SERIAL_OF.items()}
# (format_type()'s spelling, the short name Postgres's docs give the type: Table 8.1, "Aliases"),
# `(n)` where the type modifier goes. `char` needs its modifier: bare, it means character(1).
_SHORT_NAMES = (
    ("character varying(n)", "varchar(n)"),
    ("character(n)", "char(n)"),
    ("timestamp(n) with time zone", "timestamptz(n)"),
    ("timestamp(n) without time zone", "timestamp(n)"),
    ("time(n) with time zone", "timetz(n)"),
    ("time(n) without time zone", "time(n)"),
)


def _spelling(template: str) -> Tuple["re.Pattern[str]", str]:
    """A type name `template` as (a pattern matching it at the start of a type, array brackets
    allowed after it; its replacement text, the modifier as group 1)."""
    head, tail = template.split("(n)")
    optional = "" if head == "char" or head == "character" else "?"
    pattern = re.compile(f"^{re.escape(head)}(\\(\\d+\\)){optional}{re.escape(tail)}(?=$|\\[)")
    return pattern, f"{head}\\1{tail}"


_LONG_TO_SHORT = [(_spelling(long)[0], _spelling(short)[1]) for long, short in _SHORT_NAMES]
_SHORT_TO_LONG = [(_spelling(short)[0], _spelling(long)[1]) for long, short in _SHORT_NAMES]


def short_type_name(data_type: str) -> str:
    """`data_type` as format_type() prints it, under its short name where Postgres's docs give one
    (`character varying(200)` -> `varchar(200)`, `timestamp with time zone[]` -> `timestamptz[]`);
    other types as they are."""
    return _renamed(data_type, _LONG_TO_SHORT)


def long_type_name(data_type: str) -> str:
    """The inverse of `short_type_name`: `varchar(200)` -> `character varying(200)`, as format_type()
    prints it; other spellings as they are."""
    return _renamed(data_type, _SHORT_TO_LONG)


def _renamed(data_type: str, names: Sequence[Tuple["re.Pattern[str]", str]]) -> str:
    for pattern, replacement in names:
        if pattern.match(data_type):
            return pattern.sub(replacement, data_type, count=1)
    return data_type


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

    A revision calls it as a table is defined, its parts in order after its name:
    `create_table("team_member", Column("id", "serial", primary_key=True),
    Column("role", "text", nullable=False, default="'member'"), Unique(["team_id", "user_id"]))`
    (`columns=`, `constraints=` and `indexes=` lists, as earlier revisions spell them, too).
    A column's `primary_key`/`unique` come first among the constraints, the primary
    key before all; the others keep their order: Postgres numbers the names it generates
    (`t_a_check`, `t_a_check1`) in the order it meets them. Foreign keys name tables
    that exist already. No hazards: the table is new and empty.
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

    @classmethod
    def call(
        cls,
        table_name: str,
        *parts: TablePart,
        comment: Optional[str] = None,
        schema: str = "public",
        columns: Sequence[Column] = (),
        constraints: Sequence[TableConstraint] = (),
        indexes: Sequence[Index] = (),
    ) -> "CreateTable":
        """The operation a revision's `create_table(name, *parts, comment=..., schema=...)` makes:
        `parts` sorted into its columns, constraints and indexes, each kind in its order.

        Raises TypeError naming a part that is none of `Column`, `PrimaryKey`,
        `Unique`, `Check`, `ForeignKey`, `Index`.
        """
        found: Dict[type, List[TablePart]] = {Column: [*columns], Index: [*indexes], TablePart: [*constraints]}
        for part in parts:
            if not isinstance(part, TABLE_PARTS):
                raise TypeError(
                    f"actor.create_table(): {part!r} is not a part of a table (Column, PrimaryKey, Unique, "
                    "Check, ForeignKey or Index)"
                )
            found[type(part) if isinstance(part, (Column, Index)) else TablePart].append(part)
        return build(
            cls,
            table_name=table_name,
            columns=found[Column],
            constraints=found[TablePart],
            indexes=found[Index],
            comment=comment,
            schema=schema,
        )

    def call_arguments(self) -> Tuple[List[Any], Dict[str, Any]]:
        """The table's name and its parts positionally (as `call` takes them), then `comment`
        and `schema` when they are not the defaults."""
        keywords = {k: v for k, v in self.arguments().items() if k in ("comment", "schema")}
        return [self.table_name, *self.columns, *self.constraints, *self.indexes], keywords

    def all_constraints(self) -> List[TableConstraint]:
        """Every constraint in the order CREATE TABLE holds them: the primary key (a column's or
        a part), the columns' unique constraints, then the constraint parts in their order."""
        flagged: List[TableConstraint] = [PrimaryKey([c.name]) for c in self.columns if c.primary_key]
        flagged += [Unique([c.name]) for c in self.columns if c.unique]
        for column in self.columns:
            if column.references is not None:
                table, referred = column.references.rsplit(".", 1)
                flagged.append(ForeignKey([column.name], table, [referred]))
        keys = [c for c in self.constraints if isinstance(c, PrimaryKey)]
        return [*keys, *flagged, *(c for c in self.constraints if not isinstance(c, PrimaryKey))]

    def steps(self) -> List[Operation]:
        """The same work as one operation a step (`add_table`, `add_column`, `add_primary_key`, ...,
        each with `new_table=True`), in the order CREATE TABLE does it: for tools and tests that
        look at a plan part by part. Running them one by one evaluates column defaults (ADD COLUMN)."""
        from pgmig.ops.base import lookup

        steps: List[Operation] = [AddTable(table_name=self.table_name, schema=self.schema)]
        if self.comment is not None:
            steps.append(SetTableComment(table_name=self.table_name, comment=self.comment, schema=self.schema))
        table = {"table_name": self.table_name, "schema": self.schema}
        for part in (*self.columns, *self.all_constraints(), *self.indexes):
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
        constraints = len(self.all_constraints())
        return 6 + len(self.columns) + 4 * constraints + 3 * len(self.indexes) + 3 * sequences

    def statements(self) -> List[str]:
        parts = [part.sql(self.schema) for part in (*self.columns, *self.all_constraints())]
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
    columns, constraints = _on_columns(columns, constraints)
    table = CreateTable(
        table_name=table_name, columns=columns, constraints=constraints, indexes=indexes, comment=comment, schema=schema
    )
    return [table, *rest]


def _on_columns(
    columns: List[Column], constraints: List[TableConstraint]
) -> Tuple[List[Column], List[TableConstraint]]:
    """`columns` with `primary_key`/`unique`/`references` set for the constraints a column
    constraint says as well (on that column alone, named by Postgres, without options; a
    foreign key to a table of the same schema, neither name holding a dot), and the other
    constraints.

    A constraint stays a part when another unnamed one of its kind has the
    same columns: Postgres numbers their names in the order it meets them.
    """
    by_name = {column.name: column for column in columns}
    unnamed = [(type(c), tuple(c.columns)) for c in constraints if not isinstance(c, Check) and c.name is None]
    rest: List[TableConstraint] = []
    for constraint in constraints:
        column = _one_plain_column(constraint, by_name, unnamed)
        if column is None:
            rest.append(constraint)
        elif isinstance(constraint, PrimaryKey):
            by_name[column] = replace(by_name[column], primary_key=True)
        elif isinstance(constraint, Unique):
            by_name[column] = replace(by_name[column], unique=True)
        elif isinstance(constraint, ForeignKey):
            referred = f"{constraint.referred_table}.{constraint.referred_columns[0]}"
            by_name[column] = replace(by_name[column], references=referred)
    return list(by_name.values()), rest


def _one_plain_column(
    constraint: TableConstraint, columns: Dict[str, Column], unnamed: List[Tuple[type, Tuple[str, ...]]]
) -> Optional[str]:
    """The column a constraint can be said on (see `_on_columns`), or None."""
    if isinstance(constraint, Check) or constraint.name is not None or len(constraint.columns) != 1:
        return None
    if constraint.columns[0] not in columns or unnamed.count((type(constraint), tuple(constraint.columns))) != 1:
        return None
    if constraint.deferrable:
        return None
    if isinstance(constraint, (PrimaryKey, Unique)):
        plain = not constraint.include and not (isinstance(constraint, Unique) and constraint.nulls_not_distinct)
        return constraint.columns[0] if plain else None
    plain = (
        constraint.referred_schema is None
        and (constraint.on_delete, constraint.on_update, constraint.match) == ("NO ACTION", "NO ACTION", "SIMPLE")
        and "." not in constraint.referred_table
        and "." not in constraint.referred_columns[0]
    )
    return constraint.columns[0] if plain else None
