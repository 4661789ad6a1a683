"""Tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional

from pgmig.ops.base import Operation
from pgmig.ops.table import DropTable, SetTableComment, create_table_with
from pgmig.schema.handlers.column import Column, comment_text
from pgmig.schema.handlers.constraint import FOREIGN_KEY, Constraint
from pgmig.schema.handlers.index import Index
from pgmig.schema.objects import Key, SchemaObject
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler


@dataclass(frozen=True)
class Table(SchemaObject):
    kind = "table"
    schema: str
    name: str
    comment: Optional[str] = None

    @property
    def key(self) -> Key:
        return ("table", self.schema, self.name)

    @property
    def label(self) -> str:
        return f"table {self.name}"

    def describe(self) -> str:
        return self.label + comment_text(self.comment)

    def creates_with_itself(self, child: SchemaObject) -> bool:
        """Its columns, primary key, unique and check constraints go into its CREATE TABLE, as
        `create_all` writes it (ADD COLUMN would evaluate each default on its own). Foreign keys
        follow as ALTER TABLE, so tables referencing each other are created one after the other."""
        if isinstance(child, Column):
            return True
        return isinstance(child, Constraint) and child.constraint_type != FOREIGN_KEY

    def may_create_with_itself(self, child: SchemaObject) -> bool:
        """A foreign key goes into the CREATE TABLE, and an index right after it, when what they
        need comes first (the referenced table and key; the function an expression calls)."""
        return isinstance(child, Index) or (isinstance(child, Constraint) and child.constraint_type == FOREIGN_KEY)


TABLES_QUERY = """
SELECT n.nspname AS schema, c.relname AS name, dsc.description AS comment
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
-- obj_description() looks each table up on its own: joined, the query takes half the time.
LEFT JOIN pg_catalog.pg_description dsc
       ON dsc.objoid = c.oid AND dsc.classoid = 'pg_catalog.pg_class'::regclass AND dsc.objsubid = 0
WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND (n.nspname <> $1[1] OR c.relname NOT IN ($2::text, $2::text || '_progress'))
ORDER BY n.nspname, c.relname
"""


class TableHandler(ObjectHandler):
    kind = "table"

    def from_models(self, models: ModelContext) -> Iterable[Table]:
        for table in models.tables:
            yield Table.of(schema=models.table_schema(table), name=models.table_name(table), comment=table.comment)

    async def from_database(self, db: DatabaseContext) -> List[Table]:
        rows = await db.fetch(TABLES_QUERY, list(db.schemas), db.version_table)
        return [Table.of(schema=row["schema"], name=row["name"], comment=row["comment"]) for row in rows]

    def create(self, obj: Table) -> List[Operation]:
        return self.create_with(obj, [])

    def create_with(self, obj: Table, parts: List[Operation]) -> List[Operation]:
        """One CREATE TABLE with the new table's columns and keys (`parts`), see `create_table_with`."""
        return create_table_with(obj.name, parts, comment=obj.comment, schema=obj.schema)

    def migrate(self, old: Table, new: Table) -> List[Operation]:
        if old.comment == new.comment:
            return []
        return [SetTableComment(table_name=new.name, comment=new.comment, schema=new.schema)]

    def destroy(self, obj: Table) -> List[Operation]:
        return [DropTable(table_name=obj.name, schema=obj.schema)]
