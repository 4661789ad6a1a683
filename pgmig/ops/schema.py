"""Operations on schemas (namespaces): CREATE SCHEMA and DROP SCHEMA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Sequence

from pgmig.db.quoting import quote_ident
from pgmig.ops.base import Operation, register


async def _exists(connection: Any, schema: str) -> bool:
    return bool(await connection.fetchval("SELECT pg_catalog.to_regnamespace($1) IS NOT NULL", quote_ident(schema)))


@register
@dataclass(frozen=True)
class AddSchema(Operation):
    """Create a schema.

    `if_not_exists` is for the schema that holds the version table: pgmig
    keeps it (with the table) when the revisions go down to base, so the
    first revision finds it there when it runs again.
    """

    name = "add_schema"
    locks = 2
    schema_name: str
    if_not_exists: bool = False

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the schema is there (an earlier run created it)."""
        return await _exists(connection, self.schema_name)

    def statements(self) -> List[str]:
        guard = " IF NOT EXISTS" if self.if_not_exists else ""
        return [f"CREATE SCHEMA{guard} {quote_ident(self.schema_name)}"]


@register
@dataclass(frozen=True)
class DropSchema(Operation):
    """Drop an empty schema; Postgres refuses while anything is left in it (no CASCADE).

    What the plan drops in the schema is dropped before it, so what makes
    Postgres refuse is what pgmig does not model: it is named in the error,
    never dropped along with the schema.
    """

    name = "drop_schema"
    locks = 4
    schema_name: str

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the schema is gone (an earlier run dropped it)."""
        return not await _exists(connection, self.schema_name)

    def statements(self) -> List[str]:
        return [f"DROP SCHEMA {quote_ident(self.schema_name)}"]
