"""Hostile names and values, and passwords that must never show.

Names of tables, columns, enums, enum labels, constraints and indexes, and
check and default expressions, carry quotes, semicolons, spaces, unicode,
reserved words and ready-made injections (`x"; DROP TABLE canary.canary; --`).
Each kind goes generate -> up -> diff empty -> catalog equal to SQLAlchemy's
create_all -> down, through the CLI, and must run nothing else: the canary
table (in a schema pgmig does not manage) keeps its row and no table appears
that the models do not define.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple
from urllib.parse import unquote

import pytest

from tests.helpers import create_all, fetch, pgmig_cli, run_sql
from tests.test_revisions import full_snapshot

PAYLOADS = [
    'we"ird',
    "it's",
    "semi;colon",
    "with space",
    "ünïcødé 表",
    "select",
    'x"; DROP TABLE canary.canary; --',
    "x'); DROP TABLE canary.canary; --",
    '"; CREATE TABLE injected (x int); --',
]

# The models file: PAYLOADS, quoting helpers of its own (not pgmig's), then one kind's tables.
PRELUDE = f"""
import sqlalchemy as sa

PAYLOADS = {PAYLOADS!r}
metadata = sa.MetaData()


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def lit(value):
    return "'" + value.replace("'", "''") + "'"


def pk():
    return sa.Column("id", sa.Integer, primary_key=True)
"""

KINDS: Dict[str, str] = {
    "table": """
        for p in PAYLOADS:
            sa.Table(p, metadata, pk(), sa.Column("note", sa.Text))
    """,
    "column": """
        sa.Table("cols", metadata, pk(), *[sa.Column(p, sa.Text) for p in PAYLOADS])
    """,
    "enum": """
        sa.Table(
            "uses_enums",
            metadata,
            pk(),
            *[sa.Column(f"e{i}", sa.Enum(*PAYLOADS, name=p)) for i, p in enumerate(PAYLOADS)],
        )
    """,
    "constraint": """
        sa.Table('parent "table"', metadata, pk())
        columns = []
        for i, p in enumerate(PAYLOADS):
            columns += [
                sa.Column(f"c{i}", sa.Integer, sa.ForeignKey('parent "table".id', name=f"fk{i} {p}")),
                sa.Column(p, sa.Text),
                sa.UniqueConstraint(f"c{i}", name=f"uq{i} {p}"),
                sa.CheckConstraint(f"{ident(p)} <> {lit(p)}", name=f"ck{i} {p}"),
            ]
        sa.Table("child", metadata, pk(), *columns)
    """,
    "index": """
        columns = []
        for i, p in enumerate(PAYLOADS):
            columns.append(sa.Column(p, sa.Text))
            if i % 3 == 0:
                columns.append(sa.Index(f"ix{i} {p}", p))
            elif i % 3 == 1:
                columns.append(sa.Index(f"ix{i} {p}", p, unique=True, postgresql_where=sa.text(f"{ident(p)} <> {lit(p)}")))
            else:
                columns.append(sa.Index(f"ix{i} {p}", sa.text(f"lower({ident(p)})")))
        sa.Table("indexed", metadata, pk(), *columns)
    """,
    "default": """
        columns = []
        for i, p in enumerate(PAYLOADS):
            columns.append(sa.Column(f"plain{i}", sa.Text, server_default=p, comment=p))
            columns.append(sa.Column(f"expr{i}", sa.Text, server_default=sa.text(f"{lit(p)} || 'x'"), nullable=False))
        sa.Table("defaults", metadata, pk(), *columns, comment=PAYLOADS[-1])
    """,
}


def models_source(kind: str) -> str:
    return PRELUDE + textwrap.dedent(KINDS[kind])


def load_metadata(source: str) -> Any:
    namespace: Dict[str, Any] = {}
    exec(compile(source, "<models>", "exec"), namespace)
    return namespace["metadata"]


def make_project(root: Path, source: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "hostile"\n\n[tool.pgmig]\nmodels = ["models.py"]\n')
    (root / "models.py").write_text(source, encoding="utf-8")
    return root


CANARY = ["CREATE SCHEMA canary", "CREATE TABLE canary.canary (x int)", "INSERT INTO canary.canary VALUES (42)"]


def relations(url: str) -> Set[Tuple[str, str]]:
    """Every table in every non-system schema: an injected CREATE or DROP shows here."""
    rows = fetch(
        url,
        "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%'",
    )
    return {(r["schema"], r["name"]) for r in rows}


def assert_canary_alive(url: str) -> None:
    assert fetch(url, "SELECT x FROM canary.canary") == [{"x": 42}]
    assert fetch(url, "SELECT count(*) AS n FROM pg_class WHERE relname = 'injected'") == [{"n": 0}]


def cli(root: Path, url: str, *args: str, code: int = 0) -> Any:
    # Scratch databases (generate's proof, check) on the test server, not a new embedded one.
    result = pgmig_cli(*args, cwd=root, env={"PGMIG_DATABASE_URL": url, "PGMIG_DEV_URL": url})
    assert result.returncode == code, f"pgmig {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize("kind", list(KINDS))
def test_hostile_names_round_trip(kind: str, tmp_path: Path, database_url: str, pgmig_server: Any) -> None:
    source = models_source(kind)
    metadata = load_metadata(source)
    root = make_project(tmp_path / "project", source)
    run_sql(database_url, *CANARY)
    before = relations(database_url)

    generated = cli(root, database_url, "generate", "-m", f"hostile {kind}")
    assert Path(generated.stdout.strip().splitlines()[-1]).exists()
    cli(root, database_url, "up")
    cli(root, database_url, "diff", "--exit-code")
    assert_canary_alive(database_url)
    models = {("public", t.name) for t in metadata.tables.values()}
    assert relations(database_url) == before | models | {("public", "pgmig_revisions")}

    scratch = pgmig_server.create_database()
    try:
        create_all(scratch, metadata)
        assert full_snapshot(database_url) == full_snapshot(scratch)
    finally:
        pgmig_server.drop_database(scratch)

    cli(root, database_url, "down")
    assert_canary_alive(database_url)
    assert relations(database_url) == before | {("public", "pgmig_revisions")}
    assert fetch(
        database_url,
        "SELECT count(*) AS n FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = 'public' AND t.typtype = 'e'",
    ) == [{"n": 0}]


# -- passwords --------------------------------------------------------------------------------

SECRET_MODELS = """
import sqlalchemy as sa
metadata = sa.MetaData()
sa.Table("things", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))
"""

FAILING_REVISION = """
from pgmig import MigrationRevisionBase, Migrator


class MigrationRevision(MigrationRevisionBase):
    up_revision = "zz_fails"
    down_revision = {down!r}

    async def up(self, migrator: Migrator):
        await migrator.connection.execute("SELECT 1 / 0")

    async def down(self, migrator: Migrator):
        pass
"""


def with_password(url: str, password: str, database: str = "") -> str:
    """The test server's URL with a password (trust auth ignores it) and optionally another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    parts = parts._replace(netloc=f"{parts.username or 'postgres'}:{password}@{host}")
    if database:
        parts = parts._replace(path="/" + database)
    return urlunsplit(parts)


# Percent-encoded in the URL: neither the encoded nor the decoded form (Zq7@SECRET:pw/9) may show.
PASSWORD = "Zq7%40SECRET%3Apw%2F9"


def test_password_never_shown(tmp_path: Path, database_url: str, pgmig_server: Any) -> None:
    """Every command, its --json and --sql forms, its errors (with and without --debug), and every written file."""
    password = PASSWORD
    url = with_password(database_url, password)
    dev_url = with_password(pgmig_server.admin_url, password)
    missing = with_password(database_url, password, "no_such_database_here")
    unreachable = f"postgresql://postgres:{password}@127.0.0.1:9/x"
    root = make_project(tmp_path / "project", SECRET_MODELS)
    outputs: List[str] = []

    def run(*args: str, code: int = 0, using: str = url) -> Any:
        result = pgmig_cli(*args, cwd=root, env={"PGMIG_DATABASE_URL": using, "PGMIG_DEV_URL": url})
        outputs.append(result.stdout + result.stderr)
        assert result.returncode == code, f"pgmig {' '.join(args)} -> {result.returncode}\n{outputs[-1]}"
        return result

    run("diff")
    run("diff", "--json")
    run("diff", "--sql")
    run("diff", "--exit-code", code=1)
    run("--database-url", url, "diff", "--timings")
    revision = Path(run("generate", "-m", "first").stdout.strip().splitlines()[-1])
    run("up", "--sql")
    run("up")
    run("status")
    run("status", "--no-drift")
    run("history")
    run("check", "--dev-url", dev_url)
    run("check", "--json", "--dev-url", dev_url)
    run("down", "--sql")
    run("down")
    run("stamp", "head")
    run("stamp", "base")
    run("up")
    (root / "migrations" / "zz_fails.py").write_text(FAILING_REVISION.format(down=revision.stem[:22]))
    run("up", code=3)
    run("--debug", "up", code=3)
    for bad in (missing, unreachable):
        run("diff", code=3, using=bad)
        run("--debug", "diff", code=3, using=bad)
        run("up", code=3, using=bad)
        run("check", "--dev-url", bad, code=3, using=bad)

    assert json.loads(outputs[1])  # the --json output is JSON and was captured
    written = [
        path.read_text(encoding="utf-8") for path in root.rglob("*") if path.is_file() and ".pgmig" not in path.parts
    ]
    for secret in (password, unquote(password), "SECRET"):
        for text in outputs + written:
            assert secret not in text, f"the password {secret!r} was shown:\n{text}"
    assert sum("***" in text for text in outputs) >= 2, "the redacted URL should still be shown where it helps"
