"""`pgmig diff`: the preview, its SQL or its JSON."""

from __future__ import annotations

import typer

from pgmig.cli.context import TIMINGS, CliState, paused_gc, refuse_together, run
from pgmig.cli.output import (
    out,
    pending_note,
    print_document,
    print_plan,
    print_sql,
    print_timings,
    revision_ids,
    warn,
)
from pgmig.db.urls import redact_url


def diff(
    ctx: typer.Context,
    sql: bool = typer.Option(False, "--sql", help="Print the exact SQL instead of the preview."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (each change with its SQL)."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when there are differences."),
    timings: bool = TIMINGS,
) -> None:
    """Preview what it takes to bring the database to the models."""
    from pgmig.services.diff import diff as diff_service

    refuse_together({"--json": as_json, "--sql": sql}, "--json prints the plan with each change's SQL")
    state: CliState = ctx.obj
    project = state.project(timings)
    with paused_gc():
        found = run(diff_service(project))
    plan = found.plan
    with project.timings.phase("render"):
        if as_json:
            print_document({**plan.to_json(), "pending_revisions": revision_ids(found.pending)})
        elif sql:
            print_sql(plan.statements())
        elif plan.is_empty:
            out.print("No changes: the database matches the models.")
        else:
            print_plan(out, plan, f"Changes to bring {redact_url(project.database_url)} to the models")
        if found.pending and not as_json:
            note = pending_note(found.pending)
            if sql:
                warn(note)
            else:
                out.print(note, markup=False, style="yellow")
    for warning in plan.warnings:
        warn(warning)
    print_timings(project.timings)
    if exit_code and not plan.is_empty:
        raise typer.Exit(1)
