"""Secrets never shown, control characters never echoed raw (issue 18).

A password reaches pgmig in many URL forms: in the user info (percent-encoded, or typed raw
with `@` and blanks in it), as `?password=`, after a driver suffix, with a host list, or in a
libpq keyword/value string. Each form is tried against a real server that checks passwords
(scram-sha-256 for one role, added to the test server's pg_hba.conf): with the right password
(diff's header, --json, --sql) and a wrong one (the error line, and the traceback of --debug),
and against a closed port. No output may hold the password, as typed, decoded or encoded.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Tuple
from urllib.parse import quote, unquote, urlsplit

import pytest

from pgmig.db.quoting import quote_ident, quote_literal
from pgmig.db.urls import normalize_url, password_of, redact_text, redact_url, secrets_of
from pgmig.errors import ConfigError
from tests.helpers import fetch, pgmig_cli, run_sql

ROLE = "pgmig_secret_role"


@pytest.fixture(autouse=True)
def _forget_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secrets these tests make pgmig remember stay out of later tests of the session."""
    import pgmig.db.urls

    monkeypatch.setattr(pgmig.db.urls, "_known", set())


MODELS = """
import sqlalchemy as sa
metadata = sa.MetaData()
sa.Table("things", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))
"""


class Where(NamedTuple):
    """Where a URL points: a host list for the authority, or a socket folder and port for the query."""

    hosts: str
    socket: str = ""
    port: str = ""

    def query(self, first: bool) -> str:
        """`host=<socket>&port=<port>` as the query's first or later parameters ('' for a TCP host)."""
        if not self.socket:
            return ""
        return ("?" if first else "&") + f"host={self.socket}&port={self.port}"


# Each form: (name, the password it carries (as the user means it), URL builder(password, where, db)).
Form = Tuple[str, str, Callable[[str, Where, str], str]]

FORMS: List[Form] = [
    (
        "userinfo, percent-encoded",
        "Zq7@SECRET:pw/9 %&+#?",
        lambda p, w, db: f"postgresql://{ROLE}:{quote(p, safe='')}@{w.hosts}/{db}{w.query(True)}",
    ),
    ("userinfo, raw @", "Zq7@SECRET@pw9", lambda p, w, db: f"postgresql://{ROLE}:{p}@{w.hosts}/{db}{w.query(True)}"),
    (
        "userinfo, raw blanks",
        "Zq7 SECRET pw9",
        lambda p, w, db: f"postgresql://{ROLE}:{p}@{w.hosts}/{db}{w.query(True)}",
    ),
    (
        "?password= after the host",
        "Zq7@SECRET:pw/9 %&+#?",
        lambda p, w, db: f"postgresql://{w.hosts}/{db}?user={ROLE}&password={quote(p, safe='')}{w.query(False)}",
    ),
    (
        "?password= before the host, no authority",
        "Zq7SECRETpw9",
        lambda p, w, db: f"postgresql://{w.hosts}/{db}?password={p}&user={ROLE}{w.query(False)}",
    ),
    (
        "driver suffix",
        "Zq7@SECRET:pw9",
        lambda p, w, db: f"postgresql+asyncpg://{ROLE}:{quote(p, safe='')}@{w.hosts}/{db}{w.query(True)}",
    ),
]


def forms() -> Any:
    return pytest.mark.parametrize("form", FORMS, ids=[f[0] for f in FORMS])


def shown_forms(secret: str) -> List[str]:
    """The password as typed, decoded, encoded, and its distinctive part."""
    return [secret, unquote(secret), quote(secret, safe=""), quote(secret), "SECRET"]


def assert_hidden(secret: str, outputs: List[str]) -> None:
    for text in outputs:
        for form in shown_forms(secret):
            assert form not in text, f"the password ({form!r}) was shown:\n{text}"


# -- a role that must give its password ------------------------------------------------------


class PasswordServer(NamedTuple):
    socket: str
    port: str
    tcp: str  # "127.0.0.1:<port>", or "" when the server takes no TCP connections
    admin_url: str


def _hba_lines() -> str:
    return "".join(
        f"{kind} all {ROLE} {address} scram-sha-256\n".replace("  ", " ")
        for kind, address in (("local", ""), ("host", "127.0.0.1/32"), ("host", "::1/128"))
    )


@pytest.fixture(scope="module")
def password_server(pgmig_server: Any) -> Iterator[PasswordServer]:
    """The test server, with ROLE (a superuser) held to scram-sha-256 by lines put first in pg_hba.conf."""
    admin = pgmig_server.admin_url
    row = fetch(
        admin,
        "SELECT current_setting('hba_file') AS hba, current_setting('unix_socket_directories') AS sockets, "
        "current_setting('listen_addresses') AS listen, current_setting('port') AS port",
    )[0]
    hba = Path(row["hba"])
    if not os.access(hba, os.W_OK):
        pytest.skip(f"cannot edit {hba} to make a role give its password")
    original = hba.read_text()
    run_sql(admin, f"DROP ROLE IF EXISTS {quote_ident(ROLE)}", f"CREATE ROLE {quote_ident(ROLE)} LOGIN SUPERUSER")
    hba.write_text(_hba_lines() + original)
    run_sql(admin, "SELECT pg_reload_conf()")
    socket_dir = row["sockets"].split(",")[0].strip()
    tcp = f"127.0.0.1:{row['port']}" if row["listen"].strip() else ""
    try:
        _wait_for_password_auth(f"postgresql://{ROLE}@/postgres?host={socket_dir}&port={row['port']}")
        yield PasswordServer(socket_dir, row["port"], tcp, admin)
    finally:
        hba.write_text(original)
        run_sql(admin, "SELECT pg_reload_conf()")
        run_sql(admin, f"DROP ROLE IF EXISTS {quote_ident(ROLE)}")


def _wait_for_password_auth(url: str) -> None:
    """Until the server has reloaded pg_hba.conf: a login with no password is refused."""
    import asyncpg

    async def refused() -> bool:
        try:
            conn = await asyncpg.connect(url, password="not-the-password")
        except asyncpg.InvalidPasswordError:
            return True
        await conn.close()
        return False

    deadline = time.monotonic() + 10
    while not asyncio.run(refused()):
        assert time.monotonic() < deadline, "the server did not take the pg_hba.conf change"
        time.sleep(0.1)


def set_password(server: PasswordServer, password: str) -> None:
    run_sql(server.admin_url, f"ALTER ROLE {quote_ident(ROLE)} PASSWORD {quote_literal(password)}")


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "secrets"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    (root / "models.py").write_text(MODELS)
    return root


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


# -- each form against a server that checks the password -------------------------------------


@forms()
def test_right_password_never_shown(form: Form, tmp_path: Path, database_url: str, password_server: Any) -> None:
    """The form connects (a raw @ or blank included) and diff's header, --json and --sql hide it."""
    name, password, build = form
    set_password(password_server, password)
    url = build(password, Where("", password_server.socket, password_server.port), database_of(database_url))
    root = make_project(tmp_path / "project")
    outputs: List[str] = []
    for args in (("diff",), ("diff", "--json"), ("diff", "--sql"), ("--debug", "diff", "--exit-code")):
        result = pgmig_cli(*args, cwd=root, env={"PGMIG_DATABASE_URL": url, "COLUMNS": "1000"})
        outputs.append(result.stdout + result.stderr)
        expected = 1 if "--exit-code" in args else 0
        assert result.returncode == expected, f"{name}: pgmig {' '.join(args)}\n{outputs[-1]}"
    assert "***" in outputs[0], f"the header shows the URL, its password hidden:\n{outputs[0]}"
    assert f"/{database_of(database_url)}" in outputs[0], "the rest of the URL is shown"
    assert json.loads(outputs[1])["changes"], "the --json plan is JSON"
    assert "CREATE TABLE" in outputs[2]
    assert_hidden(password, outputs)


@pytest.mark.parametrize("form", [FORMS[1], FORMS[4]], ids=[FORMS[1][0], FORMS[4][0]])
def test_every_command_and_written_file_hide_the_password(
    form: Form, tmp_path: Path, database_url: str, password_server: Any
) -> None:
    """generate (its proof on the same server), up --sql, up, status, history, check --json, down:
    neither their output nor any file they write holds the password."""
    name, password, build = form
    set_password(password_server, password)
    url = build(password, Where("", password_server.socket, password_server.port), database_of(database_url))
    root = make_project(tmp_path / "project")
    env = {"PGMIG_DATABASE_URL": url, "PGMIG_DEV_URL": url, "COLUMNS": "1000"}
    outputs: List[str] = []
    commands: List[Tuple[str, ...]] = [
        ("generate", "-m", "first"),
        ("up", "--sql"),
        ("up",),
        ("status",),
        ("history",),
        ("check", "--json"),
        ("down",),
    ]
    for args in commands:
        result = pgmig_cli(*args, cwd=root, env=env)
        outputs.append(result.stdout + result.stderr)
        assert result.returncode == 0, f"{name}: pgmig {' '.join(args)}\n{outputs[-1]}"
    assert json.loads(outputs[5])
    written = [path.read_text(encoding="utf-8") for path in root.rglob("*") if path.is_file()]
    assert any("class MigrationRevision" in text for text in written)
    assert_hidden(password, outputs + written)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql:///app?host=/tmp&password=pw123", "postgresql:///scratch_1?host=/tmp&password=pw123"),
        (
            "postgresql://u:p@ss@h1:1,h2:2/app?sslmode=require",
            "postgresql://u:p%40ss@h1:1,h2:2/scratch_1?sslmode=require",
        ),
        ("postgres://u@h", "postgresql://u@h/scratch_1"),
    ],
)
def test_with_database_changes_only_the_path(url: str, expected: str) -> None:
    """Scratch databases on a `dev_url` without a host (a socket in the query) keep their `//`."""
    from pgmig.db.urls import with_database

    assert with_database(url, "scratch_1") == expected


def test_json_keeps_sql_that_merely_names_a_password() -> None:
    """--json hides secrets and URLs, but SQL comparing a `password` column stays as it is."""
    from pgmig.cli.output import _redacted

    sql = "ALTER TABLE users ADD CONSTRAINT set CHECK (password = '' OR token = 'x')"
    assert _redacted({"sql": [sql]}) == {"sql": [sql]}
    assert _redacted({"note": "see postgresql://u:pw123@h/db"}) == {"note": "see postgresql://u:***@h/db"}


@forms()
def test_wrong_password_never_shown(form: Form, tmp_path: Path, database_url: str, password_server: Any) -> None:
    """Auth failure: one error line (exit 3) and the --debug traceback hide the password tried."""
    name, password, build = form
    set_password(password_server, "the right one")
    url = build(password, Where("", password_server.socket, password_server.port), database_of(database_url))
    root = make_project(tmp_path / "project")
    outputs: List[str] = []
    for args in (("diff",), ("--debug", "diff"), ("up",), ("--debug", "diff", "--json")):
        result = pgmig_cli(*args, cwd=root, env={"PGMIG_DATABASE_URL": url})
        outputs.append(result.stdout + result.stderr)
        assert result.returncode == 3, f"{name}: pgmig {' '.join(args)}\n{outputs[-1]}"
        assert "refused the password" in result.stderr
    assert "Traceback" in outputs[1], "--debug shows the traceback"
    assert outputs[0].count("\n") == 1, f"one line without --debug:\n{outputs[0]}"
    assert_hidden(password, outputs)


@forms()
def test_unreachable_server_never_shows_password(form: Form, tmp_path: Path) -> None:
    """A closed port (connection refused) and a socket folder that does not exist."""
    name, password, build = form
    root = make_project(tmp_path / "project")
    outputs: List[str] = []
    for where in (Where(f"127.0.0.1:{_closed_port()}"), Where("", str(tmp_path / "no-such-folder"), "5432")):
        url = build(password, where, "app")
        for args in (("diff",), ("--debug", "diff"), ("check", "--dev-url", url)):
            result = pgmig_cli(*args, cwd=root, env={"PGMIG_DATABASE_URL": url})
            outputs.append(result.stdout + result.stderr)
            assert result.returncode == 3, f"{name}: pgmig {' '.join(args)}\n{outputs[-1]}"
            assert "cannot reach" in result.stderr
    assert_hidden(password, outputs)


def test_host_list_connects_and_hides_password(tmp_path: Path, database_url: str, password_server: Any) -> None:
    """`h1,h2` (the first one not there): pgmig takes host lists as asyncpg does, and hides the password."""
    password = "Zq7@SECRET pw9"
    set_password(password_server, password)
    db = database_of(database_url)
    port = password_server.port
    if password_server.tcp:
        hosts = f"127.0.0.1:{_closed_port()},{password_server.tcp}"
    else:  # socket folders, percent-encoded in the authority
        missing = quote(str(tmp_path / "no-such-folder"), safe="")
        hosts = f"{missing}:{port},{quote(password_server.socket, safe='')}:{port}"
    root = make_project(tmp_path / "project")
    outputs: List[str] = []
    for secret, code in ((password, 0), ("Wr0ng@SECRET", 3)):
        url = f"postgresql://{ROLE}:{secret}@{hosts}/{db}"
        for args in (("diff",), ("--debug", "diff", "--json")):
            result = pgmig_cli(*args, cwd=root, env={"PGMIG_DATABASE_URL": url, "COLUMNS": "1000"})
            outputs.append(result.stdout + result.stderr)
            assert result.returncode == code, f"pgmig {' '.join(args)}\n{outputs[-1]}"
        assert_hidden(secret, outputs)
    assert hosts in outputs[0], "the host list is shown"


def test_keyword_value_string_is_refused_without_its_password(tmp_path: Path) -> None:
    """pgmig takes URLs only: a libpq keyword/value string is a usage error (exit 2) that hides its password."""
    root = make_project(tmp_path / "project")
    for dsn in ("host=localhost dbname=app user=me password=Zq7SECRETpw9", "host=h password = 'Zq7 SECRET \\' pw9'"):
        for args in (("diff",), ("--debug", "diff")):
            result = pgmig_cli(*args, cwd=root, env={"PGMIG_DATABASE_URL": dsn})
            assert result.returncode == 2, result.stderr
            assert (
                "keyword/value" in result.stderr
                and "must start with postgresql://" in result.stderr
                and "password=***" in result.stderr.replace(" = ", "=")
            )
            assert "SECRET" not in result.stdout + result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the functions themselves, over many more forms ------------------------------------------

# (URL as pasted, the secrets in it, what redact_url shows)
REDACTED: List[Tuple[str, List[str], str]] = [
    ("postgresql://u:pw123@h/db", ["pw123"], "postgresql://u:***@h/db"),
    ("postgresql://u:p@ss@h/db", ["p@ss"], "postgresql://u:***@h/db"),
    ("postgresql://u:p@ss@w@rd@h:5432/db", ["p@ss@w@rd"], "postgresql://u:***@h:5432/db"),
    ("postgresql://u:pa ss word@h/db", ["pa ss word"], "postgresql://u:***@h/db"),
    ("postgresql://u:p%40ss%20w@h/db", ["p@ss w", "p%40ss%20w"], "postgresql://u:***@h/db"),
    ("postgresql://u:p/ss@h/db", ["p/ss"], "postgresql://u:***@h/db"),
    ("postgresql://u:12?ss@h/db", ["12?ss"], "postgresql://u:***@h/db"),
    ("postgresql://u:p#ss@h/db", ["p#ss"], "postgresql://u:***@h/db"),
    ("postgresql://user@tenant:pw123@h/db", ["pw123"], "postgresql://user@tenant:***@h/db"),
    (
        "postgresql://u@h/db?password=pw123&sslmode=require",
        ["pw123"],
        "postgresql://u@h/db?password=***&sslmode=require",
    ),
    ("postgresql:///db?host=/tmp&password=pw123", ["pw123"], "postgresql:///db?host=/tmp&password=***"),
    (
        "postgresql://h/db?PassWord=p%26w&application_name=x",
        ["p&w"],
        "postgresql://h/db?PassWord=***&application_name=x",
    ),
    ("postgresql://h/db?password=a&b&c=1", ["a&b"], "postgresql://h/db?password=***&c=1"),
    ("postgresql://h/db?sslpassword=kpw123", ["kpw123"], "postgresql://h/db?sslpassword=***"),
    (
        "postgresql://h/db?passwd=x1x&pwd=x2x&token=x3x",
        ["x1x", "x2x", "x3x"],
        "postgresql://h/db?passwd=***&pwd=***&token=***",
    ),
    ("postgresql://h/db?oauth_client_secret=cs123", ["cs123"], "postgresql://h/db?oauth_client_secret=***"),
    (
        "postgresql://u:pw123@h1:5432,h2:5433,[::1]:5434/db",
        ["pw123"],
        "postgresql://u:***@h1:5432,h2:5433,[::1]:5434/db",
    ),
    ("postgresql+asyncpg://u:pw123@h/db", ["pw123"], "postgresql+asyncpg://u:***@h/db"),
    ("postgres://u:@h/db", [], "postgres://u:***@h/db"),
    ("postgresql://u@h:5432/db?user=me@corp", [], "postgresql://u@h:5432/db?user=me@corp"),
    ("host=h user=u password=pw123 dbname=d", ["pw123"], "host=h user=u password=*** dbname=d"),
    ("host=h password = 'p w\\'123' dbname=d", ["p w'123"], "host=h password = *** dbname=d"),
]


@pytest.mark.parametrize(("url", "secrets", "expected"), REDACTED, ids=[r[0] for r in REDACTED])
def test_redact_url(url: str, secrets: List[str], expected: str) -> None:
    assert redact_url(url) == expected
    assert set(secrets) <= secrets_of(url)
    for secret in secrets:
        assert secret not in redact_text(f"could not connect to {url}: refused")
        assert secret not in redact_text(f"could not connect to '{url}': refused")


def test_redact_text_hides_remembered_secrets_anywhere() -> None:
    """A library echoing the password alone (no URL around it) or in key=value form."""
    url = "postgresql://u:Zq7 SECRET pw@h/db"
    normalize_url(url)  # remembers it, as every connection does
    for text in (
        "FATAL: auth failed, tried 'Zq7 SECRET pw'",
        "tried Zq7%20SECRET%20pw",
        "options: password=Zq7%20SECRET%20pw host=h",
        'dsn "postgresql://u:Zq7 SECRET pw@h/db" refused',
    ):
        assert "SECRET" not in redact_text(text), text
    assert redact_text("the server at h refused the password: connection reset") == (
        "the server at h refused the password: connection reset"
    ), "words that merely name a password are kept"


def test_a_password_that_is_a_common_word_leaves_the_rest_readable() -> None:
    """`postgres:postgres`: the password goes wherever it stands alone, `postgresql://` stays."""
    normalize_url("postgresql://postgres:postgres@localhost:5432/app")
    text = redact_text(
        "cannot connect to postgresql://postgres:postgres@localhost:5432/app: "
        'password authentication failed for user "postgres" (postgres://, postgresql)'
    )
    assert text == (
        "cannot connect to postgresql://***:***@localhost:5432/app: "
        'password authentication failed for user "***" (postgres://, postgresql)'
    )


@pytest.mark.parametrize(
    ("url", "password", "normalized"),
    [
        ("postgresql://u:p@ss@h/db", "p@ss", "postgresql://u:p%40ss@h/db"),
        ("postgresql://me@corp:p@ss@h:5432/db", "p@ss", "postgresql://me%40corp:p%40ss@h:5432/db"),
        ("postgresql+psycopg://u:p w@h1:1,h2:2/db?x=1", "p w", "postgresql://u:p w@h1:1,h2:2/db?x=1"),
        ("postgres://u:p%40ss@h/db", "p@ss", "postgresql://u:p%40ss@h/db"),
    ],
)
def test_normalize_url_reads_the_last_at_as_the_host(url: str, password: str, normalized: str) -> None:
    """asyncpg cuts the user info at its first `@`: the raw `@` of a password is encoded for it."""
    assert normalize_url(url) == normalized
    assert password_of(normalize_url(url)) == password


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p/ss@h/db",  # a raw `/` ends the authority: `u:p` reads as host:port
        "postgresql://u:pw123@h:99999/db",
        "mysql://u:pw123@h/db",
        "host=h password=pw123",
        "just pw123 words",
    ],
)
def test_normalize_url_errors_hide_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        normalize_url(url)
    assert "pw123" not in str(caught.value) and "p/ss" not in str(caught.value)


# -- control characters ----------------------------------------------------------------------

HOSTILE = "\x07\x1b[2J\x1b]0;pwned\x07\x9b31m\u202e"

REVISION = '''
"""Add things {hostile}\\r and more"""
from pgmig import MigrationRevisionBase, Migrator


class MigrationRevision(MigrationRevisionBase):
    up_revision = {rid!r}
    down_revision = None

    async def up(self, migrator: Migrator):
        await migrator.actor.execute("CREATE TABLE things (id int)")

    async def down(self, migrator: Migrator):
        await migrator.actor.execute("DROP TABLE things")
'''

FAILING = '''
"""Fails with a server message {hostile}"""
from pgmig import MigrationRevisionBase, Migrator


class MigrationRevision(MigrationRevisionBase):
    up_revision = "r2"
    down_revision = {down!r}

    async def up(self, migrator: Migrator):
        await migrator.actor.execute(
            "DO $$BEGIN RAISE EXCEPTION 'boom %', chr(27) || '[2J' || chr(13) || chr(7) || chr(155); END$$"
        )

    async def down(self, migrator: Migrator):
        pass
'''

RAW = ["\x1b", "\r", "\x07", "\x9b", "\u202e"]


def test_control_characters_are_shown_escaped(tmp_path: Path, database_url: str, pgmig_server: Any) -> None:
    """history, status, up, check, down, diff and errors echo messages, ids, names and server text escaped."""
    rid = "r1\x1b[2J\r"
    root = make_project(tmp_path / "project")
    (root / "models.py").write_text(
        MODELS + 'sa.Table("odd\\x1b[2J\\rname", metadata, sa.Column("id", sa.Integer, primary_key=True))\n'
    )
    migrations = root / "migrations"
    migrations.mkdir()
    escaped = HOSTILE.encode("unicode_escape").decode("ascii")
    (migrations / "r1.py").write_text(REVISION.format(hostile=escaped, rid=rid))
    env: Dict[str, str] = {"PGMIG_DATABASE_URL": database_url}
    outputs: List[str] = []

    def run(*args: str, code: int = 0) -> str:
        result = pgmig_cli(*args, cwd=root, env=env)
        outputs.append(result.stdout + result.stderr)
        assert result.returncode == code, f"pgmig {' '.join(args)}\n{outputs[-1]}"
        return outputs[-1]

    assert "\\x1b[2J" in run("history")
    assert "\\x1b[2J" in run("up")
    run("status", "--no-drift")
    run("history")
    assert "odd\\x1b[2J\\rname" in run("diff")
    run("diff", "--json")
    assert "\\x1b[2J" in run("check", "--dev-url", pgmig_server.admin_url, code=1)  # the models need "odd..."
    (migrations / "r2.py").write_text(FAILING.format(hostile=escaped, down=rid))
    assert "boom \\x1b[2J\\r\\x07\\x9b" in run("up", code=3)
    run("--debug", "up", code=3)
    run("down")
    for text in outputs:
        for char in RAW:
            assert char not in text, f"{char!r} written raw:\n{text!r}"
    assert "things" not in {row["relname"] for row in fetch(database_url, "SELECT relname FROM pg_class")}


def test_printable_escapes_every_control_character() -> None:
    from pgmig.cli.output import printable

    every = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, 0x202E, 0x2066])
    shown = printable("a" + every + "b", one_line=True)
    assert shown.isprintable() and shown.startswith("a\\x00") and shown.endswith("\\u2066b")
    assert "\n" in printable("two\nlines") and "\n" not in printable("two\nlines", one_line=True)
    assert printable("plain ünïcødé 表 text") == "plain ünïcødé 表 text"
    assert printable("  x\ty") == "  x\\ty"


def test_json_keeps_names_that_equal_a_remembered_password() -> None:
    """A password that is also a word (`public`) must not change what --json says about the schema."""
    from pgmig.cli.output import _redacted
    from pgmig.db.urls import remember_secrets

    remember_secrets("postgresql://sec:public@/db?host=/tmp")
    data = {"key": ["table", "public", "t"], "sql": ['CREATE TABLE "public"."t" ()']}
    assert _redacted(data) == data
    assert _redacted({"url": "postgresql://sec:public@/db"}) == {"url": "postgresql://sec:***@/db"}


def test_a_secret_query_parameter_first_leaves_the_rest_of_the_url() -> None:
    """`?password=...&host=...`: the host after the hidden password stays readable."""
    from pgmig.db.urls import redact_text

    for key in ("password", "sslpassword"):
        text = f"the server at postgresql://sec@/secdb?{key}=bad&host=/sock refused the password"
        shown = redact_text(text)
        assert "bad" not in shown
        assert f"?{key}=***&host=/sock refused" in shown, shown
