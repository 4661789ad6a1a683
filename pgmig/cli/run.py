"""`pgmig up`, `down`, `status`, `history` and `stamp`."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import typer

from pgmig.cli.context import DEV_URL, CliState, refuse_together, run
from pgmig.cli.output import (
    TIME_WIDTH,
    applied_time,
    err,
    out,
    print_document,
    printable,
    progress,
    revision_entry,
    revision_ids,
    shown,
    warn,
    write_sql,
)

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.revisions.files import Chain, Revision
    from pgmig.revisions.runner import Direction, Status


FROM = typer.Option(
    None,
    "--from",
    metavar="REV",
    help="With --sql: write the SQL offline, for a database standing at REV (an id, or 'base'), "
    "without connecting to one.",
    show_default=False,
)


def up(
    ctx: typer.Context,
    target: str = typer.Argument(
        "heads",
        metavar="TARGET",
        help="Revision to stop at (id or unique prefix), or +N for the next N pending revisions; "
        "'heads' (default) applies every branch.",
    ),
    sql: bool = typer.Option(False, "--sql", help="Print the SQL instead of running it."),
    start: Optional[str] = FROM,
) -> None:
    """Apply pending revisions up to TARGET (default: every head, each branch's revisions and their merges)."""
    nothing = (
        "Already at head: nothing to apply." if target in ("head", "heads") else f"Nothing to apply up to {target}."
    )
    _run_revisions(ctx, "up", target, sql, "applied", nothing, start)


def down(
    ctx: typer.Context,
    target: Optional[str] = typer.Argument(
        None,
        metavar="TARGET",
        help="Revision to roll back to, or -N to roll back the last N revisions; 'base' rolls back "
        "everything. Default: one revision.",
        show_default=False,
    ),
    sql: bool = typer.Option(False, "--sql", help="Print the SQL instead of running it."),
    start: Optional[str] = FROM,
    yes: bool = typer.Option(False, "--yes", "-y", help="With TARGET base: roll back everything without asking."),
) -> None:
    """Roll back one revision (a merge revision: only it), or every applied revision that follows TARGET."""
    _run_revisions(ctx, "down", target, sql, "rolled back", "Nothing to roll back.", start, yes=yes)


def _run_revisions(
    ctx: typer.Context,
    direction: "Direction",
    target: Optional[str],
    sql: bool,
    verb: str,
    nothing: str,
    start: Optional[str] = None,
    yes: bool = False,
) -> None:
    """`up` and `down`: print the SQL, or run with progress and say when there was nothing to do."""
    from pgmig.revisions.files import BASE
    from pgmig.revisions.runner import RELATIVE, relative_target
    from pgmig.services.run import RunOptions
    from pgmig.services.run import run as run_service
    from pgmig.services.run import status as status_service

    state: CliState = ctx.obj
    project = state.project()
    options = RunOptions(direction, target, as_sql=sql, start=start)  # refuses --from without --sql
    if target is not None and RELATIVE.fullmatch(target):
        # With --from, counted from where the script starts, offline: the database is not read.
        target = relative_target(run(status_service(project, start)), direction, target)
        options = replace(options, target=target)
    if direction == "down" and target == BASE and not sql and not yes and run(status_service(project)).applied:
        confirm_base()
    if sql:
        write_sql(run(run_service(project, options)).sql or [])
        return
    # The embedded server started (and said so) before the progress line is on the screen.
    project.database_url  # noqa: B018
    with progress(verb) as report:
        done = run(run_service(project, options, report)).revisions
    if not done:
        out.print(printable(nothing, one_line=True), markup=False)


def confirm_base(command: str = "pgmig down base", what: str = "every applied revision") -> None:
    """`command` (`pgmig down base`, `pgmig fleet down base`) rolls back `what`: asked at a terminal,
    `--yes` without one. Raises UsageError with no terminal; a no ends the command (exit 0,
    `confirm_or_stop`)."""
    from pgmig.cli.prompts import confirm_or_stop
    from pgmig.errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError(f"{command} rolls back {what}: confirm with --yes (no terminal to ask)")
    confirm_or_stop(f"Roll back {what} ({command})?", "Nothing rolled back.")


def status(
    ctx: typer.Context,
    exit_code: bool = typer.Option(
        False, "--exit-code", help="Exit 1 when the database has drifted from its revisions."
    ),
    measure: Optional[bool] = typer.Option(
        None,
        "--drift/--no-drift",
        help="Replay the applied revisions on a scratch database and compare (default: when dev_url is set, "
        "or the database is the embedded one; --exit-code implies --drift).",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON (README: status --json)."),
    dev_url: Optional[str] = DEV_URL,
) -> None:
    """Show the current revision, what is pending, applied files edited since, and drift."""
    from pgmig.services.check import drift as drift_service
    from pgmig.services.check import drift_at_hand
    from pgmig.services.run import status as status_service

    refuse_together(
        {"--exit-code": exit_code, "--no-drift": measure is False}, "--exit-code exits 1 on drift, so it measures it"
    )
    state: CliState = ctx.obj
    project = state.project(dev_url=dev_url)
    no_drift = not (measure if measure is not None else exit_code or drift_at_hand(project))
    drift: Optional[List[str]] = None
    if no_drift:
        current = run(status_service(project))
    else:
        current, drift = run(drift_service(project))
    unmeasured = _unmeasured(current, no_drift, measure is None, drift)
    if as_json:
        _say_problems(current, edited=True)
        print_document(_status_json(current, drift, unmeasured))
    else:
        _print_status(current, drift, unmeasured)
    if drift and exit_code:
        raise typer.Exit(1)


def _unmeasured(current: "Status", no_drift: bool, unasked: bool, drift: Optional[List[str]]) -> Optional[str]:
    """Why drift was not measured (None: it was, or `--no-drift` asked so and nothing is said)."""
    if no_drift:
        return "no dev_url: --drift replays the revisions on the embedded server" if unasked else None
    if drift is None and current.partial:
        return "a revision is partly applied: finish it first"
    if drift is None:
        return "the revisions do not build from an empty database"
    return None


def _print_status(current: "Status", drift: Optional[List[str]], unmeasured: Optional[str]) -> None:
    _say_problems(current)
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
    for partial in current.partial:
        name = next((r.path.name for r in current.chain.revisions if r.id == partial.revision_id), partial.revision_id)
        out.print(
            f"partly applied: {printable(name, one_line=True)} ({partial.direction}: {partial.steps}"
            f"{'' if partial.total is None else f' of {partial.total}'} steps committed; "
            f"pgmig {partial.direction} resumes it)",
            markup=False,
        )
    if unmeasured is not None:
        out.print(f"drift: not measured ({unmeasured})", markup=False)
    elif drift:
        out.print(f"drift: the database differs from what its revisions build ({len(drift)}):", markup=False)
        for line in drift:
            out.print(f"  {shown(line, one_line=True)}", markup=False)
    elif drift is not None:
        out.print("drift: none", markup=False)


def _status_json(current: "Status", drift: Optional[List[str]], unmeasured: Optional[str]) -> Dict[str, Any]:
    """`status --json` (version 1, README's command reference): where the database stands, what is
    pending, partly applied or edited, and drift (`differences` None when not measured)."""
    return {
        "current": list(current.heads),
        "heads": list(current.chain.heads),
        "pending": [_revision_json(current, revision) for revision in current.pending],
        "partly_applied": [
            {"revision": p.revision_id, "direction": p.direction, "steps": p.steps, "total": p.total}
            for p in current.partial
        ],
        "edited": revision_ids(current.edited),
        "problems": current.problems,
        "drift": {"measured": drift is not None, "reason": unmeasured, "differences": drift},
    }


def _revision_json(current: "Status", revision: "Revision") -> Dict[str, Any]:
    """One revision in `status --json` and `history --json`: id, file, message, the revisions it
    follows, and when it was applied (ISO 8601 with its UTC offset; null when pending)."""
    row = current.applied.get(revision.id)
    return {
        "revision": revision.id,
        "file": revision.path.name,
        "message": revision.message,
        "parents": list(revision.parents),
        "applied_at": row.applied_at.isoformat() if row is not None and row.applied_at is not None else None,
        "edited": revision in current.edited,
    }


def history(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the history as JSON (README: history --json)."),
) -> None:
    """List the revisions in the order up applies them, marking what is applied (and when), branch points
    and merges."""
    from pgmig.services.run import status as status_service

    state: CliState = ctx.obj
    current = run(status_service(state.project()))
    _say_problems(current, edited=as_json)
    if as_json:
        print_document(
            {
                "revisions": [
                    {**_revision_json(current, revision), "head": revision.id in current.chain.heads}
                    for revision in current.chain.revisions
                ],
                "problems": current.problems,
            }
        )
        return
    if not current.chain.revisions:
        out.print("No revisions yet: pgmig generate -m MESSAGE writes the first.")
    previous: Optional[str] = None
    for revision in current.chain.revisions:
        row = current.applied.get(revision.id)
        when = f"[applied] {applied_time(row.applied_at)}" if row is not None else f"[pending] {'':{TIME_WIDTH}}"
        edited = "  (edited after it was applied)" if revision in current.edited else ""
        note = graph_note(current.chain, revision, previous)
        out.print(f"{when}  {revision_entry(revision)}{note}{edited}", markup=False)
        previous = revision.id


def _say_problems(current: "Status", edited: bool = True) -> None:
    """What does not add up between the version table and the files, as warnings: status and history
    only read, so they show the rest anyway (up and down refuse with the same words); with `edited`,
    the applied files edited since too (history marks them in its listing instead)."""
    from pgmig.revisions.runner import edited_note

    for problem in current.problems:
        warn(problem)
    for revision in current.edited if edited else ():
        warn(f"{revision.path.name} {edited_note()}")


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
    target: Optional[List[str]] = typer.Argument(
        None,
        metavar="TARGET",
        help="Revisions to record as applied, with all they follow ('base' clears; several for "
        "a database on several branches, 'heads' for all). With --accept-edits: only this revision's file.",
        show_default=False,
    ),
    accept_edits: bool = typer.Option(
        False,
        "--accept-edits",
        help="Record the current checksums of applied revisions whose files changed meaning since "
        "(applied times kept; nothing runs).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="With --accept-edits: accept without asking."),
) -> None:
    """Record TARGET as where the database stands without running anything; or, with --accept-edits,
    record the files of applied revisions as they are now."""
    from pgmig.errors import UsageError
    from pgmig.services.run import stamp as stamp_service

    state: CliState = ctx.obj
    targets = target or []
    if accept_edits:
        if len(targets) > 1:
            raise UsageError("--accept-edits takes one revision (its file only), or none (every edited file)")
        _accept_edits(state, targets[0] if targets else None, yes)
        return
    if yes:
        raise UsageError("--yes goes with --accept-edits")
    if not targets:
        raise UsageError("name the revisions to stamp (an id, head, heads or base), or give --accept-edits")
    run(stamp_service(state.project(), targets))
    out.print(f"Stamped {printable(' + '.join(targets), one_line=True)}.", markup=False)


def _accept_edits(state: CliState, target: Optional[str], yes: bool) -> None:
    """`stamp --accept-edits`: list the edited applied files, ask (at a terminal), record their checksums."""
    from pgmig.cli.prompts import confirm as ask
    from pgmig.services.run import AcceptOptions, accept_edits

    def consent(edited: List["Revision"]) -> bool:
        if not sys.stdin.isatty():
            return False
        err.print("These applied revisions' files changed meaning since they were applied:", markup=False)
        for revision in edited:
            err.print(f"  {revision_entry(revision)}  ({printable(str(revision.path), one_line=True)})", markup=False)
        err.print(
            "pgmig keeps a checksum of each applied file, not its text, so it cannot show the old version: "
            "compare with your version control (git log -p FILE). Accepting changes no table: if the new "
            "text should run, write a new revision instead.",
            markup=False,
        )
        return ask("Accept the files as they are now?")

    accepted = run(accept_edits(state.project(), AcceptOptions(target, yes), consent))
    if not accepted:
        out.print("No applied revision's file changed meaning: nothing to accept.", markup=False)
    for revision in accepted:
        out.print(f"Accepted {printable(revision.path.name, one_line=True)} as it is now.", markup=False)
