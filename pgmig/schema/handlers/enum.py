"""Native Postgres enum types.

Label order is part of an enum (it is the sort order of its values), so the
labels are compared as a sequence. Postgres can only insert labels in place;
removing or reordering one needs a type swap (a new type, every column cast
to it, the old type dropped and the new one renamed), so an enum also knows
the columns that use it: the swap must name them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from pgmig.errors import SchemaError
from pgmig.ops.base import Operation
from pgmig.ops.enum import AddType, AddTypeValues, DropType, SwapColumn, SwapTypeValues
from pgmig.schema.handlers.column import Column, model_columns
from pgmig.schema.objects import Key, SchemaObject, key_name, key_schema
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler
from pgmig.schema.types import enum_of, native_enum


@dataclass(frozen=True)
class Enum(SchemaObject):
    kind = "enum"
    schema: str
    name: str
    labels: Tuple[str, ...] = ()
    columns: Tuple[SwapColumn, ...] = field(default=(), compare=False)
    """Columns of this type or an array of it, with their defaults: what a type swap converts.

    Filled on both sides, because either side can be the old one: the
    database's for `up`, the models' for the `down` a revision is written with.
    """

    @property
    def key(self) -> Key:
        return ("enum", self.schema, self.name)

    @property
    def label(self) -> str:
        return f"enum {self.name}"

    def describe(self) -> str:
        return f"enum {self.name} ({', '.join(self.labels)})"

    def rebuilds(self, new: SchemaObject) -> Tuple[Key, ...]:
        """A type swap re-types every column it converts (those of the type before and after it) and
        replaces the type itself: what names the type (a function's argument) goes and comes back."""
        if not isinstance(new, Enum) or _insert_only(self.labels, new.labels):
            return ()
        after = {column[:3] for column in new.columns}
        return (self.key,) + tuple(("column", *column[:3]) for column in self.columns if column[:3] in after)

    def as_of(self, state: Mapping[Key, SchemaObject]) -> "Enum":
        """The enum with the columns of the type that exist in `state`, with the defaults they have there.

        Columns of tables in schemas that are not managed (which `state` does not hold) stay as read.
        """
        columns: List[SwapColumn] = []
        for column in self.columns:
            schema, table, name = column[:3]
            if schema != self.schema and ("table", schema, table) not in state:
                columns.append(column)
                continue
            found = state.get(("column", schema, table, name))
            if isinstance(found, Column) and found.enum_dependency == self.key:
                is_array = found.data_type.rstrip().endswith("]")
                columns.append((schema, table, name, is_array, found.default))
        return self.evolve(columns=tuple(columns))


ENUMS_QUERY = """
SELECT n.nspname AS schema,
       t.typname AS name,
       COALESCE(
           array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FILTER (WHERE e.enumlabel IS NOT NULL),
           '{}'::text[]
       ) AS labels
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = ANY($1::text[]) AND t.typtype = 'e'
  AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
  )
GROUP BY n.nspname, t.typname
ORDER BY n.nspname, t.typname
"""

# Columns of every enum of the managed schemas, from tables of any schema. Inherited
# columns (partitions, inheritance children) are left out: ALTER TABLE on
# their parent converts them. Any default of such a column has the enum's type.
ENUM_COLUMNS_QUERY = """
WITH enum_types AS (
    -- Each enum and its array type as rows of their own, so pg_attribute is
    -- joined by plain equality (a hash join) rather than `IN (oid, typarray)`,
    -- which made Postgres loop over every column once per enum.
    SELECT t.oid AS type_oid, n.nspname, t.typname, false AS is_array
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = ANY($1::text[]) AND t.typtype = 'e'
    UNION ALL
    SELECT t.typarray, n.nspname, t.typname, true
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = ANY($1::text[]) AND t.typtype = 'e'
)
SELECT e.nspname AS enum_schema,
       e.typname AS enum_name,
       cn.nspname AS table_schema,
       c.relname AS table_name,
       a.attname AS column_name,
       e.is_array,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_expr
FROM enum_types e
JOIN pg_catalog.pg_attribute a ON a.atttypid = e.type_oid
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND a.attinhcount = 0
ORDER BY e.nspname, e.typname, cn.nspname, c.relname, a.attnum
"""


class EnumHandler(ObjectHandler):
    kind = "enum"

    # -- reading -----------------------------------------------------------------

    def from_models(self, models: ModelContext) -> List[Enum]:
        """Every native enum the models use, once; only those of the managed schemas.

        The database side reads the managed schemas, so an enum living
        elsewhere would otherwise be "created" on every diff.
        """
        columns = _model_columns(models)
        found: Dict[Key, Enum] = {}
        for sa_enum in _model_enums(models):
            where = enum_of(sa_enum, models.schema, models.dialect)
            if where is None or where[0] not in models.schemas:
                continue
            name = models.stored(str(sa_enum.name), ("type", where[0]), f"enum {where[0]}.{sa_enum.name}")
            obj = Enum.of(
                schema=where[0],
                name=name,
                labels=tuple(str(v) for v in sa_enum.enums),
                columns=tuple(columns.get((where[0], name), ())),
            )
            existing = found.setdefault(obj.key, obj)
            if existing.labels != obj.labels:
                raise SchemaError(
                    f"enum {obj.schema}.{obj.name} is declared twice with different labels: "
                    f"{list(existing.labels)} and {list(obj.labels)}; give one of them another name="
                )
        return list(found.values())

    async def from_database(self, db: DatabaseContext) -> List[Enum]:
        rows = await db.fetch(ENUMS_QUERY, list(db.schemas))
        columns: Dict[Tuple[str, str], List[SwapColumn]] = defaultdict(list)
        for row in await db.fetch(ENUM_COLUMNS_QUERY, list(db.schemas)):
            columns[(row["enum_schema"], row["enum_name"])].append(
                (row["table_schema"], row["table_name"], row["column_name"], row["is_array"], row["default_expr"])
            )
        return [
            Enum.of(
                schema=row["schema"],
                name=row["name"],
                labels=tuple(row["labels"]),
                columns=tuple(columns.get((row["schema"], row["name"]), ())),
            )
            for row in rows
        ]

    # -- changing ----------------------------------------------------------------

    def create(self, obj: Enum) -> List[Operation]:
        return [AddType(type_name=obj.name, values=obj.labels, schema=obj.schema)]

    def migrate(self, old: Enum, new: Enum) -> List[Operation]:
        """Insert labels in place when that is all it takes; otherwise swap the type.

        The swap converts the OLD object's columns, which the planner gives as
        they stand when the swap runs (`Enum.as_of`): columns the same plan
        drops or moves to another type are gone by then (they stop using the
        type, so the graph puts them first), columns it adds come after (they
        need the type), and each default is the one the column has at that
        moment. What depends on the converted columns is carried around the
        swap by the planner (`Enum.rebuilds`, pgmig.plan.rebuilds).
        """
        if not _insert_only(old.labels, new.labels):
            return [
                SwapTypeValues(
                    type_name=new.name,
                    values=new.labels,
                    columns=old.columns,
                    removed_values=tuple(label for label in old.labels if label not in new.labels),
                    schema=new.schema,
                )
            ]
        return [
            AddTypeValues(type_name=new.name, values=tuple(values), before=before, after=after, schema=new.schema)
            for values, before, after in insertions(old.labels, new.labels)
        ]

    def destroy(self, obj: Enum) -> List[Operation]:
        return [DropType(type_name=obj.name, schema=obj.schema)]


def _model_enums(models: ModelContext) -> Iterator[Any]:
    """sa.Enum objects from the tables' columns (also array items, and behind a TypeDecorator:
    `native_enum`), then those bound to a MetaData."""
    from sqlalchemy import Enum as SAEnum

    for sa_type in model_columns(models).enum_types:
        enum = native_enum(sa_type, models.dialect)
        if enum is not None:
            yield enum
    # `Enum(..., metadata=m)` registers the type with its MetaData
    # (SQLAlchemy 2.1+ lists them; older versions have no public way).
    for metadata in models.metadata:
        get_objects = getattr(metadata, "get_schema_objects", None)
        if get_objects is None:
            continue
        for schema in (None, *models.schemas):
            yield from get_objects(SAEnum, schema=schema)


def _model_columns(models: ModelContext) -> Dict[Tuple[str, str], List[SwapColumn]]:
    """(schema, name) of an enum -> the model columns of that type (arrays too), as the column handler reads them."""
    columns: Dict[Tuple[str, str], List[SwapColumn]] = defaultdict(list)
    for column in model_columns(models).enum_columns:
        dependency = column.enum_dependency
        if dependency is None or key_schema(dependency) not in models.schemas:
            continue
        is_array = column.data_type.rstrip().endswith("]")
        columns[(key_schema(dependency), key_name(dependency))].append(
            (column.schema, column.table, column.name, is_array, column.default)
        )
    return columns


def _insert_only(old: Tuple[str, ...], new: Tuple[str, ...]) -> bool:
    """True when `new` keeps every old label in its old order (ADD VALUE can then do it)."""
    return [label for label in new if label in old] == list(old)


def insertions(old: Tuple[str, ...], new: Tuple[str, ...]) -> List[Tuple[List[str], Optional[str], Optional[str]]]:
    """(values, before, after) runs of new labels that turn `old` into `new` by insertion only.

    Each run is anchored AFTER the label preceding it in `new` (which exists
    by then, being old or added by an earlier run); a run at the very start
    goes BEFORE the first old label; into an empty enum, labels are appended.
    """
    existing = set(old)
    runs: List[Tuple[List[str], Optional[str], Optional[str]]] = []
    run: List[str] = []
    anchor: Tuple[Optional[str], Optional[str]] = (None, None)
    for index, label in enumerate(new):
        if label in existing:
            if run:
                runs.append((run, *anchor))
                run = []
            continue
        if not run:
            if index > 0:
                anchor = (None, new[index - 1])
            else:
                anchor = (old[0] if old else None, None)
        run.append(label)
    if run:
        runs.append((run, *anchor))
    return runs


__all__ = ["Enum", "EnumHandler", "insertions"]
