"""`pgmig up`, `down`, `status`, `history` and `stamp`."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

import typer

from pgmig.cli.context import CliState, run
from pgmig.cli.output import err, out, printable, progress, revision_entry, shown, write_sql

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.revisions.runner import Direction


def up(
    ctx: typer.Context,
    target: str = typer.Argument("head", help="Revision to stop at (id or unique prefix)."),
    sql: bool = typer.Option(False, "--sql", help="Print the SQL instead of running it."),
) -> None:
    """Apply pending revisions up to TARGET (default: head)."""
    nothing = "Already at head: nothing to apply." if target == "head" else f"Nothing to apply up to {target}."
    _run_revisions(ctx, "up", target, sql, "applied", nothing)


def down(
    ctx: typer.Context,
    target: Optional[str] = typer.Argument(
        None, help="Revision to roll back to; 'base' rolls back everything. Default: one revision."
    ),
    sql: bool = typer.Option(False, "--sql", help="Print the SQL instead of running it."),
) -> None:
    """Roll back one revision, or down to TARGET."""
    _run_revisions(ctx, "down", target, sql, "rolled back", "Nothing to roll back.")


def _run_revisions(
    ctx: typer.Context, direction: "Direction", target: Optional[str], sql: bool, verb: str, nothing: str
) -> None:
    """`up` and `down`: print the SQL, or run with progress and say when there was nothing to do."""
    from pgmig.services.run import RunOptions
    from pgmig.services.run import run as run_service

    state: CliState = ctx.obj
    project = state.project()
    options = RunOptions(direction, target, as_sql=sql)
    if sql:
        write_sql(run(run_service(project, options)).sql or [])
        return
    with progress(verb) as report:
        done = run(run_service(project, options, report)).revisions
    if not done:
        out.print(printable(nothing, one_line=True), markup=False)


def status(
    ctx: typer.Context,
    exit_code: bool = typer.Option(
        False, "--exit-code", help="Exit 1 when the database has drifted from its revisions."
    ),
    no_drift: bool = typer.Option(False, "--no-drift", help="Skip replaying the revisions to look for drift."),
) -> None:
    """Show the current revision, what is pending, applied files edited since, and drift."""
    from pgmig.services.check import drift as drift_service
    from pgmig.services.run import status as status_service

    state: CliState = ctx.obj
    project = state.project()
    drift: Optional[List[str]] = None
    if no_drift:
        current = run(status_service(project))
    else:
        current, drift = run(drift_service(project))
    head = current.chain.head
    out.print(f"current: {printable(current.current or 'base (nothing applied)', one_line=True)}", markup=False)
    out.print(f"head:    {printable(head or 'base (no revision files)', one_line=True)}", markup=False)
    if current.pending:
        out.print(f"pending: {len(current.pending)}", markup=False)
        for revision in current.pending:
            out.print(f"  {revision_entry(revision)}", markup=False)
    else:
        out.print("pending: none", markup=False)
    for partial in current.partial:
        name = next((r.path.name for r in current.chain.revisions if r.id == partial.revision_id), partial.revision_id)
        out.print(
            f"partly applied: {printable(name, one_line=True)} ({partial.direction}: {partial.steps}"
            f"{'' if partial.total is None else f' of {partial.total}'} steps committed; "
            f"pgmig {partial.direction} resumes it)",
            markup=False,
        )
    for revision in current.edited:
        err.print(
            f"warning: {printable(revision.path.name, one_line=True)} was edited after it was applied",
            markup=False,
            style="yellow",
        )
    if no_drift:
        return
    if drift is None:
        out.print("drift: not measured (the revisions do not build from an empty database)", markup=False)
    elif drift:
        out.print(f"drift: the database differs from what its revisions build ({len(drift)}):", markup=False)
        for line in drift:
            out.print(f"  {shown(line, one_line=True)}", markup=False)
        if exit_code:
            raise typer.Exit(1)
    else:
        out.print("drift: none", markup=False)


def history(ctx: typer.Context) -> None:
    """List the revision chain, marking what is applied."""
    from pgmig.services.run import status as status_service

    state: CliState = ctx.obj
    current = run(status_service(state.project()))
    if not current.chain.revisions:
        out.print("No revisions yet: pgmig generate -m MESSAGE writes the first.")
    for index, revision in enumerate(current.chain.revisions):
        mark = "applied" if index <= current.current_index else "pending"
        edited = "  (edited after it was applied)" if revision in current.edited else ""
        out.print(f"[{mark:>7}] {revision_entry(revision)}{edited}", markup=False)


def stamp(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="Revision to record as applied (with all before it); 'base' clears."),
) -> None:
    """Record TARGET as the current revision without running anything."""
    from pgmig.services.run import stamp as stamp_service

    state: CliState = ctx.obj
    run(stamp_service(state.project(), target))
    out.print(f"Stamped {printable(target, one_line=True)}.", markup=False)
