"""`pgmig check` and drift in `pgmig status` (the pytest plugin for applications: tests/test_testing_fixtures.py)."""

from __future__ import annotations

import json

from tests.helpers import run_sql
from tests.sample_project import V1, V2, V3, Project


def synced(project: Project) -> None:
    project.models(V1)
    project.generate("initial")
    project.models(V2)
    project.generate("second")
    project.cli("up")


def test_check_passes_on_a_synced_project(project: Project) -> None:
    synced(project)
    result = project.cli("check")
    assert "check passed (2 revisions)" in result.stdout
    assert result.stdout.count("    ok ") == 2
    report = json.loads(project.cli("check", "--json").stdout)
    assert report["ok"] is True and [r["status"] for r in report["revisions"]] == ["ok", "ok"]


def test_check_fails_on_a_model_change_without_a_revision(project: Project) -> None:
    synced(project)
    project.models(V3)
    result = project.cli("check", ok=False)
    assert result.returncode == 1
    assert "needs a migration that no revision makes" in result.stdout or "models need a migration" in result.stdout
    assert "+ column bio" in result.stdout
    report = json.loads(project.cli("check", "--json", ok=False).stdout)
    assert report["ok"] is False and report["missing_migration"]["changes"]


def test_check_fails_on_a_down_that_forgets_a_column(project: Project) -> None:
    synced(project)
    second = project.files()[-1]
    text = second.read_text()
    # The down no longer drops "views".
    start = text.index("    async def down(")
    down = text[start:]
    lines = down.splitlines()
    kept = []
    skipping = False
    for line in lines:
        if "drop_column" in line and '"views"' in line:
            continue
        if line.strip().startswith("await migrator.actor.drop_column(") and not line.rstrip().endswith(")"):
            skipping = True
            block = [line]
            continue
        if skipping:
            block.append(line)
            if line.strip() == ")":
                skipping = False
                if not any('"views"' in b for b in block):
                    kept.extend(block)
            continue
        kept.append(line)
    second.write_text(text[:start] + "\n".join(kept) + "\n")
    result = project.cli("check", ok=False)
    assert result.returncode == 1
    assert "down does not restore: column public.post.views is there but should not be" in result.stdout
    assert second.name.split("_")[0] in result.stdout


def test_check_fails_on_a_down_that_forgets_an_enum_label(project: Project) -> None:
    project.models(V1)
    project.generate("initial")
    project.models(
        V1.replace('    published = "published"\n', '    published = "published"\n    archived = "archived"\n')
    )
    labels = project.generate("archive")
    text = labels.read_text()
    start = text.index("    async def down(")
    labels.write_text(text[:start] + "    async def down(self, migrator: Migrator):\n        pass\n")
    result = project.cli("check", ok=False)
    assert result.returncode == 1
    assert "down does not restore: enum public.status differs" in result.stdout
    assert "archived" in result.stdout


def test_check_reports_a_broken_revision(project: Project) -> None:
    synced(project)
    second = project.files()[-1]
    second.write_text(
        second.read_text().replace(
            "    async def down(",
            "        await migrator.connection.execute('SELECT broken(')\n\n    async def down(",
            1,
        )
    )
    result = project.cli("check", ok=False)
    assert result.returncode == 1
    assert "failed" in result.stdout and second.name in result.stdout and "up failed" in result.stdout


def test_check_reports_files_edited_after_they_were_applied(project: Project) -> None:
    synced(project)
    first = project.files()[0]
    first.write_text(first.read_text() + "EDITED_AFTER_IT_WAS_APPLIED = True\n")  # code, not only a comment
    result = project.cli("check", ok=False)
    assert result.returncode == 1
    assert f"{first.name} was edited after it was applied" in result.stdout


def test_drift_after_a_manual_alter_table(project: Project) -> None:
    synced(project)
    clean = project.cli("status", "--exit-code")
    assert "drift: none" in clean.stdout
    run_sql(project.url, "ALTER TABLE post ADD COLUMN sneaky integer", "ALTER TABLE author ALTER COLUMN name TYPE text")
    drifted = project.cli("status", "--exit-code", ok=False)
    assert drifted.returncode == 1
    assert "column public.post.sneaky is there but should not be" in drifted.stdout
    assert "column public.author.name differs (data_type: 'text' instead of 'character varying(80)')" in drifted.stdout
