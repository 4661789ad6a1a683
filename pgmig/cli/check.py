"""`pgmig check`: the CI gate."""

from __future__ import annotations

from typing import Optional

import typer

from pgmig.cli.context import DEV_URL, TIMINGS, CliState, paused_gc, run
from pgmig.cli.output import check_progress, out, print_check, print_document, print_timings


def check(
    ctx: typer.Context,
    dev_url: Optional[str] = DEV_URL,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    timings: bool = TIMINGS,
) -> None:
    """CI gate: replay every revision on a scratch database, check each down, compare with the models."""
    from pgmig.services.check import CheckOptions
    from pgmig.services.check import check as check_service

    state: CliState = ctx.obj
    project = state.project(timings, dev_url)
    with paused_gc():
        if as_json:  # stdout is the document: no line before it
            report = run(check_service(project, CheckOptions()))
        else:  # notices (the scratch server's) go through the progress line's console, above it
            with check_progress() as told:
                report = run(check_service(project, CheckOptions(), told))
    with project.timings.phase("render"):
        if as_json:
            print_document(report.to_json())
        else:
            print_check(out, report, streamed=True)
    print_timings(project.timings)
    if not report.ok:
        raise typer.Exit(1)
