"""`pgmig fleet up|down|status|check`: the revisions on every target (`pgmig.services.fleet`)."""

from __future__ import annotations

import io
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional

import typer

from pgmig.cli.context import DEV_URL, CliState, run
from pgmig.cli.output import err, out, print_json, printable, shown
from pgmig.errors import plural

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

    from pgmig.revisions.files import Revision
    from pgmig.services.fleet import Event, FleetReport, Target, TargetResult, TargetStatus

app = typer.Typer(
    name="fleet",
    help="Run the revisions on many targets (databases, or schemas of one) at once: --targets, PGMIG_TARGETS "
    "or targets in [tool.pgmig].",
    no_args_is_help=True,
    rich_markup_mode=None,
)

FAILED = 3
"""Exit code when some targets failed or were not started (DESIGN.md: a database or revision error)."""

CONCURRENCY = typer.Option(4, "--concurrency", "-j", min=1, help="Targets of one server worked on at once.")
CANARY = typer.Option(0, "--canary", min=0, help="Run the first N targets first; start no other if one fails.")
FAIL_FAST = typer.Option(False, "--fail-fast", help="Start no more targets after one fails.")


def up(
    ctx: typer.Context,
    target: str = typer.Argument(
        "heads",
        metavar="TARGET",
        help="Revision to stop at (id or unique prefix), or +N for each target's next N pending revisions; "
        "default every head.",
    ),
    concurrency: int = CONCURRENCY,
    canary: int = CANARY,
    fail_fast: bool = FAIL_FAST,
) -> None:
    """Apply pending revisions on every target, each from where it stands (a new tenant schema is created)."""
    _run_fleet(ctx, "up", target, concurrency, canary, fail_fast)


def down(
    ctx: typer.Context,
    target: Optional[str] = typer.Argument(
        None,
        metavar="TARGET",
        help="Revision to roll back to, or -N for each target's last N revisions; 'base' rolls back "
        "everything. Default: one revision a target.",
        show_default=False,
    ),
    concurrency: int = CONCURRENCY,
    canary: int = CANARY,
    fail_fast: bool = FAIL_FAST,
    yes: bool = typer.Option(
        False, "--yes", "-y", help="With TARGET base: roll back everything on every target without asking."
    ),
) -> None:
    """Roll back on every target (one revision each, or what follows TARGET)."""
    if target == "base" and not yes:
        from pgmig.cli.run import confirm_base

        confirm_base("pgmig fleet down base", "every applied revision on every target")
    _run_fleet(ctx, "down", target, concurrency, canary, fail_fast)


INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as the CLI's edge uses for an interruption."""


def _run_fleet(
    ctx: typer.Context, direction: str, target: Optional[str], concurrency: int, canary: int, fail_fast: bool
) -> None:
    from pgmig.services.fleet import FleetOptions, FleetReport, TargetResult, resolve_targets, run_fleet

    state: CliState = ctx.obj
    project = state.project()
    options = FleetOptions(direction, target, concurrency, canary, fail_fast)  # type: ignore[arg-type]
    targets = run(resolve_targets(project))
    if not targets:
        _no_targets()
        return
    verb = "applied" if direction == "up" else "rolled back"
    # The targets started so far, kept here too: after Ctrl-C the summary shows what finished.
    seen: "Dict[Target, TargetResult]" = {}
    try:
        with _events(verb, len(targets), seen) as on_event:
            report = run(run_fleet(project, options, targets, on_event=on_event))
    except KeyboardInterrupt:
        results = [seen.get(t) or TargetResult(t) for t in targets]
        for result in results:
            if result.target in seen and result.state == "skipped":  # started, not finished
                result.state, result.error = "failed", "interrupted (Ctrl-C): its running revision was rolled back"
        _summary(FleetReport(results, "interrupted (Ctrl-C)"), verb)
        raise typer.Exit(INTERRUPTED) from None
    _summary(report, verb)
    if report.failed or report.stopped:
        raise typer.Exit(FAILED)


def _no_targets() -> None:
    """Targets that name none (a query with no rows, an empty file): said, and exit 0, since a tenant
    registry with no tenant yet is a normal state, not a mistake."""
    err.print(
        "no targets: the targets setting names none (a query returned no rows, or a file is empty); nothing to do",
        markup=False,
        style="yellow",
    )


@contextmanager
def _events(verb: str, total: int, seen: "Dict[Target, TargetResult]") -> "Iterator[Event]":
    """Per-target lines when piped; a Rich bar over the targets at a terminal, failures printed above it."""

    def line(kind: str, result: "TargetResult", revision: Optional["Revision"]) -> Optional[str]:
        name = printable(result.target.label, one_line=True)
        if kind == "revision" and revision is not None:
            return f"{name}: {verb} {printable(revision.id, one_line=True)}"
        if kind == "done":
            return f"{name}: done at {printable(result.after or 'base', one_line=True)} ({result.seconds:.2f}s)"
        if kind == "failed":
            return f"{name}: FAILED: {shown(result.error or '', one_line=True)}"
        return None

    if not out.is_terminal:

        def plain(kind: str, result: "TargetResult", revision: Optional["Revision"]) -> None:
            seen[result.target] = result
            text = line(kind, result, revision)
            if text is not None:
                out.print(text, markup=False)

        yield plain
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=out
    ) as bar:
        task = bar.add_task("targets", total=total)
        finished = [0]
        running: "Dict[Target, None]" = {}  # in start order

        def rich(kind: str, result: "TargetResult", revision: Optional["Revision"]) -> None:
            seen[result.target] = result
            if kind == "start":
                running[result.target] = None
            elif kind in ("done", "failed"):
                running.pop(result.target, None)
                finished[0] += 1
                bar.update(task, completed=finished[0])
            if kind == "failed":
                bar.console.print(line(kind, result, revision), markup=False, style="red")
            bar.update(task, description=running_label(list(running)))

        yield rich


def running_label(running: "List[Target]") -> str:
    """The progress line's label: the targets being worked on now, the oldest first (two named,
    then how many more), so a finished or failed target never stays on it."""
    if not running:
        return "targets"
    names = [printable(t.label, one_line=True) for t in running[:2]]
    more = f", {len(running) - 2} more" if len(running) > 2 else ""
    return f"targets (running: {', '.join(names)}{more})"


def _summary(report: "FleetReport", verb: str) -> None:
    from rich.table import Table

    table = Table(title=f"fleet: {plural(len(report.results), 'target')}", title_justify="left")
    for column in ("target", "result", "before", "after", verb, "seconds", "error"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        table.add_row(
            printable(r.target.label, one_line=True),
            r.state,
            printable(r.before or "", one_line=True),
            printable(r.after or "", one_line=True),
            str(len(r.revisions)),
            f"{r.seconds:.2f}",
            shown(r.error or "", one_line=True),
        )
    _print_table(table)
    counts = {state: sum(1 for r in report.results if r.state == state) for state in ("done", "failed", "skipped")}
    out.print(f"{counts['done']} done, {counts['failed']} failed, {counts['skipped']} not started", markup=False)
    if report.stopped:
        err.print(f"stopped: {shown(report.stopped, one_line=True)}", markup=False, style="yellow")
    if report.failed or report.stopped:
        err.print("fix the failed targets, then rerun: each target resumes where it stands", markup=False)


DRIFT = typer.Option(
    None,
    "--drift/--no-drift",
    help="Replay each target's applied revisions on a scratch database (once per revision and schema) and "
    "compare (default: when dev_url is set; --drift without it uses the embedded server).",
    show_default=False,
)


def status(
    ctx: typer.Context,
    concurrency: int = CONCURRENCY,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with a version field) instead of a table."),
    measure: Optional[bool] = DRIFT,
    dev_url: Optional[str] = DEV_URL,
) -> None:
    """Each target's revision, pending count, drift, and what is wrong (partly applied, edited files)."""
    statuses, heads = _statuses(ctx, concurrency, measure, dev_url)
    if as_json:
        from pgmig.services.fleet import json_report

        print_json(json_report(statuses, heads))
        return
    _status_table(statuses, heads)


def check(
    ctx: typer.Context,
    concurrency: int = CONCURRENCY,
    measure: Optional[bool] = DRIFT,
    dev_url: Optional[str] = DEV_URL,
) -> None:
    """Exit 1 unless every target is at head with nothing partly applied, no applied file edited, and
    (when measured) no drift."""
    statuses, heads = _statuses(ctx, concurrency, measure, dev_url)
    _status_table(statuses, heads)
    bad = [s for s in statuses if not s.ok]
    if bad:
        err.print(f"{len(bad)} of {plural(len(statuses), 'target')} not at head: pgmig fleet up", markup=False)
        raise typer.Exit(1)
    if not statuses:
        _no_targets()
        return
    out.print(f"all {plural(len(statuses), 'target')} at head", markup=False)


def _statuses(
    ctx: typer.Context, concurrency: int, measure: Optional[bool], dev_url: Optional[str]
) -> "tuple[List[TargetStatus], List[str]]":
    from pgmig.services.fleet import fleet_status, measure_drift

    state: CliState = ctx.obj
    project = state.project(dev_url=dev_url)
    statuses = run(fleet_status(project, concurrency))
    # Unasked, only with a scratch server named: the targets are never the embedded database.
    if measure if measure is not None else bool(project.settings.dev_url):
        run(measure_drift(project, statuses, dev_url))
    # The chain the statuses were read against: the revision files are read once a command.
    chain = next((s.status.chain for s in statuses if s.status is not None), None)
    return statuses, list((chain if chain is not None else project.chain()).heads)


def _status_table(statuses: "List[TargetStatus]", heads: List[str]) -> None:
    from rich.table import Table

    table = Table(
        title=f"fleet: {plural(len(statuses), 'target')}; head {' + '.join(heads) or 'base'}", title_justify="left"
    )
    for column in ("target", "current", "pending", "drift", "problems"):
        table.add_column(column, overflow="fold")
    for s in statuses:
        current = s.status
        problems: List[str] = []
        if s.error:
            problems.append(s.error)
        if current is not None:
            problems += [f"partly applied: {p.revision_id}" for p in current.partial]
            problems += [f"edited: {r.path.name}" for r in current.edited]
            problems += current.problems
        table.add_row(
            printable(s.target.label, one_line=True),
            printable(current.current, one_line=True) if current is not None else "?",
            str(len(current.pending)) if current is not None else "?",
            _drift_cell(s),
            shown("; ".join(problems), one_line=True),
        )
    _print_table(table)


def _drift_cell(status: "TargetStatus") -> str:
    """`none`, the differences (up to three, then how many more), or why it was not measured."""
    if status.drift is None:
        return shown(status.drift_note or "not measured", one_line=True)
    if not status.drift:
        return "none"
    shown_lines = [shown(line, one_line=True) for line in status.drift[:3]]
    more = len(status.drift) - len(shown_lines)
    return "; ".join(shown_lines) + (f"; {more} more" if more else "")


def _print_table(table: "Table") -> None:
    """At a terminal, as wide as it is; piped, each row on one line however long (URLs are not folded),
    so logs can be searched for a target."""
    if out.is_terminal:
        out.print(table)
        return
    from rich.console import Console

    # Rich pads every line to the table's width: the padding is cut, so no line ends in spaces.
    console = Console(file=io.StringIO(), width=100_000, highlight=False, color_system=None)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    out.file.write("".join(line.rstrip() + "\n" for line in text.splitlines()))


COMMANDS: List[Callable[..., Any]] = [up, down, status, check]
