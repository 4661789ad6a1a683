"""Helpers shared by the tests: run pgmig's engine against a real database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from pgmig.engine import apply_plan, diff_database, model_context
from pgmig.plan import Plan
from pgmig.plugins import HandlerSet, load_handlers

ROOT = Path(__file__).resolve().parent.parent

_HANDLERS: Optional[HandlerSet] = None


def handlers() -> HandlerSet:
    global _HANDLERS
    if _HANDLERS is None:
        _HANDLERS = load_handlers()
    return _HANDLERS


async def _with_conn(url: str, fn: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await fn(conn)
    finally:
        await conn.close()


def run_sql(url: str, *statements: str) -> None:
    async def go(conn: Any) -> None:
        for statement in statements:
            await conn.execute(statement)

    asyncio.run(_with_conn(url, go))


def fetch(url: str, query: str, *args: Any) -> List[Dict[str, Any]]:
    async def go(conn: Any) -> List[Dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(query, *args)]

    return asyncio.run(_with_conn(url, go))


def diff(url: str, metadata: Any, schema: str = "public") -> Plan:
    tables = [t for t in metadata.sorted_tables if (t.schema or schema) == schema]
    models = model_context(tables, [metadata], schema)

    async def go(conn: Any) -> Plan:
        return await diff_database(conn, models, handlers(), schema=schema)

    return asyncio.run(_with_conn(url, go))


def migrate(url: str, metadata: Any, schema: str = "public") -> Plan:
    """Diff and apply; return the plan that was applied."""
    plan = diff(url, metadata, schema)

    async def go(conn: Any) -> None:
        await apply_plan(conn, plan)

    asyncio.run(_with_conn(url, go))
    return plan


SNAPSHOT_QUERY = """
SELECT c.relname AS table_name, a.attnum, a.attname,
       format_type(a.atttypid, a.atttypmod) AS data_type, a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid) AS default_expr, a.attidentity::text AS attidentity,
       col_description(c.oid, a.attnum) AS comment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attname
"""


def snapshot(url: str, schema: str = "public") -> Dict[str, Any]:
    """The catalog facts a migration must get right, independent of column order and OIDs."""
    columns = fetch(url, SNAPSHOT_QUERY, schema)
    for col in columns:
        col.pop("attnum")
        if col["default_expr"] and col["default_expr"].startswith("nextval("):
            col["default_expr"] = "nextval(<sequence>)"
    tables = fetch(
        url,
        "SELECT c.relname, obj_description(c.oid, 'pg_class') AS comment FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r','p') "
        "ORDER BY c.relname",
        schema,
    )
    return {"tables": tables, "columns": columns}


def create_all(url: str, metadata: Any) -> None:
    """Build the schema with SQLAlchemy's own `metadata.create_all` (over its asyncpg dialect)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def go() -> None:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        finally:
            await engine.dispose()

    asyncio.run(go())


def pgmig_cli(*args: str, cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None, input: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pgmig", *args],
        cwd=str(cwd) if cwd else None,
        env=full_env,
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
    )
