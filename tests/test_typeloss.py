"""No data lost without consent: type changes that can change values, and a `down` whose rows refuse it.

Driven through the CLI on a real server, as a user would (issue 18, "Data loss without consent").
"""

from __future__ import annotations

import json
import re
from typing import Any, List, Sequence

import pytest

from tests.helpers import fetch, run_sql
from tests.sample_project import Project

MODELS = """
import enum
import sqlalchemy as sa

metadata = sa.MetaData()


class Mood(enum.Enum):
{labels}


sa.Table(
    "line item",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("unit price", {type}),
    sa.Column("mood", sa.Enum(Mood, name="mood state")),
)
"""


def models(sa_type: str, labels: Sequence[str] = ("ok", "meh")) -> str:
    return MODELS.format(type=sa_type, labels="\n".join(f"    {label} = {label!r}" for label in labels))


def values(project: Project) -> List[Any]:
    return [r["v"] for r in fetch(project.url, 'SELECT "unit price" AS v FROM "line item" ORDER BY id')]


def column_type(project: Project) -> str:
    return str(
        fetch(
            project.url,
            "SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute "
            "WHERE attrelid = '\"line item\"'::regclass AND attname = 'unit price'",
        )[0]["t"]
    )


def seeded(project: Project, sa_type: str, rows: List[str]) -> None:
    project.models(models(sa_type))
    project.generate("initial")
    project.cli("up")
    for row in rows:
        run_sql(project.url, f'INSERT INTO "line item" ("unit price") VALUES ({row})')


LOSSY = [
    # old model type, new model type, rows, the count the refusal names, a value before and after `up`
    ("sa.Numeric(10, 2)", "sa.Integer", ["19.99", "20", "NULL"], "1 of 3 rows change", ("19.99", "20")),
    ("sa.Double", "sa.Numeric(3, 1)", ["1.25", "2.5", "NULL"], "1 of 3 rows change", ("1.25", "1.3")),
    (
        "sa.DateTime",
        "sa.Date",
        ["'2024-01-01 13:45:10'", "'2024-01-02 00:00:00'"],
        "1 of 2 rows change",
        ("2024-01-01 13:45:10", "2024-01-01"),
    ),
]


@pytest.mark.parametrize("old, new, rows, counted, value", LOSSY)
def test_lossy_type_change_needs_consent_and_says_how_many_rows(
    project: Project, old: str, new: str, rows: List[str], counted: str, value: Any
) -> None:
    seeded(project, old, rows)
    project.models(models(new))
    refused = project.cli("generate", "-m", "retype", ok=False)
    assert refused.returncode == 2, refused.stderr
    assert "would delete data" in refused.stderr and "--allow-destructive" in refused.stderr
    assert "change column unit price of line item" in refused.stderr
    assert counted in refused.stderr and "becomes" in refused.stderr
    assert len(project.files()) == 1, "nothing written without consent"

    diff = json.loads(project.cli("diff", "--json").stdout)
    [change] = [c for c in diff["changes"] if c["action"] == "migrate"]
    assert "deletes_data" in change["hazards"]
    assert any(counted in warning for warning in diff["warnings"])

    path = project.generate("retype", "--allow-destructive")
    up_text = path.read_text().split("async def down")[0]
    assert re.search(r"# destructive: .*deletes_data.*\n\s+await migrator\.actor\.modify_column_type\(", up_text)
    project.cli("up")
    first = fetch(project.url, 'SELECT "unit price"::text AS v FROM "line item" ORDER BY id')[0]["v"]
    assert first == value[1], "the value the user agreed to lose"
    assert project.cli("diff", "--exit-code").returncode == 0


def test_up_refuses_before_anything_runs_when_a_row_would_fail_the_cast(project: Project) -> None:
    seeded(project, "sa.Double", ["1.25"])
    project.models(models("sa.Numeric(3, 1)"))
    project.generate("retype", "--allow-destructive")
    run_sql(project.url, 'INSERT INTO "line item" ("unit price") VALUES (123.4)')
    failed = project.cli("up", ok=False)
    assert failed.returncode == 3, failed.stderr
    assert "would fail on the rows the database holds, so nothing of it ran" in failed.stderr
    assert "numeric field overflow" in failed.stderr and "public.line item.unit price" in failed.stderr
    assert column_type(project) == "double precision" and len(project.applied()) == 1


WIDENINGS = [
    ("sa.String(10)", "sa.String(20)", ["'abcdefghij'", "''", "NULL"], "character varying(20)"),
    ("sa.Integer", "sa.BigInteger", ["-2147483648", "2147483647"], "bigint"),
    ("sa.Numeric(5, 2)", "sa.Numeric(8, 3)", ["999.99", "-0.01"], "numeric(8,3)"),
    ("sa.DateTime", "sa.DateTime(timezone=True)", ["'2024-01-01 13:45:10.123456'", "'infinity'"], None),
]


@pytest.mark.parametrize("old, new, rows, new_type", WIDENINGS)
def test_widening_needs_no_consent_and_round_trips_with_rows(
    project: Project, old: str, new: str, rows: List[str], new_type: Any
) -> None:
    seeded(project, old, rows)
    old_type = column_type(project)
    before = values(project)
    project.models(models(new))
    path = project.generate("widen")  # no --allow-destructive, no terminal: refused if destructive
    assert "deletes_data" not in path.read_text().split("async def down")[0]
    project.cli("up")
    if new_type is not None:
        assert column_type(project) == new_type
    assert project.cli("diff", "--exit-code").returncode == 0
    if new_type is not None:  # timestamptz: the same local times, read in the session's TimeZone
        assert values(project) == before
    project.cli("down")
    assert column_type(project) == old_type and values(project) == before


def test_narrowing_down_is_marked_destructive_in_the_revision(project: Project) -> None:
    seeded(project, "sa.Integer", ["1"])
    project.models(models("sa.BigInteger"))
    path = project.generate("widen")
    down_text = path.read_text().split("async def down")[1]
    assert re.search(r"# destructive: .*deletes_data.*\n\s+await migrator\.actor\.modify_column_type\(", down_text)


def test_down_removing_an_enum_label_that_rows_hold_stops_before_anything_runs(project: Project) -> None:
    project.models(models("sa.Integer"))
    project.generate("initial")
    project.cli("up")
    project.models(models("sa.Integer", labels=["ok", "meh", "gone"]))
    path = project.generate("add a label")
    project.cli("up")
    run_sql(
        project.url,
        """INSERT INTO "line item" (mood) VALUES ('gone'), ('gone'), ('ok')""",
    )
    failed = project.cli("down", ok=False)
    assert failed.returncode == 3, failed.stderr
    assert "invalid input value for enum" in failed.stderr  # named, but not Postgres's raw failure
    assert "nothing of it ran" in failed.stderr
    assert "2 rows of public.line item.mood hold label 'gone' of enum mood state" in failed.stderr
    assert "remap_type_values(" in failed.stderr and "columns=[EnumColumn('line item', 'mood')]" in failed.stderr
    assert len(project.applied()) == 2
    labels = fetch(project.url, 'SELECT enum_range(NULL::"mood state")::text AS r')[0]["r"]
    assert labels == "{ok,meh,gone}"

    # The way the error shows: a remap before the swap in the down.
    text = path.read_text()
    down_at = text.index("async def down")
    swap_at = text.index("await migrator.actor.swap_type_values(", down_at)
    remap = (
        "await migrator.actor.remap_type_values(type_name='mood state', mapping={'gone': 'ok'}, "
        "columns=[EnumColumn('line item', 'mood')])\n        "
    )
    path.write_text(text[:swap_at] + remap + text[swap_at:])
    project.cli("down")
    assert [r["m"] for r in fetch(project.url, 'SELECT mood::text AS m FROM "line item" ORDER BY id')] == [
        "ok",
        "ok",
        "ok",
    ]


ENUM = "sa.Enum(Mood, name='mood state')"


def test_enum_to_text_is_lossless_and_text_to_enum_needs_consent(project: Project) -> None:
    seeded(project, ENUM, ["'ok'", "'meh'", "NULL"])
    project.models(models("sa.Text"))
    path = project.generate("enum to text")
    assert "deletes_data" not in path.read_text().split("async def down")[0]
    project.cli("up")
    assert values(project) == ["ok", "meh", None] and column_type(project) == "text"
    project.cli("down")
    assert column_type(project) == '"mood state"' and project.cli("diff", "--exit-code", ok=False).returncode == 1

    project.cli("up")
    run_sql(project.url, 'INSERT INTO "line item" ("unit price") VALUES (\'not a label\')')
    project.models(models(ENUM))
    refused = project.cli("generate", "-m", "text to enum", ok=False)
    assert refused.returncode == 2
    assert "fails on existing rows: invalid input value for enum" in refused.stderr
