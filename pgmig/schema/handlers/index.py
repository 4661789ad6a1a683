"""Indexes: compared by definition in Postgres's own normal form.

Both sides are read as `pg_get_indexdef` prints them: the database's indexes
directly (a simple one-column index from the catalog rows that say the same,
see `indexes_query`), the models' by building them on a scratch copy of
their table inside a transaction that is always rolled back. Only what follows the table name
(method, keys, INCLUDE, NULLS NOT DISTINCT, WITH, WHERE) is compared, so the
index's and the table's own names never get in the way, and an expression or
predicate written differently but meaning the same never shows as a change.

Indexes are keyed by name; an index the models name otherwise over the same
definition is paired with the database's by the diff (`Index.definition_key`)
and renamed in place (ALTER INDEX ... RENAME TO). Names are read as Postgres
keeps them (63 bytes, `ModelContext.stored`); an index whose `ddl_if` rules
PostgreSQL out is not in the models, as `create_all` does not build it.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from pgmig.db.quoting import stored_name
from pgmig.errors import ModelsError
from pgmig.ops.base import Operation
from pgmig.ops.index import AddIndex, DropIndex, RenameIndex
from pgmig.plan.normalize import Reads, Renderer, Scratch, render
from pgmig.schema.expressions import canonical, columns_read, functions_called, reparsable
from pgmig.schema.handlers.column import model_columns
from pgmig.schema.objects import Key, SchemaObject
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import TypeGuard


@dataclass(frozen=True)
class Index(SchemaObject):
    kind = "index"
    schema: str
    table: str
    name: str
    keys: Tuple[str, ...]
    unique: bool = False
    method: str = "btree"
    include: Tuple[str, ...] = ()
    where: Optional[str] = None
    nulls_not_distinct: bool = False
    options: Optional[str] = None
    valid: bool = True  # an interrupted CREATE INDEX CONCURRENTLY leaves an invalid index: rebuild it
    columns: Tuple[str, ...] = field(default=(), compare=False)
    table_exists: bool = field(default=True, compare=False)
    # (name, type as format_type prints it) of the model table's columns, for an index with an
    # expression or a predicate: it is rendered against the models' types, not the table's.
    table_columns: Tuple[Tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def key(self) -> Key:
        return ("index", self.schema, self.name)

    @property
    def parent(self) -> Key:
        return ("table", self.schema, self.table)

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        columns = tuple(("column", self.schema, self.table, c) for c in self.columns)
        # Expressions and the predicate may call an extension's function (gin on lower(...) is not one).
        return (self.parent,) + columns + functions_called(*self.keys, self.where)

    @property
    def names(self) -> Tuple[Key, ...]:
        return (("relation", self.schema, self.name),)

    @property
    def definition_key(self) -> Tuple[Any, ...]:
        """Its table and definition: an index of the models named otherwise is this one renamed."""
        return (
            self.kind,
            self.schema,
            self.table,
            self.keys,
            self.unique,
            self.method,
            self.include,
            self.where,
            self.nulls_not_distinct,
            self.options,
            self.valid,
        )

    @property
    def label(self) -> str:
        return f"index {self.name}"

    def rebuilt_with(self, key: Key) -> bool:
        """A plain index (keys that are columns, no predicate) is rebuilt by ALTER COLUMN TYPE as
        `create_all` would build it; an expression, an operator class or a predicate is re-read
        against the new type and may fail or print differently."""
        return self.where is None and all(_PLAIN_KEY.match(k) is not None for k in self.keys)

    def describe(self) -> str:
        text = "unique index" if self.unique else "index"
        text += f" {self.name} USING {self.method} ({', '.join(self.keys)})"
        if self.include:
            text += f" INCLUDE ({', '.join(self.include)})"
        if self.nulls_not_distinct:
            text += " NULLS NOT DISTINCT"
        if self.options:
            text += f" WITH ({self.options})"
        if self.where:
            text += f" WHERE {self.where}"
        if not self.valid:
            text += " (invalid)"
        return text


# An index key that is a column, as pg_get_indexdef or SQLAlchemy prints it, with its order at most.
_PLAIN_KEY = re.compile(r'^(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(?: (?:ASC|DESC))?(?: NULLS (?:FIRST|LAST))?$')

# -- reading Postgres's and SQLAlchemy's index definitions -----------------------

# pg_get_indexdef(), split at the table: `prefix` is what comes before the
# method (`CREATE UNIQUE INDEX ix ON public.t USING `), built with the same
# quoting the server uses, so the comparable tail is cut off exactly.
_DEFINITION_PREFIX = """'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX '
         || pg_catalog.quote_ident(ic.relname) || ' ON '
         || CASE WHEN ic.relkind = 'I' THEN 'ONLY ' ELSE '' END
         || pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(tc.relname)
         || ' USING '"""
_DEFINITION_COLUMNS = f"""
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
       {_DEFINITION_PREFIX} AS prefix"""

_INDEXES_FROM = """
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace"""
_INDEXES_WHERE = """
WHERE tn.nspname = ANY($1::text[]) AND tc.relkind IN ('r', 'p') AND NOT tc.relispartition
  AND (tn.nspname <> $1[1] OR tc.relname NOT IN ($2::text, $2::text || '_progress'))
  AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_constraint con
      WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
  )
ORDER BY tn.nspname, tc.relname, ic.relname"""
_INDEX_COLUMNS = """
       ARRAY(
           SELECT a.attname FROM pg_catalog.pg_depend d
           JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
           WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = i.indexrelid
             AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = i.indrelid
             AND d.refobjsubid > 0
           ORDER BY a.attnum
       )::text[] AS columns,"""


def indexes_query(server_version: int = 150000) -> str:
    """The catalog read of a schema's indexes, for a server of `server_version` (server_version_num).

    pg_get_indexdef() costs the server a relation cache entry and an
    operator class scan per index: half of this query on a new connection.
    Most indexes are on one column, in its type's default operator class,
    collation and order, without options; their definition says nothing the
    catalog rows do not, so the key (quoted as the server quotes it), the
    method and the predicate (deparsed as pg_get_indexdef deparses it) come
    as columns and `definition` is NULL. Any other index is deparsed.

    "Default operator class" is Postgres's rule (GetDefaultOpClass): the
    default one for the column's type itself, or else the one default class
    of the type's preferred binary-coercible type (varchar: text_ops). Types
    that reach theirs in other ways (enums, arrays, domains) are deparsed.
    tests/test_index.py holds both paths to the same fields.
    """
    nulls_not_distinct = "i.indnullsnotdistinct" if server_version >= 150000 else "false"
    return f"""
WITH coercible_defaults AS MATERIALIZED (
    -- (type, access method) -> the one default opclass of a preferred type the
    -- type is binary-coercible to, where the type has no default of its own.
    SELECT c.castsource AS type, x.opcmethod AS am, min(x.oid) AS opclass
    FROM pg_catalog.pg_cast c
    JOIN pg_catalog.pg_type st ON st.oid = c.castsource
    JOIN pg_catalog.pg_opclass x ON x.opcintype = c.casttarget AND x.opcdefault
    JOIN pg_catalog.pg_type xt ON xt.oid = x.opcintype
    WHERE c.castmethod = 'b' AND c.castcontext = 'i'
      AND xt.typcategory = st.typcategory AND xt.typispreferred
      AND NOT EXISTS (
          SELECT 1 FROM pg_catalog.pg_opclass e
          WHERE e.opcmethod = x.opcmethod AND e.opcdefault AND e.opcintype = c.castsource
      )
    GROUP BY c.castsource, x.opcmethod
    HAVING count(*) = 1
)
SELECT ic.relname AS name, tn.nspname AS table_schema, tc.relname AS table_name, i.indisunique AS is_unique,
       i.indisvalid AS is_valid,{_INDEX_COLUMNS}
       CASE WHEN s.simple THEN am.amname::text END AS method,
       CASE WHEN s.simple THEN pg_catalog.quote_ident(a.attname) END AS key,
       CASE WHEN s.simple THEN pg_catalog.pg_get_expr(i.indpred, i.indrelid) END AS predicate,
       {nulls_not_distinct} AS nulls_not_distinct,
       CASE WHEN NOT s.simple THEN pg_catalog.pg_get_indexdef(i.indexrelid) END AS definition,
       CASE WHEN NOT s.simple THEN {_DEFINITION_PREFIX} END AS prefix{_INDEXES_FROM}
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_opclass x ON x.oid = i.indclass[0]
LEFT JOIN pg_catalog.pg_attribute ia ON ia.attrelid = i.indexrelid AND ia.attnum = 1
CROSS JOIN LATERAL (
    SELECT COALESCE(
        i.indnatts = 1 AND i.indexprs IS NULL AND ic.reloptions IS NULL AND ia.attoptions IS NULL
        AND i.indoption[0] = 0 AND i.indcollation[0] = a.attcollation
        AND x.opcdefault AND t.typtype <> 'd'
        AND (x.opcintype = a.atttypid OR EXISTS (
            SELECT 1 FROM coercible_defaults cd
            WHERE cd.type = a.atttypid AND cd.am = x.opcmethod AND cd.opclass = x.oid
        )), false) AS simple
) s{_INDEXES_WHERE}
"""


INDEXES_QUERY = indexes_query()

# Every index deparsed: what `indexes_query` agrees with (tests).
DEPARSED_INDEXES_QUERY = f"""
SELECT ic.relname AS name, tn.nspname AS table_schema, tc.relname AS table_name, i.indisunique AS is_unique,
       i.indisvalid AS is_valid,{_INDEX_COLUMNS}{_DEFINITION_COLUMNS}{_INDEXES_FROM}{_INDEXES_WHERE}
"""

RENDERED_QUERY = f"""
SELECT ic.relname AS name,{_DEFINITION_COLUMNS}
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
WHERE tn.nspname = $1 AND ic.relname = ANY($2::text[])
"""


def _split(text: str, separator: Optional[str]) -> List[Tuple[int, int]]:
    """Spans of `text` between top-level separators (None: whitespace), outside quotes and parentheses."""
    spans, depth, start, quote = [], 0, 0, None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:  # a doubled quote closes and reopens: still inside
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (ch == separator if separator else ch.isspace()):
            spans.append((start, i))
            start = i + 1
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _items(group: str) -> Tuple[str, ...]:
    if not (group.startswith("(") and group.endswith(")")):
        raise ValueError(f"expected a parenthesized list, got {group!r}")
    inner = group[1:-1]
    return tuple(inner[s:e].strip() for s, e in _split(inner, ","))


def unquote_ident(text: str) -> str:
    """A column name as written by Postgres or SQLAlchemy (`"Email"`, `email`) -> its name."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def parse_definition(tail: str) -> Dict[str, Any]:
    """Fields of an index from the text after its table name (a fresh dict each call)."""
    return dict(_parse_definition(tail))


@lru_cache(maxsize=4096)
def _parse_definition(tail: str) -> Dict[str, Any]:
    """Fields of an index from the text after its table name; cached, because
    tails repeat across tables (`btree (created_at)`, `btree (user_id)`).

    Reads both `btree (a, lower(b)) INCLUDE (c) WHERE ...` (pg_get_indexdef)
    and `USING gin (a) ...` or `(a) ...` (SQLAlchemy's CREATE INDEX), whose
    clauses come in the same order.
    """
    spans = _split(tail, None)
    words = [tail[s:e] for s, e in spans]
    method, i = "btree", 0
    if words and words[0].upper() == "USING":
        method, i = words[1], 2
    elif words and not words[0].startswith("("):
        method, i = words[0], 1
    fields: Dict[str, Any] = {
        "method": unquote_ident(method).lower(),
        "keys": tuple(canonical(key) for key in _items(words[i])),
        "include": (),
        "nulls_not_distinct": False,
        "options": None,
        "where": None,
    }
    i += 1
    while i < len(words):
        word = words[i].upper()
        if word == "INCLUDE":
            fields["include"] = tuple(unquote_ident(c) for c in _items(words[i + 1]))
            i += 2
        elif word == "NULLS" and i + 1 < len(words) and words[i + 1].upper() == "NOT":
            fields["nulls_not_distinct"] = True
            i += 3
        elif word == "NULLS":
            i += 2
        elif word == "WITH":
            fields["options"] = words[i + 1][1:-1].strip() or None
            i += 2
        elif word == "TABLESPACE":
            i += 2
        elif word == "WHERE":
            fields["where"] = canonical(tail[spans[i + 1][0] :].strip())
            break
        else:
            raise ValueError(f"unexpected {words[i]!r} in index definition {tail!r}")
    return fields


def _tail(row: Any) -> str:
    definition: str = row["definition"]
    prefix: str = row["prefix"]
    if definition.startswith(prefix):
        return definition[len(prefix) :]
    # Should not happen; cut at the first USING after ON as a last resort.
    return definition.split(" USING ", 1)[1]


# -- the handler -------------------------------------------------------------------


class IndexHandler(ObjectHandler):
    kind = "index"
    read_weight = 10  # every index, deparsed

    def from_models(self, models: ModelContext) -> Iterable[Index]:
        # One compiler for all indexes (building one per statement was half the cost), of the
        # named paramstyle: `%` in a LIKE pattern stays one `%`.
        ddl = models.ddl
        for table in models.tables:
            schema = models.table_schema(table)
            table_name = models.table_name(table)
            typed: Optional[Tuple[Tuple[str, str], ...]] = None
            for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
                if not models.creates(index):
                    continue
                given = created_index_name(index, ddl)
                name = models.stored(given, ("relation", schema), f"index {given} on table {schema}.{table.name}")
                if not index.expressions:
                    raise ModelsError(
                        f"index {name} on table {schema}.{table_name} has no column or expression; "
                        f"give it one (sa.Index({name!r}, column, ...)) or remove it"
                    )
                plain = plain_definition(index, ddl)
                if plain is not None:
                    fields, columns = plain
                else:
                    fields, columns = compiled_definition(index, ddl), _model_columns(index)
                if fields.get("where") is not None or not all(_PLAIN_KEY.match(k) for k in fields["keys"]):
                    if typed is None:
                        typed = model_columns(models).table_types(table)
                    fields["table_columns"] = typed
                yield Index.of(
                    schema=schema,
                    table=table_name,
                    name=name,
                    unique=bool(index.unique),
                    columns=tuple(stored_name(column) for column in columns),
                    **fields,
                )

    async def from_database(self, db: DatabaseContext) -> List[Index]:
        rows = await db.fetch(indexes_query(db.server_version), list(db.schemas), db.version_table)
        return [index_of_row(row) for row in rows]

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Rebuild each model index on a copy of its table and read it back as the server prints it.

        Indexes on tables the database does not have yet keep SQLAlchemy's
        spelling: there is nothing to compare them with, and they are marked
        so that building them is not reported as a hazard.
        """
        indexes = [obj for obj in objects if isinstance(obj, Index)]
        if not indexes:
            return objects
        existing = await db.existing_tables((ix.schema, ix.table) for ix in indexes)
        rendered = await _render_through_server(db, [ix for ix in indexes if (ix.schema, ix.table) in existing])
        out: List[SchemaObject] = []
        for obj in objects:
            if isinstance(obj, Index):
                if (obj.schema, obj.table) not in existing:
                    obj = obj.evolve(table_exists=False)
                elif id(obj) in rendered:
                    obj = obj.evolve(**rendered[id(obj)])
            out.append(obj)
        return out

    def create(self, obj: Index) -> List[Operation]:
        return [AddIndex(**_create_arguments(obj), new_table=not obj.table_exists)]

    def destroy(self, obj: Index) -> List[Operation]:
        return [DropIndex(index_name=obj.name, schema=obj.schema)]

    def migrate(self, old: Index, new: Index) -> List[Operation]:
        """A rename in place when only the name differs (the diff pairs such indexes by
        `Index.definition_key`); otherwise drop and create again."""
        if old.definition_key == new.definition_key and old.name != new.name:
            return [RenameIndex(index_name=old.name, new_name=new.name, schema=old.schema)]
        return self.destroy(old) + self.create(new)


def model_index_name(index: Any, ddl: Any) -> str:
    """The name `create_all` gives an SQLAlchemy index, compiled by `ddl` (a DDL compiler), as
    Postgres keeps it (`stored_name`: 63 bytes; SQLAlchemy counts characters).

    Raises ModelsError for a name the compiler refuses (given longer than
    max_identifier_length characters: `create_all` raises IdentifierError).
    """
    return stored_name(created_index_name(index, ddl))


def created_index_name(index: Any, ddl: Any) -> str:
    """The name `create_all` sends for an SQLAlchemy index (before Postgres cuts it to 63 bytes).

    Raises ModelsError for a name the compiler refuses.
    """
    dialect = ddl.dialect
    given = index.name
    limit = dialect.max_index_name_length or dialect.max_identifier_length
    if _plain_name(given) and len(given) <= limit:
        return given  # a plain name is its own, quoted and unquoted again
    # A naming convention's or a truncated name (or one too long, which the
    # compiler refuses): the compiler's.
    from sqlalchemy.exc import IdentifierError

    try:
        return unquote_ident(ddl._prepared_index_name(index, include_schema=False))
    except IdentifierError:
        raise name_too_long("index", str(given), stored_name(index.table.name), limit) from None


def name_too_long(what: str, name: str, table: str, limit: int) -> ModelsError:
    """The error for a constraint's or index's name SQLAlchemy refuses (longer than `limit` characters)."""
    return ModelsError(
        f"{what} {name} on table {table}: its name is {len(name)} characters long and SQLAlchemy's "
        f"create_all refuses names longer than {limit} (IdentifierError); give it a shorter name"
    )


def referable_index(index: Any) -> bool:
    """Whether a foreign key can rely on an SQLAlchemy index: unique, over plain columns of its
    table, without a predicate (Postgres's transformFkeyCheckAttrs)."""
    sa = _sqlalchemy()
    return (
        bool(index.unique)
        and index.dialect_options["postgresql"]["where"] is None
        and all(type(e) is sa.Column and e.table is index.table for e in index.expressions)
    )


def _create_arguments(
    obj: Index, *, schema: Optional[str] = None, table: Optional[str] = None, name: Optional[str] = None
) -> Dict[str, Any]:
    # The printed form, spelled to parse back into itself (pgmig.schema.expressions).
    return dict(
        table_name=table or obj.table,
        index_name=name or obj.name,
        columns=[reparsable(key) for key in obj.keys],
        unique=obj.unique,
        method=obj.method,
        where=reparsable(obj.where) if obj.where else None,
        include=list(obj.include),
        nulls_not_distinct=obj.nulls_not_distinct,
        options=obj.options,
        schema=obj.schema if schema is None else schema,
    )


def _mentions(sql: str, name: str) -> bool:
    """Whether SQL text names a column: quoted exactly, or bare as a whole word (case-insensitive)."""
    import re

    if '"' + name.replace('"', '""') + '"' in sql:
        return True
    return (
        name == name.lower()
        and re.search(r"(?<![\w\"])" + re.escape(name) + r"(?![\w\"])", sql, re.IGNORECASE) is not None
    )


@lru_cache(maxsize=None)
def _sqlalchemy() -> Any:
    """The SQLAlchemy names the model side uses, imported once (an import per index was a fifth of its cost)."""
    from types import SimpleNamespace

    from sqlalchemy import Column
    from sqlalchemy.sql import coercions, elements, roles, visitors

    return SimpleNamespace(
        Column=Column,
        ClauseElement=elements.ClauseElement,
        ColumnClause=elements.ColumnClause,
        quoted_name=elements.quoted_name,
        coercions=coercions,
        roles=roles,
        visitors=visitors,
    )


def _unannotated(expression: Any, sa: Any) -> bool:
    """Whether `expression` is a Core clause with no ORM annotations anywhere in it."""
    return isinstance(expression, sa.ClauseElement) and not any(
        element._annotations for element in _walk(expression, sa.visitors)
    )


def _plain_name(given: Any) -> "TypeGuard[str]":
    """Whether an index's name is what the compiler would print (unquoted again): a `str`, or a
    `quoted_name` that is neither truncated nor a convention's (those are subclasses) nor marked
    `quote=False` (printed as is, then folded by the server)."""
    if type(given) is str:
        return True
    return type(given) is _sqlalchemy().quoted_name and given.quote is not False and not given.startswith('"')


def compiled_definition(index: Any, ddl: Any) -> Dict[str, Any]:
    """An SQLAlchemy index's fields, read from the CREATE INDEX that `create_all` would send."""
    from sqlalchemy.schema import CreateIndex

    statement = ddl.process(CreateIndex(index))
    # Everything up to the table name is SQLAlchemy's; the rest is the definition.
    head = f" ON {ddl.preparer.format_table(index.table)} "
    return parse_definition(statement.split(head, 1)[1])


def plain_definition(index: Any, ddl: Any) -> Optional[Tuple[Dict[str, Any], Tuple[str, ...]]]:
    """`compiled_definition` and `_model_columns` for the common index, without compiling
    the whole statement or walking its expressions; else None.

    Most indexes are btree over columns of their table or expressions,
    perhaps with a WHERE: their fields are the quoted column names, the
    compiled expressions and the compiled predicate, which is what
    `visit_create_index` writes for them (without formatting the index and
    table names, nor parsing the statement back). Anything else (operator
    classes, another method, INCLUDE, WITH, NULLS, a tablespace) is left to
    the compiler.
    """
    sa = _sqlalchemy()
    options = index.dialect_options["postgresql"]
    if (
        options["using"]
        or options["ops"]
        or options["include"]
        or options["with"]
        or options["tablespace"]
        or options["nulls_not_distinct"] is not None
    ):
        return None
    table = index.table
    keys = []
    columns: Dict[str, None] = {}
    walk = False  # an expression (a key or the predicate) whose columns _model_columns must find
    for expression in index.expressions:
        if type(expression) is sa.Column and expression.table is table:
            keys.append(ddl.preparer.quote(expression.name))
            columns[expression.name] = None
        else:
            # As visit_create_index writes a key; no operator class (options["ops"] is empty).
            grouped = expression if isinstance(expression, sa.ColumnClause) else expression.self_group()
            keys.append(ddl.sql_compiler.process(grouped, include_table=False, literal_binds=True))
            walk = True
    if not keys:
        return None
    where = options["where"]
    if where is not None:
        if type(where) is sa.Column and where.table is table:
            columns[where.name] = None
        else:
            walk = True
        if not _unannotated(where, sa):
            # The coercion visit_create_index applies: it copies the whole expression to strip
            # ORM annotations, which was a third of reading a partial index; without any, it
            # would copy the expression as it is.
            where = sa.coercions.expect(sa.roles.DDLExpressionRole, where)
        where = ddl.sql_compiler.process(where, include_table=False, literal_binds=True).strip()
    if walk:
        columns = dict.fromkeys(_model_columns(index))
    fields = {
        "method": "btree",
        # Compiled keys are split as parse_definition splits the statement's list (a text() may hold several).
        "keys": _key_items(", ".join(keys)) if walk else tuple(keys),
        "include": (),
        "nulls_not_distinct": False,
        "options": None,
        "where": where or None,
    }
    return fields, tuple(columns)


@lru_cache(maxsize=4096)  # key lists repeat across tables (`lower(name)`)
def _key_items(keys: str) -> Tuple[str, ...]:
    return _items("(" + keys + ")")


@lru_cache(maxsize=None)
def _child_fields() -> Dict[type, Tuple[str, ...]]:
    """Element class -> the attributes holding its children, in get_children's order, for the
    classes index expressions are mostly made of (their `_traverse_internals`' clause elements)."""
    from sqlalchemy.sql import elements, functions

    return {
        functions.Function: ("clause_expr",),
        elements.Grouping: ("element",),
        elements.ClauseList: ("*clauses",),
        elements.BooleanClauseList: ("*clauses",),
        elements.BinaryExpression: ("left", "right"),
        elements.UnaryExpression: ("element",),
        elements.Cast: ("clause",),
        elements.Label: ("_element",),
        elements.BindParameter: (),
        _sqlalchemy().Column: (),
    }


def _walk(root: Any, visitors: Any) -> Iterator[Any]:
    """`visitors.iterate(root)` (breadth first, the same order), reading the children of the
    common element classes straight from their attributes: iterate's generic get_children
    was most of the cost of reading an expression index."""
    fields = _child_fields()
    queue = deque([root])
    while queue:
        element = queue.popleft()
        yield element
        names = fields.get(type(element))
        if names is None:
            queue.extend(element.get_children())
            continue
        for name in names:
            if name[0] == "*":
                queue.extend(getattr(element, name[1:]))
            else:
                child = getattr(element, name)
                if child is not None:
                    queue.append(child)


def _model_columns(index: Any) -> Tuple[str, ...]:
    """Names of the table's columns an SQLAlchemy index uses anywhere (keys, INCLUDE, WHERE)."""
    sa = _sqlalchemy()
    Column, visitors = sa.Column, sa.visitors
    table = index.table
    found: Dict[str, None] = {}
    options = index.dialect_options["postgresql"]
    roots = list(index.expressions)
    if options["where"] is not None and hasattr(options["where"], "get_children"):
        roots.append(options["where"])
    for root in roots:
        for element in _walk(root, visitors):
            if isinstance(element, Column) and element.table is table:
                found.setdefault(element.name, None)
            elif isinstance(getattr(element, "text", None), str):
                # text(): no structure to walk, so any column named in it counts.
                for column in table.columns:
                    if _mentions(element.text, column.name):
                        found.setdefault(column.name, None)
    for included in options["include"] or ():
        name = included if isinstance(included, str) else included.name
        found.setdefault(name, None)
    return tuple(found)


def index_of_row(row: Any) -> Index:
    """An index from a row of `indexes_query` (or DEPARSED_INDEXES_QUERY)."""
    definition = row["definition"]
    if definition is None:
        fields: Dict[str, Any] = {
            "method": row["method"].lower(),
            "keys": (row["key"],),
            "include": (),
            "nulls_not_distinct": row["nulls_not_distinct"],
            "options": None,
            "where": canonical(row["predicate"]) if row["predicate"] else None,
        }
    else:
        fields = parse_definition(_tail(row))
    return Index.of(
        schema=row["table_schema"],
        table=row["table_name"],
        name=row["name"],
        unique=row["is_unique"],
        valid=row["is_valid"],
        columns=tuple(row["columns"]),
        **fields,
    )


# One index to render: (the (schema, table) it is built on a copy of, or None; else the
# (name, type) columns of the scratch table it is built on), then keys, unique, method, where,
# include, nulls not distinct, options.
IndexShape = Tuple[
    Optional[Tuple[str, str]],
    Tuple[Tuple[str, str], ...],
    Tuple[str, ...],
    bool,
    str,
    Optional[str],
    Tuple[str, ...],
    bool,
    Optional[str],
]


def _shape(ix: Index, like: Optional[Tuple[str, str]], columns: Tuple[Tuple[str, str], ...] = ()) -> IndexShape:
    return (
        like,
        columns,
        tuple(ix.keys),
        ix.unique,
        ix.method,
        ix.where,
        tuple(ix.include),
        ix.nulls_not_distinct,
        ix.options,
    )


def _read_columns(ix: Index) -> Optional[IndexShape]:
    """The shape built on a table of just the model columns the index reads, with the models' types:
    what `create_all` builds it over, and shared by every index of the same text over the same types
    (a `lower(name)` index on a thousand tables renders once). None without the models' types."""
    if not ix.table_columns:
        return None
    text = " ".join((*ix.keys, ix.where or "", *ix.include))
    return _shape(ix, None, columns_read(text, ix.table_columns))


class IndexSpelling(Renderer[IndexShape]):
    """An index as `pg_get_indexdef` prints what follows its table name, built on a scratch table
    of the columns it reads, or on a copy of its table."""

    kind = "index"
    object_kind = "index"
    version = 2  # shapes name the columns read (version 1: always a copy of the table)
    fields = ("keys", "method", "where", "include", "nulls_not_distinct", "options")
    relations = 2  # the index, and at most one table

    def reads(self, what: IndexShape) -> Reads:
        return Reads(types=tuple(data_type for _, data_type in what[1]), tables=(what[0],) if what[0] else ())

    def statements(self, items: Sequence[Tuple[int, IndexShape]], scratch: Scratch) -> List[str]:
        tables: Dict[Any, str] = {}
        out: List[str] = []
        for number, (like, columns, *_rest) in items:
            table_of = like if like is not None else columns
            if table_of not in tables:
                tables[table_of] = copy = scratch.name("t", number)
                out.append(scratch.create_table(copy, [(c, t, None) for c, t in columns], like=like))
        for number, (like, columns, keys, unique, method, where, include, nulls, options) in items:
            out += AddIndex(
                table_name=tables[like if like is not None else columns],
                index_name=scratch.name("i", number),
                columns=keys,
                unique=unique,
                method=method,
                where=where,
                include=include,
                nulls_not_distinct=nulls,
                options=options,
                schema=scratch.schema,
                new_table=True,
            ).statements()
        return out

    async def read(
        self, items: Sequence[Tuple[int, IndexShape]], scratch: Scratch, db: DatabaseContext
    ) -> Dict[int, Any]:
        numbered = {scratch.name("i", number): number for number, _ in items}
        rows = await db.connection.fetch(RENDERED_QUERY, scratch.namespace, list(numbered))
        return {numbered[row["name"]]: _tail(row) for row in rows if row["name"] in numbered}


async def _render_through_server(db: DatabaseContext, indexes: Sequence[Index]) -> Dict[int, Dict[str, Any]]:
    """id(index) -> its comparable fields as the server prints them.

    An index with an expression or a predicate is built first over the
    model columns it reads, with the models' types (after a type change the
    table still has the old ones, and a predicate prints against the type
    its column is given); one that cannot be built so (a type the plan has
    yet to create, a column the word scan missed), and every plain index, is
    built on a copy of its table. One that still fails (say, it names a
    column the plan has yet to add) is left out and keeps the models' spelling.
    """
    renderer = IndexSpelling()
    out: Dict[int, Dict[str, Any]] = {}
    left = list(indexes)
    for shape_of in (_read_columns, lambda ix: _shape(ix, (ix.schema, ix.table))):
        shapes = {id(ix): shape_of(ix) for ix in left}
        rendered = await render(db, renderer, [shape for shape in shapes.values() if shape is not None])
        failed = []
        for ix in left:
            shape = shapes[id(ix)]
            tail = rendered.get(shape) if shape is not None else None
            if tail is None:
                failed.append(ix)
            else:
                out[id(ix)] = parse_definition(tail)
        left = failed
        if not left:
            break
    return out


__all__ = ["Index", "IndexHandler", "model_index_name", "parse_definition", "referable_index"]
