"""`pgmig up`, `down`, `status`, `history` and `stamp`."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence

import typer

from pgmig.cli.context import CliState, run
from pgmig.cli.output import err, out, printable, progress, revision_entry, shown, write_sql

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.revisions.files import Chain, Revision
    from pgmig.revisions.runner import Direction


def up(
    ctx: typer.Context,
    target: str = typer.Argument(
        "heads", help="Revision to stop at (id or unique prefix); 'heads' (default) applies every branch."
    ),
    sql: bool = typer.Option(False, "--sql", help="Print the SQL instead of running it."),
) -> None:
    """Apply pending revisions up to TARGET (default: every head, each branch's revisions and their merges)."""
    nothing = (
        "Already at head: nothing to apply." if target in ("head", "heads") else f"Nothing to apply up to {target}."
    )
    _run_revisions(ctx, "up", target, sql, "applied", nothing)


def down(
    ctx: typer.Context,
    target: Optional[str] = typer.Argument(
        None, help="Revision to roll back to; 'base' rolls back everything. Default: one revision."
    ),
    sql: bool = typer.Option(False, "--sql", help="Print the SQL instead of running it."),
) -> None:
    """Roll back one revision (a merge revision: only it), or every applied revision that follows TARGET."""
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
    heads = current.chain.heads
    where = current.current if current.heads else "base (nothing applied)"
    if len(current.heads) > 1:
        where += f" ({len(current.heads)} branches applied, their merge not)"
    out.print(f"current: {printable(where, one_line=True)}", markup=False)
    if len(heads) > 1:
        joined = printable(", ".join(heads), one_line=True)
        out.print(f"heads:   {joined} (pgmig merge -m MESSAGE joins them)", markup=False)
    else:
        out.print(
            f"head:    {printable(heads[0] if heads else 'base (no revision files)', one_line=True)}", markup=False
        )
    if current.pending:
        out.print(f"pending: {len(current.pending)}", markup=False)
        for revision in current.pending:
            out.print(f"  {revision_entry(revision)}{graph_note(current.chain, revision)}", markup=False)
    else:
        out.print("pending: none", markup=False)
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
    """List the revisions in the order up applies them, marking what is applied, branch points and merges."""
    from pgmig.services.run import status as status_service

    state: CliState = ctx.obj
    current = run(status_service(state.project()))
    if not current.chain.revisions:
        out.print("No revisions yet: pgmig generate -m MESSAGE writes the first.")
    previous: Optional[str] = None
    for revision in current.chain.revisions:
        mark = "applied" if revision.id in current.applied else "pending"
        edited = "  (edited after it was applied)" if revision in current.edited else ""
        note = graph_note(current.chain, revision, previous)
        out.print(f"[{mark:>7}] {revision_entry(revision)}{note}{edited}", markup=False)
        previous = revision.id


def graph_note(chain: "Chain", revision: "Revision", previous: Optional[str] = None) -> str:
    """What a listing says of a revision's place in the graph, empty on a straight line: the revisions
    a merge joins, the one it follows when that is not the line above, how many branch off it, and
    `head` when there are several."""
    notes: List[str] = []
    parents: Sequence[str] = revision.parents
    if revision.is_merge:
        notes.append(f"merges {', '.join(parents)}")
    elif previous is not None and tuple(parents) != (previous,):
        notes.append(f"follows {parents[0] if parents else 'base'}")
    children = chain.children[revision.id]
    if len(children) > 1:
        notes.append(f"branch point: {len(children)} revisions follow it")
    if not children and len(chain.heads) > 1:
        notes.append("head")
    return f"  ({'; '.join(printable(note, one_line=True) for note in notes)})" if notes else ""


def stamp(
    ctx: typer.Context,
    target: List[str] = typer.Argument(
        ...,
        help="Revision(s) to record as applied, with all they follow ('base' clears; several for "
        "a database on several branches, 'heads' for all).",
    ),
) -> None:
    """Record TARGET as where the database stands without running anything."""
    from pgmig.services.run import stamp as stamp_service

    state: CliState = ctx.obj
    run(stamp_service(state.project(), target))
    out.print(f"Stamped {printable(' + '.join(target), one_line=True)}.", markup=False)
