"""`generate --rename` tries its renames on a scratch database, never on the configured one.

A trial `ALTER TABLE ... RENAME` takes an ACCESS EXCLUSIVE lock: on the
configured database it queued behind a long report query and every read of
the table queued behind it. Each test holds a lock an application's query
holds (ACCESS SHARE in an open transaction) and runs generate beside it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from tests.helpers import fetch
from tests.sample_project import Project
from tests.test_safety import SEED, compact, models, rows, seeded


@contextmanager
def held(url: str, *statements: str) -> Iterator[None]:
    """Another session runs `statements` in a transaction left open (its locks held) while inside."""
    import asyncpg

    ready, done = threading.Event(), threading.Event()
    failed: List[BaseException] = []

    async def hold() -> None:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                for statement in statements:
                    await conn.execute(statement)
                ready.set()
                while not done.is_set():
                    await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failed.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30) and not failed, failed
    try:
        yield
    finally:
        done.set()
        thread.join(30)


def generate_beside(project: Project, *args: str) -> "subprocess.CompletedProcess[str]":
    """`pgmig generate` as a subprocess that must finish well before a lock wait would end it."""
    from tests.helpers import pgmig_cli

    started = time.monotonic()
    try:
        result = pgmig_cli("generate", *args, cwd=project.root, env=_env(project))
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this guards against
        pytest.fail("generate waited on a lock of the configured database")
    assert time.monotonic() - started < 100
    return result


def _env(project: Project) -> "dict[str, str]":
    return {"PGMIG_DATABASE_URL": project.url, "PGMIG_DEV_URL": project.url}


def locks_on(project: Project, table: str) -> List[str]:
    return [
        r["mode"]
        for r in fetch(
            project.url,
            "SELECT mode FROM pg_locks WHERE relation = to_regclass($1) AND pid <> pg_backend_pid()",
            table,
        )
    ]


# A report query: ACCESS SHARE on the table until its transaction ends.
REPORT = "SELECT count(*) FROM article"


@pytest.mark.parametrize(
    "renames, table, title",
    [
        (("--rename", "article=post"), "post", "title"),
        (("--rename", "article.title=article.headline"), "article", "headline"),
        (("--rename", "article.title=article.headline", "--rename", "article=post"), "post", "headline"),
    ],
    ids=["table", "column", "both"],
)
def test_generate_rename_takes_no_lock_on_the_configured_database(
    project: Project, renames: "tuple[str, ...]", table: str, title: str
) -> None:
    seeded(project, models(), SEED)
    before = rows(project)
    project.models(models(table=table, title=title))
    with held(project.url, REPORT):
        result = generate_beside(project, "-m", "rename", *renames)
        assert result.returncode == 0, result.stderr
        # Nothing of the configured database was renamed, not even for a moment: the table keeps its name
        # and rows, and no session of pgmig is left waiting on it.
        assert rows(project) == before
        assert locks_on(project, "article") == ["AccessShareLock"]
    text = compact(Path(result.stdout.strip().splitlines()[-1]).read_text())
    assert "drop_table" not in text and "drop_column" not in text
    project.cli("up")
    assert rows(project, table, title) == before
    assert project.cli("diff", "--exit-code").returncode == 0
    project.cli("down")
    assert rows(project) == before


def test_rename_enum_value_takes_no_lock_on_the_configured_database(project: Project) -> None:
    seeded(project, models(), SEED)
    project.models(models(colors=("CRIMSON", "GREEN", "BLUE"), default_color="CRIMSON"))
    # Another session changing the type (a deploy adding a label) holds a lock on it that a trial
    # ALTER TYPE ... RENAME VALUE would wait on.
    with held(project.url, "ALTER TYPE color ADD VALUE 'ORANGE'"):
        result = generate_beside(project, "-m", "crimson", "--rename-enum-value", "color.RED=CRIMSON")
    assert result.returncode == 0, result.stderr
    assert [r["color"] for r in rows(project)] == ["RED", "GREEN", "BLUE"]
    project.cli("up")
    assert [r["color"] for r in rows(project)] == ["CRIMSON", "GREEN", "BLUE"]


def test_rows_are_read_under_their_current_names(project: Project) -> None:
    """What the rows say (an enum label they hold, a NOT NULL column on a table with rows) is read
    from the configured database under the names it has before the renames."""
    seeded(project, models(), SEED)
    project.models(models(table="post", colors=("RED", "GREEN")))
    refused = project.cli("generate", "-m", "no blue", "--rename", "article=post", "--allow-destructive", ok=False)
    assert refused.returncode == 2 and "1 row holds 'BLUE'" in refused.stderr, refused.stderr
    project.models(models(table="post", extra='    sa.Column("words", sa.Integer, nullable=False),'))
    result = project.cli("generate", "-m", "words", "--rename", "article=post")
    assert "table post has rows" in result.stderr, result.stderr


def test_renames_answered_at_the_prompt_are_tried_on_a_scratch_database(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgmig.config.settings import load_settings
    from pgmig.services.generate import GenerateOptions, Questioner, generate
    from pgmig.services.project import Project as PgmigProject

    seeded(project, models(), SEED)
    project.models(models(title="headline"))
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("PGMIG_DATABASE_URL", project.url)
    monkeypatch.setenv("PGMIG_DEV_URL", project.url)

    class Yes(Questioner):
        def ask_rename(self, candidate: Any) -> bool:
            return True

    with held(project.url, REPORT):
        # The library call is bounded by lock_timeout-free waits: run it in a thread with a deadline.
        outcome: List[Any] = []
        worker = threading.Thread(
            target=lambda: outcome.append(
                asyncio.run(generate(PgmigProject(load_settings()), GenerateOptions("rename"), Yes()))
            ),
            daemon=True,
        )
        worker.start()
        worker.join(100)
        assert not worker.is_alive(), "generate waited on a lock of the configured database"
    assert outcome and outcome[0] is not None
    assert "rename_column" in outcome[0].read_text()
    assert rows(project)[0]["title"] == "a"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
