"""Safety: renames, enum evolution, NOT NULL on tables with rows, hazards in --json."""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List

import pytest

from tests.helpers import fetch, run_sql
from tests.sample_project import Project

BASE = """
import enum
import sqlalchemy as sa

metadata = sa.MetaData()

class Color(enum.Enum):
{colors}

sa.Table(
    "{table}",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("{title}", sa.String(100), index=True),
    sa.Column("color", sa.Enum(Color, name="color"), nullable=False, server_default="{default_color}"),
{extra}
)
"""


def models(
    table: str = "article",
    title: str = "title",
    colors=("RED", "GREEN", "BLUE"),
    extra: str = "",
    default_color: str = "RED",
) -> str:
    return BASE.format(
        table=table,
        title=title,
        colors="\n".join(f"    {c} = {i}" for i, c in enumerate(colors)),
        extra=extra,
        default_color=default_color,
    )


def compact(text: str) -> str:
    """Revision text without whitespace or trailing commas, so wrapped calls compare like one-liners."""
    return re.sub(r"\s+", "", text).replace(",)", ")")


def seeded(project: Project, source: str, rows: List[str]) -> None:
    project.models(source)
    project.generate("initial")
    project.cli("up")
    if rows:
        run_sql(project.url, *rows)


SEED = ["INSERT INTO article (title, color) VALUES ('a', 'RED'), ('b', 'GREEN'), ('c', 'BLUE')"]


def rows(project: Project, table: str = "article", title: str = "title") -> List[Dict[str, Any]]:
    return fetch(project.url, f'SELECT id, "{title}" AS title, color::text AS color FROM "{table}" ORDER BY id')


def test_rename_table_and_column_keep_rows(project: Project) -> None:
    seeded(project, models(), SEED)
    before = rows(project)
    project.models(models(table="post", title="headline"))
    refused = project.cli("generate", "-m", "rename", ok=False)
    assert refused.returncode == 2 and "drop table article" in refused.stderr, "without --rename it is a drop"
    path = project.generate("rename", "--rename", "article.title=article.headline", "--rename", "article=post")
    text = compact(path.read_text())
    assert 'rename_column(table_name="article",column_name="title",new_name="headline")' in text
    assert 'rename_table(table_name="article",new_name="post")' in text
    assert "drop_table" not in text and "add_table" not in text
    project.cli("up")
    assert rows(project, "post", "headline") == before
    assert project.cli("diff", "--exit-code").returncode == 0
    # The index followed the column (Postgres renamed it in place); only its name differs from the model's.
    project.cli("down")
    assert rows(project) == before
    assert project.cli("check").returncode == 0


def test_rename_asked_at_the_prompt(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from pgmig.config.settings import load_settings
    from pgmig.services.generate import GenerateOptions, Questioner, generate
    from pgmig.services.project import Project as PgmigProject

    seeded(project, models(), SEED)
    project.models(models(title="headline"))
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("PGMIG_DATABASE_URL", project.url)
    questions: List[str] = []

    class Yes(Questioner):
        def ask_rename(self, candidate: Any) -> bool:
            questions.append(candidate.question())
            return True

    path = asyncio.run(generate(PgmigProject(load_settings()), GenerateOptions("rename"), Yes()))
    assert path is not None
    assert questions == ["Was column article.title renamed to article.headline?"]
    assert "rename_column" in path.read_text() and "drop_column" not in path.read_text()
    project.cli("up")
    assert [r["title"] for r in rows(project, title="headline")] == ["a", "b", "c"]


def test_enum_label_rename(project: Project) -> None:
    seeded(project, models(), SEED)
    project.models(models(colors=("CRIMSON", "GREEN", "BLUE"), default_color="CRIMSON"))
    path = project.generate("crimson", "--rename-enum-value", "color.RED=CRIMSON")
    text = compact(path.read_text())
    assert 'rename_type_value(type_name="color",old_value="RED",new_value="CRIMSON")' in text
    assert "swap_type_values" not in text
    project.cli("up")
    assert [r["color"] for r in rows(project)] == ["CRIMSON", "GREEN", "BLUE"]
    assert project.cli("diff", "--exit-code").returncode == 0
    project.cli("down")
    assert [r["color"] for r in rows(project)] == ["RED", "GREEN", "BLUE"]


def test_enum_label_removal_with_rows(project: Project) -> None:
    seeded(project, models(), SEED)
    project.models(models(colors=("RED", "GREEN")))
    refused = project.cli("generate", "-m", "no blue", "--allow-destructive", ok=False)
    assert refused.returncode == 2
    assert "1 row holds 'BLUE'" in refused.stderr and "--map-enum-value color.BLUE=" in refused.stderr
    assert "1 row holds label 'BLUE'" in project.cli("diff").stderr
    path = project.generate("no blue", "--allow-destructive", "--map-enum-value", "color.BLUE=GREEN")
    text = path.read_text()
    assert text.index("remap_type_values") < text.index("swap_type_values")
    project.cli("up")
    assert [r["color"] for r in rows(project)] == ["RED", "GREEN", "GREEN"]
    labels = fetch(
        project.url,
        "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = 'color' ORDER BY enumsortorder",
    )
    assert [r["enumlabel"] for r in labels] == ["RED", "GREEN"]
    project.cli("down")
    labels = fetch(
        project.url,
        "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = 'color' ORDER BY enumsortorder",
    )
    assert [r["enumlabel"] for r in labels] == ["RED", "GREEN", "BLUE"]
    assert project.cli("check").returncode == 0


def test_enum_reorder_up_and_down(project: Project) -> None:
    seeded(project, models(), SEED)
    project.models(models(colors=("BLUE", "GREEN", "RED")))
    project.generate("reorder")
    project.cli("up")
    order = fetch(
        project.url,
        "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = 'color' ORDER BY enumsortorder",
    )
    assert [r["enumlabel"] for r in order] == ["BLUE", "GREEN", "RED"]
    assert [r["color"] for r in rows(project)] == ["RED", "GREEN", "BLUE"]
    project.cli("down")
    order = fetch(
        project.url,
        "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = 'color' ORDER BY enumsortorder",
    )
    assert [r["enumlabel"] for r in order] == ["RED", "GREEN", "BLUE"]


NOT_NULL = '    sa.Column("published", sa.Boolean, nullable=False),\n'


def test_not_null_column_on_a_table_with_rows(project: Project) -> None:
    seeded(project, models(), SEED)
    project.models(models(extra=NOT_NULL))
    warned = project.cli("diff")
    assert "table article has rows: adding NOT NULL column article.published" in warned.stderr
    assert "--default article.published=EXPR" in warned.stderr

    todo = project.generate("published")
    assert "raise NotImplementedError" in todo.read_text()
    failed = project.cli("up", ok=False)
    assert failed.returncode == 3 and "NotImplementedError" in failed.stderr and "--default" in failed.stderr
    assert "published" not in {
        c["attname"]
        for c in fetch(project.url, "SELECT attname FROM pg_attribute WHERE attrelid = 'article'::regclass")
    }
    todo.unlink()

    path = project.generate("published", "--default", "article.published=false")
    text = path.read_text()
    assert "NotImplementedError" not in text and 'default="false"' in compact(text)
    project.cli("up")
    assert fetch(project.url, "SELECT DISTINCT published FROM article") == [{"published": False}]
    assert project.cli("diff", "--exit-code").returncode == 0, "the helper default is dropped again"
    assert project.cli("check").returncode == 0


def test_nullable_column_made_not_null_with_backfill(project: Project) -> None:
    seeded(
        project,
        models(extra='    sa.Column("note", sa.Text),\n'),
        SEED + ["UPDATE article SET note = 'kept' WHERE id = 1"],
    )
    project.models(models(extra='    sa.Column("note", sa.Text, nullable=False),\n'))
    assert "2 rows of article hold NULL in note" in project.cli("diff").stderr
    path = project.generate("note required", "--default", "article.note='(none)'")
    text = path.read_text()
    assert text.index("backfill_column") < text.index("add_not_null")
    project.cli("up")
    assert [r["note"] for r in fetch(project.url, "SELECT note FROM article ORDER BY id")] == [
        "kept",
        "(none)",
        "(none)",
    ]
    assert project.cli("diff", "--exit-code").returncode == 0


def test_every_hazard_class_appears_in_json(project: Project) -> None:
    seeded(project, models(extra='    sa.Column("n", sa.Integer),\n    sa.Column("gone", sa.Text),\n'), SEED)
    project.models(
        models(extra='    sa.Column("n", sa.BigInteger, nullable=False, server_default="0"),\n')
        + 'sa.Index("ix_article_n", metadata.tables["article"].c.n)\n'
    )
    run_sql(project.url, "UPDATE article SET n = 1")
    plan = json.loads(project.cli("diff", "--json").stdout)
    hazards = {h for change in plan["changes"] for h in change["hazards"]}
    assert {
        "deletes_data",
        "rewrites_table",
        "full_scan",
        "access_exclusive_lock",
        "index_build",
        "blocks_writes",
    } <= hazards, hazards
    by_op = {op["operation"]: change["hazards"] for change in plan["changes"] for op in change["operations"]}
    assert "deletes_data" in by_op["drop_column"]
    assert "rewrites_table" in by_op["modify_column_type"]
    assert "index_build" in by_op["add_index"]


def test_generate_concurrently(project: Project) -> None:
    seeded(project, models(extra='    sa.Column("n", sa.Integer),\n'), SEED)
    project.models(models(extra='    sa.Column("n", sa.Integer, index=True),\n'))
    path = project.generate("index n", "--concurrently")
    text = compact(path.read_text())
    assert "transactional=False" in text and "concurrently=True" in text
    up_sql = project.cli("up", "--sql").stdout
    assert "CREATE INDEX CONCURRENTLY" in up_sql and "BEGIN;" not in up_sql
    project.cli("up")
    valid = fetch(
        project.url,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'ix_article_n'",
    )
    assert valid == [{"indisvalid": True}]
    assert project.cli("diff", "--exit-code").returncode == 0
    project.cli("down")
    assert fetch(project.url, "SELECT to_regclass('ix_article_n') IS NULL AS gone") == [{"gone": True}]
