"""`pgmig init`."""

from __future__ import annotations

import typer

from pgmig.cli.context import CliState
from pgmig.cli.output import out


def init(ctx: typer.Context) -> None:
    """Write [tool.pgmig] into pyproject.toml and create the migrations folder."""
    from pathlib import Path

    from pgmig.services.init import InitOptions, init_project

    state: CliState = ctx.obj
    options = InitOptions(
        Path.cwd(),
        migrations_dir=state.overrides.get("migrations_dir") or "migrations",
        models=state.overrides.get("models") or [],
        schema=",".join(state.overrides.get("schema") or ["public"]),  # several: read back as a list
    )
    for line in init_project(options):
        out.print(line, markup=False)
