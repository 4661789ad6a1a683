"""`exclude`: objects pgmig never reads, diffs, drops or reports (flag, env, key; other tools' version
tables by default), on a real server through the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from pgmig.schema.exclude import OTHER_TOOLS_VERSION_TABLES, exclusions
from pgmig.schema.handlers.column import Column
from pgmig.schema.handlers.index import Index
from pgmig.schema.handlers.table import Table
from tests.helpers import fetch, pgmig_cli, run_sql
from tests.sample_project import V1, V2, Project

# As `alembic upgrade` and Django's migrate create them.
ALEMBIC_VERSION = (
    "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)
DJANGO_MIGRATIONS = (
    "CREATE TABLE django_migrations (id bigserial PRIMARY KEY, app varchar(255) NOT NULL, "
    "name varchar(255) NOT NULL, applied timestamptz NOT NULL)"
)

# A hand-made table with what an excluded table must take with it: an index, a check, a foreign key
# to a managed table, a serial's sequence, a trigger; and a function and a view of the same pattern.
LEGACY = (
    "CREATE TABLE legacy_orders (id serial PRIMARY KEY, author_id integer NOT NULL REFERENCES author (id), "
    "total numeric CONSTRAINT legacy_orders_total_check CHECK (total >= 0))",
    "CREATE INDEX legacy_orders_author ON legacy_orders (author_id)",
    # Plugin kinds: a function (by its name), a trigger (by its table), a view (by its name).
    "CREATE FUNCTION legacy_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "CREATE TRIGGER legacy_orders_touch BEFORE UPDATE ON legacy_orders FOR EACH ROW EXECUTE FUNCTION legacy_touch()",
    "CREATE VIEW legacy_big_orders AS SELECT id, total FROM legacy_orders WHERE total > 100",
    "INSERT INTO author (name) VALUES ('ann')",
    "INSERT INTO legacy_orders (author_id, total) VALUES (1, 9.5)",
)


def test_patterns_match_names_or_schema_qualified_names_and_take_a_tables_parts() -> None:
    found = exclusions(["spatial_ref_sys", "public.legacy_*", "audit.*"])
    assert found.patterns[: len(OTHER_TOOLS_VERSION_TABLES)] == OTHER_TOOLS_VERSION_TABLES
    assert found.excludes(Table(schema="public", name="alembic_version"))
    assert found.excludes(Table(schema="app", name="spatial_ref_sys"))  # no dot: any schema
    assert found.excludes(Table(schema="public", name="legacy_orders"))
    assert not found.excludes(Table(schema="app", name="legacy_orders"))  # a dot: that schema only
    assert found.excludes(Table(schema="audit", name="log"))
    assert not found.excludes(Table(schema="public", name="log"))
    assert not found.excludes(Table(schema="public", name="Spatial_Ref_Sys"))  # case-sensitive, as Postgres names
    # A column by the table its key names, an index by its parent table (its own name matches nothing).
    assert found.excludes(Column(schema="public", table="legacy_orders", name="id", data_type="integer"))
    assert found.excludes(Index(schema="audit", table="log", name="log_at", keys=("at",)))
    assert not found.excludes(Index(schema="public", table="post", name="legacy_idx", keys=("a",)))
    assert not exclusions([], defaults=False).excludes(Table(schema="public", name="alembic_version"))


def test_other_tools_version_tables_are_never_proposed(project: Project) -> None:
    run_sql(project.url, ALEMBIC_VERSION, "INSERT INTO alembic_version VALUES ('abc123')", DJANGO_MIGRATIONS)
    project.models(V1)
    preview = project.cli("diff").stdout
    assert "post" in preview and "alembic_version" not in preview and "django_migrations" not in preview
    text = project.generate("initial").read_text()
    assert "alembic_version" not in text and "django_migrations" not in text
    project.cli("up")
    assert project.cli("diff", "--exit-code").returncode == 0
    assert "drift: none" in project.cli("status", "--exit-code").stdout
    assert "check passed" in project.cli("check").stdout
    project.cli("down", "base", "--yes")
    assert fetch(project.url, "SELECT version_num FROM alembic_version") == [{"version_num": "abc123"}]
    assert fetch(project.url, "SELECT count(*) AS n FROM django_migrations") == [{"n": 0}]


def _cli(project: Project, how: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """`pgmig ARGS` with `legacy_*` excluded by `how`: the flag, the environment or the pyproject key."""
    env: Dict[str, str] = {"PGMIG_DATABASE_URL": project.url, "PGMIG_DEV_URL": project.url}
    before: List[str] = []
    if how == "flag":
        before = ["--exclude", "nothing_here", "--exclude", "legacy_*"]
    elif how == "env":
        env["PGMIG_EXCLUDE"] = "nothing_here, public.legacy_*"
    result = pgmig_cli(*before, *args, cwd=project.root, env=env)
    if ok:
        assert result.returncode == 0, f"pgmig {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


@pytest.mark.parametrize("how", ["flag", "env", "key"])
def test_an_excluded_table_with_its_index_check_and_foreign_key_is_left_alone(project: Project, how: str) -> None:
    project.models(V1)
    project.generate("initial")
    project.cli("up")
    run_sql(project.url, *LEGACY)
    # Without the exclusion the hand-made table is a drop, and drift.
    unexcluded = project.cli("diff", "--exit-code", ok=False)
    assert unexcluded.returncode == 1
    for name in ("legacy_orders", "legacy_touch", "legacy_orders_touch", "legacy_big_orders"):
        assert name in unexcluded.stdout, name
    if how == "key":
        pyproject = project.root / "pyproject.toml"
        pyproject.write_text(pyproject.read_text() + 'exclude = ["public.legacy_*"]\n')

    preview = _cli(project, how, "diff", "--exit-code")
    assert "legacy" not in preview.stdout
    assert "No changes" in _cli(project, how, "generate", "-m", "nothing").stdout
    project.models(V2)
    written = Path(_cli(project, how, "generate", "-m", "second").stdout.strip().splitlines()[-1])
    assert "legacy" not in written.read_text()
    _cli(project, how, "up")
    status = _cli(project, how, "status", "--exit-code")
    assert "drift: none" in status.stdout and "legacy" not in status.stdout
    check = _cli(project, how, "check")
    assert "check passed (2 revisions)" in check.stdout
    _cli(project, how, "down")  # not to base: the excluded table's foreign key holds on to author
    # Excluded: never dropped, its rows, index and check still there.
    assert fetch(project.url, "SELECT total FROM legacy_orders")[0]["total"] == 9.5
    assert fetch(project.url, "SELECT count(*) AS n FROM legacy_big_orders") == [{"n": 0}]
    assert fetch(project.url, "SELECT tgname FROM pg_trigger WHERE tgname = 'legacy_orders_touch'") == [
        {"tgname": "legacy_orders_touch"}
    ]
    assert fetch(project.url, "SELECT indexname FROM pg_indexes WHERE tablename = 'legacy_orders' ORDER BY 1") == [
        {"indexname": "legacy_orders_author"},
        {"indexname": "legacy_orders_pkey"},
    ]


MANAGED_FK_TO_EXCLUDED = """
from typing import Optional

from sqlmodel import Field, SQLModel


class Country(SQLModel, table=True):  # referenced, not managed: excluded
    code: str = Field(primary_key=True)


class City(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    country_code: str = Field(foreign_key="country.code", index=True)
"""


def test_a_managed_foreign_key_to_an_excluded_table(project: Project) -> None:
    run_sql(
        project.url,
        "CREATE TABLE country (code text PRIMARY KEY, name text NOT NULL, "
        "population bigint CONSTRAINT country_population_check CHECK (population >= 0))",
        "CREATE INDEX country_name ON country (name)",
        "INSERT INTO country VALUES ('fr', 'France', 68000000)",
    )
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'exclude = ["country"]\n')
    project.models(MANAGED_FK_TO_EXCLUDED)
    preview = project.cli("diff").stdout
    assert "city" in preview and "table country" not in preview and "population" not in preview
    # Proven on a scratch database that holds the referenced table (its key, not its other columns).
    text = project.generate("cities").read_text()
    assert '"city"' in text and 'table_name="country"' not in text
    project.cli("up")
    run_sql(project.url, "INSERT INTO city (country_code) VALUES ('fr')")
    assert project.cli("diff", "--exit-code").returncode == 0
    assert "drift: none" in project.cli("status", "--exit-code").stdout
    # The history replays on a scratch database seeded with the excluded table it references.
    assert "check passed (1 revision" in project.cli("check").stdout
    project.cli("down", "base", "--yes")
    assert fetch(project.url, "SELECT to_regclass('city') IS NULL AS gone, count(*) AS n FROM country") == [
        {"gone": True, "n": 1}
    ]


def test_exclude_settings_flag_env_key_and_a_bad_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pgmig.config.settings import load_settings
    from pgmig.errors import ConfigError

    for name in [name for name in os.environ if name.startswith("PGMIG_")]:
        monkeypatch.delenv(name)
    (tmp_path / "pyproject.toml").write_text('[tool.pgmig]\nexclude = ["a_*"]\n')
    assert load_settings(cwd=tmp_path).exclusions.patterns == (*OTHER_TOOLS_VERSION_TABLES, "a_*")
    monkeypatch.setenv("PGMIG_EXCLUDE", "b_*, public.c")
    assert load_settings(cwd=tmp_path).exclude == ["b_*", "public.c"]  # the environment over the key
    assert load_settings({"exclude": ["d"]}, cwd=tmp_path).exclude == ["d"]  # the flag over both
    with pytest.raises(ConfigError, match=r"exclude pattern 'a\.b\.c': use NAME or SCHEMA\.NAME"):
        load_settings({"exclude": ["a.b.c"]}, cwd=tmp_path)


def test_baseline_of_a_database_whose_managed_table_references_an_excluded_one(project: Project) -> None:
    run_sql(
        project.url,
        "CREATE TABLE country (code varchar PRIMARY KEY, name text NOT NULL)",
        "CREATE TABLE city (id serial PRIMARY KEY, country_code varchar NOT NULL REFERENCES country (code))",
        "CREATE INDEX ix_city_country_code ON city (country_code)",
    )
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'exclude = ["country"]\n')
    # The proof's empty scratch database is given the referenced key of country, from the database.
    path = Path(project.cli("baseline", "-m", "adopt").stdout.splitlines()[0])
    text = path.read_text()
    assert '"city"' in text and 'table_name="country"' not in text and '"name"' not in text
    project.models(MANAGED_FK_TO_EXCLUDED)
    assert project.cli("diff", "--exit-code").returncode == 0
    assert "check passed (1 revision" in project.cli("check").stdout
