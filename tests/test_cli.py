"""The command line as a user runs it: a subprocess, real files, a real server, exit codes."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Dict

import pytest

from pgmig.config.entrypoints import REGISTRIES_GROUP
from pgmig.db.embedded import server_dir, stop_server
from tests.helpers import make_distribution, pgmig_cli, run_sql

MODELS = """
from typing import Optional

from sqlmodel import Field, SQLModel


class Customer(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
"""


def assert_one_clean_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    (root / "app" / "models.py").write_text(MODELS)
    (root / "pyproject.toml").write_text('[project]\nname = "proj"\n')
    return root


def test_version() -> None:
    result = pgmig_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == "pgmig 0.1.0"


def test_diff_sql_then_apply_then_no_changes(project: Path, database_url: str) -> None:
    env = {"PGMIG_DATABASE_URL": database_url}
    result = pgmig_cli("--models", "app/models.py", "diff", "--exit-code", cwd=project, env=env)
    assert result.returncode == 1, result.stderr
    assert "+ table customer" in result.stdout
    assert "+ column name character varying(80) NOT NULL" in result.stdout

    sql = pgmig_cli("--models", "app/models.py", "diff", "--sql", cwd=project, env=env)
    assert sql.returncode == 0, sql.stderr
    # The session settings it is written for, then one CREATE TABLE with the columns and key, as create_all writes it.
    assert sql.stdout.split("\n\n", 1)[1].startswith(
        'CREATE TABLE "public"."customer" (\n    "id" serial NOT NULL,\n'
        '    "name" character varying(80) NOT NULL,\n    PRIMARY KEY ("id")\n);'
    ), sql.stdout
    assert "ADD COLUMN" not in sql.stdout
    run_sql(database_url, sql.stdout)

    again = pgmig_cli("--models", "app/models.py", "diff", "--exit-code", cwd=project, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout


def test_diff_json(project: Path, database_url: str) -> None:
    import json

    result = pgmig_cli(
        "--models", "app/models.py", "diff", "--json", cwd=project, env={"PGMIG_DATABASE_URL": database_url}
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    first = plan["changes"][0]
    assert (first["kind"], first["action"], first["key"]) == ("table", "create", ["table", "public", "customer"])
    assert first["sql"] == [
        'CREATE TABLE "public"."customer" (\n    "id" serial NOT NULL,\n'
        '    "name" character varying(80) NOT NULL,\n    PRIMARY KEY ("id")\n)'
    ]
    (operation,) = first["operations"]
    assert operation["operation"] == "create_table"
    assert operation["arguments"]["columns"][0] == {
        "part": "column",
        "name": "id",
        "data_type": "integer",
        "nullable": False,
        "default": None,
        "autoincrement": True,
        "identity": None,
        "comment": None,
        "generated": None,
        "virtual": False,
        "collation": None,
        "identity_options": None,
        "primary_key": True,
        "references": None,
        "unique": False,
    }
    assert operation["arguments"].get("constraints") is None  # the key is its column's
    # The columns are shown under their table, done by its statement.
    assert [c["implicit"] for c in plan["changes"][1:3]] == [True, True]


def test_registry_entry_point_on_the_embedded_default(tmp_path: Path, project: Path) -> None:
    """The zero-config path: an installed registry, no --models, no URL."""
    site = tmp_path / "site"
    make_distribution(site, "shop", {REGISTRIES_GROUP: {"shop": "shop_models"}}, {"shop_models.py": MODELS})
    env: Dict[str, str] = {"PYTHONPATH": str(site)}
    try:
        plugins = pgmig_cli("plugins", cwd=project, env=env)
        assert plugins.returncode == 0, plugins.stderr
        assert "shop_models" in plugins.stdout and "shop 1.0" in plugins.stdout
        for kind in ("table", "column", "enum", "constraint", "index", "sequence", "domain"):
            assert f"│ {kind} " in plugins.stdout

        result = pgmig_cli("diff", cwd=project, env=env)
        assert result.returncode == 0, result.stderr
        assert "Using the embedded PostgreSQL" in result.stderr
        # .pgmig/ beside pyproject.toml; as root, pgmig's own folder for this project (see test_embedded_folders).
        where = server_dir(project / ".pgmig")
        assert str(where) in result.stderr
        assert "+ table customer" in result.stdout
        assert (where / "pgdata" / "PG_VERSION").exists()

        # The next run reuses the running server.
        sql = pgmig_cli("diff", "--sql", cwd=project, env=env)
        assert sql.returncode == 0 and "CREATE TABLE" in sql.stdout
    finally:
        stop_server(project / ".pgmig", delete=True)


# -- errors: one line, the documented exit code, never a password ------------------


def test_bad_url_scheme_is_a_usage_error(project: Path) -> None:
    result = pgmig_cli("--database-url", "mysql://u:hunter2@h/db", "--models", "app/models.py", "diff", cwd=project)
    assert result.returncode == 2
    line = assert_one_clean_line(result.stderr)
    assert "postgresql://" in line and "hunter2" not in result.stderr + result.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_is_a_database_error(project: Path) -> None:
    url = f"postgresql://me:s3cret-pw@127.0.0.1:{_closed_port()}/app"
    result = pgmig_cli("--models", "app/models.py", "diff", cwd=project, env={"PGMIG_DATABASE_URL": url})
    assert result.returncode == 3
    line = assert_one_clean_line(result.stderr)
    assert "cannot reach the database" in line
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "me:***@127.0.0.1" in line


def test_missing_database(project: Path, database_url: str) -> None:
    url = database_url.replace("/pgmig_test_", "/no_such_db_", 1)
    result = pgmig_cli("--models", "app/models.py", "diff", cwd=project, env={"PGMIG_DATABASE_URL": url})
    assert result.returncode == 3
    assert "does not exist" in assert_one_clean_line(result.stderr)


def test_models_errors_are_usage_errors(project: Path, database_url: str) -> None:
    env = {"PGMIG_DATABASE_URL": database_url}
    missing = pgmig_cli("--models", "app/nope.py", "diff", cwd=project, env=env)
    assert missing.returncode == 2
    assert "does not exist" in assert_one_clean_line(missing.stderr)

    (project / "app" / "broken.py").write_text("import not_installed_anywhere\n")
    broken = pgmig_cli("--models", "app/broken.py", "diff", cwd=project, env=env)
    assert broken.returncode == 2
    assert "not_installed_anywhere" in assert_one_clean_line(broken.stderr)

    debug = pgmig_cli("--debug", "--models", "app/broken.py", "diff", cwd=project, env=env)
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr


def test_bad_pyproject_value(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\n[tool.pgmig]\nschema = 3\nfoo = 1\n')
    result = pgmig_cli("diff", cwd=project)
    assert result.returncode == 2
    line = assert_one_clean_line(result.stderr)
    assert "'foo'" in line and "'schema'" in line


def test_unknown_option_is_exit_2(project: Path) -> None:
    result = pgmig_cli("diff", "--no-such-flag", cwd=project)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_init_command(project: Path) -> None:
    result = pgmig_cli("--models", "app/models.py", "init", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "migrations").is_dir()
    text = (project / "pyproject.toml").read_text()
    assert "[tool.pgmig]" in text and '"app/models.py"' in text
    assert pgmig_cli("init", cwd=project).returncode == 0
    assert (project / "pyproject.toml").read_text() == text


def test_help_does_not_import_heavy_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pgmig.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'sqlmodel', 'asyncpg') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_timings_lines(project: Path, database_url: str) -> None:
    import re

    result = pgmig_cli(
        "--models", "app/models.py", "diff", "--timings", cwd=project, env={"PGMIG_DATABASE_URL": database_url}
    )
    assert result.returncode == 0, result.stderr
    assert "+ table customer" in result.stdout and "timing:" not in result.stdout
    lines = [l for l in result.stderr.splitlines() if l.startswith("timing:")]
    assert [l.split()[1] for l in lines] == ["load", "introspect", "compare", "render"]
    assert all(re.fullmatch(r"timing: [a-z]+ \d+\.\d+s", l) for l in lines)


def test_installed_plugin_packages_are_listed() -> None:
    """`pip install -e plugins/<name>` (as .ci/run does) makes each kind appear with its package."""
    from importlib.metadata import PackageNotFoundError, version

    expected = {
        "pgmig-views": ["view"],
        "pgmig-extensions": ["extension"],
        "pgmig-functions": ["function", "trigger"],
        "pgmig-citus": ["distribution"],
    }
    installed = {}
    for package, kinds in expected.items():
        try:
            installed[package] = (version(package), kinds)
        except PackageNotFoundError:
            continue
    if not installed:
        pytest.skip("the plugins in plugins/ are not installed in this environment")
    result = pgmig_cli("plugins")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    for package, (package_version, kinds) in installed.items():
        for kind in kinds:
            assert any(f"│ {kind} " in row and f"{package} {package_version}" in row for row in rows), result.stdout
