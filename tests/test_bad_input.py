"""A corpus of bad input: each case is one clear line, the documented exit code, no traceback,
and a database left exactly as it was."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from pgmig.config.entrypoints import OBJECT_TYPES_GROUP, REGISTRIES_GROUP
from tests.helpers import fetch, make_distribution, pgmig_cli, run_sql

MODELS = """
import sqlalchemy as sa
metadata = sa.MetaData()
sa.Table("things", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))
"""


def revision(rid: str, down: Optional[str], body: str = "pass", extra: str = "") -> str:
    return textwrap.dedent(
        f'''
        from pgmig import MigrationRevisionBase, Migrator

        class MigrationRevision(MigrationRevisionBase):
            up_revision = "{rid}"
            down_revision = {down!r}
        {textwrap.indent(extra, "    ")}
            async def up(self, migrator: Migrator):
                {body}

            async def down(self, migrator: Migrator):
                pass
        '''
    )


@dataclass
class Case:
    name: str
    args: List[str]
    code: int
    says: str
    files: Dict[str, str] = field(default_factory=dict)
    env: Dict[str, str] = field(default_factory=dict)
    url: Optional[str] = "database"  # "database": the test's database; None: no URL; else a URL template
    setup_sql: List[str] = field(default_factory=list)
    dists: List[Callable[[Path], None]] = field(default_factory=list)
    line_on_stderr: bool = True


def registry_dist(name: str, table: str) -> Callable[[Path], None]:
    def make(site: Path) -> None:
        module = f"{name.replace('-', '_')}_models"
        make_distribution(
            site, name, {REGISTRIES_GROUP: {name: module}}, {f"{module}.py": MODELS.replace("things", table)}
        )

    return make


def handler_dist(name: str, kind: str, broken: bool = False) -> Callable[[Path], None]:
    def make(site: Path) -> None:
        module = f"{name.replace('-', '_')}_handler"
        source = (
            "import does_not_exist_anywhere\n"
            if broken
            else (f"from pgmig.api import ObjectHandler\nclass H(ObjectHandler):\n    kind = {kind!r}\n")
        )
        make_distribution(site, name, {OBJECT_TYPES_GROUP: {kind: f"{module}:H"}}, {f"{module}.py": source})

    return make


GOOD = {"models.py": MODELS}
R1 = revision("r1", None, "await migrator.connection.execute('CREATE TABLE things (id int)')")

CASES = [
    Case("url_bad_port", ["diff"], 2, "invalid port", GOOD, url="postgresql://u@localhost:notaport/db"),
    Case("url_bad_scheme", ["diff"], 2, "must start with postgresql://", GOOD, url="mysql://u:pw@localhost/db"),
    Case("url_garbage", ["diff"], 2, "must start with postgresql://", GOOD, url="not a url at all"),
    Case("url_unreachable", ["diff"], 3, "cannot reach the database", GOOD, url="postgresql://u:pw@127.0.0.1:9/db"),
    Case("missing_database", ["diff"], 3, "does not exist", GOOD, url="missing-db"),
    Case("models_missing_file", ["--models", "nope/models.py", "diff"], 2, "does not exist", {}),
    Case("models_is_a_directory", ["--models", "pkgdir/", "diff"], 2, "does not exist", {"pkgdir/x.txt": ""}),
    Case(
        "models_no_module", ["--models", "no_such_pkg_xyz.models", "diff"], 2, "no module named 'no_such_pkg_xyz'", {}
    ),
    Case(
        "models_raises",
        ["--models", "models.py", "diff"],
        2,
        "RuntimeError: boom",
        {"models.py": "raise RuntimeError('boom')\n"},
    ),
    Case("models_syntax_error", ["--models", "models.py", "diff"], 2, "SyntaxError", {"models.py": "def (:\n"}),
    Case(
        "models_no_tables",
        ["--models", "models.py", "diff"],
        2,
        "define no tables",
        {"models.py": "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"},
    ),
    Case(
        "models_nothing_usable",
        ["--models", "models.py", "diff"],
        2,
        "defines no tables or MetaData",
        {"models.py": "x = 1\n"},
    ),
    Case("models_bad_attribute", ["--models", "models.py:nothing", "diff"], 2, "has no attribute 'nothing'", GOOD),
    Case(
        "models_attribute_wrong_type",
        ["--models", "models.py:x", "diff"],
        2,
        "expected a module, a MetaData",
        {"models.py": MODELS + "x = 3\n"},
    ),
    Case("models_env_bad", ["diff"], 2, "does not exist", {}, env={"PGMIG_MODELS": "gone.py"}),
    Case("no_models_at_all", ["diff"], 2, "no models found", {}),
    Case(
        "table_defined_twice",
        ["diff"],
        2,
        "defined twice",
        {},
        dists=[registry_dist("app-one", "dup"), registry_dist("app-two", "dup")],
    ),
    Case(
        "plugin_duplicate_kind",
        ["--models", "models.py", "diff"],
        2,
        "provided twice",
        GOOD,
        dists=[handler_dist("pgmig-tables2", "table")],
    ),
    Case("revision_syntax_error", ["up"], 3, "syntax error", {**GOOD, "migrations/a.py": "def (:\n"}),
    Case("revision_no_class", ["up"], 3, "defines no MigrationRevision", {**GOOD, "migrations/a.py": "x = 1\n"}),
    Case(
        "revision_missing_up",
        ["up"],
        3,
        "has no up() method",
        {**GOOD, "migrations/a.py": revision("r1", None).replace("async def up", "async def not_up")},
    ),
    Case(
        "revision_missing_down",
        ["up"],
        3,
        "has no down() method",
        {**GOOD, "migrations/a.py": revision("r1", None).replace("async def down", "async def not_down")},
    ),
    Case(
        "revision_bad_id",
        ["up"],
        3,
        "up_revision must be a non-empty string",
        {**GOOD, "migrations/a.py": revision("", None)},
    ),
    Case(
        "revision_duplicate_ids",
        ["up"],
        3,
        "used by both",
        {**GOOD, "migrations/a.py": revision("r1", None), "migrations/b.py": revision("r1", "r1")},
    ),
    Case(
        "revision_broken_chain",
        ["up"],
        3,
        "matches no revision file",
        {**GOOD, "migrations/a.py": revision("r1", "r0")},
    ),
    Case(
        "revision_cycle",
        ["up"],
        3,
        "cycle",
        {
            **GOOD,
            "migrations/a.py": revision("r1", None),
            "migrations/b.py": revision("r2", "r3"),
            "migrations/c.py": revision("r3", "r2"),
        },
    ),
    Case(
        "revision_two_heads_generate",
        ["generate", "-m", "next"],
        3,
        "the revisions have 2 heads (r2 (b.py), r3 (c.py)): run pgmig merge",
        {
            **GOOD,
            "migrations/a.py": revision("r1", None),
            "migrations/b.py": revision("r2", "r1"),
            "migrations/c.py": revision("r3", "r1"),
        },
    ),
    Case(
        "revision_plugin_missing",
        ["up"],
        3,
        "'pgmig_not_installed_plugin', which is not installed",
        {**GOOD, "migrations/a.py": "import pgmig_not_installed_plugin\n"},
    ),
    Case(
        "applied_but_missing_on_disk",
        ["up"],
        3,
        "no file in the migrations folder",
        {**GOOD, "migrations/a.py": revision("r1", None)},
        setup_sql=[
            "CREATE TABLE pgmig_revisions (id text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration double precision NOT NULL DEFAULT 0)",
            "INSERT INTO pgmig_revisions (id, checksum) VALUES ('ghost', 'x')",
        ],
    ),
    Case("up_unknown_target", ["up", "nope"], 3, "'nope' is not a known revision", {**GOOD, "migrations/a.py": R1}),
    Case(
        "stamp_unknown_target", ["stamp", "nope"], 3, "'nope' is not a known revision", {**GOOD, "migrations/a.py": R1}
    ),
    Case("down_below_base", ["down"], 3, "nothing to roll back", {**GOOD, "migrations/a.py": R1}),
    Case(
        "revision_fails",
        ["up"],
        3,
        "revision a.py (up) failed",
        {**GOOD, "migrations/a.py": revision("r1", None, "await migrator.connection.execute('SELECT * FROM nowhere')")},
    ),
    Case(
        "revision_raises_python_error",
        ["up"],
        3,
        "raised ZeroDivisionError",
        {**GOOD, "migrations/a.py": revision("r1", None, "1 / 0")},
    ),
    Case(
        "pyproject_bad_value", ["diff"], 2, "invalid setting 'models'", {"pyproject.toml": "[tool.pgmig]\nmodels = 5\n"}
    ),
    Case(
        "pyproject_unknown_key",
        ["diff"],
        2,
        "unknown setting 'databse_url'",
        {"pyproject.toml": "[tool.pgmig]\ndatabse_url = 'x'\n"},
    ),
    Case("pyproject_not_toml", ["diff"], 2, "pyproject.toml", {"pyproject.toml": "[tool.pgmig\n"}),
    Case("unknown_option", ["diff", "--frobnicate"], 2, "No such option", GOOD, line_on_stderr=False),
    Case("unknown_command", ["frobnicate"], 2, "No such command", GOOD, line_on_stderr=False),
    Case("generate_without_message", ["generate"], 2, "Missing option", GOOD, line_on_stderr=False),
]


def tables(url: str) -> List[str]:
    return [
        r["t"]
        for r in fetch(
            url,
            "SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
        )
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, database_url: str) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    if "pyproject.toml" not in case.files:
        (root / "pyproject.toml").write_text(
            '[project]\nname = "proj"\n[tool.pgmig]\n'
            + ('models = ["models.py"]\n' if "models.py" in case.files and "--models" not in case.args else "")
        )
    for relative, content in case.files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    env = dict(case.env)
    if case.dists:
        site = tmp_path / "site"
        for make in case.dists:
            make(site)
        env["PYTHONPATH"] = str(site)
    if case.url == "database":
        env["PGMIG_DATABASE_URL"] = database_url
    elif case.url == "missing-db":
        from urllib.parse import urlsplit, urlunsplit

        env["PGMIG_DATABASE_URL"] = urlunsplit(urlsplit(database_url)._replace(path="/no_such_database_here"))
    elif case.url is not None:
        env["PGMIG_DATABASE_URL"] = case.url
    if case.setup_sql:
        run_sql(database_url, *case.setup_sql)
    before = tables(database_url)

    result = pgmig_cli(*case.args, cwd=root, env=env)

    assert result.returncode == case.code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert case.says in result.stderr, result.stderr
    if case.line_on_stderr:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stderr
        assert "pw@" not in result.stderr + result.stdout, "a password was printed"
    assert tables(database_url) == before, "the database changed"


def test_wrong_password(pgmig_server, database_url: str, tmp_path: Path) -> None:
    """Needs a server that checks passwords: the embedded one, with a scram line added to pg_hba.conf."""
    if pgmig_server._tempdir is None:
        pytest.skip("only the embedded test server's pg_hba.conf can be changed here")
    hba = Path(pgmig_server._tempdir) / "pgdata" / "pg_hba.conf"
    original = hba.read_text()
    run_sql(database_url, "CREATE ROLE pgmig_pw LOGIN PASSWORD 'right-password'")
    try:
        hba.write_text("local all pgmig_pw scram-sha-256\n" + original)
        run_sql(database_url, "SELECT pg_reload_conf()")
        url = database_url.replace("postgresql://postgres:@", "postgresql://pgmig_pw:wrong-password@", 1)
        assert "wrong-password" in url
        (tmp_path / "models.py").write_text(MODELS)
        result = pgmig_cli("--models", "models.py", "diff", cwd=tmp_path, env={"PGMIG_DATABASE_URL": url})
        assert result.returncode == 3, result.stderr
        assert "refused the password" in result.stderr
        assert "wrong-password" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
    finally:
        hba.write_text(original)
        run_sql(database_url, "SELECT pg_reload_conf()")
        run_sql(database_url, "DROP ROLE pgmig_pw")
