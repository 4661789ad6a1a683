"""Columns: type, collation, nullability, server default, serial/identity (and its options),
generated expression, comment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple

from pgmig.db.quoting import NAMEDATALEN, clip_bytes, quote_ident, standard_literal
from pgmig.errors import ModelsError
from pgmig.ops.base import Operation
from pgmig.ops.column import (
    AddColumn,
    AddColumnIdentity,
    AddColumnSequence,
    AddNotNull,
    DropColumn,
    DropColumnExpression,
    DropColumnIdentity,
    DropColumnSequence,
    DropNotNull,
    ModifyColumnType,
    RenameColumn,
    SetColumnComment,
    SetColumnDefault,
    SetColumnExpression,
    SetColumnIdentity,
    SetColumnIdentityOptions,
    serial_sequence_name,
)
from pgmig.ops.data import BackfillColumn
from pgmig.plan.normalize import ColumnShape, ColumnSpelling, render
from pgmig.schema.expressions import columns_read, functions_called
from pgmig.schema.handlers.sequence import sequences_called
from pgmig.schema.objects import Key, SchemaObject, key_kind
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler, in_chunks
from pgmig.schema.types import TYPE_JOINS, TYPE_SQL, canonical_type, domain_of, enum_of, enum_type_sql, item_type

IdentityValues = Tuple[int, int, int, int, int, bool]
"""An identity sequence's (start, increment, minvalue, maxvalue, cache, cycle)."""

# The range of each type an identity column may have (pg_sequence's bounds for `AS type`).
_IDENTITY_BOUNDS = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}


def identity_values(
    data_type: str,
    start: Optional[int] = None,
    increment: Optional[int] = None,
    minvalue: Optional[int] = None,
    maxvalue: Optional[int] = None,
    cache: Optional[int] = None,
    cycle: Optional[bool] = None,
) -> IdentityValues:
    """Every option of an identity sequence, the ones not given as Postgres fills them in.

    CREATE SEQUENCE: increment 1; ascending, minvalue 1 and maxvalue the type's
    largest, descending, minvalue the type's smallest and maxvalue -1; start at
    minvalue ascending, maxvalue descending; cache 1; no cycle. The bounds are
    the column type's (an identity sequence is `AS` its column's type).
    """
    low, high = _IDENTITY_BOUNDS.get(data_type, _IDENTITY_BOUNDS["bigint"])
    step = increment or 1
    least = minvalue if minvalue is not None else (1 if step > 0 else low)
    most = maxvalue if maxvalue is not None else (high if step > 0 else -1)
    first = start if start is not None else (least if step > 0 else most)
    return (first, step, least, most, cache or 1, bool(cycle))


def identity_options(data_type: str, values: IdentityValues) -> Optional[str]:
    """The options of `values` that differ from the defaults they imply, as CREATE SEQUENCE spells
    them (`START WITH 1000 INCREMENT BY 5`); None when all are defaults. Both sides of a diff
    spell their identities this way, so an `Identity()` equals a database identity with defaults
    whatever the column's type (bigint's maxvalue is not integer's)."""
    start, increment, minvalue, maxvalue, cache, cycle = values
    defaults = identity_values(data_type, increment=increment)
    parts = []
    if increment != 1:
        parts.append(f"INCREMENT BY {increment}")
    if minvalue != defaults[2]:
        parts.append(f"MINVALUE {minvalue}")
    if maxvalue != defaults[3]:
        parts.append(f"MAXVALUE {maxvalue}")
    if start != (minvalue if increment > 0 else maxvalue):
        parts.append(f"START WITH {start}")
    if cache != 1:
        parts.append(f"CACHE {cache}")
    if cycle:
        parts.append("CYCLE")
    return " ".join(parts) or None


_COLLATE = re.compile(r'\s+COLLATE\s+("(?:[^"]|"")*"|[^\s"]+)\s*\Z', re.IGNORECASE)


def split_collation(data_type: str) -> Tuple[str, Optional[str]]:
    """`VARCHAR(20) COLLATE "C"` (a compiled type with a collation) -> (`VARCHAR(20)`, `C`)."""
    found = _COLLATE.search(data_type)
    if found is None:
        return data_type, None
    name = found.group(1)
    name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
    return data_type[: found.start()], name


# Types whose values convert to each other without a USING clause.
_IMPLICIT_FAMILIES = ({"text", "character varying", "character"},)


@dataclass(frozen=True)
class Column(SchemaObject):
    kind = "column"
    schema: str
    table: str
    name: str
    data_type: str
    nullable: bool = True
    default: Optional[str] = None
    autoincrement: bool = False
    identity: Optional[str] = None
    comment: Optional[str] = None
    # The collation when it is not the type's default (`C`); None: the type's default.
    collation: Optional[str] = None
    # A generated column's expression as pg_get_expr prints it; `virtual`: computed when read (PG 18+).
    generated: Optional[str] = None
    virtual: bool = False
    # An identity's sequence options that differ from Postgres's defaults for the column's type
    # (`START WITH 1000 INCREMENT BY 5`), see `identity_options`.
    identity_options: Optional[str] = None
    # All of them: (start, increment, minvalue, maxvalue, cache, cycle), to set them on a change.
    identity_values: Optional[IdentityValues] = field(default=None, compare=False)
    # (name, type without modifiers) of the columns of its table a generated column's expression reads.
    reads: Tuple[Tuple[str, str], ...] = field(default=(), compare=False)
    # server_version_num of the server the column was read from or normalized against (0: unknown).
    pg_version: int = field(default=0, compare=False)
    # A model's Computed(persisted=None): stored or virtual as the server's default decides.
    storage_unspecified: bool = field(default=False, compare=False)
    type_dependency: Optional[Key] = field(default=None, compare=False)
    position: int = field(default=0, compare=False)
    # (schema, name) of the sequence a serial column owns, as the database has it.
    sequence: Optional[Tuple[str, str]] = field(default=None, compare=False)
    # False for a model column whose table the database does not have yet.
    table_exists: bool = field(default=True, compare=False)

    @property
    def key(self) -> Key:
        return ("column", self.schema, self.table, self.name)

    @property
    def parent(self) -> Key:
        return ("table", self.schema, self.table)

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        deps: Tuple[Key, ...] = (self.parent,)
        if self.type_dependency:
            deps += (self.type_dependency,)
        # A generated column is added after, and dropped before, the columns it reads.
        deps += tuple(("column", self.schema, self.table, name) for name, _ in self.reads if name != self.name)
        # A default calling nextval('s') needs the sequence: created before, dropped after; one
        # calling an extension's function (uuid_generate_v4()) needs the extension.
        return deps + sequences_called(self.default, self.schema) + functions_called(self.default, self.generated)

    @property
    def names(self) -> Tuple[Key, ...]:
        """A serial or identity column's sequence takes a relation name: it waits for the drop of
        a sequence of that name."""
        own = self.own_sequence
        return (("relation", own[0], own[1]),) if own is not None else ()

    @property
    def provides(self) -> Tuple[Key, ...]:
        """A serial or identity column's sequence, for the defaults elsewhere that call nextval() on it."""
        own = self.own_sequence
        return (("sequence", own[0], own[1]),) if own is not None else ()

    @property
    def own_sequence(self) -> Optional[Tuple[str, str]]:
        """(schema, name) of the sequence a serial or identity column owns: as read, else the
        name Postgres gives it (`<table>_<column>_seq`)."""
        if not self.autoincrement and self.identity is None:
            return None
        return self.sequence or (self.schema, serial_sequence_name(self.table, self.name))

    @property
    def holds_rows(self) -> bool:
        """A generated column's values are derived: it can be dropped and added again to carry it."""
        return self.generated is None

    @property
    def enum_dependency(self) -> Optional[Key]:
        """The native enum this column's values come from (directly or as array items)."""
        dependency = self.type_dependency
        return dependency if dependency is not None and key_kind(dependency) == "enum" else None

    @property
    def label(self) -> str:
        return f"column {self.name}"

    def rebuilds(self, new: SchemaObject) -> Tuple[Key, ...]:
        """A type (or collation) change rewrites the column: Postgres re-reads what depends on it
        against the new type, and refuses it under a generated column reading it."""
        if not isinstance(new, Column):
            return ()
        return (self.key,) if (new.data_type, new.collation) != (self.data_type, self.collation) else ()

    def must_replace(self, new: SchemaObject) -> bool:
        """Changes of a generated column ALTER cannot make: dropped and added again.

        Plain to generated (no ALTER makes a column generated), stored to virtual
        and back, and a new expression before PostgreSQL 17 (SET EXPRESSION is
        17+). Virtual to plain is not one: its values are kept (see `migrate`).
        """
        if not isinstance(new, Column) or (self.generated is None and new.generated is None):
            return False
        if self.generated is None:
            return True
        if new.generated is None:
            return False
        if self.virtual != new.virtual:
            return True
        return self.generated != new.generated and min(self.pg_version, new.pg_version) < 170000

    def describe(self) -> str:
        text = f"column {self.name} {self.data_type}"
        if self.collation is not None:
            text += f" COLLATE {quote_ident(self.collation)}"
        if self.autoincrement:
            text += " (serial)"
        if self.identity:
            text += f" generated {self.identity} as identity"
            if self.identity_options:
                text += f" ({self.identity_options})"
        if self.generated is not None:
            text += f" GENERATED ALWAYS AS ({self.generated}) {'VIRTUAL' if self.virtual else 'STORED'}"
        if not self.nullable:
            text += " NOT NULL"
        if self.default is not None:
            text += f" DEFAULT {self.default}"
        return text + comment_text(self.comment)


def comment_text(comment: Optional[str]) -> str:
    """` COMMENT 'text'` as the preview shows an object's comment, quoted as its `COMMENT ON ... IS`
    statement quotes it; empty without one."""
    from pgmig.db.quoting import quote_literal

    return "" if comment is None else f" COMMENT {quote_literal(comment)}"


COLUMNS_QUERY = f"""
SELECT n.nspname AS table_schema,
       c.relname AS table_name,
       a.attname AS name,
       a.attnum AS position,
       {TYPE_SQL} AS data_type,
       a.attnotnull AS not_null,
       -- A default cannot refer to columns: deparsed without the table, which spares opening
       -- each table (a quarter of the query on a new connection); generated columns can.
       CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, 0)
            ELSE pg_catalog.pg_get_expr(d.adbin, d.adrelid) END AS default_expr,
       dsc.description AS comment,
       a.attidentity::text AS identity,
       et.typtype::text AS item_typtype,
       etn.nspname AS item_type_schema,
       et.typname AS item_type_name,
       seq.sequence_schema,
       seq.sequence_name,
       a.attgenerated::text AS generated,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END AS collation,
       ids.seqstart, ids.seqincrement, ids.seqmin, ids.seqmax, ids.seqcache, ids.seqcycle
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
{TYPE_JOINS}
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
-- A join, not col_description(): that looks each column up on its own (a quarter of the query).
LEFT JOIN pg_catalog.pg_description dsc
       ON dsc.objoid = c.oid AND dsc.classoid = 'pg_catalog.pg_class'::regclass AND dsc.objsubid = a.attnum
-- Sequences a column owns (serial), joined from the sequences' side: a few
-- hundred lookups instead of one per column.
LEFT JOIN (
    SELECT DISTINCT ON (dep.refobjid, dep.refobjsubid)
           dep.refobjid, dep.refobjsubid, sn.nspname AS sequence_schema, s.relname AS sequence_name
    FROM pg_catalog.pg_class s
    JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
    JOIN pg_catalog.pg_depend dep
      ON dep.classid = 'pg_catalog.pg_class'::regclass AND dep.objid = s.oid
     AND dep.refclassid = 'pg_catalog.pg_class'::regclass AND dep.deptype = 'a'
    WHERE s.relkind = 'S'
    ORDER BY dep.refobjid, dep.refobjsubid, s.oid
) seq ON seq.refobjid = c.oid AND seq.refobjsubid = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
-- An identity column's sequence (an internal dependency) and its options.
LEFT JOIN (
    SELECT dep.refobjid, dep.refobjsubid, ps.seqstart, ps.seqincrement, ps.seqmin, ps.seqmax, ps.seqcache,
           ps.seqcycle
    FROM pg_catalog.pg_depend dep
    JOIN pg_catalog.pg_sequence ps ON ps.seqrelid = dep.objid
    WHERE dep.classid = 'pg_catalog.pg_class'::regclass AND dep.refclassid = 'pg_catalog.pg_class'::regclass
      AND dep.deptype = 'i'
) ids ON ids.refobjid = c.oid AND ids.refobjsubid = a.attnum AND a.attidentity <> ''
WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND (n.nspname <> $1[1] OR c.relname NOT IN ($2::text, $2::text || '_progress')) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY n.nspname, c.relname, a.attnum
"""

_IDENTITY_CODES = {"a": "always", "d": "by default"}


class ColumnHandler(ObjectHandler):
    kind = "column"
    read_weight = 10  # every column of every table

    # -- reading -----------------------------------------------------------------

    def from_models(self, models: ModelContext) -> Iterable[Column]:
        return model_columns(models).columns

    async def from_database(self, db: DatabaseContext) -> List[Column]:
        rows = await db.fetch(COLUMNS_QUERY, list(db.schemas), db.version_table)
        found: List[Column] = []
        version = db.server_version
        async for chunk in in_chunks(rows):
            found.extend(_columns_of(chunk, version))
        return with_reads(found)

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Let Postgres print model types and defaults the way its catalog does.

        `'x'` becomes `'x'::character varying`, `VARCHAR(20)` becomes
        `character varying(20)`: the normalization service declares the
        model's columns in a scratch table (pgmig.normalize.ColumnSpelling). Columns of
        tables the database does not have yet are marked, so that adding them
        is not reported as rewriting a table.
        """
        columns = [obj for obj in objects if isinstance(obj, Column)]
        rendered = await render_through_server(db, columns)
        existing = await db.existing_tables((c.schema, c.table) for c in columns)
        version = db.server_version
        out: List[SchemaObject] = []
        for obj in objects:
            if isinstance(obj, Column):
                changes: Dict[str, Any] = {"table_exists": (obj.schema, obj.table) in existing, "pg_version": version}
                if id(obj) in rendered:
                    data_type, spelled = rendered[id(obj)]
                    changes["data_type"] = data_type
                    changes["generated" if obj.generated is not None else "default"] = spelled
                if obj.generated is not None:
                    changes["virtual"] = _virtual(obj, version)
                obj = obj.evolve(**changes)
            out.append(obj)
        return out

    def equivalent(self, current: SchemaObject, desired: SchemaObject) -> bool:
        """A model default that is a string literal, against the database's `<literal>::<type>`.

        Postgres stores `DEFAULT ''` on a text column as `''::text`, and a
        thousand such columns would otherwise each be normalized on every
        diff. The literal converts to the column's type; where the database
        prints that very literal cast to that very type, the values are the
        same. Only for types whose typmod cannot change a value (text,
        varchar(n), enums, json, uuid, arrays of them...): `'1.5'` on a
        numeric(10,2) column prints as `1.50`, and is left to the server.
        """
        if not isinstance(current, Column) or not isinstance(desired, Column):
            return False
        literal, stored = desired.default, current.default
        if literal is None or stored is None or not stored.startswith(literal) or not _STRING_LITERAL.match(literal):
            return False
        if stored[len(literal) :] not in _literal_casts(current.data_type):
            return False
        return desired.evolve(default=stored) == current

    # -- changing ----------------------------------------------------------------

    def create(self, obj: Column) -> List[Operation]:
        ops: List[Operation] = [
            AddColumn(
                table_name=obj.table,
                column_name=obj.name,
                data_type=obj.data_type,
                nullable=obj.nullable,
                default=obj.default,
                autoincrement=obj.autoincrement,
                identity=obj.identity,
                schema=obj.schema,
                new_table=not obj.table_exists,
                generated=obj.generated,
                virtual=obj.virtual,
                collation=obj.collation,
                identity_options=obj.identity_options,
            )
        ]
        if obj.comment is not None:
            ops.append(
                SetColumnComment(table_name=obj.table, column_name=obj.name, comment=obj.comment, schema=obj.schema)
            )
        return ops

    def migrate(self, old: Column, new: Column) -> List[Operation]:
        """Change the column in place, so its values survive.

        A sequence or identity the column leaves goes first and one it gains
        comes last: the type, default and NOT NULL it needs must be in place
        before (identity refuses a default or a nullable column), and a serial
        default only makes way once the old one is gone.
        """
        table, column, schema = new.table, new.name, new.schema
        ops = _leave_generator(old, new)
        if old.generated is not None and new.generated is None and old.virtual:
            ops += _materialize(old)
            # What stands under the name now: a plain nullable column of the old type, the values kept.
            old = old.evolve(generated=None, virtual=False, default=None, nullable=True, comment=None)
        elif old.generated is not None and new.generated is None:
            ops.append(DropColumnExpression(table_name=table, column_name=column, schema=schema))
        default_changed = old.default != new.default
        if (old.data_type, old.collation) != (new.data_type, new.collation):
            if old.default is not None and default_changed:
                # The old default may not cast to the new type.
                ops.append(SetColumnDefault(table_name=table, column_name=column, default=None, schema=schema))
            ops.append(
                ModifyColumnType(
                    table_name=table,
                    column_name=column,
                    data_type=new.data_type,
                    using=using_clause(old, new),
                    schema=schema,
                    old_data_type=old.data_type,
                    collation=new.collation,
                    old_collation=old.collation,
                    old_is_enum=old.enum_dependency is not None,
                )
            )
        if old.generated is not None and new.generated is not None and old.generated != new.generated:
            ops.append(
                SetColumnExpression(
                    table_name=table, column_name=column, expression=new.generated, virtual=new.virtual, schema=schema
                )
            )
        if default_changed and not (old.data_type != new.data_type and new.default is None):
            ops.append(SetColumnDefault(table_name=table, column_name=column, default=new.default, schema=schema))
        if old.nullable and not new.nullable:
            ops.append(AddNotNull(table_name=table, column_name=column, schema=schema))
        ops += _enter_generator(old, new)
        if not old.nullable and new.nullable:
            ops.append(DropNotNull(table_name=table, column_name=column, schema=schema))
        if old.comment != new.comment:
            ops.append(SetColumnComment(table_name=table, column_name=column, comment=new.comment, schema=schema))
        return ops

    def destroy(self, obj: Column) -> List[Operation]:
        derived = obj.generated is not None
        return [DropColumn(table_name=obj.table, column_name=obj.name, schema=obj.schema, derived=derived)]


def _materialize(old: Column) -> List[Operation]:
    """A virtual generated column made plain with its values: DROP EXPRESSION takes stored
    columns only (PostgreSQL 18, ALTER TABLE), so a plain column of its type is added under a
    free name, filled from it, and takes its place (at the end of the table)."""
    temporary = clip_bytes(old.name, NAMEDATALEN - 1 - len("_pgmig_tmp")) + "_pgmig_tmp"
    table, schema = old.table, old.schema
    return [
        AddColumn(
            table_name=table,
            column_name=temporary,
            data_type=old.data_type,
            collation=old.collation,
            schema=schema,
        ),
        BackfillColumn(table_name=table, column_name=temporary, expression=quote_ident(old.name), schema=schema),
        DropColumn(table_name=table, column_name=old.name, schema=schema, derived=True),
        RenameColumn(table_name=table, column_name=temporary, new_name=old.name, schema=schema),
    ]


def _leave_generator(old: Column, new: Column) -> List[Operation]:
    """Dropping the serial sequence or the identity `old` has and `new` lacks."""
    table, column, schema = new.table, new.name, new.schema
    ops: List[Operation] = []
    if old.autoincrement and not new.autoincrement:
        sequence_name = sequence_schema = None
        if old.sequence is not None:  # name it only where Postgres's default name is wrong
            found_schema, found_name = old.sequence
            if found_name != serial_sequence_name(old.table, old.name):
                sequence_name = found_name
            if found_schema != old.schema:
                sequence_schema = found_schema
        ops.append(
            DropColumnSequence(
                table_name=table,
                column_name=column,
                sequence_name=sequence_name,
                sequence_schema=sequence_schema,
                schema=schema,
            )
        )
    if old.identity is not None and new.identity is None:
        ops.append(DropColumnIdentity(table_name=table, column_name=column, schema=schema))
    return ops


def _enter_generator(old: Column, new: Column) -> List[Operation]:
    """Adding the serial sequence or the identity `new` has and `old` lacks (or changing the identity)."""
    table, column, schema = new.table, new.name, new.schema
    ops: List[Operation] = []
    if new.autoincrement and not old.autoincrement:
        ops.append(AddColumnSequence(table_name=table, column_name=column, data_type=new.data_type, schema=schema))
    if new.identity is not None and old.identity is None:
        ops.append(
            AddColumnIdentity(
                table_name=table,
                column_name=column,
                identity=new.identity,
                schema=schema,
                identity_options=new.identity_options,
            )
        )
        return ops
    if new.identity is not None and new.identity != old.identity:
        ops.append(SetColumnIdentity(table_name=table, column_name=column, identity=new.identity, schema=schema))
    if new.identity is not None and new.identity_options != old.identity_options:
        start, increment, minvalue, maxvalue, cache, cycle = new.identity_values or identity_values(new.data_type)
        ops.append(
            SetColumnIdentityOptions(
                table_name=table,
                column_name=column,
                start=start,
                increment=increment,
                minvalue=minvalue,
                maxvalue=maxvalue,
                cache=cache,
                cycle=cycle,
                schema=schema,
            )
        )
    return ops


def _columns_of(rows: Sequence[Any], pg_version: int = 0) -> Iterator[Column]:
    """Catalog rows (COLUMNS_QUERY) to columns, unpacked in the query's column order:
    a tenth of the time of looking each field up by name, 12,000 times at 1,000 tables.

    A generated column's expression is pg_attrdef's too: it is the column's
    `generated`, not its default."""
    make, identities = Column.of, _IDENTITY_CODES
    for (
        schema,
        table,
        name,
        position,
        data_type,
        not_null,
        default,
        comment,
        identity,
        item_typtype,
        item_type_schema,
        item_type_name,
        sequence_schema,
        sequence_name,
        generated,
        collation,
        seq_start,
        seq_increment,
        seq_min,
        seq_max,
        seq_cache,
        seq_cycle,
    ) in rows:
        expression = None
        if generated:
            expression, default = default, None
        serial = sequence_name is not None and bool(default) and default.startswith("nextval(")
        values: Optional[IdentityValues] = None
        if identity and seq_start is not None:
            values = (seq_start, seq_increment, seq_min, seq_max, seq_cache, seq_cycle)
        type_dependency = None
        if item_typtype == "e":
            type_dependency = ("enum", item_type_schema, item_type_name)
        elif item_type_schema not in ("pg_catalog", "information_schema", None):
            # A type some object of the schema provides (an extension's citext, a domain).
            type_dependency = ("type", item_type_schema, item_type_name)
        yield make(
            schema=schema,
            table=table,
            name=name,
            data_type=data_type,
            nullable=not not_null,
            default=None if serial else default,
            autoincrement=serial,
            identity=identities.get(identity or ""),
            comment=comment,
            collation=collation,
            generated=expression,
            virtual=generated == "v",
            identity_options=identity_options(data_type, values) if values is not None else None,
            identity_values=values,
            pg_version=pg_version,
            type_dependency=type_dependency,
            position=position,
            sequence=(sequence_schema, sequence_name) if serial else None,
        )


def with_reads(columns: List[Column]) -> List[Column]:
    """`columns` with each generated column's `reads`: the columns of its table its expression names."""
    tables: Dict[Tuple[str, str], List[Tuple[str, str]]] = {}
    for column in columns:
        if column.generated is not None:
            tables.setdefault((column.schema, column.table), [])
    if not tables:
        return columns
    for column in columns:
        if (column.schema, column.table) in tables:
            tables[(column.schema, column.table)].append((column.name, column.data_type))
    return [
        column.evolve(reads=columns_read(column.generated, tables[(column.schema, column.table)]))
        if column.generated is not None
        else column
        for column in columns
    ]


def _default_sql(column: Any, ddl: Any, seen: Dict[Any, Optional[str]], schema: str) -> Optional[str]:
    """`ddl.get_column_default_string(column)`, compiled once per distinct default.

    A string or a `text()` without bound parameters compiles the same
    wherever it appears, and a schema repeats a handful of them (`''`,
    `now()`, `0`) over thousands of columns. `schema` is where a sequence
    without one lives (see `_next_value_sql`).
    """
    server_default = column.server_default
    if server_default is None:
        return None
    arg = getattr(server_default, "arg", None)
    sequence = getattr(arg, "sequence", None)
    if sequence is not None and type(arg).__name__ == "next_value":
        return _next_value_sql(sequence, ddl, schema)
    if isinstance(arg, str):
        key: Any = ("str", arg)
    elif (
        arg is not None
        and type(arg).__name__ == "TextClause"
        and type(arg).__module__ == "sqlalchemy.sql.elements"
        and not arg._bindparams
    ):
        key = ("text", arg.text)
    else:
        return ddl.get_column_default_string(column)  # type: ignore[no-any-return]
    if key not in seen:
        seen[key] = ddl.get_column_default_string(column)
    return seen[key]


def _next_value_sql(sequence: Any, ddl: Any, schema: str) -> str:
    """`Sequence.next_value()` as a default: `nextval('<schema>.<name>')`, schema-qualified always.

    SQLAlchemy writes `nextval('name')` for a sequence without a schema, and
    Postgres resolves that name when the default is created, through the
    search_path of the session running the revision: under another managed
    schema, or a search_path like `legacy, public`, the default would call
    some other sequence of that name. The sequence kind places such a
    sequence in the first managed schema: the default names it there.
    """
    preparer = ddl.preparer
    name = preparer.format_sequence(sequence, use_schema=False)
    target = f"{preparer.quote_schema(sequence.schema or schema)}.{name}"
    # The form pg_get_expr prints (and sequences_called reads): pgmig's sessions read it alike.
    return f"nextval({standard_literal(target)})"


# 'text' with quotes doubled; no backslash, whose meaning depends on standard_conforming_strings.
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|'')*'\Z")
# Types whose values a typmod can only reject, never change.
_UNMODIFIED_BY_TYPMOD = re.compile(r"(character varying|bit varying)\(\d+\)")


@lru_cache(maxsize=1024)
def _literal_casts(data_type: str) -> FrozenSet[str]:
    """`::<type>` suffixes Postgres may print after a string literal default of a `data_type` column."""
    casts = {"::" + data_type}
    if "." in data_type and "(" not in data_type and '"' not in data_type:
        # An enum, always qualified here (pgmig.schema.types.TYPE_SQL), that pg_get_expr prints
        # without its schema when the search_path finds it: a default of another type of the same
        # name could not be the default of this column (enums convert to no other enum).
        casts.add("::" + data_type.split(".", 1)[1])
    if "(" in data_type:
        unmodified = _UNMODIFIED_BY_TYPMOD.sub(r"\1", data_type)
        if "(" in unmodified:  # numeric(p,s), timestamp(p), character(n): values depend on the typmod
            return frozenset()
        casts.add("::" + unmodified)
    return frozenset(casts)


@dataclass
class ModelColumns:
    """What building the models' columns found, for the kinds that read it (see `model_columns`)."""

    columns: List[Column] = field(default_factory=list)
    enum_types: List[Any] = field(default_factory=list)
    """The SQLAlchemy types of the columns of a native enum type (an `Enum`, or an `ARRAY` of one), in column order."""
    enum_columns: List[Column] = field(default_factory=list)
    """The columns those types belong to."""
    domain_types: Dict[int, Any] = field(default_factory=dict)
    """id -> the distinct `postgresql.DOMAIN`s the columns use (directly, as ARRAY items, behind a
    TypeDecorator), in column order: the domain kind reads them instead of every column again."""
    _constraints: Dict[int, List[Any]] = field(default_factory=dict)
    _types: Dict[int, Tuple[Tuple[str, str], ...]] = field(default_factory=dict)

    def column_constraints(self, table: Any) -> List[Any]:
        """The constraints declared on a model table's columns (`Column(..., CheckConstraint(...))`)
        rather than on the table itself."""
        return self._constraints.get(id(table), [])

    def table_types(self, table: Any) -> Tuple[Tuple[str, str], ...]:
        """(name, type as format_type() prints it, with `COLLATE "x"` where the column has one) of a
        model table's columns."""
        return self._types[id(table)]


def model_columns(models: ModelContext) -> ModelColumns:
    """The models' columns and what building them found, built once per ModelContext.

    The column handler returns the columns; the enum handler reads the native
    enum types and their columns, the constraint handler the column-level
    constraints and the column types a check is rendered against.
    """
    return models.derived(_build_model_columns)


def _build_model_columns(models: ModelContext) -> ModelColumns:
    from sqlalchemy import Identity, Sequence

    ddl = models.dialect.ddl_compiler(models.dialect, None)  # type: ignore[arg-type]
    defaults: Dict[Any, Optional[str]] = {}
    found = ModelColumns()
    make, default_schema = Column.of, models.schema

    def describe(sa_type: Any) -> Tuple[str, Optional[str], Optional[Tuple[str, str]], Optional[Key], bool]:
        """What a type gives a column: its format_type spelling (an enum or a domain schema-qualified)
        and its collation apart (`String(collation="C")` compiles to `VARCHAR COLLATE "C"`), its native
        enum, the type it waits for (a domain's: ("type", schema, name), which the domain provides),
        whether that is a domain."""
        base, collation = split_collation(models.type_sql(sa_type))
        data_type = canonical_type(base)
        enum = enum_of(sa_type, default_schema, models.dialect)
        domain = None if enum else domain_of(sa_type, default_schema, models.dialect)
        named = enum or domain
        if named:  # qualified whatever the search_path (see pgmig.schema.types.TYPE_SQL)
            data_type = enum_type_sql(*named, array_suffix=data_type[len(data_type.rstrip("[]")) :])
        if enum:
            dependency: Optional[Key] = ("enum",) + enum
        elif domain:
            dependency = ("type",) + domain
        else:
            dependency = extension_type(data_type, default_schema)
        return data_type, collation, enum, dependency, domain is not None

    for table in models.tables:
        schema = models.table_schema(table)
        autoinc = table.autoincrement_column
        table_name = models.table_name(table)
        pairs = []
        generated: List[int] = []
        for position, col in enumerate(table.columns, start=1):
            identity = None
            if isinstance(col.identity, Identity):
                identity = "always" if col.identity.always else "by default"
            # As the dialect's get_column_specification: an optional Sequence makes it SERIAL too.
            no_default = col.default is None or (isinstance(col.default, Sequence) and col.default.optional)
            serial = col is autoinc and identity is None and col.server_default is None and no_default
            if col.constraints:  # a CHECK declared on the column (Column(..., CheckConstraint(...)))
                found._constraints.setdefault(id(table), []).extend(col.constraints)
            sa_type = col.type
            try:
                data_type, collation, enum, dependency, is_domain = models.per_type(sa_type, "column", describe)
            except Exception as exc:  # SQLAlchemy's CompileError, or a type's own failure
                raise ModelsError(_type_failure(f"{schema}.{table.name}.{col.name}", col, exc)) from exc
            # As Postgres keeps it (63 bytes); two columns it keeps alike are refused.
            name = models.stored(col.name, ("column", schema, table_name), f"column {schema}.{table.name}.{col.name}")
            # The collation goes with the type: a scratch table of these columns sorts as the model's.
            pairs.append((name, f"{data_type} COLLATE {quote_ident(collation)}" if collation else data_type))
            values = _identity_values_of(col.identity, data_type) if identity else None
            computed = col.computed
            expression = None
            if computed is not None:
                expression = ddl.sql_compiler.process(computed.sqltext, include_table=False, literal_binds=True)
                generated.append(len(found.columns))
            column = make(
                schema=schema,
                table=table_name,
                name=name,
                data_type=data_type,
                nullable=bool(col.nullable) and identity is None,
                default=None if identity else _default_sql(col, ddl, defaults, default_schema),
                autoincrement=serial,
                identity=identity,
                comment=col.comment,
                collation=collation,
                generated=expression,
                virtual=computed is not None and computed.persisted is False,
                storage_unspecified=computed is not None and computed.persisted is None,
                identity_options=identity_options(data_type, values) if values is not None else None,
                identity_values=values,
                type_dependency=dependency,
                position=position,
            )
            found.columns.append(column)
            if enum:
                found.enum_types.append(sa_type)
                found.enum_columns.append(column)
            elif is_domain:
                sa_domain = item_type(sa_type, models.dialect)
                found.domain_types.setdefault(id(sa_domain), sa_domain)
        found._types[id(table)] = tuple(pairs)
        for index in generated:
            column = found.columns[index]
            assert column.generated is not None
            found.columns[index] = column.evolve(reads=columns_read(column.generated, pairs))
    return found


def _type_failure(where: str, column: Any, exc: Exception) -> str:
    """Why a model column's type does not compile, naming the column: a column typed by its
    foreign key (`Column("x", ForeignKey("t.id"))`) whose target the models lack has no type
    (NullType), which `create_all` reports as NoReferencedTableError."""
    if type(column.type).__name__ == "NullType" and column.foreign_keys:
        targets = ", ".join(str(fk.target_fullname) for fk in column.foreign_keys)
        return (
            f"column {where} has no type: it takes the type of the column its foreign key references "
            f"({targets}), which the models do not define; give the column a type, or add that table to the models"
        )
    return f"column {where}: its type does not compile for PostgreSQL: {type(exc).__name__}: {exc}"


def _identity_values_of(identity: Any, data_type: str) -> IdentityValues:
    """A model `Identity(...)`'s sequence options, those it leaves out as Postgres fills them in."""
    return identity_values(
        data_type,
        start=identity.start,
        increment=identity.increment,
        minvalue=None if identity.nominvalue else identity.minvalue,
        maxvalue=None if identity.nomaxvalue else identity.maxvalue,
        cache=identity.cache,
        cycle=identity.cycle,
    )


# Types of pg_catalog as format_type() prints their base names: anything else
# a model uses is provided by some object (an extension) the column must wait for.
_BUILTIN_TYPES = frozenset(
    """bigint bit boolean box bytea character cidr circle date daterange datemultirange
    double inet int4range int4multirange int8range int8multirange integer interval json
    jsonb jsonpath line lseg macaddr macaddr8 money name numeric nummultirange numrange
    oid path pg_lsn point polygon real regclass regtype smallint text tid time timestamp
    tsmultirange tsquery tsrange tstzmultirange tstzrange tsvector txid_snapshot uuid
    varbit xid xid8 xml""".split()
)


@lru_cache(maxsize=4096)  # called per column; a schema has few distinct types
def extension_type(data_type: str, schema: str) -> Optional[Key]:
    """("type", schema, name) for a model type Postgres does not ship, e.g. `citext`."""
    base = data_type.rstrip("[] ").split("(", 1)[0].strip()
    word = base.split(" ", 1)[0].lower()
    if not base or word in _BUILTIN_TYPES or base.startswith('"') or "." in base:
        return None
    return ("type", schema, base.lower())


def _base(data_type: str) -> str:
    return data_type.split("(", 1)[0].strip()


def using_clause(old: Column, new: Column) -> Optional[str]:
    """The cast Postgres needs to change `old`'s type to `new`'s, or None when implicit."""
    old_base, new_base = _base(old.data_type), _base(new.data_type)
    if old.enum_dependency is not None or new.enum_dependency is not None:
        # Postgres casts an enum only to and from text: go through text.
        if old.enum_dependency == new.enum_dependency and old_base == new_base:
            return None
        array = "[]" if new.data_type.endswith("[]") else ""
        return f"{quote_ident(new.name)}::text{array}::{new.data_type}"
    if old_base == new_base or any(old_base in f and new_base in f for f in _IMPLICIT_FAMILIES):
        return None
    return f"{quote_ident(new.name)}::{new.data_type}"


def _virtual(column: Column, version: int) -> bool:
    """Whether a model's generated column is VIRTUAL on a server of `version`, as `create_all` makes it.

    SQLAlchemy 2.1 writes no keyword for `Computed(persisted=None)` on
    PostgreSQL 18+, whose default is VIRTUAL, and STORED before 18 (as
    SQLAlchemy 2.0 always does); `persisted=False` is VIRTUAL, which only
    PostgreSQL 18 has (SQLAlchemy refuses to compile it before).
    """
    if column.virtual and version < 180000:
        raise ModelsError(
            f"column {column.table}.{column.name} is Computed(persisted=False), a VIRTUAL generated column, "
            f"which PostgreSQL {version // 10000} does not have (18+ does): use persisted=True for STORED"
        )
    if column.storage_unspecified:
        from sqlalchemy.dialects.postgresql.base import PGDialect

        return version >= 180000 and hasattr(PGDialect, "supports_virtual_generated_columns")
    return column.virtual


def _shape(column: Column) -> ColumnShape:
    """What the server renders of `column` (see ColumnSpelling): a generated column with the
    (name, type) of the columns of its table that its expression reads."""
    if column.generated is None:
        return (column.data_type, column.default)
    return (column.data_type, None, column.generated, column.reads)


async def render_through_server(db: DatabaseContext, columns: Sequence[Column]) -> Dict[int, Tuple[str, Optional[str]]]:
    """id(column) -> (data_type, default or generation expression) as the server prints them
    (see pgmig.normalize.ColumnSpelling).

    A rendering depends only on the type and the default's text, so each
    distinct pair renders once (a thousand `text DEFAULT ''` columns are
    one); a column whose type does not exist yet (an enum the plan will
    create) is left out and keeps the models' spelling.
    """
    shapes = {id(column): _shape(column) for column in columns}
    rendered = await render(db, ColumnSpelling(), list(shapes.values()))
    result: Dict[int, Tuple[str, Optional[str]]] = {}
    for column in columns:
        found = rendered.get(shapes[id(column)])
        if found is not None:
            result[id(column)] = (found[0], found[1])
    return result


__all__ = ["Column", "ColumnHandler", "ModelColumns", "model_columns"]
