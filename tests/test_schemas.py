"""Managed schemas other than public, and several at once (issue 17)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import fetch, run_sql
from tests.sample_project import V1, Project


def _in_schema(project: Project, schemas: str) -> None:
    (project.root / "pyproject.toml").write_text(
        f'[project]\nname = "blog"\n\n[tool.pgmig]\nmodels = ["models.py"]\n{schemas}\n'
    )


def test_fresh_database_with_schema_app(project: Project) -> None:
    _in_schema(project, 'schema = "app"')
    project.models(V1)
    project.generate("init")
    project.cli("up")
    assert project.cli("diff").stdout.strip().endswith("No changes.") or "No changes" in project.cli("diff").stdout
