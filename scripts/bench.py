"""pgmig's benchmark: reading and comparing a large schema, against Alembic, migra and the catalog itself.

    python scripts/bench.py                      # the mixed schema at 100 and 1,000 tables, four more shapes at 1,000
    python scripts/bench.py --quick              # everything at 100 tables, 2 rounds: a few minutes
    python scripts/bench.py --sizes 100,1000,5000
    python scripts/bench.py --shape enum-partial,identity
    python scripts/bench.py --sizes 1000 --baseline main    # pgmig at main next to the working tree
    PGMIG_BENCH_DATABASE_URL=postgresql://... python scripts/bench.py

It starts its own embedded PostgreSQL (or uses the server of
PGMIG_BENCH_DATABASE_URL, creating and dropping its own databases there),
builds a synthetic schema per shape and size with one big DDL script that
SQLAlchemy writes from the same MetaData the tools compare against
(scripts/bench_shapes.py: `mixed`, this benchmark's own, at every --sizes;
`enum-partial`, `identity`, `named-checks` and `expression-index` at
--shape-tables, 1,000 by default, as is `mixed`), and then times, on that
database, medians of several rounds in which each tool runs in a process of
its own (a warm-up call, then the timed one), taking turns:

  pgmig           engine.diff_database, everything after the models are imported:
                  build the model objects, read the catalog, normalize, compare
                  (the CLI's way: connect= given, so the catalog is read on two
                  connections sharing a snapshot), with pgmig's own object kinds
                  (tables, columns, enums, constraints, indexes): what Alembic
                  compares, and what a set-up from the README installs
  pgmig@REF       the same with the pgmig of git ref REF (--baseline REF): its own
                  checkout and virtualenv under .bench/, the same worker code
  pgmig+plugins   the same with every installed plugin's kinds too (views,
                  functions...), when plugins are installed: each adds its reads
  catalog floor   the catalog queries pgmig's handlers run, straight through asyncpg
  alembic         autogenerate.compare_metadata, compare_type and compare_server_default on
  migra           Migration(database, database built from the same DDL) where it runs
  pgmig diff      the CLI end to end, as a process (wall time); it must report no change

(pgmig+plugins, migra and `pgmig diff` on the mixed shape only), plus the
peak memory of `pgmig diff` at the largest size and the overhead of
`pgmig up` per revision over a chain of 200 one-column revisions.

Alembic, migra and psycopg2 are benchmark-only (`pip install -e .[bench]`);
a tool that is missing or fails is reported in the table with the reason.
Nothing here asserts timings: the goal check only prints. The exit status is
1 when the working tree's pgmig reports a change on an unchanged schema.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # `pgmig diff --models scripts/bench.py:bench_models` imports this file by path
    sys.path.insert(0, str(HERE))

import bench_pgmig  # noqa: E402
import bench_shapes  # noqa: E402

ROOT = HERE.parent
SIZES_ENV = "PGMIG_BENCH_TABLES"
SHAPE_ENV = "PGMIG_BENCH_SHAPE"
URL_ENV = "PGMIG_BENCH_DATABASE_URL"
UP_CHAIN = 200
MIXED = bench_shapes.DEFAULT_SHAPE
NOW = "pgmig"

# -- the synthetic schema ------------------------------------------------------------


def bench_models() -> Any:
    """The `--models` target of the `pgmig diff` process: PGMIG_BENCH_TABLES tables of PGMIG_BENCH_SHAPE."""
    return bench_shapes.build_metadata(os.environ.get(SHAPE_ENV, MIXED), int(os.environ[SIZES_ENV]))


PROOF_TABLE = "bench_proof_new"


def proof_models() -> Any:
    """The `--models` target of the proof's `pgmig generate`: bench_models() and one new table to create."""
    import sqlalchemy as sa

    metadata = bench_models()
    sa.Table(PROOF_TABLE, metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.Text))
    return metadata


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


@dataclass(frozen=True)
class Contender:
    """One measured column: `tool` run by `python`, whose worker puts the pgmig checkout `root` first on sys.path.

    The working tree's tools run on this interpreter; a baseline's pgmig on
    its own virtualenv's (scripts/bench_baseline.py), the worker code being
    this file either way, so both are measured alike.
    """

    name: str
    tool: str
    python: str = sys.executable
    root: str = str(ROOT)


def runner_for(
    tool: str, url: str, shape: str, tables: int, target: Optional[str]
) -> Tuple[Runner, List[int], List[str]]:
    """The timed call of one tool, the counter it fills (changes, differences, statements) and pgmig's first changes."""
    if tool == "floor":
        return bench_pgmig.floor_runner(url), [0], []
    metadata = bench_shapes.build_metadata(shape, tables)
    if tool in ("pgmig", "pgmig+plugins"):
        return bench_pgmig.diff_runner(url, metadata, with_plugins=tool == "pgmig+plugins")
    run, counter, why = time_alembic(url, metadata) if tool == "alembic" else time_migra(url, target or "")
    if run is None:
        raise RuntimeError(why)
    return run, counter, []


def worker(tool: str, url: str, shape: str, tables: int, target: Optional[str]) -> None:
    """`--worker`: one tool in a process of its own, a warm-up run then a timed one; JSON on stdout."""
    try:
        run, counter, sample = runner_for(tool, url, shape, tables, target)
        run()  # warm-up: imports, caches, the thread pool
        gc.collect()
        started = time.perf_counter()
        parts = run()
        elapsed = time.perf_counter() - started
        outcome: Dict[str, Any] = {
            "seconds": elapsed,
            "parts": parts if isinstance(parts, dict) else {},
            "count": counter[0],
            "sample": sample,
        }
        if tool in ("pgmig", "pgmig+plugins"):
            outcome["where"] = bench_pgmig.where()
        print(json.dumps(outcome))
    except Exception as exc:  # a tool that cannot run is reported, not fatal
        print(json.dumps({"error": f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160]}))


@dataclass
class Measured:
    """Each contender's timings, with what it counted (changes, differences) and pgmig's first changes."""

    results: Dict[str, Result] = field(default_factory=dict)
    counts: Dict[str, int] = field(default_factory=dict)
    samples: Dict[str, List[str]] = field(default_factory=dict)


def _one_process(contender: Contender, url: str, shape: str, tables: int, target: Optional[str]) -> Dict[str, Any]:
    """Run the worker of `contender` once; its JSON outcome (or an error)."""
    command = [contender.python, str(Path(__file__).resolve()), "--worker", contender.tool, "--url", url]
    command += ["--shape", shape, "--tables", str(tables), "--root", contender.root]
    if target:
        command += ["--target", target]
    done = subprocess.run(command, capture_output=True, text=True, cwd=contender.root)
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-160:]}"}
    outcome: Dict[str, Any] = json.loads(lines[-1])
    where = outcome.get("where")
    if where is not None and Path(where).resolve().parent != Path(contender.root).resolve():
        # The baseline's virtualenv must import the baseline's pgmig, or the comparison is void.
        return {"error": f"measured the pgmig in {where}, not the one in {contender.root}"}
    return outcome


def measure_in_processes(
    contenders: Sequence[Contender], url: str, shape: str, tables: int, target: Optional[str], repeat: int
) -> Measured:
    """Each contender's timings, one process per contender per round, the contenders taking turns in each round.

    A process of its own means no tool runs on a heap, caches or a MetaData
    another tool has been through (measured in one process, pgmig ran ~20%
    slower after Alembic); taking turns means a slow spell of a shared
    machine falls on every tool alike, the baseline's pgmig included.
    """
    measured = Measured({c.name: Result() for c in contenders})
    active = list(contenders)
    for _ in range(repeat):
        for contender in list(active):
            outcome = _one_process(contender, url, shape, tables, target)
            result = measured.results[contender.name]
            if "error" in outcome:
                result.runs, result.error = [], outcome["error"]
                active.remove(contender)
                continue
            result.runs.append(outcome["seconds"])
            for part, seconds in outcome["parts"].items():
                result.parts.setdefault(part, []).append(seconds)
            measured.counts[contender.name] = outcome["count"]
            measured.samples[contender.name] = outcome.get("sample", [])
    return measured


def fmt(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def spread(result: Result) -> str:
    """`fastest-slowest` of a measurement's runs."""
    fastest, slowest = (fmt(min(result.runs)), fmt(max(result.runs))) if result.runs else ("-", "-")
    return fastest if fastest == slowest else f"{fastest}-{slowest}"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


# -- the measurements ------------------------------------------------------------------


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
        # Untyped packages, imported by name so mypy does not look for their stubs.
        migration_class = importlib.import_module("migra").Migration
        session = importlib.import_module("sqlbag").S
    except ImportError as exc:
        return None, [0], f"not installed ({exc.name}): pip install -e .[bench]"
    statements = [0]
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3; migra's stack is tested on psycopg2.
    current_url, target_url = (u.replace("postgresql://", "postgresql+psycopg2://", 1) for u in (url, target_url))

    def once() -> None:
        with session(current_url) as current, session(target_url) as target:
            migration = migration_class(current, target)
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


def _cli_env(tables: int, shape: str = MIXED) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env[SIZES_ENV] = str(tables)
    env[SHAPE_ENV] = shape
    return env


@dataclass
class DiffRun:
    wall: Result
    peak_kib: int = 0
    no_change: bool = False
    stdout: str = ""
    timings: Dict[str, float] = field(default_factory=dict)


def time_cli_diff(url: str, shape: str, tables: int, repeat: int, workdir: str) -> DiffRun:
    """`pgmig diff --timings` as a user runs it; checks that the unchanged schema reports no change."""
    command = pgmig_command(url, "--models", f"{Path(__file__).resolve()}:bench_models", "diff", "--timings")
    env = _cli_env(tables, shape)
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
        ops: List[Any] = [AddColumn(table_name="bench_up", column_name=f"c{n:03d}", data_type="integer")]
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
        conn = await bench_pgmig.connect(url)
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


# -- the proof: what it adds to `pgmig generate` (--proof) -------------------------------


@dataclass
class ProofRun:
    tables: int
    proven: Result
    unproven: Result


def time_generate_proof(server: Any, tables: int, repeat: int, workdir: Path) -> ProofRun:
    """`pgmig generate` of one new table on the mixed shape at `tables`, with its proof and with --no-verify.

    The proof's scratch databases are made on the benchmark's server
    (PGMIG_DEV_URL), as a project with a dev server would; the written file
    is removed after each run so the next one generates it again.
    """
    project = workdir / f"proof_project_{tables}"
    (project / "migrations").mkdir(parents=True)
    models = f"{Path(__file__).resolve()}:proof_models"
    env = {**_cli_env(tables), "PGMIG_DEV_URL": server.admin_url}
    run = ProofRun(tables, Result(), Result())
    url = server.create_database(f"pgmig_bench_proof_{tables}")
    try:
        asyncio.run(_execute_script(url, ddl_script(bench_shapes.build_metadata(MIXED, tables))))
        for attempt in range(repeat + 1):  # the first round warms caches and is not counted
            for result, extra in ((run.proven, ()), (run.unproven, ("--no-verify",))):
                command = pgmig_command(url, "--models", models, "generate", "-m", "bench", "--timings", *extra)
                code, stdout, stderr, wall, _ = _run_with_rusage(command, env, str(project))
                for written in (project / "migrations").glob("*.py"):
                    written.unlink()
                if code != 0:
                    result.error = f"exit {code}: {(stderr.strip().splitlines() or ['?'])[-1][:160]}"
                    return run
                if attempt:
                    result.runs.append(wall)
                    for line in stderr.splitlines():
                        if line.startswith("timing: "):
                            _, phase, seconds = line.split()
                            result.parts.setdefault(phase, []).append(float(seconds.rstrip("s")))
    finally:
        server.drop_database(url)
    return run


def render_proof(runs: List[ProofRun]) -> List[str]:
    """The proof's cost side by side: generate with it, with --no-verify, the difference and its phases."""
    lines = [
        "pgmig generate, one new table on the mixed shape: with its proof and with --no-verify (wall, median)",
        f"{'tables':>8}  {'--no-verify':>12}  {'with proof':>12}  {'proof adds':>12}  {'copy':>8}  {'proof':>8}",
    ]
    for run in runs:
        error = run.proven.error or run.unproven.error
        if error:
            lines.append(f"{run.tables:>8,}  {error}")
            continue
        with_proof, without = run.proven.median, run.unproven.median
        added = with_proof - without if with_proof is not None and without is not None else None
        share = f" ({added / without:+.0%})" if added is not None and without else ""
        lines.append(
            f"{run.tables:>8,}  {fmt(without):>12}  {fmt(with_proof):>12}  {(fmt(added) + share):>12}  "
            f"{fmt(run.proven.part('copy')):>8}  {fmt(run.proven.part('proof')):>8}"
        )
    lines.append(
        "copy: the scratch database built from the database's objects; proof: up, diff, down, schema read, up again."
    )
    return lines


# -- profiling ---------------------------------------------------------------------------


def profile_pgmig(url: str, metadata: Any, top: int) -> str:
    """cProfile of one diff (every installed kind, after a warm-up run), sorted by own time and by cumulative time."""
    import cProfile
    import io
    import pstats

    run = bench_pgmig.diff_runner(url, metadata, with_plugins=True)[0]
    run()  # warm-up: imports, handler loading
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    text = io.StringIO()
    for order in ("tottime", "cumulative"):
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order).print_stats(top)
    return text.getvalue()


# -- the run -----------------------------------------------------------------------------


@dataclass
class CaseReport:
    """Everything measured on one shape at one size."""

    shape: str
    tables: int
    counts: Dict[str, Any]
    build_seconds: float
    measured: Measured
    baseline: Optional[str] = None
    cli: Optional[DiffRun] = None
    plugins: Tuple[str, ...] = ()

    def result(self, name: str) -> Result:
        return self.measured.results.get(name) or Result(error="not measured")

    def median(self, name: str) -> Optional[float]:
        return self.result(name).median

    def count(self, name: str) -> Optional[int]:
        return self.measured.counts.get(name)

    @property
    def base(self) -> Optional[str]:
        """The key of the baseline's pgmig column (pgmig@REF), when there is a baseline."""
        return f"{NOW}@{self.baseline}" if self.baseline else None

    @property
    def changed(self) -> bool:
        """The working tree's pgmig found a change on this unchanged schema (a bug)."""
        return bool(self.count(NOW) or self.count("pgmig+plugins") or (self.cli and not self.cli.no_change))


async def _catalog_counts(url: str) -> Dict[str, Any]:
    conn = await bench_pgmig.connect(url)
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
    conn = await bench_pgmig.connect(url)
    try:
        for start in range(0, len(statements), chunk):
            await conn.execute(";\n".join(statements[start : start + chunk]))
    finally:
        await conn.close()


@dataclass(frozen=True)
class RunPlan:
    """What one run measures: the tools (alembic, migra, up) and the baseline's pgmig, if any."""

    tools: Set[str]
    repeat_of: Callable[[int], int]
    baseline: Optional[Any] = None  # bench_baseline.Baseline
    plugins: Tuple[str, ...] = ()


def contenders_for(shape: str, plan: RunPlan) -> List[Contender]:
    """The columns measured on `shape`, in the order they take turns: the working tree's pgmig, the baseline's, ..."""
    baseline = plan.baseline
    contenders = [Contender(NOW, "pgmig")]
    if baseline is not None:
        contenders.append(Contender(f"{NOW}@{baseline.label}", "pgmig", str(baseline.python), str(baseline.root)))
    contenders.append(Contender("floor", "floor"))
    if "alembic" in plan.tools:
        contenders.append(Contender("alembic", "alembic"))
    if shape == MIXED:
        if "migra" in plan.tools:
            contenders.append(Contender("migra", "migra"))
        if plan.plugins:
            contenders.append(Contender("pgmig+plugins", "pgmig+plugins"))
            if baseline is not None:
                contenders.append(
                    Contender(
                        f"pgmig+plugins@{baseline.label}", "pgmig+plugins", str(baseline.python), str(baseline.root)
                    )
                )
    return contenders


def bench_case(
    server: Any, shape: str, tables: int, plan: RunPlan, workdir: str, log: Callable[[str], None]
) -> CaseReport:
    """Build `tables` tables of `shape` in a database of their own and measure every contender on it."""
    metadata = bench_shapes.build_metadata(shape, tables)
    script = ddl_script(metadata)
    url = server.create_database(f"pgmig_bench_{shape.replace('-', '_')}_{tables}")
    tag = f"[{shape}, {tables} tables]"
    try:
        started = time.perf_counter()
        asyncio.run(_execute_script(url, script))
        build = time.perf_counter() - started
        counts = asyncio.run(_catalog_counts(url))
        log(f"{tag} built in {build:.1f}s: {counts}")
        contenders = contenders_for(shape, plan)
        repeat = plan.repeat_of(tables)
        target: Optional[str] = None
        if any(c.tool == "migra" for c in contenders):
            target = server.create_database(f"pgmig_bench_{tables}_target")
            asyncio.run(_execute_script(target, script))
        log(f"{tag} {repeat} rounds, each tool in a process of its own: {', '.join(c.name for c in contenders)}...")
        try:
            measured = measure_in_processes(contenders, url, shape, tables, target, repeat)
        finally:
            if target is not None:
                server.drop_database(target)
        for tool in ("alembic", "migra"):
            if tool not in plan.tools:
                measured.results[tool] = Result(error=f"skipped (--skip {tool})")
        cli: Optional[DiffRun] = None
        if shape == MIXED:
            log(f"{tag} pgmig diff (process)...")
            cli = time_cli_diff(url, shape, tables, repeat, workdir)
    finally:
        server.drop_database(url)
    label = plan.baseline.label if plan.baseline is not None else None
    return CaseReport(shape, tables, counts, build, measured, label, cli, plan.plugins if shape == MIXED else ())


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


def render_sizes(reports: List[CaseReport], up: Optional[UpRun]) -> List[str]:
    """The mixed shape at every size: one column a size, one row a measurement."""
    lines: List[str] = []
    header = f"{'mixed shape':34}" + "".join(f"{r.tables:>14,} tables" for r in reports)
    lines.append(header)

    def row(label: str, values: List[str]) -> None:
        lines.append(f"{label:34}" + "".join(f"{v:>21}" for v in values))

    base = reports[0].base if reports else None
    plugins = any(r.plugins for r in reports)
    row("schema: columns / enums", [f"{r.counts['columns']:,} / {r.counts['enums']}" for r in reports])
    row(
        "  fks / uniques+checks / indexes",
        [f"{r.counts['fks']}/{r.counts['uniques_checks']}/{r.counts['indexes']}" for r in reports],
    )
    row("runs (median of)", [str(len(r.result(NOW).runs)) for r in reports])
    row("pgmig diff_database (all phases)", [fmt(r.median(NOW)) if r.result(NOW).runs else "failed" for r in reports])
    if plugins:
        row("  with the installed plugins too", [fmt(r.median("pgmig+plugins")) for r in reports])
    row("  introspect (overlaps load)", [fmt(r.result(NOW).part("introspect")) for r in reports])
    row("  load: build + normalize models", [fmt(r.result(NOW).part("load")) for r in reports])
    row("  compare", [fmt(r.result(NOW).part("compare")) for r in reports])
    row("  changes found (must be 0)", [str(r.count(NOW)) for r in reports])
    if base:
        row(
            f"pgmig at {reports[0].baseline}",
            [fmt(r.median(base)) if r.result(base).runs else "failed" for r in reports],
        )
        if plugins:
            row("  with the installed plugins too", [fmt(r.median(f"pgmig+plugins@{r.baseline}")) for r in reports])
        row("  changes found", [str(r.count(base)) for r in reports])
    row("raw catalog floor", [fmt(r.median("floor")) for r in reports])
    row("alembic compare_metadata", [fmt(r.median("alembic")) if r.result("alembic").runs else "n/a" for r in reports])
    row("  differences it reports", [str(r.count("alembic")) if r.result("alembic").runs else "-" for r in reports])
    row("migra (db vs db)", [fmt(r.median("migra")) if r.result("migra").runs else "n/a" for r in reports])
    row(
        "pgmig diff (process, wall)" + (" +plugins" if plugins else ""),
        [fmt(r.cli.wall.median) if r.cli and r.cli.wall.runs else "failed" for r in reports],
    )
    row("  'No changes' reported", ["yes" if r.cli and r.cli.no_change else "NO" for r in reports])
    row("  peak RSS", [f"{r.cli.peak_kib / 1024:.0f} MiB" if r.cli and r.cli.peak_kib else "-" for r in reports])
    row("alembic / pgmig", [ratio(r.median("alembic"), r.median(NOW)) for r in reports])
    if base:
        row(f"alembic / pgmig at {reports[0].baseline}", [ratio(r.median("alembic"), r.median(base)) for r in reports])
        row(f"pgmig at {reports[0].baseline} / pgmig now", [ratio(r.median(base), r.median(NOW)) for r in reports])
    row("migra / pgmig", [ratio(r.median("migra"), r.median(NOW)) for r in reports])
    row("pgmig / catalog floor", [ratio(r.median(NOW), r.median("floor")) for r in reports])
    if plugins:
        row("alembic / pgmig+plugins", [ratio(r.median("alembic"), r.median("pgmig+plugins")) for r in reports])
    kinds = next((r.plugins for r in reports if r.plugins), ())
    if kinds:
        lines.append(
            f"pgmig measures its own kinds (what Alembic compares); +plugins adds the installed plugins' kinds: {', '.join(kinds)}"
        )
    for r in reports:
        if r.cli and r.cli.timings:
            lines.append(
                f"pgmig diff --timings at {r.tables:,} tables: "
                + ", ".join(f"{k} {v:.3f}s" for k, v in r.cli.timings.items())
            )
        floor = r.result("floor")
        lines.append(
            f"catalog floor at {r.tables:,} tables: " + ", ".join(f"{k} {fmt(floor.part(k))}" for k in floor.parts)
        )
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


def render_shapes(reports: List[CaseReport]) -> List[str]:
    """One row a shape (all at one size): pgmig [at the baseline and] now, Alembic, and the ratios."""
    if not reports:
        return []
    tables, label = reports[0].tables, reports[0].baseline
    base = reports[0].base or ""
    columns: List[Tuple[str, Callable[[CaseReport], str]]] = [("floor", lambda r: fmt(r.median("floor")))]
    if base:
        columns.append((f"pgmig {label}", lambda r: fmt(r.median(base)) if r.result(base).runs else "failed"))
    columns += [
        ("pgmig now" if base else "pgmig", lambda r: fmt(r.median(NOW)) if r.result(NOW).runs else "failed"),
        ("Alembic", lambda r: fmt(r.median("alembic")) if r.result("alembic").runs else "n/a"),
    ]
    if base:
        columns.append((f"Alembic/{label}", lambda r: ratio(r.median("alembic"), r.median(base))))
    columns += [
        ("Alembic/now" if base else "Alembic/pgmig", lambda r: ratio(r.median("alembic"), r.median(NOW))),
        ("now/floor" if base else "pgmig/floor", lambda r: ratio(r.median(NOW), r.median("floor"))),
    ]
    if base:
        columns.append((f"{label}/now", lambda r: ratio(r.median(base), r.median(NOW))))
        columns.append((f"changes now/{label}", lambda r: f"{r.count(NOW)}/{r.count(base)}"))
    else:
        columns.append(("changes", lambda r: str(r.count(NOW))))
    columns.append(("Alembic diffs", lambda r: str(r.count("alembic")) if r.result("alembic").runs else "-"))
    widths = [max(len(title), 9) for title, _ in columns]
    first = max(len(f"shape ({tables:,} tables)"), *(len(r.shape) for r in reports))
    lines = [f"{f'shape ({tables:,} tables)':{first}}" + "".join(f"  {t:>{w}}" for (t, _), w in zip(columns, widths))]
    for r in reports:
        lines.append(f"{r.shape:{first}}" + "".join(f"  {cell(r):>{w}}" for (_, cell), w in zip(columns, widths)))
    repeats = sorted({len(r.result(NOW).runs) for r in reports})
    lines.append(
        f"medians of {'/'.join(map(str, repeats))} rounds; the schemas (columns, enums, fks, uniques+checks, indexes):"
    )
    for r in reports:
        c = r.counts
        lines.append(
            f"  {r.shape:{first}} {c['columns']:,} / {c['enums']} / {c['fks']} / {c['uniques_checks']} / {c['indexes']}"
        )
    lines.append("fastest-slowest run of each (how far to trust a ratio on a busy machine):")
    shown = [(f"pgmig {label}", base), ("pgmig now", NOW)] if base else [("pgmig", NOW)]
    for r in reports:
        cells = [f"{title} {spread(r.result(name))}" for title, name in shown + [("Alembic", "alembic")]]
        lines.append(f"  {r.shape:{first}} " + ", ".join(cells))
    return lines


def notes(reports: List[CaseReport]) -> List[str]:
    """What failed, and the first changes pgmig found where it must find none."""
    lines: List[str] = []
    for r in reports:
        where = f"{r.shape} at {r.tables:,} tables"
        for name, result in r.measured.results.items():
            if result.error and not result.error.startswith("skipped"):
                lines.append(f"note: {name} on {where}: {result.error}")
        if r.cli and r.cli.wall.error:
            lines.append(f"note: pgmig diff on {where}: {r.cli.wall.error}")
        for name, sample in r.measured.samples.items():
            if sample and name != "alembic":
                lines.append(
                    f"note: {name} found {r.count(name)} changes on the unchanged {where}: {'; '.join(sample)}"
                )
    return lines


def goal_check(reports: List[CaseReport]) -> List[str]:
    """The issue's goal on every shape: Alembic / pgmig >= 10x, pgmig <= 2x the floor, no change reported."""
    lines = [f"goal at {reports[0].tables:,} tables (printed, not asserted):"] if reports else []
    for r in reports:
        p, a, f = r.median(NOW), r.median("alembic"), r.median("floor")
        faster = f"{a / p:.1f}x -> {'PASS' if a / p >= 10 else 'FAIL'}" if p and a else "not measured"
        floor = f"{p / f:.1f}x -> {'PASS' if p / f <= 2 else 'FAIL'}" if p and f else "not measured"
        lines.append(
            f"  {r.shape:18} >= 10x faster than alembic: {faster};  <= 2x the catalog floor: {floor};"
            f"  no change reported: {'FAIL' if r.changed else 'PASS'}"
        )
    return lines


def _names(text: str) -> List[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", help="comma-separated table counts of the mixed shape (default 100,1000; 5000 takes longer)"
    )
    parser.add_argument(
        "--shape",
        default="all",
        help=f"comma-separated shapes to measure, or all (default): {', '.join(bench_shapes.SHAPES)}",
    )
    parser.add_argument(
        "--shape-tables", type=int, help="the size every shape is measured at, mixed included (default 1000)"
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also measure the pgmig of git ref REF (a branch, tag or commit), in a checkout and virtualenv "
        "of its own kept under .bench/, taking turns with the working tree's",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="runs per measurement, median reported (default 5, --quick 2; at most 2 above 1,000 tables)",
    )
    parser.add_argument("--skip", default="", help="comma-separated: alembic, migra, up")
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 100 tables, 2 rounds, no migra nor `pgmig up`"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also cProfile pgmig at the largest size of the mixed shape and print the top N lines",
    )
    parser.add_argument(
        "--proof",
        action="store_true",
        help="also time `pgmig generate` with its proof and with --no-verify on the mixed shape at --sizes",
    )
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--tables", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        sys.path.insert(0, args.root or str(ROOT))
        worker(args.worker, args.url, args.shape if args.shape != "all" else MIXED, args.tables, args.target)
        return 0

    shapes = list(bench_shapes.SHAPES) if args.shape == "all" else _names(args.shape)
    unknown = [s for s in shapes if s not in bench_shapes.SHAPES]
    if unknown:
        parser.error(f"unknown shape {', '.join(unknown)}; known: {', '.join(bench_shapes.SHAPES)}")
    sizes_text = args.sizes or ("100" if args.quick else "100,1000")
    sizes = sorted({int(s.replace("_", "")) for s in _names(sizes_text)})
    shape_tables = args.shape_tables or (100 if args.quick else 1000)
    repeat = args.repeat or (2 if args.quick else 5)
    skip = set(_names(args.skip)) | ({"migra", "up"} if args.quick else set())
    tools = {"alembic", "migra", "up"} - skip

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    sys.path.insert(0, str(ROOT))
    from pgmig.testing import ScratchServer

    plugins = tuple(bench_pgmig.plugin_kinds())
    baseline: Optional[Any] = None
    if args.baseline:
        import bench_baseline

        try:
            baseline = bench_baseline.prepare(args.baseline, plugins=bool(plugins) and MIXED in shapes, log=log)
        except bench_baseline.BaselineError as exc:
            log(f"error: {exc}")
            return 2
        log(f"baseline {args.baseline} = {baseline.commit[:12]}: {baseline.python}")
    plan = RunPlan(tools, lambda n: repeat if n <= 1000 else max(1, min(repeat, 2)), baseline, plugins)
    # Each shape at shape_tables; the mixed one also at every --sizes (its scaling table).
    cases = [
        (shape, n)
        for shape in shapes
        for n in (sorted(set(sizes) | {shape_tables}) if shape == MIXED else [shape_tables])
    ]

    given = os.environ.get(URL_ENV) or None
    log("starting the embedded PostgreSQL..." if given is None else "using PGMIG_BENCH_DATABASE_URL's server")
    server = ScratchServer(given)
    reports: List[CaseReport] = []
    up: Optional[UpRun] = None
    proofs: List[ProofRun] = []
    profile = ""
    try:
        with tempfile.TemporaryDirectory(prefix="pgmig-bench-") as workdir:
            for shape, n in cases:
                reports.append(bench_case(server, shape, n, plan, workdir, log))
            mixed_sizes = [r.tables for r in reports if r.shape == MIXED]
            if args.profile and mixed_sizes:
                largest = max(mixed_sizes)
                log(f"[{MIXED}, {largest} tables] profiling pgmig...")
                url = server.create_database(f"pgmig_bench_profile_{largest}")
                try:
                    metadata = bench_shapes.build_metadata(MIXED, largest)
                    asyncio.run(_execute_script(url, ddl_script(metadata)))
                    profile = profile_pgmig(url, metadata, args.profile)
                finally:
                    server.drop_database(url)
            if "up" in tools and MIXED in shapes:
                log(f"pgmig up over {UP_CHAIN} revisions...")
                up = time_up(server, min(repeat, 3), Path(workdir))
            for n in sizes if args.proof else []:
                log(f"[{MIXED}, {n} tables] pgmig generate with and without its proof...")
                proofs.append(time_generate_proof(server, n, min(plan.repeat_of(n), 3), Path(workdir)))
    finally:
        server.close()

    lines = machine_info(str(reports[0].counts["version"]))
    if baseline is not None:
        lines.append(f"baseline: pgmig at {baseline.ref} = {baseline.commit[:12]} ({baseline.root})")
    sized = [r for r in reports if r.shape == MIXED and r.tables in sizes]
    if sized:
        lines += [""] + render_sizes(sized, up)
    at_size = [r for r in reports if r.tables == shape_tables]
    lines += [""] + render_shapes(at_size)
    lines += notes(reports)
    if proofs:
        lines += [""] + render_proof(proofs)
    lines += [""] + goal_check(at_size)
    lines.append(
        "Timings are medians on this machine at this moment; a busy host slows pgmig (two cores) more than Alembic."
    )
    print("\n".join(lines))
    if profile:
        print("\n" + profile)
    failed = [r for r in reports if r.changed]
    if failed:
        print("\nFAIL: pgmig reported changes on an unchanged schema:", file=sys.stderr)
        for r in failed:
            print(f"  {r.shape} at {r.tables:,} tables: {'; '.join(r.measured.samples.get(NOW, []))}", file=sys.stderr)
            if r.cli and not r.cli.no_change:
                print(textwrap.indent(r.cli.stdout[:4000], "    "), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
