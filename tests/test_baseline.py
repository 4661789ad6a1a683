"""`pgmig baseline`: adopting a database built by hand or by Alembic, on a real server, through the CLI.

The Alembic test is the README's "Coming from Alembic" section, run as written:
a real Alembic project whose history `alembic upgrade head` applies, then pgmig.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from pgmig.config.settings import load_settings
from pgmig.services.baseline import BaselineOptions, HistoryExistsError, baseline
from pgmig.services.project import Project as Configured
from tests.helpers import fetch, run_sql
from tests.sample_project import V1, V2, Project, rid

HAND_MADE = (
    "CREATE TYPE mood AS ENUM ('happy', 'sad')",
    "CREATE TABLE author (id serial PRIMARY KEY, name varchar(80) NOT NULL, mood mood NOT NULL DEFAULT 'happy')",
    "CREATE UNIQUE INDEX ix_author_name ON author (name)",
    "CREATE TABLE book (id serial PRIMARY KEY, author_id integer NOT NULL REFERENCES author (id), "
    "title text NOT NULL, pages integer CONSTRAINT book_pages_check CHECK (pages > 0))",
    "CREATE INDEX ix_book_author_id ON book (author_id)",
    "CREATE VIEW long_book AS SELECT id, title FROM book WHERE pages > 300",
    "INSERT INTO author (name, mood) VALUES ('ann', 'sad'), ('bob', DEFAULT)",
    "INSERT INTO book (author_id, title, pages) VALUES (1, 'Long', 900), (2, 'Short', 12)",
)

# The same schema as models (the view through pgmig-views).
HAND_MADE_MODELS = """
import enum
from typing import Optional

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from pgmig_views import view


class Mood(enum.Enum):
    happy = "happy"
    sad = "sad"


class Author(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True, index=True)
    mood: Mood = Field(sa_column=sa.Column(sa.Enum(Mood, name="mood"), nullable=False, server_default="happy"))


class Book(SQLModel, table=True):
    __table_args__ = (sa.CheckConstraint("pages > 0", name="book_pages_check"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    author_id: int = Field(foreign_key="author.id", index=True)
    title: str = Field(sa_type=sa.Text)
    pages: Optional[int] = None


view(SQLModel, "long_book", "SELECT id, title FROM book WHERE pages > 300", depends_on=["book"])
"""


def _baseline(project: Project, message: str = "adopt") -> Path:
    result = project.cli("baseline", "-m", message)
    lines = result.stdout.strip().splitlines()
    path = Path(lines[0])
    assert path.parent == project.root / "migrations" and path.exists()
    assert f"Recorded {rid(path)} as applied" in result.stdout and "pgmig generate -m" in result.stdout
    return path


def test_baseline_of_a_hand_made_database_then_generate_up_and_down(project: Project) -> None:
    run_sql(project.url, *HAND_MADE)
    # No models file yet: baseline reads the database only.
    path = _baseline(project)
    text = path.read_text()
    for made in ('"mood"', '"author"', '"book"', '"long_book"', '"book_pages_check"', '"ix_book_author_id"'):
        assert made in text, made
    assert "down_revision = None" in text
    # Recorded, not run: the rows are the ones the database had.
    assert project.applied() == [rid(path)]
    assert fetch(project.url, "SELECT count(*) AS n FROM book") == [{"n": 2}]
    status = project.cli("status", "--exit-code")
    assert "drift: none" in status.stdout

    project.models(HAND_MADE_MODELS)
    assert project.cli("diff", "--exit-code").returncode == 0
    check = project.cli("check")
    assert "check passed (1 revision" in check.stdout

    project.models(
        HAND_MADE_MODELS.replace(
            "    pages: Optional[int] = None\n", "    pages: Optional[int] = None\n    isbn: Optional[str] = None\n"
        )
    )
    second = project.generate("isbn")
    project.cli("up")
    assert project.applied() == [rid(path), rid(second)]
    assert "drift: none" in project.cli("status", "--exit-code").stdout
    project.cli("down")
    assert project.applied() == [rid(path)]
    assert fetch(project.url, "SELECT count(*) AS n FROM information_schema.columns WHERE column_name = 'isbn'") == [
        {"n": 0}
    ]
    assert fetch(project.url, "SELECT title FROM long_book") == [{"title": "Long"}]


def test_baseline_refuses_an_existing_history_and_an_empty_database(project: Project) -> None:
    empty = project.cli("baseline", "-m", "adopt", ok=False)
    assert empty.returncode == 2 and "nothing to baseline" in empty.stderr
    assert not (project.root / "migrations").exists() or not list((project.root / "migrations").glob("*.py"))

    run_sql(project.url, *HAND_MADE)
    first = _baseline(project)
    again = project.cli("baseline", "-m", "again", ok=False)
    assert again.returncode == 2 and "already holds 1 revision:" in again.stderr
    assert f"pgmig stamp {rid(first)}" in again.stderr
    # Records without their files: restore them or clear the records first.
    first.unlink()
    recorded = project.cli("baseline", "-m", "again", ok=False)
    assert recorded.returncode == 2 and "already records 1 revision whose" in recorded.stderr
    assert "pgmig stamp base" in recorded.stderr


ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/alembic
"""

ALEMBIC_ENV = """\
import asyncio
import os

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine


def run(connection):
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def main():
    engine = create_async_engine(os.environ["ALEMBIC_DATABASE_URL"])
    async with engine.connect() as connection:
        await connection.run_sync(run)
        await connection.commit()
    await engine.dispose()


asyncio.run(main())
"""


def _alembic_revision(revision: str, down: Optional[str], upgrade: str, downgrade: str, preamble: str = "") -> str:
    """An Alembic revision file as `alembic revision` writes them (bodies indented by the caller)."""
    return (
        f"import sqlalchemy as sa\nfrom alembic import op\n\nrevision = {revision!r}\n"
        f"down_revision = {down!r}\n{preamble}\n\ndef upgrade():\n{upgrade}\n\ndef downgrade():\n{downgrade}\n"
    )


# The history of the sample project's V1 models, as Alembic's autogenerate would have written it.
ALEMBIC_REVISIONS = {
    "0001_author.py": _alembic_revision(
        "0001",
        None,
        '    op.create_table("author", sa.Column("id", sa.Integer(), primary_key=True),\n'
        '                    sa.Column("name", sa.String(length=80), nullable=False))',
        '    op.drop_table("author")',
    ),
    "0002_post.py": _alembic_revision(
        "0002",
        "0001",
        '    op.create_table("post", sa.Column("id", sa.Integer(), primary_key=True),\n'
        '                    sa.Column("title", sa.String(length=100), nullable=False))',
        '    op.drop_table("post")',
    ),
    "0003_post_status.py": _alembic_revision(
        "0003",
        "0002",
        "    status.create(op.get_bind())\n"
        '    op.add_column("post", sa.Column("status", status, nullable=False, server_default="draft"))',
        '    op.drop_column("post", "status")\n    status.drop(op.get_bind())',
        preamble='\nstatus = sa.Enum("draft", "published", name="status")\n',
    ),
}


def test_coming_from_alembic(project: Project) -> None:
    """README "Coming from Alembic", step by step."""
    (project.root / "alembic.ini").write_text(ALEMBIC_INI)
    versions = project.root / "alembic" / "versions"
    versions.mkdir(parents=True)
    (project.root / "alembic" / "env.py").write_text(ALEMBIC_ENV)
    for name, text in ALEMBIC_REVISIONS.items():
        (versions / name).write_text(text)
    alembic_url = project.url.replace("postgresql://", "postgresql+asyncpg://", 1)
    applied = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=project.root,
        env={**os.environ, "ALEMBIC_DATABASE_URL": alembic_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
    assert fetch(project.url, "SELECT version_num FROM alembic_version") == [{"version_num": "0003"}]
    run_sql(project.url, "INSERT INTO author (name) VALUES ('ann')", "INSERT INTO post (title) VALUES ('hello')")

    # 1. The models as they are; 2. baseline; 3. check.
    project.models(V1)
    # What a user tries first: generate finds nothing to do, and points to baseline.
    first = project.cli("generate", "-m", "first")
    assert "pgmig baseline" in first.stdout and not list((project.root / "migrations").glob("*.py")), first
    path = _baseline(project, "baseline from alembic")
    assert "alembic_version" not in path.read_text()
    assert project.cli("diff", "--exit-code").returncode == 0
    assert "check passed (1 revision" in project.cli("check").stdout
    # 4. From now on, pgmig: a model change, generate, up.
    project.models(V2)
    second = project.generate("add post views")
    project.cli("up")
    assert project.applied() == [rid(path), rid(second)]
    status = project.cli("status", "--exit-code")
    assert "drift: none" in status.stdout and "alembic_version" not in status.stdout
    assert project.cli("diff", "--exit-code").returncode == 0
    assert fetch(project.url, "SELECT title, views, status::text FROM post") == [
        {"title": "hello", "views": 0, "status": "draft"}
    ]
    # 5. Alembic retired: its version table dropped by hand, nothing else changes.
    run_sql(project.url, "DROP TABLE alembic_version")
    assert project.cli("diff", "--exit-code").returncode == 0


def test_baseline_as_a_library_service(tmp_path: Path, database_url: str) -> None:
    """No CLI: settings, a Project, the service; unproven (`verify=False`) it still records the revision."""
    run_sql(database_url, *HAND_MADE)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    settings = load_settings({"database_url": database_url, "dev_url": database_url}, cwd=tmp_path)
    result = asyncio.run(baseline(Configured(settings), BaselineOptions("adopt", verify=False)))
    assert result.path.parent == tmp_path / "migrations" and result.objects > 10
    assert fetch(database_url, "SELECT id FROM pgmig_revisions") == [{"id": result.revision_id}]
    with pytest.raises(HistoryExistsError) as raised:
        asyncio.run(baseline(Configured(settings), BaselineOptions("again")))
    assert raised.value.exit_code == 2


def test_a_scratch_server_of_another_major_version_is_said(tmp_path: Path, database_url: str) -> None:
    """Views and expressions print differently across major versions (PostgreSQL 16 stopped qualifying a
    view's columns): a proof or drift that compares a database with a scratch database of another major
    version says so and names dev_url. The test server against the embedded one: the same major in
    the default run, 15 against 18 in CI's PostgreSQL 15 run."""
    import asyncio

    from pgmig.db.embedded import embedded_url
    from pgmig.services.check import version_mismatch

    scratch = embedded_url(tmp_path / ".pgmig")
    assert asyncio.run(version_mismatch(scratch, scratch)) is None
    majors = [fetch(url, "SHOW server_version_num")[0]["server_version_num"] for url in (database_url, scratch)]
    note = asyncio.run(version_mismatch(database_url, scratch))
    if int(majors[0]) // 10000 == int(majors[1]) // 10000:
        assert note is None
    else:
        assert note is not None and f"PostgreSQL {int(majors[1]) // 10000}" in note and "dev_url" in note, note
