"""`pgmig fleet`: the same revisions on databases and on schemas of one database, through the CLI."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import urlsplit

import asyncpg
import pytest

from pgmig.config.settings import load_settings
from pgmig.errors import UsageError
from pgmig.ops.base import translate_expression, translate_schemas, translate_type
from pgmig.ops.table import Column, CreateTable, ForeignKey
from pgmig.services.fleet import Target, parse_target, resolve_targets
from pgmig.services.project import Project
from pgmig.testing import ScratchServer
from tests.helpers import fetch, pgmig_cli, run_sql

HEADER = "from pgmig import Column, ForeignKey, MigrationRevisionBase, Migrator, PrimaryKey\n"

# Three revisions: a table, a second table with a foreign key to it, a column and an index.
REVISIONS: List[Tuple[str, str, str]] = [
    (
        "r1",
        """await migrator.actor.create_table(
            table_name="account",
            columns=[Column("id", "integer", nullable=False), Column("name", "text")],
            constraints=[PrimaryKey(["id"])],
        )""",
        'await migrator.actor.drop_table(table_name="account")',
    ),
    (
        "r2",
        """await migrator.actor.create_table(
            table_name="invoice",
            columns=[Column("id", "integer", nullable=False), Column("account_id", "integer")],
            constraints=[PrimaryKey(["id"]), ForeignKey(["account_id"], "account", ["id"])],
        )""",
        'await migrator.actor.drop_table(table_name="invoice")',
    ),
    (
        "r3",
        """await migrator.actor.add_column(table_name="account", column_name="email", data_type="text")
        await migrator.actor.add_index(table_name="account", index_name="account_email", columns=["email"])""",
        """await migrator.actor.drop_index(index_name="account_email")
        await migrator.actor.drop_column(table_name="account", column_name="email")""",
    ),
]


def write_revisions(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    previous = None
    for number, (rid, up, down) in enumerate(REVISIONS, 1):
        (folder / f"{number:04d}_{rid}.py").write_text(
            f"{HEADER}\n\nclass MigrationRevision(MigrationRevisionBase):\n"
            f"    up_revision = {rid!r}\n    down_revision = {previous!r}\n\n"
            f"    async def up(self, migrator: Migrator) -> None:\n        {up}\n\n"
            f"    async def down(self, migrator: Migrator) -> None:\n        {down}\n"
        )
        previous = rid


@pytest.fixture
def fleet(tmp_path: Path, pgmig_server: ScratchServer) -> Iterator[Dict[str, Any]]:
    """A project with three revisions; targets: 3 databases and 4 schemas of a fourth (7 in all)."""
    root = tmp_path / "project"
    write_revisions(root / "migrations")
    (root / "pyproject.toml").write_text('[project]\nname = "fleet"\n')
    databases = [pgmig_server.create_database() for _ in range(4)]
    shared = databases[3]
    schemas = [f"tenant_{n}" for n in range(4)]
    run_sql(shared, *(f"CREATE SCHEMA {name}" for name in schemas))
    targets = databases[:3] + [f"{shared}#{name}" for name in schemas]
    try:
        yield {
            "root": root,
            "databases": databases,
            "shared": shared,
            "schemas": schemas,
            "targets": targets,
            "server": pgmig_server.admin_url,
        }
    finally:
        for url in databases:
            pgmig_server.drop_database(url)


def cli(fleet: Dict[str, Any], *args: str, ok: bool = True) -> Any:
    env = {"PGMIG_TARGETS": ",".join(fleet["targets"]), "PGMIG_DATABASE_URL": fleet["shared"]}
    done = pgmig_cli(*args, cwd=fleet["root"], env=env)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def tables(url: str, schema: str = "public") -> List[str]:
    rows = fetch(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", schema)
    return [row["table_name"] for row in rows]


def applied(url: str, schema: str = "public") -> List[str]:
    rows = fetch(url, f"SELECT id FROM {schema}.pgmig_revisions ORDER BY id")  # noqa: S608 - test names
    return [row["id"] for row in rows]


def test_targets_notation() -> None:
    """`URL#schema` keeps the schema apart from the URL; `#schema` is a schema of the configured database."""
    assert parse_target("postgresql://u:p@h:5433/app#tenant_a", None) == Target(
        "postgresql://u:p@h:5433/app", "tenant_a"
    )
    assert parse_target("#t1", "postgresql://h/app") == Target("postgresql://h/app", "t1")
    assert parse_target("postgresql://h/app?sslmode=disable", None) == Target("postgresql://h/app?sslmode=disable")
    assert Target("postgresql://u:secret@h:5433/app", "t").label == "postgresql://u:***@h:5433/app#t"
    assert Target("postgresql://u@h1:5433,h2/app").server == Target("postgresql://h1:5433,h2/other").server
    from pgmig.errors import UsageError

    for bad in ("postgresql://u:p#w@h/db", "app#t", "#t", "postgresql://h/app#s0#1"):
        with pytest.raises(UsageError):
            parse_target(bad, None)
    # A URL pgmig cannot connect with is refused with the others, before any target runs.
    for bad in ("mysql://u@h/db", "sqlite:///tmp/x.db#t", "postgresql://h:99999/db"):
        with pytest.raises(UsageError, match="^target "):
            parse_target(bad, None)
    assert parse_target("postgresql+asyncpg://h/app#t", None).schema == "t"  # SQLAlchemy's spelling is read


def test_the_progress_label_names_only_running_targets() -> None:
    """A finished or failed target leaves the live line: two running ones named, then a count."""
    from pgmig.cli.fleet import running_label

    targets = [Target(f"postgresql://h/db{n}") for n in range(4)]
    assert running_label([]) == "targets"
    assert running_label(targets[:1]) == "targets (running: postgresql://h/db0)"
    assert running_label(targets) == "targets (running: postgresql://h/db0, postgresql://h/db1, 2 more)"


def test_schema_translation_reaches_nested_parts() -> None:
    """A create_table for `public` lands in the tenant's schema, its foreign key's referred schema too."""
    op = CreateTable(
        table_name="invoice",
        columns=(Column("id", "integer"),),
        constraints=(ForeignKey(["account_id"], "account", ["id"], referred_schema="public"),),
    )
    moved = translate_schemas(op, {"public": "tenant_a"})
    assert moved.schema == "tenant_a" and moved.constraints[0].referred_schema == "tenant_a"  # type: ignore[attr-defined]
    assert 'CREATE TABLE "tenant_a"."invoice"' in moved.statements()[0]
    assert translate_schemas(op, {"other": "x"}) is op


def test_schema_translation_reads_type_names_and_expressions() -> None:
    """Types qualified by the mapped schema, quoted or not, arrays too, and the casts and sequence names
    of defaults are renamed; other schemas, built-in types and text inside string literals are not."""
    m = {"public": "t1"}
    assert translate_type('"public"."mood"[]', m) == 't1."mood"[]'
    assert [translate_type(t, m) for t in ("public.mood", "other.mood", "double precision", "numeric(10,2)")] == [
        "t1.mood",
        "other.mood",
        "double precision",
        "numeric(10,2)",
    ]
    assert translate_expression("nextval('public.s'::regclass)", m) == "nextval('t1.s'::regclass)"
    assert translate_expression("NEXTVAL( 'public.s')", m) == "NEXTVAL( 't1.s')"
    assert translate_expression("ARRAY['a'::public.mood]::public.mood[]", m) == "ARRAY['a'::t1.mood]::t1.mood[]"
    assert translate_expression("'x::public.mood'::text", m) == "'x::public.mood'::text"
    column = translate_schemas(Column("m", "public.mood", default="'a'::public.mood"), m)
    assert (column.data_type, column.default) == ("t1.mood", "'a'::t1.mood")


def test_targets_from_a_file_and_a_query(fleet: Dict[str, Any]) -> None:
    """`file:PATH` reads one target a line; `sql:QUERY` takes each row's first column (a tenant registry)."""
    root, shared = fleet["root"], fleet["shared"]
    (root / "tenants.txt").write_text("\n".join(fleet["targets"][:2]) + "\n\n")
    run_sql(shared, "CREATE TABLE public.tenants (name text)", "INSERT INTO public.tenants VALUES ('tenant_0'), ('x')")
    settings = load_settings(
        {"database_url": shared, "targets": ["file:tenants.txt", "sql:SELECT '#' || name FROM public.tenants"]},
        cwd=root,
    )
    found = asyncio.run(resolve_targets(Project(settings)))
    assert [t.label for t in found][:2] == [Target(u).label for u in fleet["targets"][:2]]
    assert found[2:] == [Target(shared, "tenant_0"), Target(shared, "x")]
    # A registry row without its schema is an error, not a tenant skipped without a word.
    run_sql(shared, "INSERT INTO public.tenants VALUES (NULL)")
    with pytest.raises(UsageError, match="returned NULL in 1 of its rows"):
        asyncio.run(resolve_targets(Project(settings)))
    # Schema targets stand for one schema: revisions managing two would share the second among tenants.
    two = load_settings({"database_url": shared, "targets": ["#a"], "schemas": ["public", "audit"]}, cwd=root)
    with pytest.raises(UsageError, match="need revisions of one schema; these manage public, audit"):
        asyncio.run(resolve_targets(Project(two)))


def test_fleet_up_one_target_fails_the_others_reach_head_and_a_rerun_resumes(fleet: Dict[str, Any]) -> None:
    """A conflicting table in one target fails that target (exit 3, its error in the summary); every
    other target reaches head; targets at different revisions are normal; fixed, a rerun resumes it."""
    databases, shared, schemas = fleet["databases"], fleet["shared"], fleet["schemas"]
    cli(fleet, "--targets", databases[0], "fleet", "up", "r1")  # one target ahead of the others
    assert applied(databases[0]) == ["r1"]
    run_sql(shared, "CREATE TABLE tenant_2.invoice (x int)")  # r2 cannot create it there

    failed = cli(fleet, "fleet", "up", "--concurrency", "3", ok=False)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert "tenant_2: FAILED" in failed.stdout and 'relation "invoice" already exists' in failed.stdout
    assert "6 done, 1 failed, 0 not started" in failed.stdout
    # The failed target's row says where it stands: r1 committed before r2 failed.
    row = next(line for line in failed.stdout.splitlines() if "#tenant_2" in line and "│ failed" in line)
    assert [cell.strip() for cell in row.split("│")[2:6]] == ["failed", "base", "r1", "1"], row
    for url in databases[:3]:
        assert applied(url) == ["r1", "r2", "r3"]
        assert tables(url) == ["account", "invoice", "pgmig_revisions"]
    for name in schemas:
        expected = ["r1"] if name == "tenant_2" else ["r1", "r2", "r3"]
        assert applied(shared, name) == expected, name
    # The revisions landed in the tenants' schemas, foreign keys included, nothing in public.
    assert tables(shared, "tenant_0") == ["account", "invoice", "pgmig_revisions"]
    assert tables(shared) == []
    fk = fetch(
        shared, "SELECT confrelid::regclass::text AS target FROM pg_constraint WHERE conname LIKE 'invoice%fkey'"
    )
    assert sorted(row["target"] for row in fk) == [f"tenant_{n}.account" for n in (0, 1, 3)]

    status = json.loads(cli(fleet, "fleet", "status", "--json").stdout)
    assert status["version"] == 1 and status["heads"] == ["r3"]
    by_target = {t["target"]: t for t in status["targets"]}
    stuck = next(t for t in status["targets"] if t["schema"] == "tenant_2")
    assert stuck["current"] == ["r1"] and stuck["pending"] == ["r2", "r3"] and not stuck["ok"]
    assert sum(t["ok"] for t in by_target.values()) == 6
    table = cli(fleet, "fleet", "status").stdout
    assert "tenant_2" in table and "7 targets; head r3" in table
    assert cli(fleet, "fleet", "check", ok=False).returncode == 1

    run_sql(shared, "DROP TABLE tenant_2.invoice")
    resumed = cli(fleet, "fleet", "up")
    assert "7 done, 0 failed" in resumed.stdout
    assert "tenant_2: applied r2" in resumed.stdout and "tenant_0: applied" not in resumed.stdout
    assert applied(shared, "tenant_2") == ["r1", "r2", "r3"]
    assert "all 7 targets at head" in cli(fleet, "fleet", "check").stdout

    # Drift: each target against its revisions replayed on a scratch database, in its own schema.
    run_sql(shared, "ALTER TABLE tenant_1.account ADD COLUMN extra int")
    run_sql(databases[2], "DROP INDEX public.account_email")
    drift = json.loads(cli(fleet, "fleet", "status", "--json", "--drift", "--dev-url", fleet["server"]).stdout)
    found = {t["schema"] or t["target"]: t["drift"] for t in drift["targets"]}
    assert found["tenant_1"] == ["column tenant_1.account.extra is there but should not be"], found
    assert [line for line in found[Target(databases[2]).label] if "account_email" in line], found
    assert sum(1 for lines in found.values() if lines == []) == 5, found
    checked = cli(fleet, "fleet", "check", "--drift", "--dev-url", fleet["server"], ok=False)
    assert checked.returncode == 1 and "extra is there but should not be" in checked.stdout
    run_sql(shared, "ALTER TABLE tenant_1.account DROP COLUMN extra")
    run_sql(databases[2], "CREATE INDEX account_email ON public.account (email)")

    # down: one revision on each target, then back to base; every schema emptied but its version table.
    cli(fleet, "fleet", "down")
    assert all(applied(shared, name) == ["r1", "r2"] for name in schemas)
    cli(fleet, "fleet", "down", "base", "--yes")
    assert all(tables(shared, name) == ["pgmig_revisions"] for name in schemas)
    assert all(tables(url) == ["pgmig_revisions"] for url in databases[:3])


def test_canary_failure_starts_no_other_target(fleet: Dict[str, Any]) -> None:
    """`--canary 2`: the first two run first; one fails, so none of the others is started."""
    databases = fleet["databases"]
    run_sql(databases[1], "CREATE TABLE public.account (x int)")
    stopped = cli(fleet, "fleet", "up", "--canary", "2", ok=False)
    assert stopped.returncode == 3
    assert "2 done" not in stopped.stdout and "1 done, 1 failed, 5 not started" in stopped.stdout
    assert "canary" in stopped.stderr
    assert applied(databases[0]) == ["r1", "r2", "r3"]
    assert tables(databases[2]) == [] and tables(fleet["shared"], "tenant_0") == []

    # --fail-fast with one at a time: the failing second target stops the rest.
    fast = cli(fleet, "fleet", "up", "--concurrency", "1", "--fail-fast", ok=False)
    assert fast.returncode == 3 and "1 done, 1 failed, 5 not started" in fast.stdout
    assert tables(databases[2]) == []


def test_sessions_per_server_never_exceed_the_concurrency(tmp_path: Path, pgmig_server: ScratchServer) -> None:
    """Ten schema targets with `--concurrency 2`: pg_stat_activity, sampled all along, never shows more
    than two pgmig sessions (the sampler's own is not counted)."""
    root = tmp_path / "project"
    # A slow revision keeps each target's session open long enough to be seen.
    write_revisions(root / "migrations")
    slow = root / "migrations" / "0004_r4.py"
    slow.write_text(
        "from pgmig import MigrationRevisionBase, Migrator\n\n\nclass MigrationRevision(MigrationRevisionBase):\n"
        "    up_revision = 'r4'\n    down_revision = 'r3'\n\n"
        "    async def up(self, migrator: Migrator) -> None:\n"
        "        await migrator.actor.execute('SELECT pg_sleep(0.3)')\n\n"
        "    async def down(self, migrator: Migrator) -> None:\n        pass\n"
    )
    (root / "pyproject.toml").write_text('[project]\nname = "fleet"\n')
    url = pgmig_server.create_database()
    try:
        names = [f"t{n}" for n in range(10)]
        run_sql(url, *(f"CREATE SCHEMA {name}" for name in names))
        database = urlsplit(url).path.lstrip("/")
        peak = [0]
        stop = threading.Event()

        async def sample() -> None:
            conn = await asyncpg.connect(pgmig_server.admin_url)
            try:
                while not stop.is_set():
                    count = await conn.fetchval(
                        # pgmig's client sessions only: an autovacuum worker of the new database is
                        # listed with its name too.
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend' AND application_name = 'pgmig'",
                        database,
                    )
                    peak[0] = max(peak[0], count)
                    await asyncio.sleep(0.02)
            finally:
                await conn.close()

        sampler = threading.Thread(target=lambda: asyncio.run(sample()))
        sampler.start()
        started = time.monotonic()
        try:
            done = pgmig_cli(
                "--database-url",
                url,
                *(arg for name in names for arg in ("--targets", f"#{name}")),
                "fleet",
                "up",
                "--concurrency",
                "2",
                cwd=root,
            )
        finally:
            stop.set()
            sampler.join()
        assert done.returncode == 0, done.stdout + done.stderr
        assert "10 done, 0 failed" in done.stdout
        assert peak[0] == 2, peak[0]  # two at once, never more
        # Two at a time, 0.3 s each: at least five rounds.
        assert time.monotonic() - started >= 1.5
        assert all(applied(url, name) == ["r1", "r2", "r3", "r4"] for name in names)
    finally:
        pgmig_server.drop_database(url)


def test_no_targets_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    done = pgmig_cli("--database-url", "postgresql://localhost/x", "fleet", "status", cwd=tmp_path)
    assert done.returncode == 2 and "no fleet targets" in done.stderr and "--targets" in done.stderr


def test_targets_setting_splits_on_commas_except_a_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PGMIG_TARGETS is comma-separated, but a `sql:` query keeps its commas."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.setenv("PGMIG_TARGETS", "postgresql://h/a, postgresql://h/b#t1")
    assert load_settings(cwd=tmp_path).targets == ["postgresql://h/a", "postgresql://h/b#t1"]
    monkeypatch.setenv("PGMIG_TARGETS", "sql:SELECT url FROM tenants WHERE region IN ('eu', 'us')")
    assert load_settings(cwd=tmp_path).targets == ["sql:SELECT url FROM tenants WHERE region IN ('eu', 'us')"]
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.pgmig]\ntargets = "file:t.txt"\n')
    monkeypatch.delenv("PGMIG_TARGETS")
    assert load_settings(cwd=tmp_path).targets == ["file:t.txt"]


def test_revision_files_are_read_once_for_the_whole_fleet(
    fleet: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library service: seven targets brought to head, each revision file loaded once."""
    import pgmig.revisions.files as files
    from pgmig.services.fleet import FleetOptions, run_fleet

    loaded: List[str] = []
    original = files.load_revision_file

    def counting(path: Path) -> Any:
        loaded.append(path.name)
        return original(path)

    monkeypatch.setattr(files, "load_revision_file", counting)
    settings = load_settings({"database_url": fleet["shared"], "targets": fleet["targets"]}, cwd=fleet["root"])
    report = asyncio.run(run_fleet(Project(settings), FleetOptions("up", concurrency=3)))
    assert [r.state for r in report.results] == ["done"] * 7 and report.stopped is None
    assert all(r.before == "base" and r.after == "r3" and r.revisions == ["r1", "r2", "r3"] for r in report.results)
    assert sorted(loaded) == ["0001_r1.py", "0002_r2.py", "0003_r3.py"]


TENANT_MODELS = """
import enum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()


class Mood(enum.Enum):
    happy = "happy"
    sad = "sad"


mood = sa.Enum(Mood, name="mood")
ticket_seq = sa.Sequence("ticket_seq", start=1000)
score = postgresql.DOMAIN("score", sa.Integer, check="VALUE >= 0")
sa.Table(
    "person",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("mood", mood, nullable=False, server_default="happy"),
    sa.Column("moods", postgresql.ARRAY(mood)),
    sa.Column("ticket", sa.Integer, ticket_seq, server_default=ticket_seq.next_value(), nullable=False),
    sa.Column("score", score),
)
"""


OWN_TYPES = (
    "SELECT n.nspname AS schema, t.typname AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
    "WHERE t.typtype IN ('e', 'd') AND n.nspname IN ('public', 't1', 't2') ORDER BY 1, 2"
)


def test_schema_targets_get_their_own_types_and_sequences(tmp_path: Path, pgmig_server: ScratchServer) -> None:
    """A generated revision names its enum and sequence by schema (`public.mood`, `public.mood[]`,
    `'happy'::public.mood`, `nextval('public.ticket_seq'::regclass)`): run in two tenant schemas of a
    database whose public holds none of them, each tenant gets its own, nothing refers to public, drift
    is clean, and down to base removes them."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "t"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    (root / "models.py").write_text(TENANT_MODELS)
    blank, shared = pgmig_server.create_database(), pgmig_server.create_database()
    try:
        env = {"PGMIG_DATABASE_URL": blank, "PGMIG_DEV_URL": pgmig_server.admin_url}
        generated = pgmig_cli("generate", "-m", "people", cwd=root, env=env)
        assert generated.returncode == 0, generated.stdout + generated.stderr
        source = next((root / "migrations").glob("*.py")).read_text()
        for name in ("public.mood", "public.ticket_seq", "public.score"):  # what the fix must translate
            assert name in source, source

        run_sql(shared, "CREATE SCHEMA t1", "CREATE SCHEMA t2")
        fleet_env = {**env, "PGMIG_DATABASE_URL": shared, "PGMIG_TARGETS": "#t1,#t2"}
        up = pgmig_cli("fleet", "up", cwd=root, env=fleet_env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "2 done, 0 failed" in up.stdout
        types = [(r["schema"], r["name"]) for r in fetch(shared, OWN_TYPES)]
        assert types == [("t1", "mood"), ("t1", "score"), ("t2", "mood"), ("t2", "score")], types
        sequences = fetch(
            shared, "SELECT schemaname AS schema FROM pg_sequences WHERE sequencename = 'ticket_seq' ORDER BY 1"
        )
        assert [r["schema"] for r in sequences] == ["t1", "t2"]
        for schema in ("t1", "t2"):
            columns = fetch(
                shared,
                "SELECT a.attname AS name, a.atttypid::regtype::text AS type, "
                "pg_get_expr(d.adbin, d.adrelid) AS default FROM pg_attribute a "
                "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                "WHERE a.attrelid = $1::regclass AND a.attnum > 0 ORDER BY a.attnum",
                f"{schema}.person",
            )
            found = {r["name"]: (r["type"], r["default"]) for r in columns}
            # regtype and pg_get_expr print a schema only for what the search_path (public) cannot see.
            assert found["mood"] == (f"{schema}.mood", f"'happy'::{schema}.mood"), found
            assert found["moods"][0] == f"{schema}.mood[]", found
            assert found["ticket"][1] == f"nextval('{schema}.ticket_seq'::regclass)", found
            assert found["score"][0] == f"{schema}.score", found
        status = json.loads(pgmig_cli("fleet", "status", "--json", "--drift", cwd=root, env=fleet_env).stdout)
        assert [t["drift"] for t in status["targets"]] == [[], []], status
        assert all(t["ok"] for t in status["targets"]), status

        # A label removed again: the down of a revision adding one swaps the type on each tenant's columns.
        (root / "models.py").write_text(
            TENANT_MODELS.replace('    sad = "sad"\n', '    sad = "sad"\n    meh = "meh"\n')
        )
        assert pgmig_cli("generate", "-m", "meh", cwd=root, env=env).returncode == 0
        assert "swap_type_values" in max((root / "migrations").glob("*.py")).read_text()
        up = pgmig_cli("fleet", "up", cwd=root, env=fleet_env)
        assert up.returncode == 0, up.stdout + up.stderr
        run_sql(shared, "INSERT INTO t1.person (mood, moods) VALUES ('sad', '{happy,sad}')")
        down = pgmig_cli("fleet", "down", cwd=root, env=fleet_env)
        assert down.returncode == 0, down.stdout + down.stderr
        labels = fetch(shared, "SELECT enum_range(NULL::t1.mood)::text AS labels")
        assert labels[0]["labels"] == "{happy,sad}", labels
        assert [r["mood"] for r in fetch(shared, "SELECT mood::text AS mood FROM t1.person")] == ["sad"]
        run_sql(shared, "DELETE FROM t1.person")

        down = pgmig_cli("fleet", "down", cwd=root, env=fleet_env)
        assert down.returncode == 0, down.stdout + down.stderr
        assert fetch(shared, OWN_TYPES) == []
        assert fetch(shared, "SELECT sequencename FROM pg_sequences") == []
        assert tables(shared, "t1") == ["pgmig_revisions"] and tables(shared) == []
    finally:
        pgmig_server.drop_database(blank)
        pgmig_server.drop_database(shared)


def test_schema_translation_reaches_an_enum_swaps_columns() -> None:
    """Columns an enum swap or remap lists as tuples (schema first, default last) land in the tenant."""
    from pgmig.ops.enum import RemapTypeValues, SwapTypeValues

    swap = SwapTypeValues(type_name="mood", values=("a",), columns=[("public", "t", "m", False, "'a'::public.mood")])
    moved = translate_schemas(swap, {"public": "t1"})
    assert moved.schema == "t1" and moved.columns == (("t1", "t", "m", False, "'a'::t1.mood"),)
    remap = translate_schemas(
        RemapTypeValues(type_name="mood", mapping={"b": "a"}, columns=[("public", "t", "m", True)]), {"public": "t1"}
    )
    assert remap.columns == (("t1", "t", "m", True),)


def test_fleet_down_base_asks_and_needs_yes_without_a_terminal(fleet: Dict[str, Any]) -> None:
    """`fleet down base` rolls back every target: like `pgmig down base`, refused without a terminal
    unless `--yes` (exit 2, nothing rolled back)."""
    cli(fleet, "fleet", "up")
    refused = pgmig_cli(
        "fleet", "down", "base", cwd=fleet["root"], env={"PGMIG_TARGETS": ",".join(fleet["targets"])}, input=""
    )
    assert refused.returncode == 2 and "--yes" in refused.stderr, refused.stdout + refused.stderr
    assert applied(fleet["databases"][0]) == ["r1", "r2", "r3"]
    assert all(applied(fleet["shared"], name) == ["r1", "r2", "r3"] for name in fleet["schemas"])
    cli(fleet, "fleet", "down", "base", "-y")
    assert applied(fleet["databases"][0]) == [] and applied(fleet["shared"], "tenant_0") == []


def test_a_new_tenant_schema_is_created_and_left_by_down_base(fleet: Dict[str, Any]) -> None:
    """`URL#fresh` where no schema `fresh` exists: `fleet up` creates it before its first revision;
    `fleet down base` removes what the revisions made and leaves the schema (with its version table)."""
    fleet["targets"] = [f"{fleet['shared']}#fresh"]
    up = cli(fleet, "fleet", "up")
    assert "1 done, 0 failed" in up.stdout and "fleet: 1 target\n" in up.stdout, up.stdout
    assert not [line for line in up.stdout.splitlines() if line != line.rstrip()], "a piped line ends in spaces"
    assert tables(fleet["shared"], "fresh") == ["account", "invoice", "pgmig_revisions"]
    cli(fleet, "fleet", "down", "base", "--yes")
    assert tables(fleet["shared"], "fresh") == ["pgmig_revisions"]
    assert fetch(fleet["shared"], "SELECT 1 FROM pg_namespace WHERE nspname = 'fresh'") == [{"?column?": 1}]


def test_relative_targets_move_each_target_from_where_it_stands(fleet: Dict[str, Any]) -> None:
    """`fleet up +1` / `fleet down -1` as `pgmig up/down` take them, each target from its own position; the
    wrong sign is refused before any target runs; a down to a revision a target has not reached is
    nothing to roll back there, not a failure."""
    databases, shared = fleet["databases"], fleet["shared"]
    cli(fleet, "--targets", databases[0], "fleet", "up", "r1")
    cli(fleet, "fleet", "up", "+1")
    assert applied(databases[0]) == ["r1", "r2"] and applied(databases[1]) == ["r1"]
    assert applied(shared, "tenant_3") == ["r1"]
    cli(fleet, "fleet", "down", "-1")
    assert applied(databases[0]) == ["r1"] and applied(databases[1]) == [] and applied(shared, "tenant_0") == []
    wrong = cli(fleet, "fleet", "up", "-1", ok=False)
    assert wrong.returncode == 2 and "goes the other way" in wrong.stderr, wrong.stdout + wrong.stderr
    below = cli(fleet, "fleet", "down", "r2")
    assert "7 done, 0 failed" in below.stdout and applied(databases[0]) == ["r1"]
    # Six targets stand at base: one revision down each is nothing to roll back there.
    at_base = cli(fleet, "fleet", "down")
    assert "7 done, 0 failed" in at_base.stdout, at_base.stdout + at_base.stderr
    assert all(applied(url) == [] for url in databases[:3])
    at_base = cli(fleet, "fleet", "down", "-1")
    assert "7 done, 0 failed" in at_base.stdout, at_base.stdout + at_base.stderr


def test_fleet_cli_small_things(fleet: Dict[str, Any]) -> None:
    """`-h` names the argument TARGET; a targets query with no rows says so and exits 0."""
    assert "TARGET" in cli(fleet, "fleet", "up", "-h").stdout
    assert "TARGET" in cli(fleet, "fleet", "down", "-h").stdout
    fleet["targets"] = ["sql:SELECT 1 WHERE false"]
    for args in (("fleet", "up"), ("fleet", "check")):
        empty = cli(fleet, *args)
        assert "no targets" in empty.stderr and "done" not in empty.stdout, empty.stdout + empty.stderr


def test_ctrl_c_during_fleet_up_cancels_cleanly(tmp_path: Path, pgmig_server: ScratchServer) -> None:
    """SIGINT while targets run: each target's task is cancelled and awaited (no "Future exception was
    never retrieved"), the summary shows what finished, exit 130; a rerun resumes."""
    import signal
    import subprocess
    import sys

    root = tmp_path / "project"
    write_revisions(root / "migrations")
    (root / "migrations" / "0004_r4.py").write_text(
        "from pgmig import MigrationRevisionBase, Migrator\n\n\nclass MigrationRevision(MigrationRevisionBase):\n"
        "    up_revision = 'r4'\n    down_revision = 'r3'\n\n"
        "    async def up(self, migrator: Migrator) -> None:\n"
        "        await migrator.actor.execute('SELECT pg_sleep(30)')\n\n"
        "    async def down(self, migrator: Migrator) -> None:\n        pass\n"
    )
    (root / "pyproject.toml").write_text('[project]\nname = "fleet"\n')
    url = pgmig_server.create_database()
    try:
        run_sql(url, "CREATE SCHEMA t0", "CREATE SCHEMA t1")
        env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PGMIG_")}
        env.update({"PGMIG_DATABASE_URL": url, "PGMIG_TARGETS": "#t0,#t1"})
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgmig", "fleet", "up"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sleeping = fetch(
                    url, "SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'"
                )
                if sleeping[0]["n"] == 2:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("the slow revision never started")
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, stdout + stderr
        assert "never retrieved" not in stderr and "Traceback" not in stderr, stderr
        assert "interrupted" in stderr and "fleet: 2 targets" in stdout, stdout + stderr
        assert "0 done, 2 failed, 0 not started" in stdout and "running revision was rolled back" in stdout, stdout
        assert applied(url, "t0") == ["r1", "r2", "r3"]  # r4's transaction was rolled back
    finally:
        pgmig_server.drop_database(url)
