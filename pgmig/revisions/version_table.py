"""The version table: one row per applied revision (id, checksum, applied_at, duration)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple

from pgmig.db.quoting import qualified
from pgmig.errors import DatabaseError, RevisionError, agree
from pgmig.ops.actor import execute


@dataclass
class AppliedRevision:
    id: str
    checksum: str
    applied_at: datetime
    duration: float


# The columns pgmig reads and writes, and the types (as format_type() spells them) each may have.
_COLUMNS: Dict[str, Tuple[str, ...]] = {
    "id": ("text", "character varying"),
    "checksum": ("text", "character varying"),
    "applied_at": ("timestamp with time zone",),
    "duration": ("double precision",),
}

_SHAPE = """
SELECT c.relkind::text AS kind,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS names,
       ARRAY(SELECT regexp_replace(pg_catalog.format_type(a.atttypid, a.atttypmod), '\\(.*\\)$', '')
             FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS types,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
               AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '' ORDER BY a.attnum) AS required
FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)
"""


class VersionTableError(RevisionError):
    """The configured version table exists but is not shaped as pgmig keeps it (another tool's
    table, or one changed by hand): what is wrong, and how to point pgmig elsewhere."""


class BookkeepingPrivilegeError(DatabaseError):
    """The role pgmig runs as lacks a privilege pgmig's own bookkeeping needs (the version table,
    its schema): not a fault of any revision, and nothing of the run was applied."""


INSUFFICIENT_PRIVILEGE = "42501"


class VersionTable:
    def __init__(self, schema: str, name: str) -> None:
        self.schema = schema
        self.name = name
        self.qualified = qualified(schema, name)

    def create_sql(self) -> str:
        """The table's DDL, one column a line as scripts show the revisions' own tables."""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified} (\n"
            "    id text PRIMARY KEY,\n"
            "    checksum text NOT NULL,\n"
            "    applied_at timestamp with time zone NOT NULL DEFAULT now(),\n"
            "    duration double precision NOT NULL DEFAULT 0\n"
            ")"
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

    def _on(self, privilege: str) -> str:
        """Where `privilege` applies: the table, its schema or the database."""
        if privilege == "CREATE ON DATABASE":
            return f"CREATE on the database (to create schema {qualified(None, self.schema)}, which does not exist)"
        if privilege.endswith("ON SCHEMA"):
            return f"{privilege.split()[0]} on schema {qualified(None, self.schema)}"
        return f"{privilege} on table {self.qualified}"

    def _refused(self, privileges: Sequence[str], role: Optional[str], database: Optional[str]) -> str:
        """Which `privileges` ("INSERT", "USAGE ON SCHEMA", "CREATE ON DATABASE") pgmig's
        bookkeeping needs and `role` lacks, and the GRANT statements that give them."""
        who = f"role {qualified(None, role)}" if role else "the role pgmig runs as"
        targets = {
            "DATABASE": f"DATABASE {qualified(None, database)}" if database else "DATABASE <the database>",
            "SCHEMA": f"SCHEMA {qualified(None, self.schema)}",
        }
        grants = []
        for privilege in privileges:
            what, _, kind = privilege.partition(" ON ")
            grants.append(f"GRANT {what} ON {targets.get(kind, self.qualified)} TO {qualified(None, role or 'ROLE')}")
        return (
            f"pgmig's own bookkeeping (the version table {self.qualified}, not a revision) needs "
            f"{', '.join(self._on(p) for p in privileges)}, which {who} lacks; "
            f"grant it ({'; '.join(grants)}) or run pgmig as a role that has it"
        )

    async def missing_privileges(self, connection: Any, writes: Sequence[str]) -> None:
        """Raise BookkeepingPrivilegeError naming every privilege the current role lacks for
        pgmig's bookkeeping: USAGE on the schema and SELECT on the version table to read it,
        and `writes` ("INSERT", "DELETE") on it; CREATE on the schema (and on the database,
        when the schema is missing) while the table does not exist. Privileges are asked of
        the catalog (has_*_privilege, which counts role membership), before anything runs."""
        info = await connection.fetchrow(
            "SELECT current_user AS role, current_database() AS database, n.oid AS schema_oid, "
            "has_database_privilege(current_database(), 'CREATE') AS db_create, "
            "n.oid IS NULL OR has_schema_privilege(n.oid, 'USAGE') AS usage, "
            "n.oid IS NULL OR has_schema_privilege(n.oid, 'CREATE') AS can_create "
            "FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = $1",
            self.schema,
        )
        missing: List[str] = []
        if info["schema_oid"] is None:
            if not info["db_create"]:
                missing.append("CREATE ON DATABASE")
        elif not info["usage"]:
            missing.append("USAGE ON SCHEMA")
        else:
            table = await connection.fetchval(
                "SELECT c.oid FROM pg_class c WHERE c.relnamespace = $1 AND c.relname = $2",
                info["schema_oid"],
                self.name,
            )
            if table is None and writes and not info["can_create"]:
                missing.append("CREATE ON SCHEMA")
            for privilege in ("SELECT", *writes) if table is not None else ():
                if not await connection.fetchval("SELECT has_table_privilege($1::oid, $2)", table, privilege):
                    missing.append(privilege)
        if missing:
            raise BookkeepingPrivilegeError(
                self._refused(missing, info["role"], info["database"]) + "; nothing was applied"
            )

    @asynccontextmanager
    async def _needs(self, connection: Any, privilege: str) -> AsyncIterator[None]:
        """Around a statement of pgmig's bookkeeping that needs `privilege` ("INSERT", "CREATE ON
        SCHEMA", ...): the server's refusal becomes a BookkeepingPrivilegeError naming it, not a
        revision's failure. (The transaction is aborted by then: nothing more can be asked of it.)"""
        try:
            yield
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                raise
            # The server reports session_authorization to the client (a GUC_REPORT setting): no query.
            settings = getattr(connection, "get_settings", None)
            role = getattr(settings(), "session_authorization", None) if settings is not None else None
            raise BookkeepingPrivilegeError(
                f"{self._refused([privilege], role, None)} (the server said: {exc})"
            ) from None

    async def exists(self, connection: Any) -> bool:
        async with self._needs(connection, "USAGE ON SCHEMA"):
            return bool(await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{self.qualified}"))

    def refuse_model_tables(self, tables: Sequence[Any], default_schema: str) -> None:
        """Raise ModelsError when one of the models' `tables` (SQLAlchemy Tables; one without a
        schema goes to `default_schema`) has the version table's name in its schema: pgmig
        leaves its own table out of every diff, so the model's table would be planned and
        then collide with the bookkeeping at `up`. Names compare as Postgres stores them
        (63 bytes)."""
        from pgmig.db.quoting import clip_bytes
        from pgmig.errors import ModelsError
        from pgmig.revisions.parts import progress_table_name

        mine = {(self.schema, clip_bytes(name, 63)) for name in (self.name, progress_table_name(self.name))}
        for table in tables:
            if (table.schema or default_schema, clip_bytes(table.name, 63)) not in mine:
                continue
            raise ModelsError(
                f"the model table {qualified(table.schema or default_schema, table.name)} has the name of "
                f"pgmig's version table {self.qualified}: rename the model's table (__tablename__), or give "
                "pgmig's version table another name with version_table in [tool.pgmig] (PGMIG_VERSION_TABLE)"
            )

    async def check_shape(self, connection: Any) -> None:
        """Raise VersionTableError unless the version table, when it exists, is a table with the
        columns pgmig reads and writes (id and checksum text, applied_at timestamptz, duration
        double precision) and no other column an INSERT of pgmig's must fill (NOT NULL without
        a default)."""
        row = await connection.fetchrow(_SHAPE, self.qualified)
        if row is None:
            return
        problems: List[str] = []
        if row["kind"] not in ("r", "p"):
            problems.append("it is not a table")
        found = dict(zip(row["names"], row["types"]))
        for column, types in _COLUMNS.items():
            if column not in found:
                problems.append(f"it has no column {column} ({types[0]})")
            elif found[column] not in types:
                problems.append(f"its column {column} is {found[column]}, not {types[0]}")
        extra = [name for name in row["required"] if name not in _COLUMNS]
        if extra:
            problems.append(
                f"its {agree(len(extra), 'column', 'columns')} {', '.join(extra)} {agree(len(extra), 'is', 'are')} NOT NULL "
                "without a default, which pgmig does not fill"
            )
        if not problems:
            return
        expected = ", ".join(f"{name} {types[0]}" for name, types in _COLUMNS.items())
        raise VersionTableError(
            f"the version table {self.qualified} is not pgmig's: {'; '.join(problems)} "
            f"(pgmig keeps {expected}); if another tool owns it, give pgmig a table of its own with "
            "version_table in [tool.pgmig] (PGMIG_VERSION_TABLE); if it is pgmig's and was changed by hand, "
            "restore those columns"
        )

    async def ensure(self, connection: Any) -> None:
        """Create the version table (and its schema, when missing) unless it exists.

        `CREATE SCHEMA IF NOT EXISTS` needs the CREATE privilege on the
        database even when the schema is there (Postgres checks the privilege
        first: CreateSchemaCommand), which a least-privilege migration role
        that owns its schema lacks; so the schema is created only when absent.
        """
        if await self.exists(connection):
            await self.check_shape(connection)
            return
        if await connection.fetchval("SELECT to_regnamespace($1) IS NULL", qualified(None, self.schema)):
            async with self._needs(connection, "CREATE ON DATABASE"):
                await execute(connection, f"CREATE SCHEMA IF NOT EXISTS {qualified(None, self.schema)}")
        async with self._needs(connection, "CREATE ON SCHEMA"):
            await execute(connection, self.create_sql())

    async def applied(self, connection: Any) -> Dict[str, AppliedRevision]:
        if not await self.exists(connection):
            return {}
        await self.check_shape(connection)
        async with self._needs(connection, "SELECT"):
            rows = await connection.fetch(
                f"SELECT id, checksum, applied_at, duration FROM {self.qualified} ORDER BY applied_at, id"
            )
        return {r["id"]: AppliedRevision(r["id"], r["checksum"], r["applied_at"], r["duration"]) for r in rows}

    async def record(self, connection: Any, revision_id: str, checksum: str, duration: float) -> None:
        async with self._needs(connection, "INSERT"):
            await connection.execute(
                f"INSERT INTO {self.qualified} (id, checksum, duration) VALUES ($1, $2, $3)",
                revision_id,
                checksum,
                duration,
            )

    async def may(self, connection: Any, privilege: str) -> bool:
        """Whether the current role has `privilege` ("UPDATE", ...) on the version table (which must exist)."""
        return bool(await connection.fetchval("SELECT has_table_privilege($1, $2)", self.qualified, privilege))

    async def set_checksums(self, connection: Any, checksums: Dict[str, str]) -> None:
        """Replace the checksum of each row named in `checksums` (id: checksum), in one transaction;
        applied_at and duration stay."""
        async with self._needs(connection, "UPDATE"), connection.transaction():
            for revision_id, checksum in checksums.items():
                await connection.execute(
                    f"UPDATE {self.qualified} SET checksum = $2 WHERE id = $1", revision_id, checksum
                )

    async def remove(self, connection: Any, revision_id: str) -> None:
        async with self._needs(connection, "DELETE"):
            await connection.execute(f"DELETE FROM {self.qualified} WHERE id = $1", revision_id)
