"""Fleet benchmark: one 5-revision history on many targets, `pgmig fleet up` against sequential loops.

    python scripts/bench_fleet.py                  # 200 databases, then 200 schemas of one database
    python scripts/bench_fleet.py --targets 20     # a quick run
    python scripts/bench_fleet.py --concurrency 8
    PGMIG_BENCH_DATABASE_URL=postgresql://... python scripts/bench_fleet.py

It starts its own embedded PostgreSQL (or uses PGMIG_BENCH_DATABASE_URL's
server, creating and dropping its own databases there). For each kind of
target (N databases; N schemas of one database) it gives every tool fresh,
empty targets and times, wall clock, bringing all of them to head:

  pgmig fleet up      one process: `pgmig --targets file:targets.txt fleet up --concurrency C`
  pgmig up (loop)     one `pgmig up` process a target, one after the other (for a schema:
                      `pgmig --targets '#tenant' fleet up`, the same run on one target)
  alembic (loop)      one `alembic upgrade head` process a target, one after the other,
                      the same DDL as Alembic revisions (a schema: `schema=` on each op and
                      `version_table_schema`, as tenant set-ups do)

A thread samples pg_stat_activity every 20 ms and keeps the peak of client
sessions (its own not counted). Every target is checked at head after each
tool (the version table's rows); a tool that fails is reported with its
error. Nothing asserts timings: the table is printed (Markdown) for the README.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
URL_ENV = "PGMIG_BENCH_DATABASE_URL"

# (id, pgmig up body, pgmig down body, alembic upgrade body, alembic downgrade body), the same DDL each.
HISTORY: List[Tuple[str, str, str, str, str]] = [
    (
        "r1",
        'await migrator.actor.create_table(table_name="account", columns=[Column("id", "integer", nullable=False), '
        'Column("name", "text")], constraints=[PrimaryKey(["id"])])',
        'await migrator.actor.drop_table(table_name="account")',
        'op.create_table("account", sa.Column("id", sa.Integer, primary_key=True, autoincrement=False), '
        'sa.Column("name", sa.Text), schema=SCHEMA)',
        'op.drop_table("account", schema=SCHEMA)',
    ),
    (
        "r2",
        'await migrator.actor.create_table(table_name="invoice", columns=[Column("id", "integer", nullable=False), '
        'Column("account_id", "integer")], constraints=[PrimaryKey(["id"])])',
        'await migrator.actor.drop_table(table_name="invoice")',
        'op.create_table("invoice", sa.Column("id", sa.Integer, primary_key=True, autoincrement=False), '
        'sa.Column("account_id", sa.Integer), schema=SCHEMA)',
        'op.drop_table("invoice", schema=SCHEMA)',
    ),
    (
        "r3",
        'await migrator.actor.add_foreign_key(table_name="invoice", columns=["account_id"], '
        'referred_table="account", referred_columns=["id"], constraint_name="invoice_account_id_fkey")',
        'await migrator.actor.drop_constraint(table_name="invoice", constraint_name="invoice_account_id_fkey")',
        'op.create_foreign_key("invoice_account_id_fkey", "invoice", "account", ["account_id"], ["id"], '
        "source_schema=SCHEMA, referent_schema=SCHEMA)",
        'op.drop_constraint("invoice_account_id_fkey", "invoice", schema=SCHEMA)',
    ),
    (
        "r4",
        'await migrator.actor.add_column(table_name="account", column_name="email", data_type="text")',
        'await migrator.actor.drop_column(table_name="account", column_name="email")',
        'op.add_column("account", sa.Column("email", sa.Text), schema=SCHEMA)',
        'op.drop_column("account", "email", schema=SCHEMA)',
    ),
    (
        "r5",
        'await migrator.actor.add_index(table_name="account", index_name="account_email", columns=["email"])',
        'await migrator.actor.drop_index(index_name="account_email")',
        'op.create_index("account_email", "account", ["email"], schema=SCHEMA)',
        'op.drop_index("account_email", table_name="account", schema=SCHEMA)',
    ),
]

ALEMBIC_ENV = """\
import asyncio
import os

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

SCHEMA = os.environ.get("BENCH_SCHEMA", "public")


def run(connection):
    context.configure(connection=connection, version_table_schema=SCHEMA)
    with context.begin_transaction():
        context.run_migrations()


async def main():
    engine = create_async_engine(os.environ["BENCH_ALEMBIC_URL"])
    async with engine.connect() as connection:
        await connection.run_sync(run)
        await connection.commit()
    await engine.dispose()


asyncio.run(main())
"""


def write_project(folder: Path) -> None:
    """The pgmig migrations and the Alembic project of the same history, in `folder`."""
    migrations = folder / "migrations"
    versions = folder / "alembic" / "versions"
    migrations.mkdir(parents=True)
    versions.mkdir(parents=True)
    (folder / "pyproject.toml").write_text('[project]\nname = "bench-fleet"\n')
    (folder / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/alembic\n")
    (folder / "alembic" / "env.py").write_text(ALEMBIC_ENV)
    previous: Optional[str] = None
    for number, (rid, up, down, upgrade, downgrade) in enumerate(HISTORY, 1):
        (migrations / f"{number:04d}_{rid}.py").write_text(
            "from pgmig import Column, MigrationRevisionBase, Migrator, PrimaryKey\n\n\n"
            "class MigrationRevision(MigrationRevisionBase):\n"
            f"    up_revision = {rid!r}\n    down_revision = {previous!r}\n\n"
            f"    async def up(self, migrator: Migrator) -> None:\n        {up}\n\n"
            f"    async def down(self, migrator: Migrator) -> None:\n        {down}\n"
        )
        (versions / f"{number:04d}_{rid}.py").write_text(
            "import os\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = {rid!r}\ndown_revision = {previous!r}\n"
            'SCHEMA = os.environ.get("BENCH_SCHEMA", "public")\n\n\n'
            f"def upgrade():\n    {upgrade}\n\n\ndef downgrade():\n    {downgrade}\n"
        )
        previous = rid


@dataclass
class Result:
    kind: str
    tool: str
    targets: int
    seconds: float
    peak: int
    error: Optional[str] = None


class Sampler:
    """Peak client sessions on the server, sampled every 20 ms on its own connection."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            while not self._stop.is_set():
                count = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                    "AND pid <> pg_backend_pid()"
                )
                self.peak = max(self.peak, int(count))
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}


def run(command: List[str], cwd: Path, extra: Optional[dict[str, str]] = None) -> None:
    done = subprocess.run(command, cwd=cwd, env={**env(), **(extra or {})}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])}... exited {done.returncode}: {done.stderr.strip()[-500:]}")


def pgmig(*args: str) -> List[str]:
    return [sys.executable, "-m", "pgmig", *args]


def alembic_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _admin(url: str, statements: List[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _count_at_head(urls_schemas: List[Tuple[str, str]], table: str, column: str) -> int:
    import asyncpg

    at_head = 0
    for url, schema in urls_schemas:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(f'SELECT {column} FROM "{schema}".{table}')  # noqa: S608 - our own names
            at_head += {row[0] for row in rows} >= {"r5"}
        finally:
            await conn.close()
    return at_head


def bench_kind(
    server: object, kind: str, n: int, concurrency: int, folder: Path, log: Callable[[str], None]
) -> List[Result]:
    """Every tool on fresh targets of one kind ("databases" or "schemas")."""
    admin_url: str = server.admin_url  # type: ignore[attr-defined]
    results: List[Result] = []
    tools = ["pgmig fleet up", "pgmig up (loop)", "alembic upgrade head (loop)"]
    for index, tool in enumerate(tools):
        if kind == "databases":
            names = [f"bench_fleet_{index}_{k}" for k in range(n)]
            for name in names:
                asyncio.run(_admin(admin_url, [f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"']))
            targets = [(server.url_for(name), "public") for name in names]  # type: ignore[attr-defined]
        else:
            shared_name = f"bench_fleet_{index}_shared"
            asyncio.run(
                _admin(admin_url, [f'DROP DATABASE IF EXISTS "{shared_name}"', f'CREATE DATABASE "{shared_name}"'])
            )
            shared = server.url_for(shared_name)  # type: ignore[attr-defined]
            asyncio.run(_admin(shared, [f'CREATE SCHEMA "tenant_{k}"' for k in range(n)]))
            targets = [(shared, f"tenant_{k}") for k in range(n)]
        log(f"[{kind}] {tool} on {n} targets...")
        error: Optional[str] = None
        started = time.monotonic()
        with Sampler(admin_url) as sampler:
            try:
                if tool == "pgmig fleet up":
                    lines = [url if kind == "databases" else f"{url}#{schema}" for url, schema in targets]
                    (folder / "targets.txt").write_text("\n".join(lines) + "\n")
                    run(
                        pgmig("--targets", "file:targets.txt", "fleet", "up", "--concurrency", str(concurrency)),
                        folder,
                    )
                elif tool == "pgmig up (loop)":
                    for url, schema in targets:
                        if kind == "databases":
                            run(pgmig("--database-url", url, "up"), folder)
                        else:
                            run(pgmig("--database-url", url, "--targets", f"#{schema}", "fleet", "up"), folder)
                else:
                    for url, schema in targets:
                        run(
                            [sys.executable, "-m", "alembic", "upgrade", "head"],
                            folder,
                            {"BENCH_ALEMBIC_URL": alembic_url(url), "BENCH_SCHEMA": schema},
                        )
            except RuntimeError as exc:
                error = str(exc)
        seconds = time.monotonic() - started
        if error is None:
            table, column = (
                ("pgmig_revisions", "id") if tool.startswith("pgmig") else ("alembic_version", "version_num")
            )
            # Alembic keeps only the head's id; pgmig every applied one: both contain r5 at head.
            done = asyncio.run(_count_at_head(targets, table, column))
            if done != n:
                error = f"only {done} of {n} targets at head"
        results.append(Result(kind, tool, n, seconds, sampler.peak, error))
        log(f"[{kind}] {tool}: {seconds:.1f}s, peak {sampler.peak} sessions" + (f", {error}" if error else ""))
        if kind == "databases":
            for url, _ in targets:
                name = url.split("?")[0].rsplit("/", 1)[1]
                asyncio.run(_admin(admin_url, [f'DROP DATABASE IF EXISTS "{name}"']))
        else:
            asyncio.run(_admin(admin_url, [f'DROP DATABASE IF EXISTS "bench_fleet_{index}_shared"']))
    return results


def table(results: List[Result]) -> str:
    lines = [
        "| targets | tool | wall time | per target | peak server sessions |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.targets} {r.kind} | {r.tool} | failed: {r.error} | | {r.peak} |")
        else:
            lines.append(
                f"| {r.targets} {r.kind} | {r.tool} | {r.seconds:.1f} s | {1000 * r.seconds / r.targets:.0f} ms "
                f"| {r.peak} |"
            )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=200, help="Targets of each kind (default 200).")
    parser.add_argument("--concurrency", type=int, default=4, help="pgmig fleet's --concurrency (default 4).")
    parser.add_argument(
        "--kinds", default="databases,schemas", help="databases, schemas or both (default: databases,schemas)."
    )
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    sys.path.insert(0, str(ROOT))
    from pgmig.testing import ScratchServer

    given = os.environ.get(URL_ENV) or None
    log("starting the embedded PostgreSQL..." if given is None else f"using {URL_ENV}'s server")
    server = ScratchServer(given)
    results: List[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="pgmig-bench-fleet-") as workdir:
            folder = Path(workdir)
            write_project(folder)
            for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
                results += bench_kind(server, kind, args.targets, args.concurrency, folder, log)
    finally:
        server.close()
    print(f"5 revisions; pgmig fleet --concurrency {args.concurrency}; {os.cpu_count()} CPUs\n")
    print(table(results))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
