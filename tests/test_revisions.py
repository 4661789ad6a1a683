"""Revision files and the runner, end to end through the CLI against the real server."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path
from typing import Dict, List

import pytest

from tests.helpers import fetch, run_sql, snapshot
from tests.sample_project import V1, V2, V3, V4, Project, rid


def enum_labels(url: str) -> Dict[str, List[str]]:
    rows = fetch(
        url,
        "SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "ORDER BY t.typname, e.enumsortorder",
    )
    labels: Dict[str, List[str]] = {}
    for row in rows:
        labels.setdefault(row["typname"], []).append(row["enumlabel"])
    return labels


def full_snapshot(url: str) -> Dict[str, object]:
    snap = snapshot(url)
    snap["tables"] = [t for t in snap["tables"] if t["relname"] != "pgmig_revisions"]
    snap["columns"] = [c for c in snap["columns"] if c["table_name"] != "pgmig_revisions"]
    snap["enums"] = enum_labels(url)
    snap["constraints"] = fetch(
        url,
        "SELECT c.relname, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid WHERE c.relname <> 'pgmig_revisions' AND k.contype <> 'n' "
        "ORDER BY 1, 2",
    )
    snap["indexes"] = fetch(
        url,
        "SELECT indexname, regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') AS def FROM pg_indexes "
        "WHERE schemaname = 'public' AND tablename <> 'pgmig_revisions' ORDER BY 2",
    )
    return snap


def test_generate_up_down_round_trips(project: Project) -> None:
    project.models(V1)
    first = project.generate("initial schema")
    text = first.read_text()
    # With the parts of its create_table calls (Column, PrimaryKey) on the same line.
    assert re.search(r"^from pgmig import .*\bMigrationRevisionBase, Migrator\b", text, re.M), text
    assert "down_revision = None" in text
    assert '"""initial schema' in text
    project.cli("up")
    assert project.applied() == [rid(first)]
    assert "No changes" in project.cli("diff").stdout
    run_sql(project.url, "INSERT INTO author (name) VALUES ('ann')", "INSERT INTO post (title) VALUES ('hello')")

    snapshots = [full_snapshot(project.url)]
    for version, message, flags in (
        (V2, "views and authors", ()),
        (V3, "archive", ("--allow-destructive",)),
        (V4, "drop bio", ("--allow-destructive",)),
    ):
        project.models(version)
        path = project.generate(message, *flags)
        assert f'down_revision = "{rid(project.files()[-2])}"' in path.read_text()
        project.cli("up")
        assert project.cli("diff", "--exit-code").returncode == 0
        snapshots.append(full_snapshot(project.url))
        assert fetch(project.url, "SELECT title FROM post") == [{"title": "hello"}]
        assert fetch(project.url, "SELECT name FROM author") == [{"name": "ann"}]

    assert "archived" in snapshots[2]["enums"]["status"]
    # Every down restores the schema of the revision before it, exactly.
    for expected in reversed(snapshots[:-1]):
        project.cli("down")
        assert full_snapshot(project.url) == expected
        assert fetch(project.url, "SELECT title FROM post") == [{"title": "hello"}]
    # ... and up again reaches the same head.
    project.cli("up")
    assert full_snapshot(project.url) == snapshots[-1]
    project.cli("down", "base", "--yes")
    assert project.applied() == []
    assert full_snapshot(project.url)["tables"] == []


def test_no_changes_writes_nothing_and_empty_writes_a_blank(project: Project) -> None:
    project.models(V1)
    project.generate("initial")
    project.cli("up")
    result = project.cli("generate", "-m", "nothing")
    assert "No changes" in result.stdout
    assert len(project.files()) == 1
    blank = project.generate("backfill data", "--empty")
    text = blank.read_text()
    assert "async def up(self, migrator: Migrator) -> None:\n        pass" in text
    project.cli("up")
    assert len(project.applied()) == 2


def test_destructive_changes_need_consent(project: Project) -> None:
    project.models(V3)
    project.generate("initial")
    project.cli("up")
    project.models(V4)
    refused = project.cli("generate", "-m", "drop bio", ok=False)
    assert refused.returncode == 2
    assert "drop column bio" in refused.stderr and "--allow-destructive" in refused.stderr
    assert len(project.files()) == 1
    path = project.generate("drop bio", "--allow-destructive")
    assert "# destructive: deletes_data" in path.read_text()


def test_generate_against_history_when_the_database_is_behind(project: Project) -> None:
    project.models(V1)
    project.generate("initial")  # not applied: the database is empty
    project.models(V2)
    second = project.generate("second")
    text = second.read_text()
    assert "add_table" not in text, "tables of the pending first revision must not be repeated"
    assert "views" in text
    project.cli("up")
    assert project.cli("diff", "--exit-code").returncode == 0


def test_enum_label_added_and_used_in_one_up(project: Project) -> None:
    project.models(V1)
    project.generate("initial")
    project.cli("up")
    run_sql(project.url, "INSERT INTO post (title) VALUES ('old')")
    project.models(V3.replace("    bio: Optional[str] = None\n", ""))
    path = project.generate("archive old posts")
    source = path.read_text()
    assert "add_type_values" in source
    # A data migration in the same revision uses the new label at once.
    source = source.replace(
        "    async def down(",
        "        await migrator.connection.execute(\"UPDATE post SET status = 'archived'\")\n\n    async def down(",
        1,
    )
    path.write_text(source)
    project.cli("up")
    assert fetch(project.url, "SELECT status::text AS s FROM post") == [{"s": "archived"}]


def test_failing_revision_in_the_middle(project: Project) -> None:
    project.models(V1)
    project.generate("initial")
    project.models(V2)
    second = project.generate("second")
    project.models(V3)
    project.generate("third", "--allow-destructive")
    second.write_text(
        second.read_text().replace(
            "    async def down(",
            "        await migrator.connection.execute('SELECT * FROM no_such_table')\n\n    async def down(",
            1,
        )
    )
    result = project.cli("up", ok=False)
    assert result.returncode == 3
    assert second.name in result.stderr and "no_such_table" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(project.applied()) == 1, "the first revision stays applied and recorded"
    columns = {c["attname"] for c in snapshot(project.url)["columns"] if c["table_name"] == "post"}
    assert "views" not in columns, "the failed revision left nothing behind"


def test_concurrent_ups_apply_once(project: Project) -> None:
    project.models(V1)
    project.generate("initial")
    data = project.generate("seed", "--empty")
    data.write_text(
        data.read_text().replace(
            "    async def up(self, migrator: Migrator) -> None:\n        pass",
            "    async def up(self, migrator: Migrator) -> None:\n"
            "        await migrator.connection.execute(\"INSERT INTO author (name) VALUES ('once')\")\n"
            "        await migrator.connection.execute('SELECT pg_sleep(0.5)')",
        )
    )
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env["PGMIG_DATABASE_URL"] = project.url
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pgmig", "up"],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    assert fetch(project.url, "SELECT count(*) AS n FROM author") == [{"n": 1}]
    assert len(project.applied()) == 2
    assert sum("Already at head" in out for out, _ in outputs) == 3


def test_sql_output_runs_in_psql(project: Project, tmp_path: Path) -> None:
    import shutil

    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    project.models(V2)
    project.generate("initial")
    sql = project.cli("up", "--sql").stdout
    assert sql.count("BEGIN;") == 1 and "INSERT INTO" in sql
    assert fetch(project.url, "SELECT to_regclass('post') IS NULL AS missing") == [{"missing": True}]
    ran = subprocess.run(
        [psql, "-X", "-v", "ON_ERROR_STOP=1", "-q", "-d", project.url], input=sql, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert project.cli("diff", "--exit-code").returncode == 0
    assert "pending: none" in project.cli("status").stdout
    down_sql = project.cli("down", "--sql").stdout
    ran = subprocess.run(
        [psql, "-X", "-v", "ON_ERROR_STOP=1", "-q", "-d", project.url], input=down_sql, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert project.applied() == []


def test_status_history_stamp_and_edited_files(project: Project) -> None:
    project.models(V1)
    first = project.generate("initial")
    project.models(V2)
    second = project.generate("second")
    history = project.cli("history").stdout
    assert history.count("[pending]") == 2
    project.cli("stamp", rid(first))
    assert project.applied() == [rid(first)]
    assert "pending: 1" in project.cli("status").stdout
    first.write_text(first.read_text() + "\nEDITED = True\n")  # code: a comment alone is no edit
    status = project.cli("status")
    assert f"{first.name} was edited after it was applied" in status.stderr
    assert "(edited after it was applied)" in project.cli("history").stdout
    project.cli("stamp", "base")
    assert project.applied() == []
    assert second.exists()


def _write_revision(folder: Path, name: str, rid: str, down: str = "None", body: str = "pass") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(
        textwrap.dedent(
            f'''
            from pgmig import MigrationRevisionBase, Migrator

            class MigrationRevision(MigrationRevisionBase):
                up_revision = "{rid}"
                down_revision = {down}

                async def up(self, migrator: Migrator):
                    {body}

                async def down(self, migrator: Migrator):
                    pass
            '''
        )
    )
    return path


def test_plan_run_is_the_one_range_of_up_and_down() -> None:
    from pgmig.errors import RevisionError
    from pgmig.revisions.files import Chain, MigrationRevisionBase, Revision
    from pgmig.revisions.runner import DOWN, UP, plan_run, read_status

    chain = Chain(
        [
            Revision(f"r{i}", f"r{i - 1}" if i > 1 else None, Path(f"{i}.py"), "", MigrationRevisionBase)
            for i in (1, 2, 3)
        ]
    )

    def ids(direction: str, applied: int, target: object) -> List[str]:
        status = read_status(chain, {r.id: None for r in chain.revisions[:applied]})  # type: ignore[misc]
        return [r.id for r in plan_run(status, direction, target).revisions]  # type: ignore[arg-type]

    assert ids(UP, 1, None) == ["r2", "r3"] and ids(UP, 1, "r2") == ["r2"] and ids(UP, 3, "head") == []
    assert ids(DOWN, 3, None) == ["r3"] and ids(DOWN, 3, "base") == ["r3", "r2", "r1"] and ids(DOWN, 2, "r2") == []
    assert ids(DOWN, 0, "base") == []
    for direction, applied, target, message in [
        (UP, 2, "r1", "r1 is behind the current revision r2; use pgmig down"),
        (DOWN, 1, "r3", "r3 is ahead of the current revision r1; use pgmig up"),
        (DOWN, 0, None, "nothing to roll back"),
        (UP, 0, "r9", "'r9' is not a known revision"),
    ]:
        with pytest.raises(RevisionError, match=message):
            ids(direction, applied, target)


def test_sql_refuses_the_targets_the_run_refuses(project: Project) -> None:
    """`up --sql` and `down --sql` plan the range as `up` and `down` do: same errors, same exit codes."""
    folder = project.root / "migrations"
    _write_revision(folder, "a.py", "r1")
    _write_revision(folder, "b.py", "r2", '"r1"')
    _write_revision(folder, "c.py", "r3", '"r2"')
    project.models(V1)
    project.cli("up", "r2")
    assert project.applied() == ["r1", "r2"]

    for command in (["up", "r1"], ["down", "r3"]):
        ran = project.cli(*command, ok=False)
        shown = project.cli(*command, "--sql", ok=False)
        assert ran.returncode == shown.returncode == 3, (ran.stderr, shown.stderr)
        assert shown.stderr == ran.stderr and shown.stdout == ""
    assert "r1 is behind the current revision r2; use pgmig down" in project.cli("up", "r1", "--sql", ok=False).stderr
    assert "r3 is ahead of the current revision r2; use pgmig up" in project.cli("down", "r3", "--sql", ok=False).stderr
    assert project.applied() == ["r1", "r2"]

    # At the target already: nothing to show, as nothing is run.
    assert "-- up" not in project.cli("up", "r2", "--sql").stdout
    assert "Nothing to apply up to r2." in project.cli("up", "r2").stdout
    up_sql = project.cli("up", "--sql").stdout
    assert "-- up: r3 (c.py)" in up_sql and "r1" not in up_sql and "CREATE TABLE" not in up_sql
    down_sql = project.cli("down", "base", "--sql").stdout
    assert down_sql.index("-- down: r2 (b.py)") < down_sql.index("-- down: r1 (a.py)")

    project.cli("down", "base", "--yes")
    assert project.applied() == []
    ran, shown = project.cli("down", ok=False), project.cli("down", "--sql", ok=False)
    assert ran.returncode == shown.returncode == 3 and "nothing to roll back" in shown.stderr
    assert shown.stderr == ran.stderr
    assert "Nothing to roll back." in project.cli("down", "base", "--yes").stdout


@pytest.mark.parametrize(
    "files, message",
    [
        ([("a.py", "r1", "None"), ("b.py", "r2", '"nope"')], "b.py: down_revision 'nope' matches no revision file"),
        (
            [("a.py", "r1", "None"), ("m.py", "m", '("r1", "nope")')],
            "m.py: down_revision 'nope' matches no revision file",
        ),
        ([("a.py", "r1", "None"), ("b.py", "r2", '"r3"'), ("c.py", "r3", '"r2"')], "cycle"),
        (
            [("a.py", "r1", "None"), ("b.py", "r2", '"r1"'), ("c.py", "r3", '("r2", "r4")'), ("d.py", "r4", '"r3"')],
            "revisions form a cycle (each follows another of them, directly or not): c.py, d.py",
        ),
        ([("a.py", "r1", "None"), ("b.py", "r2", '("r1",)')], "a tuple of two or more different revision ids"),
        ([("a.py", "r1", "None"), ("b.py", "r2", '("r1", "r1")')], "a tuple of two or more different revision ids"),
        ([("a.py", "r1", "None"), ("b.py", "r1", '"r1"')], "used by both a.py and b.py"),
    ],
)
def test_broken_chains_are_errors(project: Project, files, message: str) -> None:
    project.models(V1)
    for name, revision_id, down in files:
        _write_revision(project.root / "migrations", name, revision_id, down)
    result = project.cli("up", ok=False)
    assert result.returncode == 3
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert fetch(project.url, "SELECT to_regclass('pgmig_revisions') IS NULL AS none") == [{"none": True}]


def test_revision_in_database_without_a_file(project: Project) -> None:
    project.models(V1)
    _write_revision(project.root / "migrations", "a.py", "r1")
    project.cli("up")
    run_sql(project.url, "INSERT INTO pgmig_revisions (id, checksum) VALUES ('ghost', 'x')")
    # status only reads: it says what does not add up and shows the rest; up refuses.
    result = project.cli("status")
    assert "warning:" in result.stderr and "ghost" in result.stderr and "current: r1" in result.stdout
    refused = project.cli("up", ok=False)
    assert refused.returncode == 3 and "ghost" in refused.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        ("def broken(:\n", "syntax error"),
        ("x = 1\n", "defines no MigrationRevision"),
        (
            "from pgmig import MigrationRevisionBase\nclass MigrationRevision(MigrationRevisionBase):\n"
            "    up_revision = 'r1'\n    async def up(self, migrator):\n        pass\n",
            "has no down() method",
        ),
        ("import pgmig_plugin_not_installed\n", "pgmig_plugin_not_installed"),
    ],
)
def test_bad_revision_files(project: Project, content: str, message: str) -> None:
    project.models(V1)
    (project.root / "migrations").mkdir()
    (project.root / "migrations" / "bad.py").write_text(content)
    result = project.cli("up", ok=False)
    assert result.returncode == 3
    assert message in result.stderr and "bad.py" in result.stderr


def test_destructive_prompt_answer_decides(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the terminal prompt does, through the library API that the CLI calls."""
    import asyncio

    from pgmig.config.settings import load_settings
    from pgmig.services.generate import DestructiveChangeError, GenerateOptions, Questioner, generate
    from pgmig.services.project import Project as PgmigProject

    project.models(V3)
    project.generate("initial")
    project.cli("up")
    project.models(V4)
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("PGMIG_DATABASE_URL", project.url)
    asked: List[List[str]] = []

    class Answer(Questioner):
        def __init__(self, value: bool) -> None:
            self.value = value

        def confirm_destructive(self, changes: List[str]) -> bool:
            asked.append(changes)
            return self.value

    library = PgmigProject(load_settings())
    with pytest.raises(DestructiveChangeError) as refused:
        asyncio.run(generate(library, GenerateOptions("drop bio"), Answer(False)))
    assert asked == [["drop column bio of author"]]
    assert refused.value.changes == ["drop column bio of author"] and refused.value.hint is not None
    assert refused.value.hint.option == "allow_destructive" and "--" not in str(refused.value)
    assert len(project.files()) == 1
    path = asyncio.run(generate(PgmigProject(load_settings()), GenerateOptions("drop bio"), Answer(True)))
    assert path is not None and path.exists() and len(project.files()) == 2


def test_a_role_owning_its_schema_without_create_on_the_database_applies_the_first_revision(
    project: Project,
) -> None:
    """Least privilege: the version table goes into the existing schema without CREATE SCHEMA,
    which Postgres refuses to a role lacking CREATE on the database even with IF NOT EXISTS."""
    from urllib.parse import urlsplit, urlunsplit

    project.models(V1)
    project.generate("initial schema")
    parts = urlsplit(project.url)
    database = parts.path.lstrip("/")
    role = f"owner_{database}"[:60]
    run_sql(
        project.url,
        f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'secret'",
        f'REVOKE CREATE, TEMPORARY ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
        f'ALTER SCHEMA public OWNER TO "{role}"',
    )
    owner_url = urlunsplit(parts._replace(netloc=f"{role}:secret@{parts.netloc.rsplit('@', 1)[-1]}"))
    try:
        project.url = owner_url
        project.cli("up")
        assert project.applied() and project.cli("diff", "--exit-code").returncode == 0
    finally:
        project.url = urlunsplit(parts)
        run_sql(
            project.url,
            "ALTER SCHEMA public OWNER TO CURRENT_USER",
            f'DROP OWNED BY "{role}" CASCADE',
            f'DROP ROLE "{role}"',
        )
