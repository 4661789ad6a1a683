"""What the commands print, piped and at a terminal: never cropped, counted in English, versioned JSON,
notices clear of the progress line, and what to run next (issue 21, "Output")."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, Iterator, List
from urllib.parse import urlsplit

import pytest

from pgmig.errors import plural
from pgmig.testing import ScratchServer
from tests.helpers import pgmig_cli, run_sql
from tests.sample_project import V1, V2, Project, rid

LABELS = [f"label_{n:02d}_{'x' * 24}" for n in range(12)]
LONG_COLUMN = "a_column_whose_name_alone_is_longer_than_half_a_terminal_line"

WIDE = f"""
import enum
from typing import Optional

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

Many = enum.Enum("Many", {{label: label for label in {LABELS!r}}})


class Wide(SQLModel, table=True):
    __table_args__ = {{"comment": "Rows of a very wide table, as the docs call it"}}

    id: Optional[int] = Field(default=None, primary_key=True)
    {LONG_COLUMN}: int = Field(sa_type=sa.BigInteger, sa_column_kwargs={{"comment": "seconds since it began"}})
    many: Optional[Many] = Field(default=None, sa_column=sa.Column(sa.Enum(Many, name="many_long_labels")))


class Note(SQLModel, table=True):
    __table_args__ = {{"comment": "Notes: what's said"}}

    id: Optional[int] = Field(default=None, primary_key=True)
    body: str = Field(sa_column_kwargs={{"comment": "the note itself"}})
"""

HAZARD = "[rewrites_table]"


@pytest.fixture
def long_named_url(pgmig_server: ScratchServer) -> Iterator[str]:
    """A database whose name alone is 63 bytes (NAMEDATALEN - 1): the preview's header outgrows 80 columns."""
    name = f"pgmig_output_{uuid.uuid4().hex}"[:24] + "_d" * 19 + "b"
    url = pgmig_server.create_database(name)
    try:
        yield url
    finally:
        pgmig_server.drop_database(url)


def _wide_project(root: Path, url: str) -> Project:
    """The `wide` table as it was (an integer column), and models that change it and add much."""
    project = Project(root, url)
    run_sql(url, f"CREATE TABLE wide (id serial PRIMARY KEY, {LONG_COLUMN} integer NOT NULL)")
    project.models(WIDE)
    return project


def _changes_whole(text: str, database: str) -> None:
    """Every part of the wide preview is in `text` whole: the database in the header, each enum
    label, the type change on the line of its hazard, the comments as their SQL spells them."""
    assert database in text, text
    (enum,) = [line for line in text.splitlines() if "+ enum many_long_labels (" in line]
    assert enum.endswith(f"({', '.join(LABELS)})"), enum
    assert "~ table wide: comment: ∅ → 'Rows of a very wide table, as the docs call it'" in text, text
    assert f"data_type: integer → bigint; comment: ∅ → 'seconds since it began' {HAZARD}" in text, text
    assert "+ table note COMMENT 'Notes: what''s said'" in text, text
    assert "+ column body character varying NOT NULL COMMENT 'the note itself'" in text, text


def test_piped_preview_is_never_cropped(tmp_path: Path, long_named_url: str) -> None:
    project = _wide_project(tmp_path, long_named_url)
    database = urlsplit(long_named_url).path.lstrip("/")
    result = project.cli("diff")  # stdout is a pipe
    _changes_whole(result.stdout, database)
    # Whole on one line each: the type change with its hazard, the header with its database.
    assert any(
        LONG_COLUMN in line and line.endswith(f"{HAZARD} [access_exclusive_lock]")
        for line in result.stdout.splitlines()
    )
    assert any(line.startswith("Changes to bring ") and database in line for line in result.stdout.splitlines())
    # `check` reports the same models as a migration that no revision makes (every object, from
    # empty), whole too, then says what to run.
    check = project.cli("check", ok=False)
    assert check.returncode == 1
    (enum,) = [line for line in check.stdout.splitlines() if "+ enum many_long_labels (" in line]
    assert enum.endswith(f"({', '.join(LABELS)})"), enum
    assert "+ table wide COMMENT 'Rows of a very wide table, as the docs call it'" in check.stdout
    assert check.stdout.splitlines()[-1] == 'write it with pgmig generate -m "MESSAGE", then run pgmig check again'


def _terminal(args: List[str], cwd: Path, env: Dict[str, str], columns: int = 60) -> str:
    """Run the CLI on a pseudo-terminal `columns` wide (stdin, stdout and stderr) and return what
    the screen was sent: colours removed, other escape sequences made line breaks."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_") and k not in ("COLUMNS", "LINES")}
    full_env.update(env, TERM="xterm")
    process = subprocess.Popen(
        [sys.executable, "-m", "pgmig", *args], cwd=cwd, env=full_env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks: List[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            process.kill()
            raise AssertionError("the command did not end")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    process.wait(timeout=60)
    screen = b"".join(chunks).decode()
    # Colours go; a cursor movement (the progress line redrawn) or a carriage return starts a line.
    screen = re.sub(r"\x1b\[[0-9;]*m", "", screen)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "\n", screen)


def test_terminal_preview_wraps_and_loses_nothing(tmp_path: Path, long_named_url: str) -> None:
    project = _wide_project(tmp_path, long_named_url)
    screen = _terminal(["diff"], tmp_path, {"PGMIG_DATABASE_URL": long_named_url}, columns=60)
    assert max(len(line) for line in screen.splitlines()) <= 60, screen
    # Wrapped, not cut: put back together (guides and the wrapping's spaces gone), every part is there.
    joined = re.sub(r"[│├└─\s]", "", screen)
    for part in [
        urlsplit(long_named_url).path.lstrip("/"),
        *LABELS,
        f"'secondssinceitbegan'{HAZARD}",
        "COMMENT'thenoteitself'",
    ]:
        assert part in joined, (part, screen)
    assert project.files() == []


def test_notice_is_printed_before_the_progress_line(tmp_path: Path) -> None:
    """The embedded server's notice and `up`'s progress on one screen: the notice whole, on its own
    line, before the first revision's line; the progress line counts in English."""
    Project(tmp_path, "").models(V1)
    first = pgmig_cli("generate", "-m", "first", "--no-verify", cwd=tmp_path, timeout=180)
    assert first.returncode == 0, first.stderr
    screen = _terminal(["up"], tmp_path, {}, columns=200)
    lines = [line for line in screen.splitlines() if line.strip()]
    notice = next(i for i, line in enumerate(lines) if line.startswith("Using the embedded PostgreSQL in "))
    assert lines[notice].endswith("to use another server)"), screen
    applied = [i for i, line in enumerate(lines) if line.startswith("applied ")]
    assert len(applied) == 1, repr(screen)
    assert notice < applied[0], screen
    assert "revisions" not in screen.replace("0 revisions", ""), screen  # "1 revision"


def test_diff_says_revisions_are_pending(project: Project) -> None:
    project.models(V1)
    first = project.generate("first")
    pending = project.cli("diff")
    assert "+ table post" in pending.stdout
    note = next(line for line in pending.stdout.splitlines() if line.startswith("pending: "))
    assert f"1 revision not applied to this database ({first.name.split('_', 3)[0]}" in note
    assert note.endswith("pgmig up applies it"), note
    document = json.loads(project.cli("diff", "--json").stdout)
    assert document["version"] == 1 and len(document["pending_revisions"]) == 1
    assert "pending: " in project.cli("diff", "--sql").stderr  # stdout stays SQL
    second = project.generate("second", "--empty")
    note = next(line for line in project.cli("diff").stdout.splitlines() if line.startswith("pending: "))
    assert f"2 revisions not applied to this database ({rid(first)}, {rid(second)})" in note, note
    assert note.endswith("what they would do is part of this diff: pgmig up applies them"), note
    project.cli("up")
    assert "pending" not in project.cli("diff").stdout
    assert json.loads(project.cli("diff", "--json").stdout)["pending_revisions"] == []


def test_check_lines_per_revision_and_what_to_run(project: Project) -> None:
    project.models(V1)
    project.generate("first")
    passed = project.cli("check")
    lines = passed.stdout.splitlines()
    assert re.fullmatch(r"\s+ok \d{8}_\d{6}_\w+  first  \(\d+\.\d\ds\)", lines[0]), lines
    assert lines[-1] == "check passed (1 revision)"
    project.models(V2)
    project.generate("second")
    project.models(V2.replace("max_length=80", "max_length=90"))
    missing = project.cli("check", ok=False)
    lines = missing.stdout.splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["ok", "ok"], lines
    assert "failed: the models need a migration that no revision makes:" in lines
    assert lines[-1] == 'write it with pgmig generate -m "MESSAGE", then run pgmig check again'
    report = json.loads(project.cli("check", "--json", ok=False).stdout)
    assert report["version"] == 1 and report["ok"] is False and len(report["revisions"]) == 2


def test_check_shows_progress_at_a_terminal(project: Project) -> None:
    project.models(V1)
    project.generate("first")
    project.models(V2)
    project.generate("second")
    screen = _terminal(["check"], project.root, {"PGMIG_DATABASE_URL": project.url, "PGMIG_DEV_URL": project.url})
    oks = [line for line in screen.splitlines() if line.strip().startswith("ok ")]
    assert len(oks) == 2 and "first" in oks[0] and "second" in oks[1], screen
    # Under a live line counting them, drawn from the start (the spinner, then the count).
    assert "checked: 0 revisions" in screen, screen
    assert screen.index("checked: 0 revisions") < screen.index(oks[0]), screen
    # The line redrawn under each verdict counts it.
    for count, ok in enumerate(oks, start=1):
        after = screen[screen.index(ok) + len(ok) :]
        counter = re.search(r"checked: \d+ revisions?", after)
        assert counter is not None and counter.group() == f"checked: {plural(count, 'revision')}", screen
    assert "check passed (2 revisions)" in screen


@pytest.mark.parametrize(
    "args, flags",
    [
        (["diff", "--json", "--sql"], "--json and --sql"),
        (["status", "--exit-code", "--no-drift"], "--exit-code and --no-drift"),
        (["generate", "-m", "x", "--empty", "--rename", "a=b"], "--empty and --rename"),
        (["generate", "-m", "x", "--empty", "--default", "t.c=1"], "--empty and --default"),
    ],
)
def test_contradictory_flags_are_refused(project: Project, args: List[str], flags: str) -> None:
    project.models(V1)
    result = project.cli(*args, ok=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {flags} do not go together (") and line.endswith("give one of them")
    assert project.files() == []


def test_generate_prints_what_the_revision_does(project: Project) -> None:
    project.models(V1)
    first = project.cli("generate", "-m", "first")
    assert Path(first.stdout.strip()).exists()  # stdout: the path alone
    assert "  10 to create, 0 to change, 0 to drop" in first.stderr.splitlines(), first.stderr
    project.cli("up")
    run_sql(project.url, "INSERT INTO author (name) VALUES ('Ann')")
    project.models(V1.replace("name: str = Field(max_length=80)", "name: str = Field(max_length=60)"))
    second = project.cli("generate", "-m", "shorter", "--allow-destructive")
    lines = second.stderr.splitlines()
    assert "  0 to create, 1 to change, 0 to drop" in lines, second.stderr
    # Outside the preview's tree, the line names the column's table.
    hazard = next(line for line in lines if "[deletes_data]" in line)
    assert hazard.startswith("  ~ column name of author: "), hazard
    assert "character varying(80) → character varying(60)" in hazard, hazard


def test_history_and_status_say_when_and_as_json(project: Project) -> None:
    project.models(V1)
    first = project.generate("first")
    project.models(V2)
    project.generate("second")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    project.cli("up", _id(first))
    history = project.cli("history").stdout.splitlines()
    applied, pending = history
    when = re.match(r"\[applied\] (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC  ", applied)
    assert when is not None, applied
    moment = datetime.strptime(when.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert before - timedelta(seconds=1) <= moment <= datetime.now(timezone.utc), applied
    assert pending.startswith("[pending] " + " " * 23 + "  ") and pending.endswith("  second"), pending

    document = json.loads(project.cli("history", "--json").stdout)
    assert document["version"] == 1 and document["problems"] == []
    one, two = document["revisions"]
    assert (one["message"], one["edited"], one["head"], one["parents"]) == ("first", False, False, [])
    assert datetime.fromisoformat(one["applied_at"]).replace(microsecond=0) == moment
    assert (two["applied_at"], two["head"], two["parents"]) == (None, True, [one["revision"]])

    status = json.loads(project.cli("status", "--json").stdout)
    assert status["version"] == 1
    assert status["current"] == [one["revision"]] and status["heads"] == [two["revision"]]
    assert [p["revision"] for p in status["pending"]] == [two["revision"]]
    assert status["drift"] == {"measured": True, "reason": None, "differences": []}
    assert status["partly_applied"] == [] and status["edited"] == [] and status["problems"] == []
    quiet = json.loads(project.cli("status", "--json", "--no-drift").stdout)["drift"]
    assert quiet == {"measured": False, "reason": None, "differences": None}


def _id(path: Path) -> str:
    return "_".join(path.stem.split("_")[:3])
