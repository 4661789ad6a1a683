"""Schemas (namespaces): each managed schema other than `public` is an object of its own.

Every object whose key names a schema depends on that schema's object (see
pgmig.plan.diff), so a revision creates the schema before anything in it and
drops it after everything in it. `public` is never created or dropped.

The first managed schema holds the version table, which outlives `down` to
base; there the schema's object is read only while it holds something other
than the version table, it is created with IF NOT EXISTS and never dropped.
So `down` to base leaves the database as pgmig found it but for its own
bookkeeping, and `up` again finds the schema there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from pgmig.ops.base import Operation
from pgmig.ops.schema import AddSchema, DropSchema
from pgmig.schema.objects import Key, SchemaObject
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler

UNMANAGED = "public"
"""The schema every database has: pgmig neither creates nor drops it."""


@dataclass(frozen=True)
class Schema(SchemaObject):
    kind = "schema"
    name: str
    # The first managed schema: the version table's, created IF NOT EXISTS and never dropped.
    home: bool = field(default=False, compare=False)

    @property
    def key(self) -> Key:
        return ("schema", self.name)

    @property
    def label(self) -> str:
        return f"schema {self.name}"


# The managed schemas the database has; the first ($1[1], the version table's home) only while it
# holds something besides pgmig's tables (the version table, its `_progress` table) and their indexes: a relation, a type that is not a
# relation's row type or an array, or a function.
SCHEMAS_QUERY = """
SELECT n.nspname AS name
FROM pg_catalog.pg_namespace n
WHERE n.nspname = ANY($1::text[]) AND n.nspname <> 'public'
  AND (n.nspname <> $1[1]
       OR EXISTS (
           SELECT 1 FROM pg_catalog.pg_class c
           WHERE c.relnamespace = n.oid AND c.relname NOT IN ($2::text, $2::text || '_progress')
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
                             WHERE i.indexrelid = c.oid AND t.relname IN ($2::text, $2::text || '_progress') AND t.relnamespace = n.oid))
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t
                  WHERE t.typnamespace = n.oid AND t.typrelid = 0 AND t.typcategory <> 'A')
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = n.oid))
ORDER BY n.nspname
"""


class SchemaHandler(ObjectHandler):
    kind = "schema"

    def from_models(self, models: ModelContext) -> List[Schema]:
        return [Schema.of(name=name, home=name == models.schema) for name in models.schemas if name != UNMANAGED]

    async def from_database(self, db: DatabaseContext) -> List[Schema]:
        rows = await db.fetch(SCHEMAS_QUERY, list(db.schemas), db.version_table)
        return [Schema.of(name=row["name"], home=row["name"] == db.schema) for row in rows]

    def create(self, obj: Schema) -> List[Operation]:
        return [AddSchema(schema_name=obj.name, if_not_exists=obj.home)]

    def destroy(self, obj: Schema) -> List[Operation]:
        # The version table's schema stays with the table (see the module's docstring).
        return [] if obj.home else [DropSchema(schema_name=obj.name)]


__all__ = ["Schema", "SchemaHandler"]
