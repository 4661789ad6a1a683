"""pgmig's benchmark: reading and comparing a large schema, against Alembic, migra and the catalog itself.

    python scripts/bench.py                      # 100 and 1,000 tables, a few minutes
    python scripts/bench.py --sizes 100,1000,5000
    PGMIG_BENCH_DATABASE_URL=postgresql://... python scripts/bench.py

It starts its own embedded PostgreSQL (or uses the server of
PGMIG_BENCH_DATABASE_URL, creating and dropping its own databases there),
builds a synthetic schema per size with one big DDL script that SQLAlchemy
writes from the same MetaData pgmig compares against, and then times, on
that one database, medians of several rounds in which each tool runs in a
process of its own (a warm-up call, then the timed one), taking turns:

  pgmig           engine.diff_database, everything after the models are imported:
                  build the model objects, read the catalog, normalize, compare
                  (the CLI's way: connect= given, so the catalog is read on two
                  connections sharing a snapshot), with pgmig's own object kinds
                  (tables, columns, enums, constraints, indexes): what Alembic
                  compares, and what a set-up from the README installs
  pgmig+plugins   the same with every installed plugin's kinds too (views,
                  functions...), when plugins are installed: each adds its reads
  catalog floor   the catalog queries pgmig's handlers run, straight through asyncpg
  alembic         autogenerate.compare_metadata, compare_type and compare_server_default on
  migra           Migration(database, database built from the same DDL) where it runs
  pgmig diff      the CLI end to end, as a process (wall time); it must report no change

plus the peak memory of `pgmig diff` at the largest size and the overhead of
`pgmig up` per revision over a chain of 200 one-column revisions.

Alembic, migra and psycopg2 are benchmark-only (`pip install -e .[bench]`);
a tool that is missing or fails is reported in the table with the reason.
Nothing here asserts timings except the goal check it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
SIZES_ENV = "PGMIG_BENCH_TABLES"
URL_ENV = "PGMIG_BENCH_DATABASE_URL"
UP_CHAIN = 200

# -- the synthetic schema ------------------------------------------------------------


def build_metadata(tables: int, seed: int = 8) -> Any:
    """A deterministic schema of `tables` tables; the same call always builds the same MetaData.

    Per table: a serial key, ten columns of mixed types (one a native enum
    from a pool of tables/10 enums), a foreign key to an earlier table, a
    unique and a check constraint, a plain and a partial index.
    """
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    rng = random.Random(seed)
    metadata = sa.MetaData()
    enums = [
        postgresql.ENUM(*[f"v{k}" for k in range(rng.randint(2, 6))], name=f"bench_enum_{e:04d}", metadata=metadata)
        for e in range(max(1, tables // 10))
    ]
    on_delete = [None, "CASCADE", "SET NULL", "RESTRICT"]
    for i in range(tables):
        name = f"t{i:05d}"
        precision = rng.randint(8, 18)
        columns = [
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("qty", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("total", sa.BigInteger),
            sa.Column("body", sa.Text, nullable=False, server_default=""),
            sa.Column("title", sa.String(rng.choice([40, 80, 120, 255]))),
            sa.Column("price", sa.Numeric(precision, rng.randint(0, 4))),
            sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
            sa.Column("doc", postgresql.JSONB),
            sa.Column("token", postgresql.UUID(as_uuid=True), nullable=False),
            sa.Column("kind", enums[i % len(enums)]),
        ]
        if i:
            target = f"t{rng.randrange(i):05d}"
            columns.append(
                sa.Column("parent_id", sa.Integer, sa.ForeignKey(f"{target}.id", ondelete=rng.choice(on_delete)))
            )
        table = sa.Table(
            name,
            metadata,
            *columns,
            sa.UniqueConstraint("token"),
            sa.CheckConstraint("qty >= 0 AND price >= 0", name=f"{name}_positive"),
        )
        sa.Index(f"ix_{name}_title", table.c.title)
        sa.Index(f"ix_{name}_recent", table.c.created_at, postgresql_where=table.c.active)
    return metadata


def bench_models() -> Any:
    """The `--models` target of the `pgmig diff` process: the schema of PGMIG_BENCH_TABLES tables."""
    return build_metadata(int(os.environ[SIZES_ENV]))


def ddl_script(metadata: Any) -> List[str]:
    """Everything `metadata.create_all` would send, in order (run as a few big scripts, not thousands of round trips)."""
    import sqlalchemy as sa

    statements: List[str] = []

    def collect(sql: Any, *multiparams: Any, **params: Any) -> None:
        statements.append(str(sql.compile(dialect=engine.dialect)).strip())

    engine = sa.create_mock_engine("postgresql+asyncpg://", collect)
    metadata.create_all(engine, checkfirst=False)
    return statements


# -- timing helpers --------------------------------------------------------------------


@dataclass
class Result:
    """Seconds of each run of one measurement, or why it could not run."""

    runs: List[float] = field(default_factory=list)
    error: Optional[str] = None
    parts: Dict[str, List[float]] = field(default_factory=dict)
    note: str = ""

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.runs) if self.runs else None

    def part(self, name: str) -> Optional[float]:
        values = self.parts.get(name)
        return statistics.median(values) if values else None


Runner = Callable[[], Any]


TOOLS = ("pgmig", "floor", "alembic", "migra", "pgmig+plugins")


def bench_handlers(with_plugins: bool) -> Any:
    """pgmig's built-in handlers (whatever else the environment has installed), or all of them."""
    from pgmig.config.discovery import HandlerSet, load_handlers

    loaded = load_handlers()
    if with_plugins:
        return loaded
    return HandlerSet(
        [item for item in loaded.loaded if type(item.handler).__module__.startswith("pgmig.schema.handlers.")]
    )


def plugin_kinds() -> List[str]:
    """The object kinds installed plugins add to pgmig's own."""
    return [
        item.handler.kind
        for item in bench_handlers(True).loaded
        if not type(item.handler).__module__.startswith("pgmig.schema.handlers.")
    ]


def runner_for(tool: str, url: str, tables: int, target: Optional[str]) -> Tuple[Runner, List[int]]:
    """The timed call of one tool and the counter it fills (changes, differences, statements)."""
    if tool == "floor":
        return time_floor(url), [0]
    metadata = build_metadata(tables)
    if tool in ("pgmig", "pgmig+plugins"):
        return time_pgmig(url, metadata, with_plugins=tool == "pgmig+plugins")
    run, counter, why = time_alembic(url, metadata) if tool == "alembic" else time_migra(url, target or "")
    if run is None:
        raise RuntimeError(why)
    return run, counter


def worker(tool: str, url: str, tables: int, target: Optional[str]) -> None:
    """`--worker`: one tool in a process of its own, a warm-up run then a timed one; JSON on stdout."""
    import json

    try:
        run, counter = runner_for(tool, url, tables, target)
        run()  # warm-up: imports, caches, the thread pool
        gc.collect()
        started = time.perf_counter()
        parts = run()
        elapsed = time.perf_counter() - started
        print(json.dumps({"seconds": elapsed, "parts": parts if isinstance(parts, dict) else {}, "count": counter[0]}))
    except Exception as exc:  # a tool that cannot run is reported, not fatal
        print(json.dumps({"error": f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160]}))


def measure_in_processes(
    tools: Sequence[str], url: str, tables: int, target: Optional[str], repeat: int
) -> Tuple[Dict[str, Result], Dict[str, int]]:
    """Each tool's timings, one process per tool per round, the tools taking turns in each round.

    A process of its own means no tool runs on a heap, caches or a MetaData
    another tool has been through (measured in one process, pgmig ran ~20%
    slower after Alembic); taking turns means a slow spell of a shared
    machine falls on every tool alike.
    """
    import json

    results = {tool: Result() for tool in tools}
    counts: Dict[str, int] = {}
    active = list(tools)
    for _ in range(repeat):
        for tool in list(active):
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                tool,
                "--url",
                url,
                "--tables",
                str(tables),
            ]
            if target:
                command += ["--target", target]
            done = subprocess.run(command, capture_output=True, text=True, cwd=str(ROOT))
            lines = done.stdout.strip().splitlines()
            outcome = (
                json.loads(lines[-1]) if lines else {"error": f"exit {done.returncode}: {done.stderr.strip()[-160:]}"}
            )
            if "error" in outcome:
                results[tool].runs, results[tool].error = [], outcome["error"]
                active.remove(tool)
                continue
            results[tool].runs.append(outcome["seconds"])
            for part, seconds in outcome["parts"].items():
                results[tool].parts.setdefault(part, []).append(seconds)
            counts[tool] = outcome["count"]
    return results, counts


def fmt(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


# -- the measurements ------------------------------------------------------------------


async def _connect(url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(url)


def time_pgmig(url: str, metadata: Any, with_plugins: bool = False) -> Tuple[Runner, List[int]]:
    """engine.diff_database on one open connection; phases from pgmig's own Timings."""
    from pgmig.plan.engine import diff_database, model_context
    from pgmig.timing import Timings

    handlers = bench_handlers(with_plugins)
    tables = [t for t in metadata.sorted_tables if (t.schema or "public") == "public"]
    changes = [0]

    async def once() -> Dict[str, float]:
        conn = await _connect(url)
        try:
            timings = Timings()
            models = model_context(tables, [metadata], "public")
            plan = await diff_database(conn, models, handlers, timings=timings, connect=lambda: _connect(url))
            changes[0] = len(plan.changes)
            return dict(timings.seconds)
        finally:
            await conn.close()

    return (lambda: asyncio.run(once())), changes


def floor_queries() -> List[Tuple[str, str, Tuple[str, ...]]]:
    """(name, query, argument names) of the catalog reads pgmig's handlers make, straight from their modules."""
    from pgmig.schema.handlers import column, constraint, enum, index, table

    return [
        ("tables", table.TABLES_QUERY, ("schema", "version_table")),
        ("columns", column.COLUMNS_QUERY, ("schema", "version_table")),
        ("constraints", constraint.CONSTRAINTS_QUERY, ("schema", "version_table")),
        ("indexes", index.INDEXES_QUERY, ("schema", "version_table")),
        ("enums", enum.ENUMS_QUERY, ("schema",)),
        ("enum columns", enum.ENUM_COLUMNS_QUERY, ("schema",)),
    ]


def time_floor(url: str) -> Runner:
    """The catalog queries alone, one after the other on one connection: what reading can cost at least."""
    values = {"schema": "public", "version_table": "pgmig_revisions"}
    queries = floor_queries()

    async def once() -> Dict[str, float]:
        conn = await _connect(url)
        parts: Dict[str, float] = {}
        try:
            for name, query, names in queries:
                started = time.perf_counter()
                await conn.fetch(query, *[values[n] for n in names])
                parts[name] = time.perf_counter() - started
        finally:
            await conn.close()
        return parts

    return lambda: asyncio.run(once())


def time_alembic(url: str, metadata: Any) -> Tuple[Optional[Runner], List[int], str]:
    """compare_metadata over SQLAlchemy's asyncpg dialect (a sync Connection through run_sync)."""
    try:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext
        from sqlalchemy.ext.asyncio import create_async_engine
    except ImportError as exc:
        return None, [0], f"not installed ({exc.name}): pip install -e .[bench]"
    diffs = [0]

    def compare(sync_conn: Any) -> int:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True, "compare_server_default": True})
        return len(compare_metadata(context, metadata))

    async def once() -> None:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            async with engine.connect() as conn:
                diffs[0] = await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return (lambda: asyncio.run(once())), diffs, ""


def time_migra(url: str, target_url: str) -> Tuple[Optional[Runner], List[int], str]:
    """migra between the database and a second one built from the same DDL (how migra diffs models)."""
    try:
        from migra import Migration
        from sqlbag import S
    except ImportError as exc:
        return None, [0], f"not installed ({exc.name}): pip install -e .[bench]"
    statements = [0]
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3; migra's stack is tested on psycopg2.
    current_url, target_url = (u.replace("postgresql://", "postgresql+psycopg2://", 1) for u in (url, target_url))

    def once() -> None:
        with S(current_url) as current, S(target_url) as target:
            migration = Migration(current, target)
            migration.set_safety(False)
            migration.add_all_changes()
            statements[0] = len(migration.statements)

    return once, statements, ""


def pgmig_command(url: str, *args: str) -> List[str]:
    return [sys.executable, "-m", "pgmig", "--database-url", url, *args]


def _run_with_rusage(command: Sequence[str], env: Dict[str, str], cwd: str) -> Tuple[int, str, str, float, int]:
    """(exit code, stdout, stderr, wall seconds, peak RSS in KiB) of one process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return process.returncode, out.read(), err.read(), wall, usage.ru_maxrss


def _cli_env(tables: int) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env[SIZES_ENV] = str(tables)
    return env


@dataclass
class DiffRun:
    wall: Result
    peak_kib: int = 0
    no_change: bool = False
    stdout: str = ""
    timings: Dict[str, float] = field(default_factory=dict)


def time_cli_diff(url: str, tables: int, repeat: int, workdir: str) -> DiffRun:
    """`pgmig diff --timings` as a user runs it; checks that the unchanged schema reports no change."""
    command = pgmig_command(url, "--models", f"{Path(__file__).resolve()}:bench_models", "diff", "--timings")
    env = _cli_env(tables)
    run = DiffRun(Result())
    phases: Dict[str, List[float]] = {}
    for attempt in range(repeat + 1):  # the first one warms the file cache and is not counted
        code, stdout, stderr, wall, peak = _run_with_rusage(command, env, workdir)
        if code != 0:
            run.wall.error = f"exit {code}: {(stderr.strip().splitlines() or ['?'])[-1][:160]}"
            run.stdout = stdout
            return run
        run.stdout = stdout
        run.no_change = "No changes" in stdout
        run.peak_kib = max(run.peak_kib, peak)
        if attempt:
            run.wall.runs.append(wall)
            for line in stderr.splitlines():
                if line.startswith("timing: "):
                    _, phase, seconds = line.split()
                    phases.setdefault(phase, []).append(float(seconds.rstrip("s")))
    run.timings = {phase: statistics.median(values) for phase, values in phases.items()}
    return run


# -- `pgmig up`: overhead per revision ---------------------------------------------------

REVISION_TEMPLATE = '''"""add column c{n:03d}"""

from pgmig import MigrationRevisionBase, Migrator


class MigrationRevision(MigrationRevisionBase):
    up_revision = "{rid}"
    down_revision = {down}

    async def up(self, migrator: Migrator):
        await migrator.actor.add_column(table_name="bench_up", column_name="c{n:03d}", data_type="integer")

    async def down(self, migrator: Migrator):
        await migrator.actor.drop_column(table_name="bench_up", column_name="c{n:03d}")
'''


def write_chain(folder: Path, count: int) -> List[List[str]]:
    """`count` hand-written revisions, the first creating the table; returns each one's SQL."""
    from pgmig.ops.column import AddColumn
    from pgmig.ops.table import AddTable

    folder.mkdir(parents=True)
    sql: List[List[str]] = []
    previous: Optional[str] = None
    for n in range(count):
        rid = f"20250101_{n:06d}_bench"
        text = REVISION_TEMPLATE.format(n=n, rid=rid, down=repr(previous))
        ops = [AddColumn(table_name="bench_up", column_name=f"c{n:03d}", data_type="integer")]
        if n == 0:
            text = text.replace(
                "    async def up(self, migrator: Migrator):\n",
                '    async def up(self, migrator: Migrator):\n        await migrator.actor.add_table(table_name="bench_up")\n',
            )
            ops.insert(0, AddTable(table_name="bench_up"))
        (folder / f"{rid}_add_column_c{n:03d}.py").write_text(text, encoding="utf-8")
        sql.append([s for op in ops for s in op.statements()])
        previous = rid
    return sql


@dataclass
class UpRun:
    up: Result
    direct: Result
    noop: Result


def time_up(server: Any, repeat: int, workdir: Path) -> UpRun:
    """Wall time of `pgmig up` on a fresh database, against the same SQL run by hand.

    The hand-run baseline does what pgmig must do at least: one connection,
    one transaction per revision. The no-op `pgmig up` (already at head) shows
    the fixed cost (interpreter, imports, loading 200 files) inside the total.
    """
    project = workdir / "up_project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.pgmig]\nmigrations_dir = "migrations"\n', encoding="utf-8")
    revisions_sql = write_chain(project / "migrations", UP_CHAIN)
    env = _cli_env(0)
    result = UpRun(Result(), Result(), Result())

    async def direct(url: str) -> None:
        conn = await _connect(url)
        try:
            for statements in revisions_sql:
                async with conn.transaction():
                    for statement in statements:
                        await conn.execute(statement)
        finally:
            await conn.close()

    for _ in range(repeat):
        url = server.create_database()
        try:
            code, stdout, stderr, wall, _ = _run_with_rusage(pgmig_command(url, "up"), env, str(project))
            if code != 0:
                result.up.error = f"exit {code}: {(stderr.strip().splitlines() or ['?'])[-1][:160]}"
                return result
            result.up.runs.append(wall)
            code, stdout, stderr, wall, _ = _run_with_rusage(pgmig_command(url, "up"), env, str(project))
            if code == 0 and "Already at head" in stdout:
                result.noop.runs.append(wall)
        finally:
            server.drop_database(url)
        url = server.create_database()
        try:
            started = time.perf_counter()
            asyncio.run(direct(url))
            result.direct.runs.append(time.perf_counter() - started)
        finally:
            server.drop_database(url)
    return result


# -- profiling ---------------------------------------------------------------------------


def profile_pgmig(url: str, metadata: Any, top: int) -> str:
    """cProfile of one diff_database (after a warm-up run), sorted by own time and by cumulative time."""
    import cProfile
    import io
    import pstats

    time_pgmig(url, metadata)[0]()  # warm-up: imports, handler loading
    from pgmig.config.discovery import load_handlers
    from pgmig.plan.engine import diff_database, model_context

    handlers = load_handlers()
    tables = list(metadata.sorted_tables)

    async def once() -> None:
        conn = await _connect(url)
        try:
            await diff_database(
                conn, model_context(tables, [metadata], "public"), handlers, connect=lambda: _connect(url)
            )
        finally:
            await conn.close()

    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(once())
    profiler.disable()
    text = io.StringIO()
    for order in ("tottime", "cumulative"):
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order).print_stats(top)
    return text.getvalue()


# -- the run -----------------------------------------------------------------------------


@dataclass
class SizeReport:
    tables: int
    counts: Dict[str, int]
    build_seconds: float
    pgmig: Result
    pgmig_changes: int
    floor: Result
    alembic: Result
    alembic_diffs: int
    migra: Result
    migra_statements: int
    cli: DiffRun
    pgmig_plugins: Result = field(default_factory=Result)
    plugins: Tuple[str, ...] = ()


async def _catalog_counts(url: str) -> Dict[str, int]:
    conn = await _connect(url)
    try:
        row = await conn.fetchrow(
            """
            SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public' AND c.relkind = 'r') AS tables,
                   (SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
                   (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                     WHERE n.nspname = 'public' AND t.typtype = 'e') AS enums,
                   (SELECT count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND contype = 'f') AS fks,
                   (SELECT count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND contype IN ('u', 'c')) AS uniques_checks,
                   (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     WHERE c.relnamespace = 'public'::regnamespace) AS indexes,
                   current_setting('server_version') AS version
            """
        )
        return dict(row)
    finally:
        await conn.close()


async def _execute_script(url: str, statements: List[str], chunk: int = 2000) -> None:
    """One simple-protocol round trip per chunk; each chunk is one transaction, so its locks must fit."""
    conn = await _connect(url)
    try:
        for start in range(0, len(statements), chunk):
            await conn.execute(";\n".join(statements[start : start + chunk]))
    finally:
        await conn.close()


def bench_size(
    server: Any, tables: int, repeat: int, workdir: str, tools: set, log: Callable[[str], None]
) -> Tuple[SizeReport, str]:
    metadata = build_metadata(tables)
    script = ddl_script(metadata)
    url = server.create_database(f"pgmig_bench_{tables}")
    started = time.perf_counter()
    asyncio.run(_execute_script(url, script))
    build = time.perf_counter() - started
    counts = asyncio.run(_catalog_counts(url))
    log(f"[{tables} tables] built in {build:.1f}s: {counts}")

    plugins = tuple(plugin_kinds())
    tools_here = [
        tool for tool in TOOLS if tool in ("pgmig", "floor") or tool in tools or (tool == "pgmig+plugins" and plugins)
    ]
    target: Optional[str] = None
    if "migra" in tools_here:
        target = server.create_database(f"pgmig_bench_{tables}_target")
        asyncio.run(_execute_script(target, script))
    log(f"[{tables} tables] {repeat} rounds, each tool in a process of its own: {', '.join(tools_here)}...")
    try:
        results, counters = measure_in_processes(tools_here, url, tables, target, repeat)
    finally:
        if target is not None:
            server.drop_database(target)
    for tool in ("alembic", "migra"):
        if tool not in tools_here:
            results[tool] = Result(error=f"skipped (--skip {tool})")
    pgmig, floor, alembic, migra = (results[name] for name in ("pgmig", "floor", "alembic", "migra"))
    pgmig_changes_found = counters.get("pgmig", -1) + counters.get("pgmig+plugins", 0)
    alembic_diffs = counters.get("alembic", 0)
    migra_statements = counters.get("migra", 0)
    log(f"[{tables} tables] pgmig diff (process)...")
    cli = time_cli_diff(url, tables, repeat, workdir)
    report = SizeReport(
        tables,
        counts,
        build,
        pgmig,
        pgmig_changes_found,
        floor,
        alembic,
        alembic_diffs,
        migra,
        migra_statements,
        cli,
        results.get("pgmig+plugins", Result(error="no plugins installed")),
        plugins,
    )
    return report, url


def machine_info(version: str) -> List[str]:
    import importlib.metadata as md

    def version_of(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"machine: {os.cpu_count()} cpus ({cpu or platform.processor() or platform.machine()}), {platform.system()} {platform.release()}",
        f"python {platform.python_version()}, PostgreSQL {version}",
        "pgmig {}, SQLAlchemy {}, asyncpg {}, alembic {}, migra {}".format(
            *(version_of(n) for n in ("pgmig", "sqlalchemy", "asyncpg", "alembic", "migra"))
        ),
    ]


def render(reports: List[SizeReport], up: Optional[UpRun], repeat_of: Dict[int, int]) -> List[str]:
    lines: List[str] = []
    header = f"{'':34}" + "".join(f"{r.tables:>14,} tables" for r in reports)
    lines.append(header)

    def row(label: str, values: List[str]) -> None:
        lines.append(f"{label:34}" + "".join(f"{v:>21}" for v in values))

    row("schema: columns / enums", [f"{r.counts['columns']:,} / {r.counts['enums']}" for r in reports])
    row(
        "  fks / uniques+checks / indexes",
        [f"{r.counts['fks']}/{r.counts['uniques_checks']}/{r.counts['indexes']}" for r in reports],
    )
    row("runs (median of)", [str(repeat_of[r.tables]) for r in reports])
    row("pgmig diff_database (all phases)", [fmt(r.pgmig.median) if r.pgmig.runs else "failed" for r in reports])
    if any(r.plugins for r in reports):
        row(
            "  with the installed plugins too",
            [fmt(r.pgmig_plugins.median) if r.pgmig_plugins.runs else "-" for r in reports],
        )
    row("  introspect (overlaps load)", [fmt(r.pgmig.part("introspect")) for r in reports])
    row("  load: build + normalize models", [fmt(r.pgmig.part("load")) for r in reports])
    row("  compare", [fmt(r.pgmig.part("compare")) for r in reports])
    row("  changes found (must be 0)", [str(r.pgmig_changes) for r in reports])
    row("raw catalog floor", [fmt(r.floor.median) for r in reports])
    row("alembic compare_metadata", [fmt(r.alembic.median) if r.alembic.runs else "n/a" for r in reports])
    row("  differences it reports", [str(r.alembic_diffs) if r.alembic.runs else "-" for r in reports])
    row("migra (db vs db)", [fmt(r.migra.median) if r.migra.runs else "n/a" for r in reports])
    row(
        "pgmig diff (process, wall)" + (" +plugins" if any(r.plugins for r in reports) else ""),
        [fmt(r.cli.wall.median) if r.cli.wall.runs else "failed" for r in reports],
    )
    row("  'No changes' reported", ["yes" if r.cli.no_change else "NO" for r in reports])
    row("  peak RSS", [f"{r.cli.peak_kib / 1024:.0f} MiB" if r.cli.peak_kib else "-" for r in reports])
    row("alembic / pgmig", [ratio(r.alembic.median, r.pgmig.median) for r in reports])
    row("migra / pgmig", [ratio(r.migra.median, r.pgmig.median) for r in reports])
    row("pgmig / catalog floor", [ratio(r.pgmig.median, r.floor.median) for r in reports])
    if any(r.plugins for r in reports):
        row("alembic / pgmig+plugins", [ratio(r.alembic.median, r.pgmig_plugins.median) for r in reports])
    plugins = next((r.plugins for r in reports if r.plugins), ())
    if plugins:
        lines.append(
            f"pgmig measures its own kinds (what Alembic compares); +plugins adds the installed plugins' kinds: {', '.join(plugins)}"
        )
    for r in reports:
        for name, result in (
            ("pgmig", r.pgmig),
            ("alembic", r.alembic),
            ("migra", r.migra),
            ("pgmig diff", r.cli.wall),
        ):
            if result.error:
                lines.append(f"note: {name} at {r.tables:,} tables: {result.error}")
        if r.cli.timings:
            lines.append(
                f"pgmig diff --timings at {r.tables:,} tables: "
                + ", ".join(f"{k} {v:.3f}s" for k, v in r.cli.timings.items())
            )
        floor = ", ".join(f"{k} {fmt(r.floor.part(k))}" for k in r.floor.parts)
        lines.append(f"catalog floor at {r.tables:,} tables: {floor}")
    if up is not None:
        lines.append("")
        if up.up.error:
            lines.append(f"pgmig up ({UP_CHAIN} revisions): failed: {up.up.error}")
        else:
            total, direct, noop = up.up.median, up.direct.median, up.noop.median
            overhead = (total or 0) - (direct or 0)
            lines.append(
                f"pgmig up, {UP_CHAIN} one-column revisions: {fmt(total)} wall; same SQL by hand "
                f"(one connection, a transaction per revision): {fmt(direct)}"
            )
            lines.append(
                f"  overhead {fmt(overhead)} = {overhead / UP_CHAIN * 1000:.1f} ms per revision"
                + (
                    f" (of which {fmt(noop)} is the fixed cost of a no-op `pgmig up`: "
                    f"{(overhead - noop) / UP_CHAIN * 1000:.1f} ms per revision beyond it)"
                    if noop
                    else ""
                )
            )
    return lines


def goal_check(reports: List[SizeReport]) -> List[str]:
    """The issue's goal at 1,000 tables (or the largest size run)."""
    target = next((r for r in reports if r.tables == 1000), reports[-1])
    lines = [f"goal at {target.tables:,} tables:"]
    p, a, f = target.pgmig.median, target.alembic.median, target.floor.median
    if p and a:
        lines.append(
            f"  >= 10x faster than alembic (all of pgmig's phases, its own kinds): {a / p:.1f}x -> {'PASS' if a / p >= 10 else 'FAIL'}"
        )
    else:
        lines.append("  >= 10x faster than alembic: not measured")
    if p and f:
        lines.append(
            f"  <= 2x the catalog floor (all of pgmig's phases): {p / f:.1f}x -> {'PASS' if p / f <= 2 else 'FAIL'}"
        )
    no_change = target.pgmig_changes == 0 and target.cli.no_change
    lines.append(f"  pgmig diff reports no change on the unchanged schema: {'PASS' if no_change else 'FAIL'}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="100,1000", help="comma-separated table counts (default 100,1000; 5000 takes longer)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="runs per measurement, median reported (default 5; at most 2 above 1,000 tables)",
    )
    parser.add_argument("--skip", default="", help="comma-separated: alembic, migra, up")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also cProfile pgmig at the largest size and print the top N lines",
    )
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--tables", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        sys.path.insert(0, str(ROOT))
        worker(args.worker, args.url, args.tables, args.target)
        return 0
    sizes = sorted({int(s.replace("_", "").replace(",", "")) for s in args.sizes.split(",") if s.strip()})
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    tools = {"alembic", "migra", "up"} - skip
    repeat_of = {n: args.repeat if n <= 1000 else max(1, min(args.repeat, 2)) for n in sizes}

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    sys.path.insert(0, str(ROOT))
    from pgmig.testing import ScratchServer

    given = os.environ.get(URL_ENV) or None
    log("starting the embedded PostgreSQL..." if given is None else "using PGMIG_BENCH_DATABASE_URL's server")
    server = ScratchServer(given)
    reports: List[SizeReport] = []
    urls: List[str] = []
    up: Optional[UpRun] = None
    profile = ""
    try:
        with tempfile.TemporaryDirectory(prefix="pgmig-bench-") as workdir:
            for n in sizes:
                report, url = bench_size(server, n, repeat_of[n], workdir, tools, log)
                reports.append(report)
                urls.append(url)
            if args.profile:
                log(f"[{sizes[-1]} tables] profiling pgmig...")
                profile = profile_pgmig(urls[-1], build_metadata(sizes[-1]), args.profile)
            if "up" in tools:
                log(f"pgmig up over {UP_CHAIN} revisions...")
                up = time_up(server, min(args.repeat, 3), Path(workdir))
    finally:
        for url in urls:
            server.drop_database(url)
        server.close()

    lines = machine_info(str(reports[0].counts["version"])) + [""] + render(reports, up, repeat_of)
    lines += [""] + goal_check(reports)
    print("\n".join(lines))
    if profile:
        print("\n" + profile)
    failed = any(r.pgmig_changes or not r.cli.no_change for r in reports)
    if failed:
        print("\nFAIL: pgmig reported changes on an unchanged schema:", file=sys.stderr)
        for r in reports:
            if not r.cli.no_change:
                print(textwrap.indent(r.cli.stdout[:4000], "  "), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
