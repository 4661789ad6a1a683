"""The view handler: views compared as Postgres prints them, ordered by what they read.

Both sides are read with the same catalog queries. The database's views
directly; the models' views by having pgmig's normalization service build
them under scratch names inside a transaction that is always rolled back
(the handler declares what to build, `ViewSpelling`), so `pg_get_viewdef` renders the
query and `pg_depend` lists exactly the tables and columns it reads. An
unchanged view therefore never shows as a change, however it was written.

A view also records the type of every table column it reads, taken from
the models: Postgres refuses to change the type of a column a view uses,
so a type change must show as a change of the view too, which is rebuilt
around it (see the README's "Column type changes").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, NamedTuple, Sequence, Tuple

from pgmig.api import (
    TYPE_JOINS,
    TYPE_SQL,
    DatabaseContext,
    Key,
    ModelContext,
    ObjectHandler,
    Operation,
    Reads,
    Renderer,
    SchemaObject,
    Scratch,
    declared,
    functions_called,
    key_kind,
    key_name,
    key_schema,
    normal_types,
    quote_ident,
    render,
)

from .declare import ViewDeclaration, ViewIndex
from .ops import CreateView, CreateViewIndex, DropView, DropViewIndex


class ColumnType(NamedTuple):
    """One table column a view reads, with its type as `format_type` prints it."""

    schema: str
    table: str
    column: str
    data_type: str

    @property
    def key(self) -> Key:
        return ("column", self.schema, self.table, self.column)


# (index name, unique, definition after USING).
IndexSpec = Tuple[str, bool, str]


@dataclass(frozen=True)
class View(SchemaObject):
    kind = "view"
    schema: str
    name: str
    definition: str
    materialized: bool = False
    indexes: Tuple[IndexSpec, ...] = ()
    # The ColumnTypes of what it reads (or their plain tuples), sorted.
    column_types: Tuple[Tuple[str, str, str, str], ...] = ()
    # What the view reads: tables, their columns, other views, functions.
    reads: Tuple[Key, ...] = field(default=(), compare=False)
    # Output columns (name, type): decides whether CREATE OR REPLACE can keep dependents.
    outputs: Tuple[Tuple[str, str], ...] = field(default=(), compare=False)
    # Model side only: types of the model columns the view may read, before rendering.
    candidates: Tuple[ColumnType, ...] = field(default=(), compare=False)

    @property
    def key(self) -> Key:
        return ("view", self.schema, self.name)

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        # And the functions it calls by name (an extension's): it is dropped before them.
        return tuple(dep for dep in self.reads if dep != self.key) + functions_called(self.definition)

    @property
    def label(self) -> str:
        return f"{'materialized view' if self.materialized else 'view'} {self.name}"

    def must_replace(self, new: SchemaObject) -> bool:
        """A view over a column whose type changes must be gone before the ALTER and back after it.

        Read by a planner that splits such a change into a drop ordered
        before the column's change and a create ordered after it.
        """
        return isinstance(new, View) and self.column_types != new.column_types

    def describe(self) -> str:
        query = " ".join(self.definition.split())
        text = f"{self.label} AS {query[:80]}{'...' if len(query) > 80 else ''}"
        if self.indexes:
            text += f" (indexes: {', '.join(name for name, _, _ in self.indexes)})"
        return text


# -- catalog queries, used on the real schema and on the scratch one -------------------

VIEWS_QUERY = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind = 'm' AS materialized,
       pg_catalog.pg_get_viewdef(c.oid) AS definition,
       ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)::text[] AS output_names,
       ARRAY(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS output_types
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('v', 'm')
  -- An extension's own views (Citus's public.citus_tables) are the extension's: CREATE and DROP EXTENSION keep them.
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""

# Everything each view's rewrite rule depends on: relations (with the
# column when refobjsubid > 0) and functions.
READS_QUERY = f"""
SELECT vn.nspname AS view_schema, v.relname AS view_name,
       CASE WHEN d.refclassid = 'pg_catalog.pg_class'::regclass THEN rc.relkind::text ELSE 'f' END AS ref_kind,
       COALESCE(rn.nspname, pn.nspname) AS ref_schema,
       COALESCE(rc.relname, p.proname) AS ref_name,
       pg_catalog.pg_get_function_identity_arguments(p.oid) AS ref_arguments,
       a.attname AS column_name,
       {TYPE_SQL} AS column_type
FROM pg_catalog.pg_class v
JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
LEFT JOIN pg_catalog.pg_class rc ON d.refclassid = 'pg_catalog.pg_class'::regclass AND rc.oid = d.refobjid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = rc.oid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
{TYPE_JOINS}
LEFT JOIN pg_catalog.pg_proc p ON d.refclassid = 'pg_catalog.pg_proc'::regclass AND p.oid = d.refobjid
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
WHERE vn.nspname = ANY($1::text[]) AND v.relkind IN ('v', 'm') AND d.refobjid <> v.oid
  AND (rc.oid IS NOT NULL OR p.oid IS NOT NULL)
  AND COALESCE(rn.nspname, pn.nspname) NOT IN ('pg_catalog', 'information_schema')
ORDER BY vn.nspname, v.relname, 3, 4, 5, a.attnum
"""

# Indexes of materialized views, cut after USING the same way pgmig's own
# index handler does: the prefix is rebuilt with the server's quoting.
VIEW_INDEXES_QUERY = """
SELECT tn.nspname AS view_schema, tc.relname AS view_name, ic.relname AS name, i.indisunique AS is_unique,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
       'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX '
         || pg_catalog.quote_ident(ic.relname) || ' ON '
         || pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(tc.relname)
         || ' USING ' AS prefix
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
WHERE tn.nspname = ANY($1::text[]) AND tc.relkind = 'm'
ORDER BY tn.nspname, tc.relname, ic.relname
"""


def _ref_key(row: Any) -> Key:
    kind, schema, name = row["ref_kind"], row["ref_schema"], row["ref_name"]
    if kind == "f":
        return ("function", schema, name, row["ref_arguments"] or "")
    if kind in ("v", "m"):
        return ("view", schema, name)
    return ("table", schema, name)


async def read_views(db: DatabaseContext, schemas: Sequence[str]) -> Dict[Tuple[str, str], View]:
    """Every view of `schemas` as the catalog has it, by (schema, name): three queries for
    them all (one when there are no views, two without materialized ones: each costs a new
    connection a few milliseconds of catalog lookups)."""
    views = await db.fetch(VIEWS_QUERY, list(schemas))
    if not views:
        return {}
    reads: Dict[Tuple[str, str], Dict[Key, None]] = {}
    types: Dict[Tuple[str, str], List[ColumnType]] = {}
    for row in await db.fetch(READS_QUERY, list(schemas)):
        view = (row["view_schema"], row["view_name"])
        found = reads.setdefault(view, {})
        ref = _ref_key(row)
        found.setdefault(ref, None)
        if row["column_name"] is not None and key_kind(ref) == "table":
            column = ColumnType(key_schema(ref), key_name(ref), row["column_name"], row["column_type"])
            found.setdefault(column.key, None)
            types.setdefault(view, []).append(column)
    indexes: Dict[Tuple[str, str], List[IndexSpec]] = {}
    materialized = any(row["materialized"] for row in views)
    for row in await db.fetch(VIEW_INDEXES_QUERY, list(schemas)) if materialized else ():
        definition, prefix = row["definition"], row["prefix"]
        tail = definition[len(prefix) :] if definition.startswith(prefix) else definition.split(" USING ", 1)[1]
        indexes.setdefault((row["view_schema"], row["view_name"]), []).append((row["name"], row["is_unique"], tail))
    return {
        (row["schema"], row["name"]): View(
            schema=row["schema"],
            name=row["name"],
            definition=row["definition"],
            materialized=row["materialized"],
            indexes=tuple(indexes.get((row["schema"], row["name"]), ())),
            column_types=tuple(sorted(set(types.get((row["schema"], row["name"]), ())))),
            reads=tuple(reads.get((row["schema"], row["name"]), {})),
            outputs=tuple(zip(row["output_names"], row["output_types"])),
        )
        for row in views
    }


# -- reading the models ------------------------------------------------------------------


def _compile(query: Any, dialect: Any) -> str:
    if isinstance(query, str):
        return query.strip().rstrip(";")
    compiled = query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return str(compiled)


def _index_tail(index: ViewIndex) -> str:
    """The text after USING, in our spelling; normalization swaps in the server's."""
    keys = ", ".join(quote_ident(k) if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", k) else k for k in index.keys)
    tail = f"{quote_ident(index.method)} ({keys})"
    if index.where:
        tail += f" WHERE {index.where}"
    return tail


def _select_reads(query: Any, default_schema: str) -> Tuple[List[Key], List[Any]]:
    """Table and column keys a SQLAlchemy select reads, and the SQLAlchemy tables."""
    from sqlalchemy import Column, Table
    from sqlalchemy.sql import visitors

    keys: Dict[Key, None] = {}
    tables: Dict[int, Any] = {}
    for element in visitors.iterate(query):
        if isinstance(element, Table):
            tables.setdefault(id(element), element)
        elif isinstance(element, Column) and isinstance(element.table, Table):
            tables.setdefault(id(element.table), element.table)
            table = element.table
            keys.setdefault(("column", table.schema or default_schema, table.name, element.name), None)
    table_keys = {("table", t.schema or default_schema, t.name): None for t in tables.values()}
    return list(table_keys) + list(keys), list(tables.values())


def _mentions(sql: str, name: str) -> bool:
    return re.search(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", sql, re.IGNORECASE) is not None


class ViewHandler(ObjectHandler):
    kind = "view"

    def from_models(self, models: ModelContext) -> Iterable[View]:
        # (schema, name) -> the model table
        by_name = {(models.table_schema(t), t.name): t for t in models.tables}
        for decl in declared(models, ViewDeclaration):
            schema = decl.schema or models.schema
            sql = _compile(decl.query, models.dialect)
            reads: List[Key] = []
            used: Dict[Tuple[str, str], Any] = {}
            if not isinstance(decl.query, str):
                reads, tables = _select_reads(decl.query, models.schema)
                for table in tables:
                    used[(table.schema or models.schema, table.name)] = table
            for name in decl.depends_on:
                table_schema, _, table_name = name.rpartition(".")
                where = (table_schema or schema, table_name)
                reads.append(("table",) + where)
                if where in by_name:
                    used[where] = by_name[where]
            for (table_schema, table_name), table in by_name.items():
                if _mentions(sql, table_name):
                    used.setdefault((table_schema, table_name), table)
            candidates = tuple(
                ColumnType(table_schema, table_name, column.name, column.type.compile(dialect=models.dialect))
                for (table_schema, table_name), table in sorted(used.items(), key=lambda item: item[0])
                for column in table.columns
            )
            read_columns = {k for k in reads if key_kind(k) == "column"}
            yield View(
                schema=schema,
                name=decl.name,
                definition=sql,
                materialized=decl.materialized,
                indexes=tuple((ix.name, ix.unique, _index_tail(ix)) for ix in decl.indexes),
                column_types=tuple(c for c in candidates if c.key in read_columns),
                reads=tuple(dict.fromkeys(reads)),
                candidates=candidates,
            )

    async def from_database(self, db: DatabaseContext) -> List[View]:
        return list((await read_views(db, db.schemas)).values())

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Create every model view in a scratch schema and read it back with the catalog queries.

        A view whose query cannot run yet (its tables are still to be
        created) keeps the models' spelling: the database cannot have it
        either, so there is nothing to compare it with.
        """
        views = [obj for obj in objects if isinstance(obj, View)]
        if not views:
            return objects
        rendered = await _render_through_server(db, views)
        return [rendered.get(id(obj), obj) for obj in objects]

    def create(self, obj: View) -> List[Operation]:
        ops: List[Operation] = [
            CreateView(view_name=obj.name, definition=obj.definition, schema=obj.schema, materialized=obj.materialized)
        ]
        ops += [_create_index(obj, spec) for spec in obj.indexes]
        return ops

    def migrate(self, old: View, new: View) -> List[Operation]:
        """Indexes alone change in place; a new query replaces the view, in place when Postgres allows it."""
        same_view = (old.definition, old.materialized, old.column_types) == (
            new.definition,
            new.materialized,
            new.column_types,
        )
        if same_view:
            ops: List[Operation] = [
                DropViewIndex(index_name=name, schema=old.schema)
                for name, unique, definition in old.indexes
                if (name, unique, definition) not in new.indexes
            ]
            ops += [_create_index(new, spec) for spec in new.indexes if spec not in old.indexes]
            return ops
        keeps_columns = bool(new.outputs) and new.outputs[: len(old.outputs)] == old.outputs
        if not old.materialized and not new.materialized and keeps_columns and old.column_types == new.column_types:
            return [CreateView(view_name=new.name, definition=new.definition, schema=new.schema, replace=True)]
        return self.destroy(old) + self.create(new)

    def destroy(self, obj: View) -> List[Operation]:
        return [DropView(view_name=obj.name, schema=obj.schema, materialized=obj.materialized)]


def _create_index(view: View, spec: IndexSpec) -> CreateViewIndex:
    name, unique, definition = spec
    return CreateViewIndex(
        view_name=view.name, index_name=name, index_definition=definition, unique=unique, schema=view.schema
    )


# (definition, materialized, indexes): one view to render.
ViewShape = Tuple[str, bool, Tuple[IndexSpec, ...]]


def _view_shape(view: View) -> ViewShape:
    return (view.definition, view.materialized, tuple(view.indexes))


class ViewSpelling(Renderer[ViewShape]):
    """A view as the catalog queries read it back: [definition, indexes, reads, outputs, column types].

    Built in the target schema under a scratch name (a materialized view
    cannot be temporary), with its indexes.
    """

    kind = "view"
    object_kind = "view"
    fields = ("definition", "indexes", "column_types")
    temporary = False
    relations = 4  # the view (its rule, a materialized view's storage) and some indexes

    def reads(self, what: ViewShape) -> Reads:
        return Reads(user_types=True)

    def statements(self, items: Sequence[Tuple[int, ViewShape]], scratch: Scratch) -> List[str]:
        out: List[str] = []
        for number, (definition, materialized, indexes) in items:
            name = scratch.name("v", number)
            create = CreateView(view_name=name, definition=definition, schema=scratch.schema, materialized=materialized)
            out += [create.statements()[0] + (" WITH NO DATA" if materialized else "")]
            for index_name, unique, index_definition in indexes:
                out += CreateViewIndex(
                    view_name=name,
                    index_name=scratch.name("v", number, index_name),
                    index_definition=index_definition,
                    unique=unique,
                    schema=scratch.schema,
                ).statements()
        return out

    async def read(
        self, items: Sequence[Tuple[int, ViewShape]], scratch: Scratch, db: DatabaseContext
    ) -> Dict[int, Any]:
        read = await read_views(db, [scratch.namespace])
        out: Dict[int, Any] = {}
        for number, (_, _, indexes) in items:
            got = read.get((scratch.namespace, scratch.name("v", number)))
            if got is None:
                continue
            # The scratch indexes' names back to the model's.
            names = {scratch.name("v", number, name): name for name, _, _ in indexes}
            got_indexes = [[names.get(name, name), unique, definition] for name, unique, definition in got.indexes]
            out[number] = [got.definition, got_indexes, [list(k) for k in got.reads], got.outputs, got.column_types]
        return out


async def _render_through_server(db: DatabaseContext, views: Sequence[View]) -> Dict[int, View]:
    """id(view) -> the view as the server renders it, with the model types of the columns it reads."""
    rendered = await render(db, ViewSpelling(), [_view_shape(v) for v in views])
    spelled = await normal_types(db, [c[3] for v in views for c in v.candidates])
    # The models' type of each column a view may read, as format_type prints it.
    model_types = {(s, t, c): spelled[ty] for v in views for s, t, c, ty in v.candidates}
    out: Dict[int, View] = {}
    for view in views:
        got = rendered.get(_view_shape(view))
        if got is None:
            continue
        definition, indexes, reads, outputs, column_types = got
        out[id(view)] = replace(
            view,
            definition=definition,
            indexes=tuple((name, unique, text) for name, unique, text in indexes),
            column_types=tuple(
                sorted({(s, t, c, model_types.get((s, t, c), db_type)) for s, t, c, db_type in column_types})
            ),
            reads=tuple(tuple(k) for k in reads),
            outputs=tuple((n, ty) for n, ty in outputs),
        )
    return out


__all__ = ["View", "ViewHandler", "read_views"]
