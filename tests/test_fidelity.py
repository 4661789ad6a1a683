"""No false positives and exact builds on a model set that uses every type and kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from tests import everything
from tests.helpers import assert_roundtrip, create_all, diff, fetch, pgmig_cli, run_sql, snapshot


def test_create_all_of_everything_diffs_empty(database_url: str) -> None:
    md = everything.build()
    create_all(database_url, md)
    plan = diff(database_url, md)
    assert plan.is_empty, [c.to_json() for c in plan.changes]


def test_diff_sql_from_empty_builds_what_create_all_builds(database_url: str, pgmig_server, tmp_path: Path) -> None:
    """`pgmig diff --sql` on an empty database, run as it is, equals SQLAlchemy's create_all."""
    models = tmp_path / "models.py"
    models.write_text("from tests.everything import build\nmetadata = build()\n")
    env = {"PGMIG_DATABASE_URL": database_url, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    result = pgmig_cli("--models", str(models), "diff", "--sql", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    run_sql(database_url, result.stdout)
    md = everything.build()
    assert diff(database_url, md).is_empty
    scratch = pgmig_server.create_database()
    try:
        create_all(scratch, md)
        assert snapshot(database_url) == snapshot(scratch)
    finally:
        pgmig_server.drop_database(scratch)


def test_everything_round_trips_from_empty(database_url: str, pgmig_server) -> None:
    assert_roundtrip(pgmig_server, database_url, sa.MetaData(), everything.build())


TYPES = [
    ("integer", sa.Integer, "1"),
    ("bigint", sa.BigInteger, "1"),
    ("smallint", sa.SmallInteger, "1"),
    ("boolean", sa.Boolean, "true"),
    ("text", sa.Text, "'x'"),
    ("varchar", sa.String, "'x'"),
    ("varchar(20)", sa.String(20), "'x'"),
    ("char(3)", sa.CHAR(3), "'abc'"),
    ("numeric(8,3)", sa.Numeric(8, 3), "1.5"),
    ("real", sa.REAL, "1.5"),
    ("double", sa.Double, "1.5"),
    ("date", sa.Date, "'2020-01-01'"),
    ("time", sa.Time, "'10:00'"),
    ("timestamp", sa.DateTime, "'2020-01-01 10:00'"),
    ("timestamptz", sa.DateTime(timezone=True), "'2020-01-01 10:00+00'"),
    ("interval", sa.Interval, "'1 day'"),
    ("uuid", sa.Uuid, "'4b8a2b5e-3f6c-4d0e-9a51-2f5f6a7b8c9d'"),
    ("bytea", sa.LargeBinary, "'\\x00'"),
    ("json", sa.JSON, "'{}'"),
    ("jsonb", pg.JSONB, "'[1]'"),
    ("int[]", pg.ARRAY(sa.Integer), "'{1,2}'"),
    ("text[][]", pg.ARRAY(sa.Text, dimensions=2), "'{{a}}'"),
    ("enum", sa.Enum("a", "b", name="kind"), "'a'"),
    ("enum[]", pg.ARRAY(sa.Enum("a", "b", name="kind")), "'{a}'"),
]


@pytest.mark.parametrize("label, sa_type, value", TYPES, ids=[t[0] for t in TYPES])
def test_adding_a_column_of_each_type_keeps_rows(
    database_url: str, pgmig_server, label: str, sa_type, value: str
) -> None:
    def models(with_column: bool) -> sa.MetaData:
        md = sa.MetaData()
        columns = [sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text)]
        if with_column:
            columns.append(sa.Column("value", sa_type, server_default=sa.text(value)))
        sa.Table("holder", md, *columns)
        return md

    assert_roundtrip(
        pgmig_server,
        database_url,
        models(False),
        models(True),
        seed=["INSERT INTO holder (name) VALUES ('one'), ('two')"],
        rows_query="SELECT id, name FROM holder ORDER BY id",
    )
    migrate_back_and_forth = fetch(database_url, "SELECT count(*) AS n FROM holder")
    assert migrate_back_and_forth == [{"n": 2}]
