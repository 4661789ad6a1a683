"""Helpers shared by the tests: run pgmig's engine against a real database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from pgmig.config.discovery import HandlerSet, load_handlers
from pgmig.plan.diff import Plan
from pgmig.plan.engine import apply_plan, diff_both_ways, diff_database, model_context

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


def schemas_of(metadata: Any) -> List[str]:
    """`public`, then every other schema `metadata`'s tables name: what a project of these models manages."""
    return ["public", *sorted({t.schema for t in metadata.tables.values() if t.schema not in (None, "public")})]


def diff(
    url: str,
    metadata: Any,
    schema: str = "public",
    handler_set: Optional[HandlerSet] = None,
    schemas: Sequence[str] = (),
) -> Plan:
    """Diff `url` against `metadata`'s tables of the managed `schemas` (default: `schema` alone)."""
    managed = list(schemas) or [schema]
    tables = [t for t in metadata.sorted_tables if (t.schema or managed[0]) in managed]
    models = model_context(tables, [metadata], managed[0], managed)
    kinds = handler_set or handlers()

    async def go(conn: Any) -> Plan:
        import asyncpg

        # As the CLI does: the catalog is read on two connections sharing a snapshot.
        return await diff_database(
            conn, models, kinds, schema=managed[0], schemas=managed, connect=lambda: asyncpg.connect(url)
        )

    return asyncio.run(_with_conn(url, go))


def both_ways(url: str, metadata: Any) -> "tuple[Plan, Plan]":
    """`up` and `down` of one diff, as `generate` writes them (a second diff would hide a wrong `down`),
    managing every schema the models' tables name (`schemas_of`)."""
    managed = schemas_of(metadata)
    models = model_context(list(metadata.sorted_tables), [metadata], "public", managed)

    async def go(conn: Any) -> "tuple[Plan, Plan]":
        import asyncpg

        return await diff_both_ways(conn, models, handlers(), schemas=managed, connect=lambda: asyncpg.connect(url))

    return asyncio.run(_with_conn(url, go))  # type: ignore[no-any-return]


def apply(url: str, plan: Plan) -> None:
    """Run `plan`'s operations in one transaction."""

    async def go(conn: Any) -> None:
        await apply_plan(conn, plan)

    asyncio.run(_with_conn(url, go))


def migrate(url: str, metadata: Any, schema: str = "public") -> Plan:
    """Diff and apply; return the plan that was applied."""
    plan = diff(url, metadata, schema)
    apply(url, plan)
    return plan


def steps(plan: Plan) -> List[Any]:
    """The plan's operations with each new table's `create_table` as its steps (`add_table`,
    `add_column`, `add_primary_key`, ...): for tests about the order of a plan's parts."""
    from pgmig.ops.table import CreateTable

    return [step for op in plan.operations for step in (op.steps() if isinstance(op, CreateTable) else [op])]


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
    enums: Dict[str, List[str]] = {}
    for row in fetch(
        url,
        "SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1 ORDER BY t.typname, e.enumsortorder",
        schema,
    ):
        enums.setdefault(row["typname"], []).append(row["enumlabel"])
    constraints = fetch(
        url,
        "SELECT c.relname AS table_name, k.contype::text AS type, pg_get_constraintdef(k.oid) AS definition "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND k.contype IN ('p', 'f', 'u', 'c', 'x') ORDER BY 1, 2, 3",
        schema,
    )
    indexes = fetch(
        url,
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1 "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY 1, 2",
        schema,
    )
    return {"tables": tables, "columns": columns, "enums": enums, "constraints": constraints, "indexes": indexes}


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


def pgmig_cli(
    *args: str,
    cwd: Optional[Path] = None,
    env: Optional[Dict[str, str]] = None,
    input: Optional[str] = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess, as a user would (TimeoutExpired after `timeout` seconds)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pgmig", *args],
        cwd=str(cwd) if cwd else None,
        env=full_env,
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
    )


def make_distribution(
    site: Path, name: str, entry_points: Dict[str, Dict[str, str]], files: Dict[str, str], version: str = "1.0"
) -> Path:
    """Write an installed-looking package (dist-info with entry points) into `site`.

    importlib.metadata finds it once `site` is on sys.path (or PYTHONPATH for a
    subprocess), which is how a real `pip install` looks to pgmig.
    """
    site.mkdir(parents=True, exist_ok=True)
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in entries.items())
        lines.append("")
    (dist / "entry_points.txt").write_text("\n".join(lines))
    for relative, content in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return dist


def assert_roundtrip(
    server: Any,
    url: str,
    models_a: Any,
    models_b: Any,
    seed: Sequence[str] = (),
    rows_query: Optional[str] = None,
    rows_survive: bool = True,
) -> Plan:
    """State A -> migrate to B -> diff empty, B equals B-from-scratch, rows kept -> back to A exactly.

    Returns the plan that took A to B so callers can assert on its operations.
    """
    migrate(url, models_a)
    assert diff(url, models_a).is_empty, "models A did not apply cleanly"
    if seed:
        run_sql(url, *seed)
    rows_before = fetch(url, rows_query) if rows_query else None
    snap_a = snapshot(url)

    plan = migrate(url, models_b)
    assert not plan.is_empty, "A and B should differ"
    leftover = diff(url, models_b)
    assert leftover.is_empty, [c.to_json() for c in leftover.changes]
    scratch = server.create_database()
    try:
        create_all(scratch, models_b)
        assert snapshot(url) == snapshot(scratch)
    finally:
        server.drop_database(scratch)
    if rows_query and rows_survive:
        assert fetch(url, rows_query) == rows_before

    back = migrate(url, models_a)
    assert not back.is_empty
    assert diff(url, models_a).is_empty
    assert snapshot(url) == snap_a
    return plan
