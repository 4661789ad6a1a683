"""Table constraints: primary keys, unique constraints, foreign keys and checks.

Constraints are matched by what they mean, not by name. An unnamed model
constraint gets a name chosen by Postgres (`article_pkey`, `article_code_key`),
and a renamed table keeps its old constraint names, so a name-keyed diff would
drop and re-add constraints that never changed. Keys are therefore:

- primary key: ("constraint", schema, table, "primary_key") - one per table;
- unique:      ("constraint", schema, table, "unique", "a,b");
- foreign key: ("constraint", schema, table, "foreign_key", "a,b", "ref_schema.ref_table", "x,y");
- check:       ("constraint", schema, table, "named_check", name) when the model names it,
               else ("constraint", schema, table, "check", <body in Postgres's normal form>).

One rule for every kind (issue 17): a constraint whose definition is unchanged
and whose name the models give (explicitly or through a naming convention) is
renamed in place (RENAME CONSTRAINT, both ways); one the models leave unnamed
is the database's of that definition, whatever Postgres called it. The name is
carried with compare=False and compared in `__eq__` only where the models give
it; a named check, keyed by its name, is paired with the database's check of
the same body under another key by the diff (`definition_key`). A check name
that looks like one Postgres generates (ending in `_check` or `_checkN`) keys
the check by its body on both sides, because the database side cannot tell
such a name from a generated one. Names are compared as Postgres keeps them
(63 bytes, `stored_name`); on the model side the unique constraint Postgres
folds into the primary key in CREATE TABLE is left out (`_folded_keys`).

Check bodies compare as the text `pg_get_expr(conbin, conrelid)` prints (the
text inside CHECK (...)): the database side reads it from the catalog, and
`normalize` has the server print the model's expression the same way, by
adding it to a scratch table with the model's types of the columns it reads,
through the normalization service (pgmig.normalize; see CheckSpelling and
render_checks).

Dependencies are the constrained columns; a foreign key also depends on the
referenced columns and on what Postgres requires to exist on the referenced
table: its PK, a unique constraint or a unique index without predicate over
exactly those columns (transformFkeyCheckAttrs; the database side reads the
one in use from pg_constraint.conindid). So the graph orders creation (the
key of table A before the FK of table B) and drops (the FK before the key,
index or table it uses).

A constraint's name, and a PK's or unique constraint's among the schema's
relations (its index is one), is in `names`: an object taking a name waits
for the drop of whichever other object holds it (a named constraint whose
columns change is a new key, dropped and added).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from pgmig.db.quoting import NAMEDATALEN, clip_bytes, object_name, stored_name
from pgmig.ops.base import Operation
from pgmig.ops.constraint import (
    AddCheck,
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    DropConstraint,
    RenameConstraint,
)
from pgmig.plan.normalize import Reads, Renderer, Scratch, render
from pgmig.schema.expressions import canonical, columns_read, functions_called, reparsable
from pgmig.schema.handlers.column import model_columns
from pgmig.schema.handlers.index import model_index_name, name_too_long, referable_index
from pgmig.schema.objects import Key, SchemaObject
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler, in_chunks

PRIMARY_KEY, UNIQUE, FOREIGN_KEY, CHECK = "primary_key", "unique", "foreign_key", "check"

_ACTION_CODES = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_MATCH_CODES = {"s": "SIMPLE", "f": "FULL", "p": "PARTIAL"}
_TYPE_CODES = {"p": PRIMARY_KEY, "u": UNIQUE, "f": FOREIGN_KEY, "c": CHECK}
_GENERATED_CHECK_NAME = re.compile(r"_check\d*$")


def _joined(names: Sequence[str]) -> str:
    return ",".join(names)


def unique_key(schema: str, table: str, columns: Sequence[str]) -> Key:
    return ("constraint", schema, table, UNIQUE, _joined(columns))


def primary_key_key(schema: str, table: str) -> Key:
    return ("constraint", schema, table, PRIMARY_KEY)


def check_name_is_given(name: Optional[str]) -> bool:
    """True when a check's name identifies it (it is not one Postgres would have generated)."""
    return bool(name) and not _GENERATED_CHECK_NAME.search(name)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Constraint(SchemaObject):
    kind = "constraint"
    schema: str
    table: str
    constraint_type: str
    columns: Tuple[str, ...] = ()
    referred_schema: Optional[str] = None
    referred_table: Optional[str] = None
    referred_columns: Tuple[str, ...] = ()
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    match: str = "SIMPLE"
    expression: Optional[str] = None
    nulls_not_distinct: bool = False
    # A primary key's or unique constraint's covered columns (INCLUDE), in their order.
    include: Tuple[str, ...] = ()
    deferrable: bool = False
    initially_deferred: bool = False
    name: Optional[str] = field(default=None, compare=False)
    # The referenced table's PK/unique constraint a foreign key relies on.
    referred_key: Optional[Key] = field(default=None, compare=False)
    # Columns a check reads (from the catalog's conkey, or all of the model table's).
    check_columns: Tuple[str, ...] = field(default=(), compare=False)
    # (name, type) of the model table's columns: what `normalize` renders a check against.
    table_columns: Tuple[Tuple[str, str], ...] = field(default=(), compare=False)
    # A check as the model spells it: what ADD CONSTRAINT sends. Postgres's printed
    # form does not always parse back to itself (`= ANY (ARRAY[...])` casts).
    source: Optional[str] = field(default=None, compare=False)
    # False when the plan creates the table too: adding to an empty table scans nothing.
    table_exists: bool = field(default=True, compare=False)
    # True when `name` is the one pgmig chose for Postgres (see _free_generated_name).
    name_chosen: bool = field(default=False, compare=False)
    # True when the models give the name (explicitly or through a naming convention): then a
    # database constraint of another name is not this one (see __eq__).
    name_given: bool = field(default=False, compare=False)

    def __eq__(self, other: object) -> bool:
        """Equal definitions, and equal names where the models give one: an unnamed model constraint
        takes whatever name Postgres generated, a named one is renamed when the names differ."""
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Constraint)
        if _compared(self) != _compared(other):
            return False
        return _same_name(self.name, other.name) or not (self.name_given or other.name_given)

    def __hash__(self) -> int:  # what dataclass would make of the compared fields (names left out)
        return hash(_compared(self))

    def differences(self, other: "SchemaObject") -> Dict[str, Tuple[Any, Any]]:
        found = super().differences(other)
        if not isinstance(other, Constraint):
            return found
        if (self.name_given or other.name_given) and not _same_name(self.name, other.name):
            found["name"] = (self.name, other.name)
        return found

    @property
    def definition_key(self) -> Tuple[Any, ...]:
        """Its table and definition: a check named otherwise (a check's key is its name where the
        models give one) is this one renamed, or the same one where neither side's name is given."""
        return (self.kind, self.schema, self.table, *_compared(self))

    def renamed_only(self, new: "Constraint") -> bool:
        """The same definition under another name the models give: RENAME CONSTRAINT does it."""
        return (
            _compared(self) == _compared(new)
            and self.name is not None
            and new.name is not None
            and not _same_name(self.name, new.name)
        )

    @property
    def key(self) -> Key:
        base: Key = ("constraint", self.schema, self.table)
        if self.constraint_type == PRIMARY_KEY:
            return base + (PRIMARY_KEY,)
        if self.constraint_type == UNIQUE:
            return base + (UNIQUE, _joined(self.columns))
        if self.constraint_type == FOREIGN_KEY:
            return base + (
                FOREIGN_KEY,
                _joined(self.columns),
                f"{self.referred_schema}.{self.referred_table}",
                _joined(self.referred_columns),
            )
        if check_name_is_given(self.name):
            return base + ("named_check", self.name or "")
        return base + (CHECK, self.expression or "")

    @property
    def parent(self) -> Key:
        return ("table", self.schema, self.table)

    def rebuilt_with(self, key: Key) -> bool:
        """Keys (primary, unique, foreign) follow their columns' new type; a CHECK's expression is
        re-read against it, where a constant of the old type fails or prints differently."""
        return self.constraint_type != CHECK

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        deps: List[Key] = [self.parent]
        deps += [("column", self.schema, self.table, c) for c in self.columns + self.check_columns]
        if self.constraint_type == FOREIGN_KEY:
            deps.append(("table", self.referred_schema or self.schema, self.referred_table or ""))
            deps += [
                ("column", self.referred_schema or self.schema, self.referred_table or "", c)
                for c in self.referred_columns
            ]
            if self.referred_key is not None:
                deps.append(self.referred_key)
        deps += functions_called(self.expression)  # a check calling an extension's function
        return tuple(dict.fromkeys(d for d in deps if d != self.key))

    @property
    def names(self) -> Tuple[Key, ...]:
        """Its name among the table's constraints and, for a key, its index's among the schema's
        relations (pg_class); unnamed, the name Postgres would give it."""
        name = self.name or generated_name(self)
        taken: Tuple[Key, ...] = (("constraint_name", self.schema, self.table, name),)
        if self.constraint_type in (PRIMARY_KEY, UNIQUE):
            taken += (("relation", self.schema, name),)
        return taken

    @property
    def label(self) -> str:
        if self.constraint_type == CHECK:
            return f"check {self.name}" if check_name_is_given(self.name) else f"check {self.expression}"
        if self.constraint_type == PRIMARY_KEY:
            return f"primary key ({', '.join(self.columns)})"
        if self.constraint_type == UNIQUE:
            return f"unique ({', '.join(self.columns)})"
        # The referenced table's schema is said where it is not the constraint's own.
        target = (
            self.referred_table
            if self.referred_schema in (None, self.schema)
            else (f"{self.referred_schema}.{self.referred_table}")
        )
        return f"foreign key ({', '.join(self.columns)}) -> {target} ({', '.join(self.referred_columns)})"

    def describe(self) -> str:
        text = self.label
        if self.constraint_type == FOREIGN_KEY:
            if self.on_delete != "NO ACTION":
                text += f" ON DELETE {self.on_delete}"
            if self.on_update != "NO ACTION":
                text += f" ON UPDATE {self.on_update}"
        if self.initially_deferred:
            text += " DEFERRABLE INITIALLY DEFERRED"
        elif self.deferrable:
            text += " DEFERRABLE"
        return text


def _same_name(a: Optional[str], b: Optional[str]) -> bool:
    """Names as Postgres keeps them (`stored_name`: a longer model name is truncated)."""
    return a == b or (a is not None and b is not None and stored_name(a) == stored_name(b))


_compared = operator.attrgetter(*(f.name for f in fields(Constraint) if f.compare))


def constraints_query(server_version: int = 150000) -> str:
    """The catalog read of a schema's constraints, for a server of `server_version` (server_version_num).

    UNIQUE NULLS NOT DISTINCT (PostgreSQL 15+) is read from the constraint's
    index: deparsing every unique constraint to find it was a fifth of the
    query on a new connection.
    """
    nulls_not_distinct = "COALESCE(ix.indnullsnotdistinct, false)" if server_version >= 150000 else "false"
    return _CONSTRAINTS_QUERY.replace("{nulls_not_distinct}", nulls_not_distinct)


_CONSTRAINTS_QUERY = """
SELECT cl.relname AS table_name,
       con.conname AS name,
       con.contype::text AS contype,
       con.condeferrable AS deferrable,
       con.condeferred AS deferred,
       con.confdeltype::text AS on_delete,
       con.confupdtype::text AS on_update,
       con.confmatchtype::text AS match,
       {nulls_not_distinct} AS nulls_not_distinct,
       -- INCLUDE columns: the index's attributes after its key ones (int2vector subscripts start at 0).
       CASE WHEN ix.indnatts > ix.indnkeyatts THEN
            ARRAY(SELECT a.attname FROM unnest(ix.indkey[ix.indnkeyatts:ix.indnatts - 1]) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
                  ORDER BY k.ord)::text[] END AS include,
       CASE WHEN con.contype = 'c' THEN pg_catalog.pg_get_expr(con.conbin, con.conrelid) END AS expression,
       CASE WHEN cardinality(con.conkey) = 1 THEN ARRAY[k1.attname::text]
       ELSE ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                  ORDER BY k.ord)::text[] END AS columns,
       rn.nspname AS referred_schema,
       rcl.relname AS referred_table,
       CASE WHEN cardinality(con.confkey) = 1 THEN ARRAY[k2.attname::text]
       ELSE ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                  ORDER BY k.ord)::text[] END AS referred_columns,
       rc.contype::text AS referred_contype,
       CASE WHEN cardinality(rc.conkey) = 1 THEN ARRAY[k3.attname::text]
       ELSE ARRAY(SELECT a.attname FROM unnest(rc.conkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = rc.conrelid AND a.attnum = k.attnum
                  ORDER BY k.ord)::text[] END AS referred_key_columns,
       ri.relname AS referred_index,
       n.nspname AS table_schema
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class cl ON cl.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
LEFT JOIN pg_catalog.pg_class rcl ON rcl.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rcl.relnamespace
LEFT JOIN pg_catalog.pg_constraint rc
       ON con.contype = 'f' AND rc.conrelid = con.confrelid AND rc.conindid = con.conindid
      AND rc.contype IN ('p', 'u')
LEFT JOIN pg_catalog.pg_index ix ON con.contype IN ('u', 'p') AND ix.indexrelid = con.conindid
-- A foreign key on a unique index that no constraint owns (`CREATE UNIQUE INDEX`).
LEFT JOIN pg_catalog.pg_class ri ON con.contype = 'f' AND rc.oid IS NULL AND ri.oid = con.conindid
-- Most keys have one column: a join, not a subquery per row (a tenth of the query).
LEFT JOIN pg_catalog.pg_attribute k1 ON k1.attrelid = con.conrelid AND k1.attnum = con.conkey[1]
LEFT JOIN pg_catalog.pg_attribute k2 ON k2.attrelid = con.confrelid AND k2.attnum = con.confkey[1]
LEFT JOIN pg_catalog.pg_attribute k3 ON k3.attrelid = rc.conrelid AND k3.attnum = rc.conkey[1]
WHERE n.nspname = ANY($1::text[]) AND cl.relkind IN ('r', 'p') AND NOT cl.relispartition
  AND (n.nspname <> $1[1] OR cl.relname NOT IN ($2::text, $2::text || '_progress'))
  AND con.contype IN ('p', 'u', 'f', 'c') AND con.conislocal AND con.conparentid = 0
ORDER BY n.nspname, cl.relname, con.conname
"""

CONSTRAINTS_QUERY = constraints_query()

TABLES_QUERY = """
SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p')
"""

# Postgres keeps the names it generates unique across the schema, not just the table.
NAMES_QUERY = """
SELECT con.conname FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace
WHERE n.nspname = $1
"""


class ConstraintHandler(ObjectHandler):
    kind = "constraint"
    read_weight = 10  # every constraint, with column names and check bodies

    # -- reading the models --------------------------------------------------------

    def from_models(self, models: ModelContext) -> Iterable[Constraint]:
        reader = _ModelReader(models)
        for table in models.tables:
            yield from reader.read(table)

    # -- reading the database ------------------------------------------------------

    async def from_database(self, db: DatabaseContext) -> List[Constraint]:
        rows = await db.fetch(constraints_query(db.server_version), list(db.schemas), db.version_table)
        found: List[Constraint] = []
        async for chunk in in_chunks(rows):
            found.extend(_constraints_of(chunk))
        return found

    # -- normal form ---------------------------------------------------------------

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Mark which tables already exist, let the server print check bodies, and name
        the foreign keys and checks that will be added NOT VALID and validated apart."""
        constraints = [obj for obj in objects if isinstance(obj, Constraint)]
        if not constraints:
            return objects
        existing = {(row["nspname"], row["relname"]) for row in await db.fetch(TABLES_QUERY, list(db.schemas))}
        checks = [c for c in constraints if c.constraint_type == CHECK and c.expression]
        rendered = await render_checks(db, checks, existing)
        taken: Dict[str, Set[str]] = {}  # per schema
        out: List[SchemaObject] = []
        for obj in objects:
            if isinstance(obj, Constraint):
                changes: Dict[str, Any] = {}
                if (obj.schema, obj.table) not in existing:
                    changes["table_exists"] = False
                if id(obj) in rendered:
                    expression, changes["check_columns"] = rendered[id(obj)]
                    changes["expression"] = canonical(expression)
                if changes:
                    obj = obj.evolve(**changes)
                if obj.table_exists and not obj.name and obj.constraint_type in (FOREIGN_KEY, CHECK):
                    if obj.schema not in taken:
                        taken[obj.schema] = {row["conname"] for row in await db.fetch(NAMES_QUERY, obj.schema)}
                    obj = obj.evolve(name=_free_generated_name(obj, taken[obj.schema]), name_chosen=True)
            out.append(obj)
        return out

    # -- changing ------------------------------------------------------------------

    def create(self, obj: Constraint) -> List[Operation]:
        common: Dict[str, Any] = dict(
            table_name=obj.table, constraint_name=obj.name, new_table=not obj.table_exists, schema=obj.schema
        )
        if obj.constraint_type == CHECK:
            return [AddCheck(expression=obj.source or obj.expression or "", **common)]
        common.update(columns=list(obj.columns), deferrable=obj.deferrable, initially_deferred=obj.initially_deferred)
        if obj.constraint_type == PRIMARY_KEY:
            return [AddPrimaryKey(include=obj.include, **common)]
        if obj.constraint_type == UNIQUE:
            return [AddUnique(nulls_not_distinct=obj.nulls_not_distinct, include=obj.include, **common)]
        return [
            AddForeignKey(
                referred_table=obj.referred_table or "",
                referred_columns=list(obj.referred_columns),
                referred_schema=None if obj.referred_schema == obj.schema else obj.referred_schema,
                on_delete=obj.on_delete,
                on_update=obj.on_update,
                match=obj.match,
                **common,
            )
        ]

    def destroy(self, obj: Constraint) -> List[Operation]:
        # A model-side object has no name when Postgres chose it (a `down` plan
        # drops what `up` created): drop it by the name Postgres gives it.
        return [
            DropConstraint(table_name=obj.table, constraint_name=obj.name or generated_name(obj), schema=obj.schema)
        ]

    def migrate(self, old: Constraint, new: Constraint) -> List[Operation]:
        """Drop and add again: Postgres cannot alter a constraint's definition in place
        (only an FK's deferrability, which is not worth a path).

        A name pgmig chose for the new version gives way to the old one, which the drop frees.
        The rule holds both ways, so the `down` of one diff drops what its `up` added: there
        the old version is the model's, whose chosen name `up` gave way to the database's
        (the new version's here).
        """
        if old.renamed_only(new):
            assert old.name is not None and new.name is not None
            return [
                RenameConstraint(table_name=old.table, constraint_name=old.name, new_name=new.name, schema=old.schema)
            ]
        if new.name_chosen and old.name:
            new = new.evolve(name=old.name)
        elif old.name_chosen and new.name:
            old = old.evolve(name=new.name)
        return self.destroy(old) + self.create(new)


def generated_name(obj: Constraint, attempt: int = 0) -> str:
    """The name Postgres chooses for `obj` when it is added without one.

    `attempt` n > 0 is the n-th variant Postgres tries when the plain name is
    taken (`article_price_check1`); attempt 0 assumes no clash.
    """
    suffix = str(attempt) if attempt else ""
    if obj.constraint_type == PRIMARY_KEY:
        return object_name(obj.table, None, "pkey" + suffix)
    if obj.constraint_type in (UNIQUE, FOREIGN_KEY):
        columns = clip_bytes("_".join(obj.columns), NAMEDATALEN - 1)
        return object_name(obj.table, columns, ("key" if obj.constraint_type == UNIQUE else "fkey") + suffix)
    column = obj.check_columns[0] if len(obj.check_columns) == 1 else None
    return object_name(obj.table, column, "check" + suffix)


def _free_generated_name(obj: Constraint, taken: Set[str]) -> str:
    """The first of Postgres's names for `obj` not in `taken` (which it then joins).

    A foreign key or check added to an existing table is added NOT VALID and
    validated by name, so the name must be fixed before the plan runs. The
    constraint this one replaces may still hold the plain name when it is
    added (the plan may add before it drops), hence the variants, as
    Postgres's ChooseConstraintName does.
    """
    attempt = 0
    while generated_name(obj, attempt) in taken:
        attempt += 1
    name = generated_name(obj, attempt)
    taken.add(name)
    return name


def _emitted_by_create_all(constraint: Any, models: ModelContext) -> bool:
    """SQLAlchemy's own test (its create rule, then its `ddl_if`), minus the mark `AddConstraint`
    leaves behind.

    `create_all` emits a use_alter foreign key through `AddConstraint`, which
    sets the constraint's `_create_rule` to "never inline" on the shared
    MetaData for good; that mark says nothing about whether the constraint
    belongs in the schema.
    """
    rule = getattr(constraint, "_create_rule", None)
    if rule is not None and not _is_ddl_mark(rule) and not rule(models.ddl):
        return False
    return models.creates(constraint)


def _is_ddl_mark(rule: Any) -> bool:
    from sqlalchemy.sql.ddl import _CreateDropBase

    return isinstance(getattr(rule, "__self__", None), _CreateDropBase)


def _creation_order(constraint: Any) -> int:
    """The order SQLAlchemy made a constraint in, which create_all writes them in."""
    return int(getattr(constraint, "_creation_order", 0))


class _ModelReader:
    """Turns SQLAlchemy constraints into `Constraint`s the way `create_all` would emit them."""

    def __init__(self, models: ModelContext) -> None:
        from sqlalchemy import CheckConstraint, ForeignKeyConstraint, PrimaryKeyConstraint, UniqueConstraint

        self.models = models
        dialect = models.dialect
        self.ddl = models.ddl
        # Check text is compiled with the named paramstyle, not psycopg2's, which
        # doubles every `%`: what reaches the server must be the text as written.
        self.sql = dialect.statement_compiler(dialect, None)
        self.types = (PrimaryKeyConstraint, UniqueConstraint, ForeignKeyConstraint, CheckConstraint)
        from sqlalchemy.sql.elements import TextClause

        # A check given as a string is a text() the compiler returns as written, unless it
        # has `:name` binds or `\:` escapes to rewrite, or the paramstyle doubles `%`.
        self.text_clause = None if self.sql.preparer._double_percents else TextClause

    def check_text(self, sqltext: Any) -> str:
        """A check's SQL as the compiler writes it (`compile` with literal binds, no table names)."""
        if type(sqltext) is self.text_clause:
            text: str = sqltext.text
            if ":" not in text and "\\" not in text:
                return text
        return str(self.sql.process(sqltext, include_table=False, literal_binds=True))

    def read(self, table: Any) -> Iterator[Constraint]:
        primary_key, unique, foreign_key, check = self.types
        schema = self.models.table_schema(table)
        # Column-level checks live on the column, not in table.constraints. In create_all's order
        # (column checks, then the table's by creation: `table.constraints` is a set), since
        # Postgres numbers the check names it generates (`t_a_check`, `t_a_check1`) in that order.
        column_checks = model_columns(self.models).column_constraints(table)
        found = list(dict.fromkeys([*column_checks, *sorted(table.constraints, key=_creation_order)]))
        typed: Optional[Tuple[Tuple[str, str], ...]] = None  # the table's (name, type) pairs, for its checks
        names: Tuple[str, ...] = ()
        table_name = self.models.table_name(table)
        read: List[Constraint] = []
        for constraint in found:
            if not _emitted_by_create_all(constraint, self.models):
                continue
            deferred = _deferred(constraint)
            name = self.name_of(constraint, table_name)
            if name is not None:
                name = self.models.stored(
                    name, ("constraint", schema, table_name), f"constraint {name} of table {schema}.{table.name}"
                )
            common: Dict[str, Any] = {
                "schema": schema,
                "table": table_name,
                "name": name,
                "name_given": name is not None,
                "deferrable": bool(constraint.deferrable) or deferred,
                "initially_deferred": deferred,
            }
            if isinstance(constraint, primary_key):
                if len(constraint.columns) == 0:
                    continue
                read.append(
                    Constraint.of(
                        constraint_type=PRIMARY_KEY, columns=_names(constraint), include=_included(constraint), **common
                    )
                )
            elif isinstance(constraint, unique):
                options = constraint.dialect_options["postgresql"]
                read.append(
                    Constraint.of(
                        constraint_type=UNIQUE,
                        columns=_names(constraint),
                        nulls_not_distinct=bool(options.get("nulls_not_distinct")),
                        include=_included(constraint),
                        **common,
                    )
                )
            elif isinstance(constraint, foreign_key):
                read.append(self.foreign_key(constraint, common))
            elif isinstance(constraint, check):
                expression = self.check_text(constraint.sqltext)
                if typed is None:
                    typed = model_columns(self.models).table_types(table)
                    names = tuple(name for name, _ in typed)
                read.append(
                    Constraint.of(
                        constraint_type=CHECK,
                        expression=expression,
                        source=expression,
                        check_columns=names,
                        table_columns=typed,
                        **common,
                    )
                )
        return iter(_folded_keys(read))

    def foreign_key(self, constraint: Any, common: Dict[str, Any]) -> Constraint:
        referred_columns = [element.column for element in constraint.elements]
        referred = referred_columns[0].table
        referred_schema = self.models.table_schema(referred)
        names = tuple(stored_name(c.name) for c in referred_columns)
        return Constraint.of(
            constraint_type=FOREIGN_KEY,
            columns=tuple(stored_name(element.parent.name) for element in constraint.elements),
            referred_schema=referred_schema,
            referred_table=self.models.table_name(referred),
            referred_columns=names,
            on_delete=_action(constraint.ondelete),
            on_update=_action(constraint.onupdate),
            match=(constraint.match or "SIMPLE").upper(),
            referred_key=_referred_key(referred, referred_schema, names, self.ddl),
            **common,
        )

    def name_of(self, constraint: Any, table: str) -> Optional[str]:
        """The name `create_all` gives the constraint (naming conventions, SQLAlchemy's truncation of
        a convention's name), if any; Postgres keeps its first 63 bytes (`ModelContext.stored`).

        Raises ModelsError for a name SQLAlchemy refuses (one given longer than
        max_identifier_length characters: `create_all` raises IdentifierError).
        """
        name = constraint.name
        if type(name) is str:
            # A plain name: no convention rewrites it (one that would has made
            # it a `conv`) and none is truncated, so it is what the compiler
            # returns, unless it is too long for it.
            if len(name) > self.ddl.dialect.max_identifier_length:
                raise name_too_long("constraint", name, table, self.ddl.dialect.max_identifier_length)
            return name
        from sqlalchemy.exc import IdentifierError

        try:
            name = self.ddl.preparer.format_constraint(constraint, _alembic_quote=False)
        except IdentifierError:
            raise name_too_long("constraint", str(name), table, self.ddl.dialect.max_identifier_length) from None
        except Exception:  # a convention that needs a name the constraint lacks
            name = constraint.name
            name = name if isinstance(name, str) else None
        return name or None


def _constraints_of(rows: Sequence[Any]) -> Iterator[Constraint]:
    """Catalog rows (constraints_query) to constraints, unpacked in the query's column order
    (looking fields up by name was a third of the time)."""
    make, types, actions = Constraint.of, _TYPE_CODES, _ACTION_CODES
    for (
        table,
        name,
        contype,
        deferrable,
        deferred,
        on_delete,
        on_update,
        match,
        nulls_not_distinct,
        include,
        expression,
        columns,
        referred_schema,
        referred_table,
        referred_columns,
        referred_contype,
        referred_key_columns,
        referred_index,
        schema,
    ) in rows:
        constraint_type = types[contype]
        columns = tuple(columns or ())
        if constraint_type == CHECK:
            # Compared in one spelling of what it means; re-created from a text that
            # parses back into it (pgmig.schema.expressions).
            expression = canonical(expression)
            source = reparsable(expression)
            yield make(
                schema=schema,
                table=table,
                constraint_type=constraint_type,
                name=name,
                deferrable=deferrable,
                initially_deferred=deferred,
                expression=expression,
                check_columns=columns,
                source=source if source != expression else None,
            )
        elif constraint_type == FOREIGN_KEY:
            referred_key = None
            if referred_contype == "p":
                referred_key = primary_key_key(referred_schema, referred_table)
            elif referred_contype == "u":
                referred_key = unique_key(referred_schema, referred_table, referred_key_columns)
            elif referred_index is not None:
                referred_key = ("index", referred_schema, referred_index)
            yield make(
                schema=schema,
                table=table,
                constraint_type=constraint_type,
                name=name,
                deferrable=deferrable,
                initially_deferred=deferred,
                columns=columns,
                referred_schema=referred_schema,
                referred_table=referred_table,
                referred_columns=tuple(referred_columns or ()),
                on_delete=actions[on_delete],
                on_update=actions[on_update],
                match=_MATCH_CODES.get(match, "SIMPLE"),
                referred_key=referred_key,
            )
        else:
            yield make(
                schema=schema,
                table=table,
                constraint_type=constraint_type,
                name=name,
                deferrable=deferrable,
                initially_deferred=deferred,
                columns=columns,
                nulls_not_distinct=nulls_not_distinct,
                include=tuple(include or ()),
            )


def _names(constraint: Any) -> Tuple[str, ...]:
    return tuple(stored_name(c.name) for c in constraint.columns)


def _folded_keys(read: List[Constraint]) -> List[Constraint]:
    """A model table's constraints as its CREATE TABLE leaves them: a unique constraint saying what
    the primary key or an earlier unique constraint says is dropped by Postgres.

    Postgres's transformIndexConstraints keeps the primary key first, then each
    unique constraint unless one already kept has the same columns (in order),
    NULLS NOT DISTINCT and deferrability; an unnamed kept one takes the dropped
    one's name. So `Column(..., primary_key=True, unique=True)` (SQLModel's
    `Field(primary_key=True, unique=True)`) is a primary key only, as `create_all`
    leaves it. Only a CREATE TABLE folds; but the models describe the table as
    `create_all` builds it, so the model side is folded always.
    """
    keys = [c for c in read if c.constraint_type == PRIMARY_KEY] + [c for c in read if c.constraint_type == UNIQUE]
    if len(keys) < 2:
        return read
    kept: List[Constraint] = []
    final: Dict[int, Optional[Constraint]] = {}  # id(read constraint) -> what stays of it
    origin: Dict[int, int] = {}  # id(kept constraint) -> id of the read one it stands for
    for key in keys:
        prior = next((k for k in kept if _same_index(k, key)), None)
        if prior is None:
            kept.append(key)
            origin[id(key)] = id(key)
            final[id(key)] = key
            continue
        final[id(key)] = None
        if prior.name is None and key.name is not None:
            renamed = prior.evolve(name=key.name, name_given=True)
            kept[kept.index(prior)] = renamed
            origin[id(renamed)] = origin[id(prior)]
            final[origin[id(prior)]] = renamed
    out: List[Constraint] = []
    for constraint in read:
        stays = final.get(id(constraint), constraint)
        if stays is not None:
            out.append(stays)
    return out


def _same_index(kept: Constraint, other: Constraint) -> bool:
    """Whether Postgres takes `other` for the same index as `kept` (transformIndexConstraints)."""
    return (
        kept.columns == other.columns
        and kept.include == other.include
        and kept.nulls_not_distinct == other.nulls_not_distinct
        and kept.deferrable == other.deferrable
        and kept.initially_deferred == other.initially_deferred
    )


def _included(constraint: Any) -> Tuple[str, ...]:
    """`postgresql_include` of a primary key or unique constraint: column names (given as names or columns)."""
    given = constraint.dialect_options["postgresql"].get("include") or ()
    return tuple(stored_name(c if isinstance(c, str) else c.name) for c in given)


def _deferred(constraint: Any) -> bool:
    return (constraint.initially or "").upper() == "DEFERRED"


def _action(value: Optional[str]) -> str:
    return " ".join(value.upper().split()) if value else "NO ACTION"


def _referred_key(table: Any, schema: str, columns: Tuple[str, ...], ddl: Any) -> Optional[Key]:
    """The PK, unique constraint or unique index of `table` an FK on `columns` relies on
    (Postgres matches the set of columns; transformFkeyCheckAttrs), preferring a constraint."""
    from sqlalchemy import UniqueConstraint

    wanted = set(columns)  # as Postgres keeps them (stored_name)
    name = stored_name(table.name)
    if table.primary_key is not None and set(_names(table.primary_key)) == wanted:
        return primary_key_key(schema, name)
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and set(_names(constraint)) == wanted:
            return unique_key(schema, name, _names(constraint))
    for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
        if referable_index(index) and {stored_name(c.name) for c in index.expressions} == wanted:
            return ("index", schema, model_index_name(index, ddl))
    return None


# One check to render: its text, the (name, type) columns of the scratch table
# it is added to, or the (schema, table) whose columns that table copies.
CheckShape = Tuple[str, Tuple[Tuple[str, str], ...], Optional[Tuple[str, str]]]


class CheckSpelling(Renderer[CheckShape]):
    """A check as `pg_get_expr` prints it and the columns it reads: [body, [column, ...]].

    Shapes whose columns agree share a scratch table (see `_pack`): on a
    schema of a thousand tables that is tens of scratch tables instead of
    a thousand.
    """

    kind = "check"
    object_kind = "constraint"
    fields = ("expression",)

    def reads(self, what: CheckShape) -> Reads:
        return Reads(types=tuple(data_type for _, data_type in what[1]), tables=(what[2],) if what[2] else ())

    def statements(self, items: Sequence[Tuple[int, CheckShape]], scratch: Scratch) -> List[str]:
        number_of = {(shape[0], shape[1]): number for number, shape in items if shape[2] is None}
        tables = _pack(list(number_of))
        tables += [_Scratch({}, [(shape[0], shape[1])], like=shape[2], number=n) for n, shape in items if shape[2]]
        out: List[str] = []
        for table in tables:
            numbers = [table.number] if table.like else [number_of[shape] for shape in table.shapes]
            name = scratch.name("c", numbers[0])
            out.append(scratch.create_table(name, [(c, t, None) for c, t in table.columns.items()], like=table.like))
            for number, shape in zip(numbers, table.shapes):
                out += AddCheck(
                    table_name=name,
                    expression=shape[0],
                    constraint_name=f"c{number}",
                    new_table=True,
                    schema=scratch.schema,
                ).statements()
        return out

    async def read(
        self, items: Sequence[Tuple[int, CheckShape]], scratch: Scratch, db: DatabaseContext
    ) -> Dict[int, Any]:
        rows = await db.connection.fetch(RENDERED_CHECKS_QUERY, scratch.namespace, scratch.pattern)
        return {int(row["name"][1:]): [row["expression"], list(row["columns"] or ())] for row in rows}


RENDERED_CHECKS_QUERY = """
SELECT con.conname AS name, pg_catalog.pg_get_expr(con.conbin, con.conrelid) AS expression,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord)::text[] AS columns
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class cl ON cl.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
WHERE con.contype = 'c' AND n.nspname = $1 AND cl.relname LIKE $2
"""


async def render_checks(
    db: DatabaseContext, checks: Sequence[Constraint], existing_tables: Iterable[Tuple[str, str]]
) -> Dict[int, Tuple[str, Tuple[str, ...]]]:
    """id(check) -> (body, columns used) as the server prints them.

    How the server prints a check depends only on its text and the types of
    the columns it reads, so checks render once per distinct (text, columns
    read). A check that does not render that way (a type the plan creates
    does not exist yet, a typo, a column the word scan missed) is tried
    against all of the model table's columns, then against a copy of the
    live table; one that still fails keeps the model's text.
    """
    result: Dict[int, Tuple[str, Tuple[str, ...]]] = {}
    existing = set(existing_tables)
    renderer = CheckSpelling()
    passes: List[Any] = [
        lambda c: (c.expression or "", columns_read(c.expression or "", c.table_columns), None),
        lambda c: (c.expression or "", tuple(c.table_columns), None),
        lambda c: (c.expression or "", (), (c.schema, c.table)) if (c.schema, c.table) in existing else None,
    ]
    left = list(checks)
    for shape_of in passes:
        shapes = {id(check): shape_of(check) for check in left}
        rendered = await render(db, renderer, [shape for shape in shapes.values() if shape is not None])
        failed = []
        for check in left:
            found = rendered.get(shapes[id(check)]) if shapes[id(check)] is not None else None
            if found is None:
                failed.append(check)
            else:
                result[id(check)] = (found[0], tuple(found[1]))
        left = failed
        if not left:
            break
    return result


_COLUMNS_PER_TABLE = 1000  # Postgres allows 1,600


@dataclass
class _Scratch:
    """One scratch table: its columns, and the (text, columns read) shapes checked on it."""

    columns: Dict[str, str]
    shapes: List[Tuple[str, Tuple[Tuple[str, str], ...]]]
    like: Optional[Tuple[str, str]] = None
    number: int = 0  # for a copy of a live table (`like`): the one item it holds

    def fits(self, shape: Tuple[Tuple[str, str], ...]) -> bool:
        if len(self.columns) + len(shape) > _COLUMNS_PER_TABLE:
            return False
        return all(self.columns.get(name, data_type) == data_type for name, data_type in shape)


def _pack(shapes: Sequence[Tuple[str, Tuple[Tuple[str, str], ...]]]) -> List[_Scratch]:
    """Shapes into as few scratch tables as their columns allow (a name has one type per table)."""
    tables: List[_Scratch] = []
    for shape in shapes:
        columns = shape[1]
        home = next((table for table in tables if table.fits(columns)), None)
        if home is None:
            home = _Scratch({}, [])
            tables.append(home)
        home.columns.update(columns)
        home.shapes.append(shape)
    return tables


__all__ = ["Constraint", "ConstraintHandler", "columns_read"]
