"""Literals that mean the same whatever the server's settings, and SQL printed byte for byte.

A database (or role) with `standard_conforming_strings = off` reads `\\'` in a
plain '...' literal as a quote: a comment `\\'; CREATE TABLE ...; --` would
end its literal early and run the rest, and `C:\\new\\table` would be stored
with a newline and a tab. pgmig writes every literal it composes in a form
both settings read alike (`quote_literal`), sets what it relies on for its own
sessions (`SESSION_SETTINGS`), and starts `--sql` output with those settings.
The SQL it prints goes to stdout as it is: a TAB or CR inside a literal stays.
A NUL, which no PostgreSQL text can hold, is refused naming the object (exit 2).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest

from pgmig.db.connect import SESSION_SETTINGS, connect, session_sql
from pgmig.db.quoting import quote_literal, sql_comment, standard_literal
from pgmig.ops.data import ExecuteSQL, sql_literal
from tests.helpers import create_all, fetch, run_sql
from tests.test_injection import CANARY, assert_canary_alive, relations
from tests.test_revisions import full_snapshot

# Read alike by both settings only in the form quote_literal writes.
HOSTILE = [
    "\\'; CREATE TABLE public.injected (x int); --",
    "C:\\new\\table",
    "trailing\\",
    "\\\\server\\share",
    "it's a \\'quote\\'",
    "tab\there, cr\rthere, nl\nthere",
    "ünïcødé \\u00e9 表",
    "E'\\x41' \\x41 \\101",
]


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rsplit('@', 1)[-1]}"))


def conforming(url: str) -> str:
    """`url` for the test's own reading: a session with the settings pgmig uses, whatever the database's."""
    return url + ("&" if "?" in url else "?") + urlencode(SESSION_SETTINGS)


def settings_off(url: str) -> None:
    """The issue's input: the database itself reads backslashes in '...' as escapes (and more settings askew)."""
    name = database_name(url)
    run_sql(
        url,
        f'ALTER DATABASE "{name}" SET standard_conforming_strings = off',
        f"ALTER DATABASE \"{name}\" SET DateStyle = 'SQL, MDY'",
        f'ALTER DATABASE "{name}" SET IntervalStyle = sql_standard',
        f'ALTER DATABASE "{name}" SET extra_float_digits = -3',
        f'ALTER DATABASE "{name}" SET bytea_output = escape',
    )


@pytest.fixture
def off_role(pgmig_server: Any) -> Iterator[str]:
    """A superuser role whose sessions have `standard_conforming_strings = off`: as `dev_url`, the
    scratch databases pgmig renders and proves on (made from template0) have it off too."""
    role = f"pgmig_off_{uuid.uuid4().hex[:8]}"
    run_sql(
        pgmig_server.admin_url,
        f'CREATE ROLE "{role}" LOGIN SUPERUSER',
        f'ALTER ROLE "{role}" SET standard_conforming_strings = off',
        # Other than the database's (settings_off): a scratch database would print dates day first.
        f"ALTER ROLE \"{role}\" SET DateStyle = 'SQL, DMY'",
        f'ALTER ROLE "{role}" SET IntervalStyle = sql_standard',
        f'ALTER ROLE "{role}" SET extra_float_digits = -3',
    )
    try:
        yield role
    finally:
        run_sql(pgmig_server.admin_url, f'DROP ROLE IF EXISTS "{role}"')


# -- the literal form ------------------------------------------------------------------------


def test_quote_literal_form() -> None:
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal("C:\\new") == "E'C:\\\\new'"
    assert quote_literal("\\'; --") == "E'\\\\''; --'"
    assert standard_literal("C:\\new") == "'C:\\new'"
    with pytest.raises(ValueError):
        quote_literal("a\x00b")


@pytest.mark.parametrize("setting", ["on", "off"])
def test_quote_literal_reads_back_under_either_setting(setting: str, database_url: str) -> None:
    """Each value, written by quote_literal and sent as plain SQL text, comes back as itself."""
    values = [*HOSTILE, "", "'", "\\", "''", "\\\\'", "'\\", "\t\r\n", "\u2028", "🙂"]

    async def go() -> List[Any]:
        import asyncpg

        conn = await asyncpg.connect(database_url, server_settings={"standard_conforming_strings": setting})
        try:
            assert await conn.fetchval("SHOW standard_conforming_strings") == setting
            await conn.execute("CREATE TABLE IF NOT EXISTS t (v text)")
            await conn.execute("TRUNCATE t")
            for value in values:  # simple query protocol: the literal is parsed as a script would be
                await conn.execute(
                    f"INSERT INTO t VALUES ({quote_literal(value)}); COMMENT ON TABLE t IS {quote_literal(value)}"
                )
                assert await conn.fetchval("SELECT obj_description('t'::regclass, 'pg_class')") == (value or None)
            return [r["v"] for r in await conn.fetch("SELECT v FROM t")]
        finally:
            await conn.close()

    assert sorted(asyncio.run(go())) == sorted(values)
    assert fetch(database_url, "SELECT count(*) AS n FROM pg_class WHERE relname = 'injected'") == [{"n": 0}]


def test_session_settings_win_over_the_database_and_the_url(database_url: str) -> None:
    settings_off(database_url)
    # The URL's own settings (a query parameter, libpq's `options`) lose to what pgmig relies on.
    url = database_url + ("&" if "?" in database_url else "?")
    url += "standard_conforming_strings=off&options=-c%20DateStyle%3DGerman"

    async def go() -> Tuple[Dict[str, str], Any, str]:
        conn = await connect(url)
        try:
            shown = {name: await conn.fetchval(f"SHOW {name}") for name in SESSION_SETTINGS}
            return shown, await conn.fetchval("SELECT 'C:\\new'"), await conn.fetchval("SHOW application_name")
        finally:
            await conn.close()

    shown, value, application = asyncio.run(go())
    assert shown == SESSION_SETTINGS
    assert value == "C:\\new" and application == "pgmig"
    plain = fetch(database_url, "SHOW standard_conforming_strings")
    assert plain == [{"standard_conforming_strings": "off"}], "the database's setting is off for other sessions"


def test_startup_packet_holds_only_what_pgbouncer_tracks() -> None:
    """PgBouncer refuses a connection whose startup packet names a parameter it does not track; the
    other settings are SET once connected (the test above shows them in effect)."""
    from pgmig.db.connect import server_settings

    tracked = {"client_encoding", "datestyle", "timezone", "standard_conforming_strings", "application_name"}
    assert {name.lower() for name in server_settings("postgresql://h/d")} <= tracked


def test_session_sql_gives_a_plain_session_the_same_settings(database_url: str) -> None:
    settings_off(database_url)

    async def go() -> Dict[str, str]:
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(";".join(session_sql()))
            return {name: await conn.fetchval(f"SHOW {name}") for name in SESSION_SETTINGS}
        finally:
            await conn.close()

    assert asyncio.run(go()) == SESSION_SETTINGS


def test_sql_literal_values_read_back_with_the_setting_off(database_url: str) -> None:
    """`--sql`'s written-in parameters of a data step store what the bound ones store, setting off."""
    settings_off(database_url)
    run_sql(database_url, "CREATE TABLE v (t text, f double precision, n numeric, b bytea, i int, a text[], s text)")
    rows = [
        ("C:\\new\\table", -1.5, Decimal("-2.25"), b"\x00\\'\xff", -3, ["\\'", "x"], "bound"),
        ("\\'; DROP TABLE v; --", math.inf, Decimal("NaN"), b"", 0, [], "bound"),
        ("ok", math.nan, Decimal("1E+2"), b"\\x41", 7, None, "bound"),
    ]
    ops = [ExecuteSQL(sql="INSERT INTO v VALUES ($1, $2, $3, $4, $5, $6, $7)", parameters=row) for row in rows]
    assert sql_literal(-1) == "(-1)" and sql_literal(b"\x01") == "E'\\\\x01'::bytea" and sql_literal([]) == "'{}'"
    assert ExecuteSQL(sql="SELECT 1-$1", parameters=(-1,)).statements() == ["SELECT 1-(-1)"]

    async def go() -> None:
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SHOW standard_conforming_strings") == "off"
            for op in ops:
                for sql, parameters in op.bound_statements():
                    await conn.execute(sql, *parameters)
                for statement in op.statements():
                    await conn.execute(statement.replace("'bound'", "'written'"))
        finally:
            await conn.close()

    asyncio.run(go())
    columns = "t, f::text AS f, n::text AS n, b, i, a"
    bound = fetch(database_url, f"SELECT {columns} FROM v WHERE s = 'bound' ORDER BY i")
    written = fetch(database_url, f"SELECT {columns} FROM v WHERE s = 'written' ORDER BY i")
    assert len(bound) == 3 and written == bound
    assert [r["t"] for r in bound] == [rows[0][0], rows[1][0], "ok"]


# -- a project on a database with the setting off ---------------------------------------------

MODELS = """
import sqlalchemy as sa

HOSTILE = {hostile!r}
VERSION = {version!r}
metadata = sa.MetaData()
comments = HOSTILE if VERSION == "a" else HOSTILE[::-1]
labels = ["plain", "C:\\\\new\\\\table", "back\\\\'slash"] + (["added \\\\'; --"] if VERSION == "b" else [])
mood = sa.Enum(*labels, name="mood")
sa.Table(
    "notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    *[sa.Column(f"c{{i}}", sa.Text, server_default=p, comment=c) for i, (p, c) in enumerate(zip(comments, HOSTILE))],
    sa.Column("m", mood, server_default=labels[1]),
    sa.Column("tabbed", sa.Text, server_default=sa.text("E'a\\\\tb\\\\rc\\\\\\\\'")),
    sa.Column("d", sa.Date, server_default=sa.text("'2020-03-04'::date")),
    sa.Column("iv", sa.Interval, server_default=sa.text("'-1 days +02:00:00'::interval")),
    sa.Column("fl", sa.Float, server_default=sa.text("'0.1234567890123456789'::double precision")),
    sa.CheckConstraint("c1 <> 'C:\\\\new\\\\table' OR id > 0", name="path_check"),
    comment=comments[0],
)
"""


def models_source(version: str) -> str:
    return MODELS.format(hostile=HOSTILE, version=version)


def load(source: str) -> Any:
    namespace: Dict[str, Any] = {}
    exec(compile(source, "<models>", "exec"), namespace)
    return namespace


def pgmig(root: Path, url: str, dev_url: str, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, its output as bytes: a CR must reach the test as it was printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env.update({"PGMIG_DATABASE_URL": url, "PGMIG_DEV_URL": dev_url})
    result = subprocess.run([sys.executable, "-m", "pgmig", *args], cwd=root, env=env, capture_output=True, timeout=300)
    shown = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert result.returncode == code, f"pgmig {' '.join(args)} -> {result.returncode}\n{shown}"
    assert b"Traceback" not in result.stderr
    return result


def make_project(root: Path, version: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "lit"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    (root / "models.py").write_text(models_source(version), encoding="utf-8")
    return root


def stored(url: str) -> Dict[str, Any]:
    """What the database holds, read as values (bind parameters: no literal involved)."""
    url = conforming(url)
    tables = fetch(url, "SELECT obj_description('public.notes'::regclass, 'pg_class') AS comment")
    columns = fetch(
        url,
        "SELECT attname, col_description(attrelid, attnum) AS comment FROM pg_attribute "
        "WHERE attrelid = 'public.notes'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    run_sql(url, "INSERT INTO notes (id) VALUES (7)")
    row = fetch(url, "SELECT * FROM notes WHERE id = 7")[0]
    run_sql(url, "DELETE FROM notes WHERE id = 7")
    labels = fetch(url, "SELECT enum_range(NULL::mood)::text[] AS labels")[0]["labels"]
    return {
        "table": tables[0]["comment"],
        "columns": {c["attname"]: c["comment"] for c in columns},
        "row": row,
        "labels": labels,
    }


def expected(version: str) -> Dict[str, Any]:
    models = load(models_source(version))
    table = models["metadata"].tables["notes"]
    row: Dict[str, Any] = {"id": 7, "m": models["labels"][1], "tabbed": "a\tb\rc\\", "d": date(2020, 3, 4)}
    row.update({"iv": timedelta(days=-1, hours=2), "fl": float("0.1234567890123456789")})
    row.update({f"c{i}": p for i, p in enumerate(models["comments"])})
    return {
        "table": table.comment,
        "columns": {c.name: c.comment for c in table.columns},
        "row": row,
        "labels": models["labels"],
    }


def test_comments_defaults_labels_round_trip_with_the_setting_off(
    tmp_path: Path, database_url: str, pgmig_server: Any, off_role: str
) -> None:
    """generate (rendered and proved on scratch databases with the setting off) -> up -> diff empty,
    values as the models say -> a second revision changing every one -> down gives them back."""
    settings_off(database_url)
    dev_url = with_user(pgmig_server.admin_url, off_role)
    run_sql(database_url, *CANARY)
    before = relations(database_url)
    root = make_project(tmp_path / "project", "a")

    pgmig(root, database_url, dev_url, "generate", "-m", "a")
    pgmig(root, database_url, dev_url, "up")
    pgmig(root, database_url, dev_url, "diff", "--exit-code")
    assert stored(database_url) == expected("a")
    assert_canary_alive(database_url)

    (root / "models.py").write_text(models_source("b"), encoding="utf-8")
    pgmig(root, database_url, dev_url, "generate", "-m", "b")
    pgmig(root, database_url, dev_url, "up")
    pgmig(root, database_url, dev_url, "diff", "--exit-code")
    assert stored(database_url) == expected("b")
    assert_canary_alive(database_url)
    scratch = pgmig_server.create_database()
    try:
        create_all(scratch, load(models_source("b"))["metadata"])
        assert full_snapshot(conforming(database_url)) == full_snapshot(conforming(scratch))
    finally:
        pgmig_server.drop_database(scratch)

    pgmig(root, database_url, dev_url, "down")
    assert stored(database_url) == expected("a")
    (root / "models.py").write_text(models_source("a"), encoding="utf-8")
    pgmig(root, database_url, dev_url, "diff", "--exit-code")
    pgmig(root, database_url, dev_url, "down")
    assert relations(database_url) == before | {("public", "pgmig_revisions")}
    assert_canary_alive(database_url)


def run_script(url: str, script: bytes) -> None:
    """Run printed SQL as a person would: psql when installed (as bytes, nothing translated), else
    asyncpg's simple query protocol (one script, as psql sends it statement by statement)."""
    psql = shutil.which("psql")
    if psql is not None:
        ran = subprocess.run([psql, "-X", "-v", "ON_ERROR_STOP=1", "-q", "-d", url], input=script, capture_output=True)
        assert ran.returncode == 0, ran.stderr.decode("utf-8", "replace")
        return
    run_sql(url, script.decode("utf-8"))


@pytest.mark.parametrize("command", ["diff", "up"])
def test_printed_sql_is_byte_exact_and_runs_alike(
    command: str, tmp_path: Path, database_url: str, pgmig_server: Any
) -> None:
    """`diff --sql` and `up/down --sql`, run by psql on a database with the setting off, store
    exactly the values `up` stores (TAB, CR, backslash, quote, unicode)."""
    settings_off(database_url)
    root = make_project(tmp_path / "project", "b")
    if command == "up":
        pgmig(root, database_url, database_url, "generate", "-m", "b")
    printed = pgmig(root, database_url, database_url, command, "--sql").stdout
    assert printed.startswith(b"SET standard_conforming_strings = on;\n")
    for statement in session_sql():
        assert (statement + ";\n").encode() in printed
    # The defaults pgmig read back from the server hold a raw TAB and CR: printed as they are.
    assert b"\t" in printed and b"\r" in printed
    run_script(database_url, printed)
    assert stored(database_url) == expected("b")
    pgmig(root, database_url, database_url, "diff", "--exit-code")
    if command == "up":
        assert fetch(database_url, "SELECT count(*) AS n FROM pgmig_revisions") == [{"n": 1}]
        run_script(database_url, pgmig(root, database_url, database_url, "down", "--sql").stdout)
        assert fetch(database_url, "SELECT to_regclass('public.notes') IS NULL AS gone") == [{"gone": True}]
        assert fetch(database_url, "SELECT count(*) AS n FROM pgmig_revisions") == [{"n": 0}]
    assert fetch(database_url, "SELECT count(*) AS n FROM pg_class WHERE relname = 'injected'") == [{"n": 0}]


def test_json_keeps_tabs_and_crs(tmp_path: Path, database_url: str) -> None:
    root = make_project(tmp_path / "project", "b")
    plan = json.loads(pgmig(root, database_url, database_url, "diff", "--json").stdout.decode("utf-8"))
    text = json.dumps(plan)
    for comment in HOSTILE:
        assert json.dumps(comment)[1:-1] in text


# -- NUL ---------------------------------------------------------------------------------------

NUL_MODELS: Dict[str, Tuple[str, str, Optional[str]]] = {
    "table comment": ('sa.Table("t", metadata, pk(), comment="a\\x00b")', "table public.t", "comment"),
    "column comment": (
        'sa.Table("t", metadata, pk(), sa.Column("c", sa.Text, comment="a\\x00b"))',
        "column public.t.c",
        "comment",
    ),
    "default": (
        'sa.Table("t", metadata, pk(), sa.Column("c", sa.Text, server_default="a\\x00b"))',
        "column public.t.c",
        "default",
    ),
    "expression default": (
        'sa.Table("t", metadata, pk(), sa.Column("c", sa.Text, server_default=sa.text("\'a\\x00\'")))',
        "column public.t.c",
        "default",
    ),
    "enum label": (
        'sa.Table("t", metadata, pk(), sa.Column("c", sa.Enum("x", "y\\x00", name="e")))',
        "enum public.e",
        "labels",
    ),
    "check": (
        'sa.Table("t", metadata, pk(), sa.Column("c", sa.Text), sa.CheckConstraint("c <> \'\\x00\'"))',
        "constraint public.t",
        "expression",
    ),
    "collation": ('sa.Table("t", metadata, pk(), sa.Column("c", sa.String(collation="c\\x00")))', "column", None),
    "column name": ('sa.Table("t", metadata, pk(), sa.Column("c\\x00", sa.Text))', "column public.t.c\\x00", "name"),
}


@pytest.mark.parametrize("case", list(NUL_MODELS))
def test_nul_is_a_clear_error(case: str, tmp_path: Path, database_url: str) -> None:
    table, kind, field = NUL_MODELS[case]
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "nul"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    source = "import sqlalchemy as sa\nmetadata = sa.MetaData()\n\n\ndef pk():\n    return sa.Column('id', sa.Integer, primary_key=True)\n\n\n"
    (root / "models.py").write_text(source + table + "\n", encoding="utf-8")
    for args in (["diff"], ["generate", "-m", "nul"]):
        result = pgmig(root, database_url, database_url, *args, code=2)
        message = result.stderr.decode("utf-8")
        assert "NUL" in message and kind in message, message
        assert field is None or f"in its {field}" in message, message
        assert "\x00" not in message and "unexpected" not in message, message
    assert not list((root / "migrations").glob("*.py")) if (root / "migrations").exists() else True
    assert fetch(database_url, "SELECT count(*) AS n FROM pg_class WHERE relname = 't'") == [{"n": 0}]


HOSTILE_REVISION = """
from pgmig import MigrationRevisionBase, Migrator


class MigrationRevision(MigrationRevisionBase):
    up_revision = "r1\\nCREATE TABLE public.injected (x int);"
    down_revision = None

    async def up(self, migrator: Migrator):
        await migrator.actor.execute("COMMENT ON SCHEMA public IS " + {comment!r})

    async def down(self, migrator: Migrator):
        pass
"""


def test_printed_comments_stay_comments(tmp_path: Path, database_url: str) -> None:
    """A revision id or file name holding a line break cannot end `--sql`'s comment line early."""
    assert sql_comment("a\nDROP TABLE t;\rb") == "-- a\\nDROP TABLE t;\\rb"
    root = make_project(tmp_path / "project", "a")
    (root / "migrations").mkdir()
    name = "r1\nCREATE TABLE public.injected (y int);\r--.py"
    (root / "migrations" / name).write_text(HOSTILE_REVISION.format(comment=quote_literal("C:\\new")))
    printed = pgmig(root, database_url, database_url, "up", "--sql").stdout
    assert (
        b"-- up: r1\\nCREATE TABLE public.injected (x int); (r1\\nCREATE TABLE public.injected (y int);\\r--.py)\n"
        in printed
    )
    settings_off(database_url)
    run_script(database_url, printed)
    assert fetch(database_url, "SELECT count(*) AS n FROM pg_class WHERE relname = 'injected'") == [{"n": 0}]
    assert fetch(database_url, "SELECT obj_description('public'::regnamespace) AS c") == [{"c": "C:\\new"}]


def test_nul_in_settings_is_a_configuration_error() -> None:
    from pydantic import ValidationError

    from pgmig.config.settings import Settings

    for field in ("schema", "version_table"):
        with pytest.raises(ValidationError, match="NUL"):
            Settings(**{field: "a\x00b"})


def test_parameters_inside_escape_strings_stay_text() -> None:
    """`$n` inside E'...' (where \\' does not end the string) is text, not a parameter, in `--sql`."""
    sql = r"SELECT E'it\'s $1', $1, 'a\', $2, date'x', e'$1', E'\\', $2"
    shown = ExecuteSQL(sql=sql, parameters=(5, "q")).statements()
    assert shown == [r"SELECT E'it\'s $1', 5, 'a\', 'q', date'x', e'$1', E'\\', 'q'"]
