"""The typed surface: revision files type-check under `mypy --strict`, and a misspelt operation fails twice.

mypy runs in a subprocess on files written to a temporary folder, against the
pgmig (and plugin) packages this interpreter imports; errors inside those
packages are silenced (`--follow-imports=silent`), so only the revision files'
own errors count, as for a user whose site-packages holds pgmig.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from pgmig.ops.actor import DatabaseActions
from pgmig.ops.base import Hazard, UnknownOperationError, lookup
from pgmig.ops.column import DropColumn, ModifyColumnType
from pgmig.ops.data import ExecuteSQL
from tests.helpers import ROOT, fetch
from tests.sample_project import Project

HEADER = "from pgmig import MigrationRevisionBase, Migrator\n"


def revision_file(body: str, imports: str = HEADER, rid: str = "r1", down: str = "None") -> str:
    """A hand-written revision whose `up` is `body` (lines, indented by this function)."""
    return (
        imports
        + textwrap.dedent(
            f"""

            class MigrationRevision(MigrationRevisionBase):
                up_revision = "{rid}"
                down_revision = {down}

                async def up(self, migrator: Migrator) -> None:
            """
        )
        + textwrap.indent(textwrap.dedent(body).strip() + "\n", " " * 8)
        + "\n    async def down(self, migrator: Migrator) -> None:\n        pass\n"
    )


GOOD_BODY = """
    await migrator.actor.add_table(table_name="thing")
    await migrator.actor.add_column(table_name="thing", column_name="name", data_type="text")
    await migrator.actor.add_index(table_name="thing", index_name="thing_name", columns=["name"])
    await migrator.actor.add_type(type_name="mood", values=["ok", "sad"])
    await migrator.actor.remap_type_values(type_name="mood", mapping={"sad": "ok"})
    await migrator.actor.execute("UPDATE thing SET name = $1 WHERE name IS NULL", "x")
    count = await migrator.connection.fetchval("SELECT count(*) FROM thing")
    assert count is not None
"""


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared by every run in the session: the first one analyses pgmig and its imports, the rest reuse it.
    return tmp_path_factory.mktemp("mypy_cache")


def package_roots() -> List[str]:
    """Where pgmig and the installed plugins are imported from (editable installs hide them from mypy)."""
    roots = set()
    for name in ("pgmig", "pgmig_views", "pgmig_functions", "pgmig_extensions", "pgmig_citus"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            roots.add(str(Path(spec.origin).resolve().parent.parent))
    return sorted(roots)


def mypy_errors(files: Sequence[Path], cache: Path) -> Dict[str, List[str]]:
    """`mypy --strict` on `files`: the error lines of each file, by file name."""
    env = {**os.environ, "MYPYPATH": os.pathsep.join(package_roots())}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(cache)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(files[0].parent),
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    errors: Dict[str, List[str]] = {f.name: [] for f in files}
    for line in result.stdout.splitlines():
        name = line.split(":", 1)[0]
        if ": error:" in line and Path(name).name in errors:
            errors[Path(name).name].append(line)
    return errors


def test_a_misspelt_operation_fails_mypy_strict_and_a_correct_file_passes(tmp_path: Path, mypy_cache: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(revision_file(GOOD_BODY))
    bad = tmp_path / "bad.py"
    bad.write_text(revision_file(GOOD_BODY.replace("actor.add_column(", "actor.add_colum(")))
    wrong_argument = tmp_path / "wrong_argument.py"
    wrong_argument.write_text(revision_file(GOOD_BODY.replace('data_type="text"', "data_type=1")))
    typo_import = tmp_path / "typo_import.py"
    typo_import.write_text(revision_file(GOOD_BODY, imports="from pgmig import MigrationRevisionBas, Migrator\n"))

    errors = mypy_errors([good, bad, wrong_argument, typo_import], mypy_cache)

    assert errors["good.py"] == []
    assert len(errors["bad.py"]) == 1 and '"add_colum"' in errors["bad.py"][0], errors["bad.py"]
    assert len(errors["wrong_argument.py"]) == 1 and "data_type" in errors["wrong_argument.py"][0]
    # The package's names are real to the type checker, not a lazy module __getattr__'s Any.
    assert any("MigrationRevisionBas" in line for line in errors["typo_import.py"]), errors["typo_import.py"]


def test_plugin_operations_are_hidden_from_the_type_checker(tmp_path: Path, mypy_cache: Path) -> None:
    pytest.importorskip("pgmig_views")
    by_name = tmp_path / "by_name.py"
    by_name.write_text(revision_file('await migrator.actor.create_view(view_name="v", definition="SELECT 1")'))
    by_class = tmp_path / "by_class.py"
    by_class.write_text(
        revision_file(
            'await migrator.actor.run(CreateView(view_name="v", definition="SELECT 1"))',
            imports=HEADER + "from pgmig_views.ops import CreateView\n",
        )
    )
    errors = mypy_errors([by_name, by_class], mypy_cache)
    assert len(errors["by_name.py"]) == 1 and '"create_view"' in errors["by_name.py"][0]
    assert errors["by_class.py"] == []


CHECKED_MODELS = """
import enum
from typing import Optional

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class Mood(enum.Enum):
    ok = "ok"
    sad = "sad"


class Author(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, index=True)


class Post(SQLModel, table=True):
    __table_args__ = (sa.CheckConstraint("length(title) > 0", name="post_title_not_empty"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    title: str = Field(max_length=100)
    mood: Mood = Field(sa_column=sa.Column(sa.Enum(Mood), nullable=False, server_default="ok"))
    author_id: Optional[int] = Field(default=None, foreign_key="author.id")
"""

VIEWS = """
from pgmig_views import view, view_index

view(SQLModel, "post_titles", sa.select(Post.title))
view(SQLModel, "post_counts", sa.text("SELECT author_id, count(*) AS n FROM post GROUP BY author_id"),
     materialized=True, depends_on=["post"], indexes=[view_index("post_counts_author", "author_id", unique=True)])
"""


def test_generated_revisions_pass_mypy_strict(project: Project, mypy_cache: Path) -> None:
    """A table, an enum, an index, a check and a foreign key, then a change of each; with views when installed."""
    views = importlib.util.find_spec("pgmig_views") is not None
    project.models(CHECKED_MODELS + (VIEWS if views else ""))
    first = project.generate("initial")
    project.cli("up")
    changed = CHECKED_MODELS.replace('    sad = "sad"\n', "").replace("max_length=100", "max_length=200")
    project.models(changed.replace("index=True", "index=False").replace(', name="post_title_not_empty"', ""))
    second = project.generate("change everything", "--allow-destructive")
    text = first.read_text() + second.read_text()
    for call in ("create_table", "add_type", "drop_index", "add_check", "swap_type_values"):
        assert f"migrator.actor.{call}(" in text, call
    # A new table's parts are typed calls imported from pgmig, checked by mypy below (a one-column
    # primary key is its column's `primary_key=True`, a plain foreign key its `references=`).
    names = {"Check", "Column", "Index", "MigrationRevisionBase", "Migrator"}
    imported = [
        [alias.name for alias in node.names]
        for node in ast.parse(first.read_text()).body
        if isinstance(node, ast.ImportFrom) and node.module == "pgmig"
    ]
    assert imported == [sorted(names)]  # one sorted import (however ruff lays it out)
    assert (
        'Column("author_id", "integer", references="author.id")' in text and 'Index("ix_author_name", ["name"])' in text
    )
    if views:
        assert "from pgmig_views.ops import CreateView, CreateViewIndex" in first.read_text()
        assert "await migrator.actor.run(" in first.read_text()

    errors = mypy_errors([first, second], mypy_cache)
    assert errors == {first.name: [], second.name: []}
    project.cli("up")
    project.cli("down", "base", "--yes")


def test_a_misspelt_operation_fails_at_run_time_naming_the_right_one(project: Project) -> None:
    project.models("import sqlalchemy as sa\nmetadata = sa.MetaData()\n")
    (project.root / "migrations").mkdir()
    (project.root / "migrations" / "r1.py").write_text(
        revision_file(
            """
            await migrator.actor.add_table(table_name="thing")
            await migrator.actor.add_colum(table_name="thing", column_name="name", data_type="text")
            """
        )
    )
    result = project.cli("up", ok=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "add_colum" in result.stderr and "did you mean add_column?" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    # The revision ran in one transaction: the table it made first is gone with it.
    assert fetch(project.url, "SELECT to_regclass('public.thing') AS t") == [{"t": None}]
    # Printing its SQL fails the same way, and does not blame migrator.connection.
    printed = project.cli("up", "--sql", ok=False)
    assert printed.returncode == 3, printed.stdout + printed.stderr
    assert "did you mean add_column?" in printed.stderr and "migrator.connection" not in printed.stderr


def test_unknown_operation_error_names_the_closest_registered_operation() -> None:
    with pytest.raises(UnknownOperationError, match=r"'add_colum'.*did you mean add_column\?"):
        lookup("add_colum")
    with pytest.raises(UnknownOperationError, match="installed and imported"):
        lookup("zzz_nothing_like_it")
    actor = DatabaseActions()
    assert not hasattr(actor, "add_colum")  # still an AttributeError to getattr and hasattr
    assert getattr(actor, "drop_colum", None) is None


def test_revision_files_calling_plugin_operations_by_name_still_run(project: Project) -> None:
    pytest.importorskip("pgmig_views")
    project.models("import sqlalchemy as sa\nmetadata = sa.MetaData()\n")
    (project.root / "migrations").mkdir()
    (project.root / "migrations" / "r1.py").write_text(
        revision_file(
            'await migrator.actor.create_view(view_name="answer", definition="SELECT 42 AS n")',
            imports="import pgmig_views  # noqa: F401\n\n" + HEADER,
        )
    )
    project.cli("up")
    assert fetch(project.url, "SELECT * FROM answer") == [{"n": 42}]


def test_execute_runs_with_bound_parameters_and_shows_in_sql(project: Project) -> None:
    project.models("import sqlalchemy as sa\nmetadata = sa.MetaData()\n")
    (project.root / "migrations").mkdir()
    (project.root / "migrations" / "r1.py").write_text(
        revision_file(
            """
            await migrator.actor.add_table(table_name="note")
            await migrator.actor.add_column(table_name="note", column_name="body", data_type="text")
            await migrator.actor.execute("INSERT INTO note (body) VALUES ($1), ($2), ('$1')", "it's", None)
            """
        )
    )
    shown = project.cli("up", "--sql").stdout
    assert """INSERT INTO note (body) VALUES ('it''s'), (NULL), ('$1');""" in shown
    project.cli("up")
    rows = fetch(project.url, "SELECT body FROM note ORDER BY body NULLS LAST")
    assert [r["body"] for r in rows] == ["$1", "it's", None]


def test_execute_sql_literals() -> None:
    op = ExecuteSQL(sql="SELECT $1, $2, $3, $4, '$2', \"$1\"", parameters=(True, 2.5, b"\x01", ["a", None]))
    assert op.statements() == ["SELECT TRUE, 2.5, E'\\\\x01'::bytea, ARRAY['a', NULL], '$2', \"$1\""]
    assert op.bound_statements() == [(op.sql, (True, 2.5, b"\x01", ["a", None]))]
    assert asyncio.run(_recorded_execute()) == [ExecuteSQL(sql="SELECT $1", parameters=(1,))]


async def _recorded_execute() -> List[ExecuteSQL]:
    actor = DatabaseActions()
    await actor.execute("SELECT $1", 1)
    return [op for op in actor.recorded if isinstance(op, ExecuteSQL)]


def test_hazards_are_an_enum_that_reads_as_its_string() -> None:
    hazards = DropColumn(table_name="t", column_name="c").hazards()
    assert hazards == (Hazard.DELETES_DATA,) and hazards == ("deletes_data",)
    assert f"{Hazard.DELETES_DATA}" == str(Hazard.DELETES_DATA) == "deletes_data"
    assert json.dumps(ModifyColumnType(table_name="t", column_name="c", data_type="text").hazards()) == (
        '["rewrites_table", "access_exclusive_lock"]'
    )
    from pgmig.api import Hazard as exported

    assert exported is Hazard
    assert {h.value for h in Hazard} == {
        "deletes_data",
        "rewrites_table",
        "access_exclusive_lock",
        "blocks_writes",
        "full_scan",
        "index_build",
    }


def test_the_generated_actor_module_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("generate_actor", ROOT / "scripts" / "generate_actor.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    written = (ROOT / "pgmig" / "ops" / "actor_methods.py").read_text(encoding="utf-8")
    assert written == generator.render(), "pgmig/ops/actor_methods.py is stale: run python scripts/generate_actor.py"
    # Every built-in operation is a method; no plugin operation is.
    methods = set(re.findall(r"^    async def (\w+)\(", written, flags=re.M)) - {"run"}
    builtins = {name for name, cls in importlib.import_module("pgmig.ops.base").OPERATIONS.items()}
    assert methods == {n for n in builtins if lookup(n).__module__.startswith("pgmig.ops.")}
