"""pgmig's own sessions: settings it sets itself, timeouts it is given, privileges its bookkeeping needs.

A database or role default (`ALTER DATABASE ... SET lock_timeout = '1s'`) must not reach pgmig's
own waits (the advisory lock a second `pgmig up` waits on) or its revision's idle transaction; only
the user's migration statements get the configured timeouts. A timeout the server would refuse is a
configuration error naming where it came from. A least-privilege role applies and stamps; a role
that lacks a privilege of pgmig's bookkeeping is told which one on which object.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import urlsplit, urlunsplit

import pytest

from pgmig.db.connect import check_duration
from pgmig.db.quoting import quote_ident, quote_literal
from tests.helpers import fetch, pgmig_cli, run_sql
from tests.test_faults import (  # noqa: F401  (fresh_database: a fixture)
    WAIT,
    assert_one_error_line,
    cli,
    execute_line,
    fresh_database,
    revision_id,
    spawn,
    with_steps,
)

MODELS = (
    "import sqlalchemy as sa\n\nmetadata = sa.MetaData()\n"
    'sa.Table("note", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text){extra})\n'
)
EXTRA = ', sa.Column("extra", sa.Text)'


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@pytest.fixture(scope="module")
def project(pgmig_server: Any, tmp_path_factory: Any) -> Tuple[Path, List[str]]:
    """A project of two generated revisions: r1 creates `note`, r2 adds `note.extra` (the models' state)."""
    root = tmp_path_factory.mktemp("sessions") / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "sessions"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    work = pgmig_server.create_database()
    try:
        ids = []
        for extra in ("", EXTRA):
            (root / "models.py").write_text(MODELS.format(extra=extra))
            path = Path(cli(root, work, "generate", "-m", "step").stdout.strip().splitlines()[-1])
            ids.append(revision_id(path))
            cli(root, work, "up")
    finally:
        pgmig_server.drop_database(work)
    return root, ids


def applied(url: str) -> List[str]:
    if not fetch(url, "SELECT to_regclass('public.pgmig_revisions') IS NOT NULL AS t")[0]["t"]:
        return []
    return [r["id"] for r in fetch(url, "SELECT id FROM public.pgmig_revisions ORDER BY id")]


# -- 1. database and role defaults do not reach pgmig's own waits --------------------------------


SLOW = 2.5  # seconds a revision holds the lock: longer than the defaults below


def slow_project(project: Tuple[Path, List[str]], folder: Path, slow: float = SLOW) -> Path:
    """The project, its first revision made slow (a long statement, then Python work inside its
    transaction) and writing down the timeouts its own statements ran with."""
    root = Path(shutil.copytree(project[0], folder))
    (first,) = [p for p in (root / "migrations").glob("*.py") if p.name.startswith(project[1][0])]
    seen = "SELECT 1, current_setting('lock_timeout') || ' ' || current_setting('statement_timeout')"
    first.write_text(
        with_steps(
            first.read_text(),
            up_last=execute_line(f"SELECT pg_sleep({slow})")
            + f"        await __import__('asyncio').sleep({slow})\n"
            + execute_line(f"INSERT INTO note (id, body) {seen}"),
        )
    )
    return root


def advisory_locks(url: str) -> Dict[str, int]:
    (row,) = fetch(
        url,
        "SELECT count(*) FILTER (WHERE granted) AS held, count(*) FILTER (WHERE NOT granted) AS waiting "
        "FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database())",
    )
    return dict(row)


def wait_for(url: str, condition: Any, proc: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not condition(advisory_locks(url)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, advisory_locks(url)
        time.sleep(0.02)


def as_role(url: str, role: str) -> str:
    """`url` logging in as `role` (password `pw`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}:pw@{parts.netloc.rpartition('@')[2]}"))


@pytest.fixture
def make_role(pgmig_server: Any, fresh_database: Any) -> Iterator[Any]:
    """Make login roles (password `pw`) on a test database; dropped with what they own at the end."""
    made: List[Tuple[str, str]] = []

    def make(url: str, *statements: str, options: str = "") -> str:
        role = f"pgmig_role_{uuid.uuid4().hex[:8]}"
        made.append((url, role))
        run_sql(url, f"CREATE ROLE {role} LOGIN PASSWORD 'pw' {options}", *(s.format(role=role) for s in statements))
        return role

    yield make
    for url, role in made:
        run_sql(url, f"DROP OWNED BY {role}")
        run_sql(pgmig_server.admin_url, f"DROP ROLE {role}")


@pytest.mark.parametrize(
    "scope,setting",
    [
        ("DATABASE", "lock_timeout"),
        ("DATABASE", "statement_timeout"),
        ("DATABASE", "idle_in_transaction_session_timeout"),
        ("ROLE", "lock_timeout"),
        ("ROLE", "statement_timeout"),
    ],
)
def test_defaults_of_the_database_do_not_reach_pgmigs_own_waits(
    scope: str, setting: str, project: Tuple[Path, List[str]], fresh_database: Any, make_role: Any, tmp_path: Path
) -> None:
    """Two `pgmig up` at once, the first holding the lock longer than the default allows: the second
    waits for it (not "unexpected LockNotAvailableError"), the first's idle transaction lives on."""
    root = slow_project(project, tmp_path / "slow")
    url = fresh_database()
    if scope == "DATABASE":
        run_sql(url, f"ALTER DATABASE {quote_ident(database_name(url))} SET {setting} = '1s'")
    else:
        url = as_role(url, make_role(url, f"ALTER ROLE {{role}} SET {setting} = '1s'", options="SUPERUSER"))
    first = spawn(root, url, "up")
    wait_for(url, lambda locks: locks["held"] == 1, first)
    second = spawn(root, url, "up")
    wait_for(url, lambda locks: locks["waiting"] == 1, second)
    results = [proc.communicate(timeout=WAIT) + (proc.returncode,) for proc in (first, second)]
    assert [code for _, _, code in results] == [0, 0], results
    assert "waiting for another pgmig run" in results[1][1], results
    assert "Already at head" in results[1][0], results
    assert applied(url) == project[1]
    # The revision's own statements ran with pgmig's configured timeouts, not the database's.
    assert fetch(url, "SELECT body FROM note") == [{"body": "5s 0"}]


def test_only_the_revisions_statements_get_the_configured_timeouts(
    project: Tuple[Path, List[str]], fresh_database: Any, tmp_path: Path
) -> None:
    """The revision's statements run with PGMIG_LOCK_TIMEOUT / PGMIG_STATEMENT_TIMEOUT; pgmig's
    version-table rows (seen by a trigger) are written with its own settings, in up and down."""
    root = slow_project(project, tmp_path / "seen", slow=0)
    url = fresh_database()
    env = {"PGMIG_DATABASE_URL": url, "PGMIG_DEV_URL": url}
    assert pgmig_cli("stamp", "base", cwd=root, env=env).returncode == 0
    run_sql(
        url,
        f"ALTER DATABASE {quote_ident(database_name(url))} SET lock_timeout = '1s'",
        "CREATE TABLE seen (settings text)",
        "CREATE FUNCTION seen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO seen "
        "SELECT current_setting('lock_timeout') || ' ' || current_setting('statement_timeout'); RETURN NULL; END $$",
        "CREATE TRIGGER seen AFTER INSERT OR DELETE ON pgmig_revisions FOR EACH ROW EXECUTE FUNCTION seen()",
    )
    env.update(PGMIG_LOCK_TIMEOUT="3s", PGMIG_STATEMENT_TIMEOUT="7s")
    for args in (["up"], ["down", project[1][0]]):
        result = pgmig_cli(*args, cwd=root, env=env)
        assert result.returncode == 0, result
    assert fetch(url, "SELECT body FROM note") == [{"body": "3s 7s"}]
    assert fetch(url, "SELECT settings FROM seen") == [{"settings": "0 0"}] * 3


# -- 2. a timeout the server would refuse is a configuration error ------------------------------


DURATIONS = [
    "0",
    "500",
    "5s",
    " 5 s ",
    "1.5s",
    ".5s",
    "1min",
    "500us",
    "24d",
    "2147483647",
    "2147483647ms",
    "596h",
    "30d",
    "25d",
    "597h",
    "2147483648",
    "2147484s",
    "abc",
    "-1",
    "5x",
    "5S",
    "1 minute",
    "",
]


def test_durations_are_accepted_exactly_as_the_server_accepts_them(database_url: str) -> None:
    """Each value: pgmig's check and the server's SET agree (the server is the rule)."""

    async def server_accepts(value: str) -> bool:
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            for setting in ("lock_timeout", "statement_timeout"):
                try:
                    await conn.execute(f"SET {setting} = {quote_literal(value)}")
                except asyncpg.PostgresError:
                    return False
            return True
        finally:
            await conn.close()

    def pgmig_accepts(value: str) -> bool:
        try:
            check_duration(value)
        except ValueError:
            return False
        return True

    disagree = [v for v in DURATIONS if asyncio.run(server_accepts(v)) != pgmig_accepts(v)]
    assert not disagree, disagree
    assert not pgmig_accepts("30d") and pgmig_accepts("24d")


@pytest.mark.parametrize(
    "setting,value,source",
    [
        ("lock_timeout", "30d", "env"),
        ("statement_timeout", "abc", "key"),
        ("lock_timeout", "-1", "key"),
        ("statement_timeout", "2147483648", "env"),
        ("lock_timeout", "5 seconds", "env"),
    ],
)
@pytest.mark.parametrize("command", ["up", "down", "stamp"])
def test_a_timeout_the_server_refuses_is_a_configuration_error(
    setting: str,
    value: str,
    source: str,
    command: str,
    project: Tuple[Path, List[str]],
    fresh_database: Any,
    tmp_path: Path,
) -> None:
    """Exit 2, one line naming the setting and where it came from, before anything runs."""
    root = Path(shutil.copytree(project[0], tmp_path / "project"))
    url = fresh_database()
    env = {"PGMIG_DATABASE_URL": url, "PGMIG_DEV_URL": url}
    if source == "env":
        env[f"PGMIG_{setting.upper()}"] = value
        where = f"PGMIG_{setting.upper()}"
    else:
        with (root / "pyproject.toml").open("a") as pyproject:
            pyproject.write(f"{setting} = {value!r}\n")
        where = f"{setting} in [tool.pgmig] of {root / 'pyproject.toml'}"
    args = {"up": ["up"], "down": ["down", "base", "--yes"], "stamp": ["stamp", project[1][0]]}[command]
    result = pgmig_cli(*args, cwd=root, env=env)
    assert result.returncode == 2, result
    line = assert_one_error_line(result, setting)
    assert where in line and repr(value) in line and "unexpected" not in line, line
    assert applied(url) == []


# -- 3. least privilege ------------------------------------------------------------------------


def run_as(root: Path, url: str, *args: str, dev_url: str) -> Any:
    """`pgmig <args>` on `url`, scratch databases on `dev_url` (a role that may create them)."""
    return pgmig_cli(*args, cwd=root, env={"PGMIG_DATABASE_URL": url, "PGMIG_DEV_URL": dev_url})


def deploy_role(make_role: Any, url: str) -> str:
    """A role with CREATE on schema public and not on the database (REVOKE ... FROM PUBLIC)."""
    database = quote_ident(database_name(url))
    return make_role(
        url,
        f"REVOKE CREATE ON DATABASE {database} FROM PUBLIC",
        "GRANT USAGE, CREATE ON SCHEMA public TO {role}",
    )


def test_a_deploy_role_without_create_on_the_database_applies_and_stamps(
    project: Tuple[Path, List[str]], fresh_database: Any, make_role: Any
) -> None:
    root, ids = project
    url = fresh_database()
    deploy = as_role(url, deploy_role(make_role, url))
    for args in (["up"], ["down", "base", "--yes"], ["up"], ["status"]):
        result = run_as(root, deploy, *args, dev_url=url)
        assert result.returncode == 0, result
    assert applied(url) == ids
    assert run_as(root, deploy, "diff", "--exit-code", dev_url=url).returncode == 0

    stamped = fresh_database()
    deploy = as_role(stamped, deploy_role(make_role, stamped))
    result = run_as(root, deploy, "stamp", ids[0], dev_url=url)
    assert result.returncode == 0, result
    assert applied(stamped) == ids[:1]


def test_a_role_owning_its_schema_keeps_the_version_table_there(
    project: Tuple[Path, List[str]], fresh_database: Any, make_role: Any
) -> None:
    """The version table in another schema the role owns, without CREATE on the database: no CREATE SCHEMA."""
    root, ids = project
    url = fresh_database()
    role = deploy_role(make_role, url)
    run_sql(url, f"CREATE SCHEMA ledger AUTHORIZATION {role}")
    env = {"PGMIG_DATABASE_URL": as_role(url, role), "PGMIG_DEV_URL": url, "PGMIG_SCHEMA": "ledger,public"}
    for args in (["stamp", ids[0]], ["stamp", "base"]):
        result = pgmig_cli(*args, cwd=root, env=env)
        assert result.returncode == 0, result
    assert fetch(url, "SELECT to_regclass('ledger.pgmig_revisions') IS NOT NULL AS t") == [{"t": True}]


def test_a_missing_schema_of_the_version_table_names_the_privilege(
    project: Tuple[Path, List[str]], fresh_database: Any, make_role: Any
) -> None:
    root, _ = project
    url = fresh_database()
    role = deploy_role(make_role, url)
    env = {"PGMIG_DATABASE_URL": as_role(url, role), "PGMIG_DEV_URL": url, "PGMIG_SCHEMA": "ledger,public"}
    for args in (["up"], ["stamp", "head"]):
        result = pgmig_cli(*args, cwd=root, env=env)
        assert result.returncode == 3, result
        line = assert_one_error_line(result, "pgmig's own bookkeeping")
        assert 'CREATE on the database (to create schema "ledger"' in line and "revision " not in line, line
        assert f'GRANT CREATE ON DATABASE "{database_name(url)}" TO "{role}"' in line, line
    assert fetch(url, "SELECT to_regclass('public.note') IS NULL AS t") == [{"t": True}]


def test_a_role_that_reads_but_cannot_write_is_told_what_is_missing(
    project: Tuple[Path, List[str]], fresh_database: Any, make_role: Any
) -> None:
    """status and check work; up, down and stamp name the privilege on the version table, nothing changes."""
    root, ids = project
    url = fresh_database()
    assert run_as(root, url, "up", ids[0], dev_url=url).returncode == 0
    role = make_role(
        url, "GRANT USAGE ON SCHEMA public TO {role}", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
    )
    reader = as_role(url, role)
    status = run_as(root, reader, "status", dev_url=url)
    assert status.returncode == 0 and ids[1] in status.stdout + status.stderr, status
    check = run_as(root, reader, "check", dev_url=url)
    assert check.returncode == 0, check
    for args, privilege in ((["up"], "INSERT"), (["down"], "DELETE"), (["stamp", "head"], "INSERT")):
        result = run_as(root, reader, *args, dev_url=url)
        assert result.returncode == 3, result
        line = assert_one_error_line(result, "pgmig's own bookkeeping")
        assert f'{privilege} on table "public"."pgmig_revisions"' in line and f'"{role}"' in line, line
        assert "revision " not in line and "unexpected" not in line, line
    assert applied(url) == ids[:1]
    assert fetch(url, "SELECT count(*) AS n FROM information_schema.columns WHERE column_name = 'extra'") == [{"n": 0}]


def test_a_role_without_usage_on_the_schema_is_told_so(
    project: Tuple[Path, List[str]], fresh_database: Any, make_role: Any
) -> None:
    root, ids = project
    url = fresh_database()
    assert run_as(root, url, "up", ids[0], dev_url=url).returncode == 0
    run_sql(url, "REVOKE ALL ON SCHEMA public FROM PUBLIC")
    role = make_role(url)
    for args in (["status"], ["up"]):
        result = run_as(root, as_role(url, role), *args, dev_url=url)
        assert result.returncode == 3, result
        line = assert_one_error_line(result, "pgmig's own bookkeeping")
        assert f'USAGE on schema "public", which role "{role}" lacks' in line and "unexpected" not in line, line
        assert f'GRANT USAGE ON SCHEMA "public" TO "{role}"' in line, line


def test_a_role_that_cannot_read_the_version_table_is_told_so(
    project: Tuple[Path, List[str]], fresh_database: Any, make_role: Any
) -> None:
    """CREATE and USAGE on the schema but no SELECT on the version table (another role applied the
    first revision): every command that reads it names SELECT and the GRANT, nothing runs."""
    root, ids = project
    url = fresh_database()
    assert run_as(root, url, "up", ids[0], dev_url=url).returncode == 0
    role = make_role(url, "GRANT USAGE, CREATE ON SCHEMA public TO {role}")
    for args in (["status"], ["history"], ["up"], ["down"]):
        result = run_as(root, as_role(url, role), *args, dev_url=url)
        assert result.returncode == 3, result
        line = assert_one_error_line(result, "pgmig's own bookkeeping")
        assert 'SELECT on table "public"."pgmig_revisions"' in line and f'"{role}"' in line, line
        assert "unexpected" not in line, line
    # check proves the revisions on a scratch database; the applied files' checksums it cannot read are said.
    check = run_as(root, as_role(url, role), "check", dev_url=url)
    assert check.returncode == 0 and "skipped the checksum check" in check.stderr and "GRANT SELECT" in check.stderr, (
        check
    )
    assert applied(url) == ids[:1]


def test_a_refusal_inside_a_revisions_transaction_is_bookkeepings_and_rolls_the_revision_back(
    project: Tuple[Path, List[str]], fresh_database: Any, make_role: Any, tmp_path: Path
) -> None:
    """Privileges lost between the check and the row (here: the revision switches role): the error
    still says it is pgmig's version table, which privilege, and that the revision was rolled back."""
    root = Path(shutil.copytree(project[0], tmp_path / "project"))
    url = fresh_database()
    role = make_role(url, "GRANT USAGE ON SCHEMA public TO {role}")
    (first,) = [p for p in (root / "migrations").glob("*.py") if p.name.startswith(project[1][0])]
    first.write_text(with_steps(first.read_text(), up_last=execute_line(f"SET LOCAL ROLE {role}")))
    env = {"PGMIG_DATABASE_URL": url, "PGMIG_DEV_URL": url}
    assert pgmig_cli("stamp", "base", cwd=root, env=env).returncode == 0
    result = pgmig_cli("up", cwd=root, env=env)
    assert result.returncode == 3, result
    line = assert_one_error_line(result, "pgmig's own bookkeeping")
    assert 'INSERT on table "public"."pgmig_revisions"' in line and first.name in line, line
    assert "was rolled back with it" in line and "unexpected" not in line, line
    assert applied(url) == [] and fetch(url, "SELECT to_regclass('public.note') IS NULL AS t") == [{"t": True}]


@pytest.mark.parametrize("function", ["pg_try_advisory_lock(bigint)", "pg_advisory_lock(bigint)"])
def test_a_refused_run_lock_names_the_function(
    function: str, project: Tuple[Path, List[str]], fresh_database: Any, make_role: Any
) -> None:
    """EXECUTE on the advisory-lock functions revoked from PUBLIC (in this database only)."""
    root, _ = project
    url = fresh_database()
    role = deploy_role(make_role, url)
    run_sql(url, f"REVOKE EXECUTE ON FUNCTION pg_catalog.{function} FROM PUBLIC")
    holder: List[Any] = []
    commands: List[List[str]] = [["up"], ["stamp", "head"]]
    if function.startswith("pg_advisory_lock"):
        # The lock busy, so that pgmig waits for it with pg_advisory_lock.
        holder.append(spawn(slow_project(project, root.parent / f"hold-{uuid.uuid4().hex[:6]}", slow=3), url, "up"))
        wait_for(url, lambda locks: locks["held"] == 1, holder[0])
        commands = [["up"]]
    for args in commands:
        result = run_as(root, as_role(url, role), *args, dev_url=url)
        assert result.returncode == 3, result
        line = assert_one_error_line(result, "pgmig's run lock")
        assert function.split("(")[0] in line and "not a revision" in line and "unexpected" not in line, line
    for proc in holder:
        proc.communicate(timeout=WAIT)
