"""The version table: one row per applied revision (id, checksum, applied_at, duration)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Optional

from pgmig.db.quoting import qualified
from pgmig.ops.actor import execute


@dataclass
class AppliedRevision:
    id: str
    checksum: str
    applied_at: datetime
    duration: float


class VersionTable:
    def __init__(self, schema: str, name: str) -> None:
        self.schema = schema
        self.name = name
        self.qualified = qualified(schema, name)

    def create_sql(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified} ("
            "id text PRIMARY KEY, checksum text NOT NULL, "
            "applied_at timestamp with time zone NOT NULL DEFAULT now(), "
            "duration double precision NOT NULL DEFAULT 0)"
        )

    def insert_sql(self, revision_id: str, checksum: str, duration: Optional[float] = None) -> str:
        from pgmig.db.quoting import quote_literal

        return (
            f"INSERT INTO {self.qualified} (id, checksum, duration) "
            f"VALUES ({quote_literal(revision_id)}, {quote_literal(checksum)}, {duration or 0})"
        )

    def delete_sql(self, revision_id: str) -> str:
        from pgmig.db.quoting import quote_literal

        return f"DELETE FROM {self.qualified} WHERE id = {quote_literal(revision_id)}"

    async def exists(self, connection: Any) -> bool:
        return bool(await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{self.qualified}"))

    async def ensure(self, connection: Any) -> None:
        """Create the version table (and its schema, when missing) unless it exists.

        `CREATE SCHEMA IF NOT EXISTS` needs the CREATE privilege on the
        database even when the schema is there (Postgres checks the privilege
        first: CreateSchemaCommand), which a least-privilege migration role
        that owns its schema lacks; so the schema is created only when absent.
        """
        if await self.exists(connection):
            return
        if await connection.fetchval("SELECT to_regnamespace($1) IS NULL", qualified(None, self.schema)):
            await execute(connection, f"CREATE SCHEMA IF NOT EXISTS {qualified(None, self.schema)}")
        await execute(connection, self.create_sql())

    async def applied(self, connection: Any) -> Dict[str, AppliedRevision]:
        if not await self.exists(connection):
            return {}
        rows = await connection.fetch(
            f"SELECT id, checksum, applied_at, duration FROM {self.qualified} ORDER BY applied_at, id"
        )
        return {r["id"]: AppliedRevision(r["id"], r["checksum"], r["applied_at"], r["duration"]) for r in rows}

    async def record(self, connection: Any, revision_id: str, checksum: str, duration: float) -> None:
        await connection.execute(
            f"INSERT INTO {self.qualified} (id, checksum, duration) VALUES ($1, $2, $3)",
            revision_id,
            checksum,
            duration,
        )

    async def remove(self, connection: Any, revision_id: str) -> None:
        await connection.execute(f"DELETE FROM {self.qualified} WHERE id = $1", revision_id)
