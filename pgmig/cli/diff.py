"""`pgmig diff`: the preview, its SQL or its JSON."""

from __future__ import annotations

import typer

from pgmig.cli.context import TIMINGS, CliState, paused_gc, run
from pgmig.cli.output import out, print_json, print_plan, print_sql, print_timings, warn
from pgmig.db.urls import redact_url


def diff(
    ctx: typer.Context,
    sql: bool = typer.Option(False, "--sql", help="Print the exact SQL instead of the preview."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when there are differences."),
    timings: bool = TIMINGS,
) -> None:
    """Preview what it takes to bring the database to the models."""
    from pgmig.services.diff import diff as diff_service

    state: CliState = ctx.obj
    project = state.project(timings)
    with paused_gc():
        plan = run(diff_service(project))
    with project.timings.phase("render"):
        if as_json:
            print_json(plan.to_json())
        elif sql:
            print_sql(plan.statements())
        elif plan.is_empty:
            out.print("No changes: the database matches the models.")
        else:
            print_plan(out, plan, f"Changes to bring {redact_url(project.database_url)} to the models")
    for warning in plan.warnings:
        warn(warning)
    print_timings(project.timings)
    if exit_code and not plan.is_empty:
        raise typer.Exit(1)
