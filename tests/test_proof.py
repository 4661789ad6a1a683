"""`generate` proves each revision on a scratch database before writing it; the adopted-history fallback.

The proof (pgmig.services.proof): `up`, a fresh diff empty, `down`, the
starting schema back, `up` again, on a scratch database on the dev server.
Faults are injected into the operations a revision calls, so each step's
failure is seen as a user would see it, against the real server.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from pgmig.ops.base import Operation
from pgmig.ops.column import AddColumn, DropColumn
from tests.helpers import fetch, pgmig_cli, run_sql
from tests.sample_project import Project

AUTHOR = """
from typing import Optional

from sqlmodel import Field, SQLModel


class Author(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
"""
WITH_NICKNAME = AUTHOR + "    nickname: Optional[str] = None\n"

BAD_TYPE = 'ALTER TABLE "author" ADD COLUMN "nickname" no_such_type'
BAD_DROP = 'ALTER TABLE "author" DROP COLUMN "no_such_column"'

# (operation class, statement it runs instead for column nickname, failed step, what the error names)
FAULTS = {
    "up": (AddColumn, BAD_TYPE, "up", 'type "no_such_type" does not exist'),
    "diff after up": (AddColumn, "SELECT 1", "diff after up", "create column nickname of author"),
    "down": (DropColumn, BAD_DROP, "down", BAD_DROP),
    "schema after down": (DropColumn, "SELECT 1", "schema after down", "column public.author.nickname is there"),
}


def library_generate(project: Project, monkeypatch: pytest.MonkeyPatch, message: str, verify: bool = True) -> Any:
    """`generate` through the library (in this process, so monkeypatched operations are what the proof runs)."""
    from sqlmodel import SQLModel

    from pgmig.config.settings import load_settings
    from pgmig.services.generate import GenerateOptions, generate
    from pgmig.services.project import Project as PgmigProject

    # The models file defines SQLModel tables; another test's `author` must not be in the shared MetaData.
    SQLModel.metadata.clear()
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("PGMIG_DATABASE_URL", project.url)
    monkeypatch.setenv("PGMIG_DEV_URL", project.url)
    notices: List[str] = []
    library = PgmigProject(load_settings(), notice=notices.append)
    try:
        return asyncio.run(generate(library, GenerateOptions(message, verify=verify))), notices
    finally:
        SQLModel.metadata.clear()  # nor may ours stay for the next test


def inject(monkeypatch: pytest.MonkeyPatch, cls: type, statement: str) -> None:
    """`cls` runs `statement` instead of its own for column nickname (a revision that is wrong as written)."""
    original: Callable[[Operation], List[str]] = cls.statements  # type: ignore[attr-defined]

    def statements(self: Any) -> List[str]:
        return [statement] if self.column_name == "nickname" else original(self)

    monkeypatch.setattr(cls, "statements", statements)


def at_v1(project: Project) -> None:
    project.models(AUTHOR)
    project.generate("author")
    project.cli("up")
    project.models(WITH_NICKNAME)


def scratch_databases(project: Project) -> List[str]:
    return [
        r["datname"] for r in fetch(project.url, "SELECT datname FROM pg_database WHERE datname LIKE 'pgmig_scratch_%'")
    ]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_revision_failing_a_step_of_its_proof_is_not_written(
    project: Project, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    from pgmig.services.proof import ProofError

    at_v1(project)
    cls, statement, step, named = FAULTS[fault]
    inject(monkeypatch, cls, statement)
    with pytest.raises(ProofError) as failed:
        library_generate(project, monkeypatch, "nickname")
    assert failed.value.step == step and failed.value.exit_code == 3
    message = str(failed.value)
    assert f"at step '{step}'" in message and named in message and "nothing was written" in message
    assert failed.value.hint is not None and failed.value.hint.option == "verify"
    assert len(project.files()) == 1
    # The configured database was never touched, and no scratch database is left behind.
    assert project.applied() == [project.files()[0].name[:22]]
    assert [r["column_name"] for r in fetch(project.url, _COLUMNS)] == ["id", "name"]


_COLUMNS = "SELECT column_name FROM information_schema.columns WHERE table_name = 'author' ORDER BY ordinal_position"


def test_without_verify_the_faulty_revision_is_written(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    at_v1(project)
    inject(monkeypatch, DropColumn, BAD_DROP)
    path, _ = library_generate(project, monkeypatch, "nickname", verify=False)
    assert path is not None and path.exists() and len(project.files()) == 2


def _faulty_cli(project: Project, tmp_path: Path, *args: str) -> Any:
    """The CLI in a subprocess whose DropColumn is wrong (a sitecustomize module patches it at start-up)."""
    inject_dir = tmp_path / "inject"
    inject_dir.mkdir(exist_ok=True)
    (inject_dir / "sitecustomize.py").write_text(
        textwrap.dedent(
            f"""
            from pgmig.ops.column import DropColumn

            DropColumn.statements = lambda self: [{BAD_DROP!r}]
            """
        )
    )
    env = {"PGMIG_DATABASE_URL": project.url, "PGMIG_DEV_URL": project.url, "PYTHONPATH": str(inject_dir)}
    return pgmig_cli(*args, cwd=project.root, env=env)


def test_the_cli_exits_3_naming_step_and_statement_and_no_verify_writes(project: Project, tmp_path: Path) -> None:
    at_v1(project)
    failed = _faulty_cli(project, tmp_path, "generate", "-m", "nickname")
    assert failed.returncode == 3, failed.stderr
    assert "at step 'down'" in failed.stderr and BAD_DROP in failed.stderr
    assert "--no-verify" in failed.stderr and "Traceback" not in failed.stderr
    assert len(project.files()) == 1
    written = _faulty_cli(project, tmp_path, "generate", "-m", "nickname", "--no-verify")
    assert written.returncode == 0, written.stderr
    assert len(project.files()) == 2


def test_a_database_with_objects_and_no_revision_yet_is_proven_from_its_objects(project: Project) -> None:
    run_sql(project.url, ADOPTED_TABLE)
    project.models(WITH_NICKNAME)
    path = project.generate("nickname")
    assert "create_table" not in path.read_text() and "add_column" in path.read_text()


def test_a_normal_change_is_proven_then_written(project: Project) -> None:
    at_v1(project)
    result = project.cli("generate", "-m", "nickname", "--timings")
    assert "timing: proof" in result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.exists() and "add_column" in path.read_text()
    assert not scratch_databases(project)
    project.cli("up")
    project.cli("down")
    project.cli("up")
    assert project.cli("check").returncode == 0


def test_a_non_transactional_revision_is_proven_as_written(project: Project) -> None:
    at_v1(project)
    project.models(AUTHOR.replace("Field(max_length=80)", "Field(max_length=80, index=True)"))
    result = project.cli("generate", "-m", "index", "--concurrently", "--timings")
    assert "timing: proof" in result.stderr
    assert "transactional = False" in project.files()[-1].read_text()


def test_a_revision_with_a_todo_is_proven_without_it_and_written(project: Project) -> None:
    at_v1(project)
    run_sql(project.url, "INSERT INTO author (name) VALUES ('ann')")
    # A quote in the name must not break the TODO's literal (found by the property test).
    project.models(AUTHOR + "    email: str = Field(sa_column_kwargs={'name': \"it's\"})\n")
    result = project.cli("generate", "-m", "email")
    assert "proven without its TODO" in result.stderr
    assert "raise NotImplementedError" in project.files()[-1].read_text()
    refused = project.cli("up", ok=False)
    assert refused.returncode == 3 and "NotImplementedError" in refused.stderr and "it's" in refused.stderr


def test_a_faulty_revision_of_a_database_not_at_head_is_refused_too(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generating from the replayed history (the database behind head) proves on that same scratch."""
    at_v1(project)
    project.cli("down")
    inject(monkeypatch, DropColumn, "SELECT 1")
    from pgmig.services.proof import ProofError

    with pytest.raises(ProofError, match="schema after down"):
        library_generate(project, monkeypatch, "nickname")
    assert len(project.files()) == 1


# -- a database adopted mid-history ---------------------------------------------------------

ADOPTED_TABLE = "CREATE TABLE author (id serial PRIMARY KEY, name varchar(80) NOT NULL)"
FIRST_REVISION = '''
from pgmig import MigrationRevisionBase, Migrator


class MigrationRevision(MigrationRevisionBase):
    """Add bio (the table came before pgmig)"""

    up_revision = "20260101_000000_aaaaaa"
    down_revision = None

    async def up(self, migrator: Migrator) -> None:
        await migrator.actor.execute('ALTER TABLE "author" ADD COLUMN "bio" varchar')

    async def down(self, migrator: Migrator) -> None:
        await migrator.actor.execute('ALTER TABLE "author" DROP COLUMN "bio"')
'''
WITH_BIO = AUTHOR + "    bio: Optional[str] = None\n"


def adopted(project: Project) -> None:
    """A table made before pgmig, and a first revision that assumes it: the history does not build from empty."""
    run_sql(project.url, ADOPTED_TABLE, "INSERT INTO author (name) VALUES ('ann')")
    (project.root / "migrations").mkdir()
    (project.root / "migrations" / "20260101_000000_aaaaaa_add_bio.py").write_text(FIRST_REVISION)
    project.models(WITH_BIO)
    project.cli("up")


def test_generate_on_a_database_adopted_mid_history(project: Project) -> None:
    adopted(project)
    project.models(WITH_BIO + "    nickname: Optional[str] = None\n")
    # At head: the proof starts from the database's objects, whatever the history builds.
    second = project.generate("nickname")
    # Not at head now: the replay fails, so the scratch is built from the database's objects at the
    # first revision, then the second is replayed on it.
    project.models(WITH_BIO + "    nickname: Optional[str] = None\n    age: Optional[int] = None\n")
    result = project.cli("generate", "-m", "age")
    assert "do not build from an empty database" in result.stderr
    assert "revision 20260101_000000_aaaaaa_add_bio.py (up) failed" in result.stderr
    third = Path(result.stdout.strip().splitlines()[-1])
    project.cli("up")
    assert project.applied() == [p.name[:22] for p in (project.files()[0], second, third)]
    assert [r["name"] for r in fetch(project.url, "SELECT name FROM author")] == ["ann"]
    assert project.cli("diff", "--exit-code").returncode == 0
    assert not scratch_databases(project)


def test_check_and_drift_on_a_database_adopted_mid_history(project: Project) -> None:
    adopted(project)
    project.models(WITH_BIO + "    nickname: Optional[str] = None\n")
    project.generate("nickname")
    checked = project.cli("check")
    assert "checking from the configured database's objects" in checked.stderr
    report = project.cli("check", "--json")
    import json

    revisions: List[Dict[str, Optional[str]]] = json.loads(report.stdout)["revisions"]
    assert [r["status"] for r in revisions] == ["skipped", "ok"]
    status = project.cli("status")
    assert "drift: not measured" in status.stdout and "drift not measured" in status.stderr
    assert "failed" not in status.stdout


def test_check_still_fails_a_revision_after_the_adoption_point(project: Project) -> None:
    adopted(project)
    bad = FIRST_REVISION.replace("20260101_000000_aaaaaa", "20260102_000000_bbbbbb").replace(
        "down_revision = None", 'down_revision = "20260101_000000_aaaaaa"'
    )
    # It adds bio again: fails on the database's objects at the first revision, after the adoption point.
    (project.root / "migrations" / "20260102_000000_bbbbbb_bad.py").write_text(bad)
    checked = project.cli("check", ok=False)
    assert checked.returncode == 1
    assert "20260102_000000_bbbbbb_bad.py" in checked.stdout + checked.stderr
