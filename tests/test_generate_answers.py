"""What generate does with the values and names it is given, or not given, without and with a terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, List, Optional

import pytest

from tests.helpers import fetch, run_sql
from tests.sample_project import Project
from tests.test_safety import SEED, models, seeded

TZ = '    sa.Column("tz", sa.Text, nullable=False),\n'
NOTE = '    sa.Column("note", sa.Text{}),\n'


def generate_with(project: Project, monkeypatch: pytest.MonkeyPatch, answers: List[str]) -> "tuple[Path, List[Any]]":
    """generate through the library, a questioner giving `answers` in turn (as a person would type
    them at the prompt); returns the file and the problems each question was asked with."""
    from pgmig.config.settings import load_settings
    from pgmig.services.generate import GenerateOptions, Questioner, generate
    from pgmig.services.project import Project as PgmigProject

    monkeypatch.chdir(project.root)
    monkeypatch.setenv("PGMIG_DATABASE_URL", project.url)
    monkeypatch.setenv("PGMIG_DEV_URL", project.url)
    asked: List[Any] = []
    typed = list(answers)

    class Typing(Questioner):
        def ask_default(self, need: Any, problem: Optional[str] = None) -> Optional[str]:
            asked.append(problem)
            return typed.pop(0) if typed else None

    path = asyncio.run(generate(PgmigProject(load_settings()), GenerateOptions("tz"), Typing()))
    assert path is not None
    return path, asked


def test_a_value_the_server_refuses_is_asked_again(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded(project, models(), SEED)
    project.models(models(extra=TZ))
    path, asked = generate_with(project, monkeypatch, ["UTC", "'UTC'; DROP TABLE article", "'UTC'"])
    assert asked[0] is None
    assert 'column "utc" does not exist' in asked[1]
    assert 'syntax error at or near ";"' in asked[2]  # one expression, in one statement: nothing else ran
    assert "default=\"'UTC'\"" in path.read_text()
    project.cli("up")
    assert fetch(project.url, "SELECT DISTINCT tz FROM article") == [{"tz": "UTC"}]


def test_a_value_given_by_flag_is_checked_too(project: Project) -> None:
    seeded(project, models(extra=NOTE.format("")), SEED)
    project.models(models(extra=TZ + NOTE.format(", nullable=False")))
    refused = project.cli(
        "generate", "-m", "tz", "--default", "article.tz=UTC", "--default", "article.note=''", ok=False
    )
    assert refused.returncode == 2, refused.stderr
    assert 'refused by the server: UndefinedColumnError: column "utc" does not exist' in refused.stderr
    assert "--default article.tz=EXPR" in refused.stderr and not list((project.root / "migrations").glob("*_tz.py"))
    # A backfill reads the row: the server checks it over the table's rows.
    refused = project.cli(
        "generate", "-m", "tz", "--default", "article.tz='x'", "--default", "article.note=1/0", ok=False
    )
    assert refused.returncode == 2 and "division by zero" in refused.stderr
    path = project.generate("tz", "--default", "article.tz='UTC'", "--default", "article.note=title")
    assert "backfill_column" in path.read_text()
    project.cli("up")
    assert fetch(project.url, "SELECT tz, note FROM article WHERE id = 1") == [{"tz": "UTC", "note": "a"}]


def test_the_todo_says_how_to_edit_the_file_and_which_flag_regenerates_it(project: Project) -> None:
    seeded(project, models(), SEED)
    project.models(models(extra=TZ))
    text = project.generate("tz").read_text()
    assert "raise NotImplementedError" in text
    assert "delete these TODO lines and give the existing rows a value in up()" in text
    assert "or delete the file and regenerate it: give a value with --default article.tz=EXPR" in text
    assert "edit this revision: give a value with --default" not in text
    failed = project.cli("up", ok=False)
    assert failed.returncode == 3 and "delete these TODO lines" in failed.stderr


def test_not_null_with_no_null_in_the_rows_is_written_with_a_comment(project: Project) -> None:
    seeded(project, models(extra=NOTE.format("")), SEED + ["UPDATE article SET note = 'n'"])
    project.models(models(extra=NOTE.format(", nullable=False")))
    path = project.generate("note")
    text = path.read_text()
    assert "NotImplementedError" not in text and "add_not_null" in text
    assert "table article had no NULL in note when this revision was generated" in text
    assert "--default article.note=EXPR" in text
    # Should a NULL appear before it runs, up stops before anything runs, naming the rows.
    run_sql(project.url, "INSERT INTO article (title, color) VALUES ('d', 'RED')")
    stopped = project.cli("up", ok=False)
    assert stopped.returncode == 3 and "NULL" in stopped.stderr
    assert fetch(
        project.url, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'article'::regclass AND attname = 'note'"
    ) == [{"attnotnull": False}]
    run_sql(project.url, "DELETE FROM article WHERE title = 'd'")
    project.cli("up")
    assert project.cli("diff", "--exit-code").returncode == 0

    # Rows known to hold NULL keep the TODO; so does a NOT NULL column added to a table with rows.
    project.models(models(extra=NOTE.format(", nullable=False") + '    sa.Column("extra", sa.Text),\n'))
    project.generate("extra")
    project.cli("up")
    run_sql(project.url, "UPDATE article SET extra = NULL")
    project.models(models(extra=NOTE.format(", nullable=False") + '    sa.Column("extra", sa.Text, nullable=False),\n'))
    assert "raise NotImplementedError" in project.generate("extra required").read_text()


def test_a_not_null_column_added_to_an_empty_table_needs_no_todo(project: Project) -> None:
    seeded(project, models(), [])
    project.models(models(extra=TZ))
    text = project.generate("tz").read_text()
    assert "NotImplementedError" not in text and "table article had no rows" in text
    project.cli("up")


def test_a_rename_candidate_is_named_before_allow_destructive(project: Project) -> None:
    seeded(project, models(), SEED)
    project.models(models(title="headline"))
    refused = project.cli("generate", "-m", "headline", ok=False)
    assert refused.returncode == 2
    said = refused.stderr
    assert "if it was renamed, keep its data: rerun with --rename article.title=article.headline" in said
    assert said.index("--rename article.title=article.headline") < said.index("--allow-destructive")
    assert "if nothing was renamed and the data may go" in said


def test_a_label_map_the_models_cannot_take_is_refused_at_generate(project: Project) -> None:
    seeded(project, models(), SEED)
    project.models(models(colors=("RED", "GREEN")))
    for spec, said in [
        ("color.BLUE=PURPLE", "moves rows of enum color to 'PURPLE', which the models do not give it"),
        ("color.RED=GREEN", "moves rows off 'RED' of enum color, which the models keep or never had"),
        ("size.BIG=SMALL", "names enum size, which loses no label in this revision"),
    ]:
        refused = project.cli("generate", "-m", "x", "--allow-destructive", "--map-enum-value", spec, ok=False)
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
        assert "--map-enum-value" in refused.stderr
    assert not list((project.root / "migrations").glob("*_x.py"))


def test_the_prompt_asks_again_with_the_server_error(project: Project) -> None:
    """At a terminal (a pseudo-terminal as stdin): `UTC` is refused with the server's words, `'UTC'` taken."""
    import os
    import subprocess
    import sys

    seeded(project, models(), SEED)
    project.models(models(extra=TZ))
    leader, follower = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env.update(PGMIG_DATABASE_URL=project.url, PGMIG_DEV_URL=project.url)
    try:
        os.write(leader, b"UTC\n'UTC'\n")  # typed ahead: the terminal keeps the lines until they are read
        done = subprocess.run(
            [sys.executable, "-m", "pgmig", "generate", "-m", "tz"],
            cwd=project.root,
            env=env,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("SQL value for existing rows of article.tz") == 2
    assert 'The server refuses it: UndefinedColumnError: column "utc" does not exist' in done.stderr
    path = Path(done.stdout.strip().splitlines()[-1])
    assert "default=\"'UTC'\"" in path.read_text()
