"""Revision files as written: whatever a message or a model holds, the file is complete, loadable and
reads back the same text; a file that cannot be so is not written at all (and says why)."""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgmig.errors import RevisionError, UsageError
from pgmig.revisions.files import load_revision_file, slugify
from pgmig.revisions.writer import (
    comment_text,
    docstring_text,
    literal,
    python_string,
    render_revision,
    write_revision,
)
from tests.helpers import fetch
from tests.sample_project import V1, Project

# What a careless user or an attacker types after -m: Windows paths (`\U` and `\N` are escapes in a
# Python string), quotes that would close the docstring, a trailing backslash that would escape its
# closing quotes, terminal control sequences, a right-to-left override, a line separator, emoji.
HOSTILE = [
    r"fix C:\Users\new path",
    '"""',
    '""""',
    '"',
    "it's \"quoted\" '''",
    r"\N{",
    "\\x00 and \\u0000",
    "trailing backslash\\",
    "esc \x1b[31mred\x1b[0m \x1b]0;title\x07",
    "bidi \u202eevil\u202c and line\u2028separator and\u0085next",
    "emoji 🎉 \U0001f600 and a zero width\u200bspace",
    "tab\there and cr\rthere",
    "two\nlines",
    "x" * 5000,
]
# Any text at all, lone surrogates included (hypothesis leaves them out of st.text() by default).
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=60)
NO_SURROGATES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@given(ANY_TEXT)
def test_python_string_reads_back_and_is_printable(text: str) -> None:
    written = python_string(text)
    assert ast.literal_eval(written) == text
    assert written.isprintable()


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT, st.lists, max_leaves=8))
def test_literal_reads_back(value: object) -> None:
    import math

    written = literal(value)
    assert written.isprintable()
    back = eval(written, {"float": float})  # noqa: S307 - our own output, with float() for nan and inf
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value or (value != value)  # a list holding nan compares unequal to itself


@given(ANY_TEXT)
def test_docstring_text_reads_back(text: str) -> None:
    written = docstring_text(text)
    assert ast.literal_eval(f'"""{written}"""') == text
    assert all(line.isprintable() for line in written.split("\n"))


@given(ANY_TEXT)
def test_comment_text_stays_on_its_line(text: str) -> None:
    written = comment_text(text)
    assert written.isprintable()
    assert ast.parse(f"# {written}\npass").body[0].lineno == 2


@given(NO_SURROGATES)
def test_revision_of_any_message_loads_with_that_message(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:

    folder = tmp_path_factory.mktemp("any")
    file_name = f"20260101_000000_abcdef_{slugify(text)}.py"
    text_of = render_revision("20260101_000000_abcdef", None, text, [], [])
    path = write_revision(folder, file_name, text_of)
    revision = load_revision_file(path)
    first = text.strip().splitlines()[0] if text.strip() else "Revision"
    assert revision.message == first.strip() or not first.strip()
    assert [p.name for p in folder.iterdir()] == [file_name]


@pytest.mark.parametrize("message", HOSTILE + [""])
def test_slug_is_a_safe_file_name(message: str) -> None:
    slug = slugify(message)
    assert slug and len(slug) <= 50
    assert all(c.isascii() and (c.isalnum() or c == "_") for c in slug)


def _left(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_file_that_does_not_compile_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(RevisionError, match="x.py was not written: it does not compile"):
        write_revision(tmp_path, "x.py", '"""\\Uoops"""\n')
    assert _left(tmp_path) == []


def test_a_file_that_does_not_load_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(RevisionError, match="x.py was not written: .*defines no MigrationRevision"):
        write_revision(tmp_path, "x.py", "VALUE = 1\n")
    assert _left(tmp_path) == []
    with pytest.raises(RevisionError, match="x.py was not written: .*ZeroDivisionError"):
        write_revision(tmp_path, "x.py", "1 / 0\n")
    assert _left(tmp_path) == []


def test_an_invalid_argument_is_refused_before_writing() -> None:

    from pgmig.ops.table import SetTableComment

    op = SetTableComment(table_name="t", comment="bad \udcff", schema="public")
    with pytest.raises(UsageError, match=r"comment is not valid text: it holds the byte 0xff"):
        render_revision("r1", None, "m", [op], [])


# -- through the command line ----------------------------------------------------------------


def _check_still_works(project: Project) -> None:
    history = project.cli("history")
    assert "Traceback" not in history.stderr
    project.cli("check")


def test_the_issue_message_through_generate_up_and_down(project: Project) -> None:
    """The issue's input: a Windows path (`\\U` broke the docstring) in a real, proven revision."""
    project.models(V1)
    path = project.generate(r"fix C:\Users\new path")
    assert load_revision_file(path).message == r"fix C:\Users\new path"
    project.cli("up")
    _check_still_works(project)
    project.cli("down", "base", "--yes")
    assert (
        fetch(project.url, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = 'post'")[0][
            "n"
        ]
        == 0
    )


def test_hostile_messages_through_the_cli(project: Project) -> None:
    project.models(V1)
    project.generate("start")
    for message in HOSTILE:
        path = project.generate(message, "--empty")
        assert load_revision_file(path).message == message.strip().splitlines()[0].strip()
        assert path.read_bytes().decode("utf-8").isprintable() or "\n" in path.read_text()
    assert [p.name for p in (project.root / "migrations").iterdir() if p.name.startswith(".")] == []
    project.cli("up")
    _check_still_works(project)


@pytest.mark.parametrize("raw", [b"\xff", b"caf\xe9 latin-1", b"\xed\xa0\x80 encoded surrogate"])
def test_invalid_utf8_message_is_a_usage_error_naming_m(project: Project, raw: bytes) -> None:
    project.models(V1)
    for extra in ([], ["--empty"]):
        # subprocess encodes str arguments with os.fsencode: the lone surrogates become the raw bytes again.
        result = project.cli("generate", "-m", os.fsdecode(raw), *extra, ok=False)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "not valid UTF-8" in result.stderr and "-m" in result.stderr
        assert _left(project.root / "migrations") == []
    project.cli("history")
    # No revision was written: check fails on the models (1), not on a broken file (3).
    assert project.cli("check", ok=False).returncode == 1


BAD_COMMENT = """
from typing import Optional

from sqlmodel import Field, SQLModel


class Note(SQLModel, table=True):
    __table_args__ = {"comment": "read from a latin-1 file: caf\\udce9"}
    id: Optional[int] = Field(default=None, primary_key=True)
"""


def test_lone_surrogate_in_a_model_comment_writes_nothing(project: Project) -> None:
    project.models(BAD_COMMENT)
    for extra in ([], ["--no-verify"]):
        result = project.cli("generate", "-m", "notes", *extra, ok=False)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "0xe9" in result.stderr, result.stderr
        assert _left(project.root / "migrations") == []


COMMENT = 'C:\\new\\table """ \x1b]0;t\x07 \u202e'
LABELS = [r"C:\Users\new", 'say "hi" \x1b[31m', "it's '''"]
DEFAULT = 'a\\b "c" \U0001f600'
# The values go in as Python literals (repr): the models hold exactly these strings.
HOSTILE_MODELS = f"""
import enum
from typing import Optional

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class Mood(enum.Enum):
    a = {LABELS[0]!r}
    b = {LABELS[1]!r}
    c = {LABELS[2]!r}


class Note(SQLModel, table=True):
    __table_args__ = {{"comment": {COMMENT!r}}}
    id: Optional[int] = Field(default=None, primary_key=True)
    body: str = Field(
        sa_column=sa.Column(sa.Text, nullable=False, server_default={DEFAULT!r}, comment="trailing\\\\")
    )
    mood: Mood = Field(
        sa_column=sa.Column(
            sa.Enum(Mood, name='mo"od', values_callable=lambda e: [m.value for m in e]), nullable=False
        )
    )
"""


def test_hostile_model_strings_round_trip_through_a_revision(project: Project) -> None:
    """Comments, defaults and enum labels with backslashes, quotes and controls: written as escapes,
    applied as the models say (a fresh diff is empty), undone by down."""
    project.models(HOSTILE_MODELS)
    path = project.generate("hostile strings")
    assert path.read_text(encoding="utf-8").replace("\n", "").isprintable()
    project.cli("up")
    assert "No changes" in project.cli("diff").stdout
    comment = fetch(project.url, "SELECT obj_description('public.note'::regclass, 'pg_class') AS c")[0]["c"]
    assert comment == COMMENT
    labels = fetch(project.url, "SELECT enumlabel FROM pg_enum ORDER BY enumsortorder")
    assert [r["enumlabel"] for r in labels] == LABELS
    _check_still_works(project)
    project.cli("down", "base", "--yes")
    assert fetch(project.url, "SELECT count(*) AS n FROM pg_class WHERE relname = 'note'")[0]["n"] == 0
