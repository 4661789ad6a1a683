"""`pgmig baseline`: adopt an existing database (see pgmig.services.baseline)."""

from __future__ import annotations

import typer

from pgmig.cli.context import TIMINGS, CliState, paused_gc, run
from pgmig.cli.output import out, print_timings, printable


def baseline(
    ctx: typer.Context,
    message: str = typer.Option(
        ..., "-m", "--message", metavar="MESSAGE", help="What the revision is; becomes its docstring and file name."
    ),
    no_verify: bool = typer.Option(
        False,
        "--no-verify",
        help="Write the revision without proving it first on a scratch database (up builds the schema, down empties).",
    ),
    timings: bool = TIMINGS,
) -> None:
    """Adopt an existing database: write a revision that creates its current schema, recorded as applied."""
    from pgmig.services.baseline import BaselineOptions
    from pgmig.services.baseline import baseline as baseline_service

    state: CliState = ctx.obj
    project = state.project(timings)
    with paused_gc():
        result = run(baseline_service(project, BaselineOptions(message=message, verify=not no_verify)))
    out.print(printable(str(result.path), one_line=True), markup=False)
    out.print(
        f"Recorded {result.revision_id} as applied ({result.objects} schema objects); nothing was run on the "
        "database.\nNext: `pgmig diff` shows what the models change, `pgmig generate -m MSG` writes it, "
        "`pgmig check` proves the history.",
        markup=False,
    )
    print_timings(project.timings)
