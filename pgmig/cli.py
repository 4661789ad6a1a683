"""The command line: global options, thin commands, and the one place errors become exit codes."""

from __future__ import annotations

import functools
import json
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar

import typer
from rich.console import Console

from pgmig import __version__
from pgmig.db.urls import redact
from pgmig.errors import PgmigError
from pgmig.questions import Questioner
from pgmig.timing import NoTimings, Timings

F = TypeVar("F", bound=Callable[..., Any])

TIMINGS = typer.Option(False, "--timings", help="After the output, print 'timing: <phase> <seconds>s' lines on stderr.")

app = typer.Typer(
    name="pgmig",
    help="Keep a PostgreSQL schema in step with your SQLModel / SQLAlchemy models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class CliState:
    overrides: Dict[str, Any] = field(default_factory=dict)
    debug: bool = False

    def project(self, timings: bool = False) -> Any:
        from pgmig.config.settings import load_settings
        from pgmig.project import Project

        project = Project(load_settings(self.overrides), notice=notice)
        if timings:
            project.timings = Timings()
        return project


def notice(message: str) -> None:
    err.print(redact(message), markup=False, style="dim")


def fail(message: str, code: int) -> "typer.Exit":
    err.print(f"error: {redact(message)}", markup=False, style="bold red")
    return typer.Exit(code)


def command(func: F) -> F:
    """Run a command with pgmig's error edge: one line on stderr and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")
        debug = bool(getattr(getattr(ctx, "obj", None), "debug", False))
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except PgmigError as exc:
            if debug:
                traceback.print_exc()
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as exc:  # a bug in pgmig or a plugin: still one line unless --debug
            if debug:
                traceback.print_exc()
            raise fail(f"unexpected {exc.__class__.__name__}: {exc} (run with --debug for the traceback)", 1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"pgmig {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    database_url: Optional[str] = typer.Option(
        None,
        "--database-url",
        metavar="URL",
        help="PostgreSQL URL [env PGMIG_DATABASE_URL; default: the embedded server]",
        show_default=False,
    ),
    models: Optional[List[str]] = typer.Option(
        None,
        "--models",
        metavar="MODELS",
        help="Models to load: import path, module:attr, or file path (repeatable) [env PGMIG_MODELS]",
        show_default=False,
    ),
    migrations_dir: Optional[str] = typer.Option(
        None,
        "--migrations-dir",
        metavar="DIR",
        help="Folder of revision files [env PGMIG_MIGRATIONS_DIR; default: migrations]",
        show_default=False,
    ),
    schema: Optional[str] = typer.Option(
        None,
        "--schema",
        metavar="NAME",
        help="Database schema to manage [env PGMIG_SCHEMA; default: public]",
        show_default=False,
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Global options go before the command: pgmig --database-url URL --models app/models.py diff"""
    ctx.obj = CliState(
        overrides={
            "database_url": database_url,
            "models": models,
            "migrations_dir": migrations_dir,
            "schema": schema,
        },
        debug=debug,
    )


@app.command()
@command
def init(
    ctx: typer.Context,
) -> None:
    """Write [tool.pgmig] into pyproject.toml and create the migrations folder."""
    from pathlib import Path

    from pgmig.project import init_project

    state: CliState = ctx.obj
    for line in init_project(
        Path.cwd(),
        migrations_dir=state.overrides.get("migrations_dir") or "migrations",
        models=state.overrides.get("models") or [],
        schema=state.overrides.get("schema") or "public",
    ):
        out.print(line, markup=False)


@app.command()
@command
def diff(
    ctx: typer.Context,
    sql: bool = typer.Option(False, "--sql", help="Print the exact SQL instead of the preview."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when there are differences."),
    timings: bool = TIMINGS,
) -> None:
    """Preview what it takes to bring the database to the models."""
    from pgmig.db.connect import run

    project = ctx.obj.project(timings)
    plan = run(project.diff())
    with project.timings.phase("render"):
        _print_diff(project, plan, as_json, sql)
    for warning in plan.warnings:
        err.print(f"warning: {warning}", markup=False, style="yellow")
    _print_timings(project)
    if exit_code and not plan.is_empty:
        raise typer.Exit(1)


def _print_diff(project: Any, plan: Any, as_json: bool, sql: bool) -> None:
    from pgmig.ui import print_plan, print_sql

    if as_json:
        out.out(json.dumps(plan.to_json(), indent=2, default=str), highlight=False)
    elif sql:
        print_sql(out, plan.statements())
    elif plan.is_empty:
        out.print("No changes: the database matches the models.")
    else:
        print_plan(out, plan, f"Changes to bring {redact(project.database_url)} to the models")


def _print_timings(project: Any) -> None:
    if not isinstance(project.timings, NoTimings):
        for line in project.timings.lines():
            err.print(line, markup=False, highlight=False)


@app.command()
@command
def generate(
    ctx: typer.Context,
    message: str = typer.Option(
        ..., "-m", "--message", help="What the revision does; becomes its docstring and file name."
    ),
    empty: bool = typer.Option(False, "--empty", help="Write a blank revision (for data migrations)."),
    allow_destructive: bool = typer.Option(
        False, "--allow-destructive", help="Write the revision even if it drops tables, columns or enum labels."
    ),
    rename: Optional[List[str]] = typer.Option(
        None,
        "--rename",
        metavar="OLD=NEW",
        help="A renamed table (old=new) or column (table.old=table.new); repeatable.",
    ),
    rename_enum_value: Optional[List[str]] = typer.Option(
        None, "--rename-enum-value", metavar="ENUM.OLD=NEW", help="A renamed enum label; repeatable."
    ),
    map_enum_value: Optional[List[str]] = typer.Option(
        None, "--map-enum-value", metavar="ENUM.OLD=NEW", help="Move rows off a removed enum label; repeatable."
    ),
    default: Optional[List[str]] = typer.Option(
        None,
        "--default",
        metavar="TABLE.COLUMN=SQL",
        help="Value for existing rows when a column becomes NOT NULL; repeatable.",
    ),
    concurrently: bool = typer.Option(
        False,
        "--concurrently",
        help="Build and drop indexes of existing tables CONCURRENTLY (a non-transactional revision).",
    ),
    timings: bool = TIMINGS,
) -> None:
    """Write the next revision file from the difference between the revisions and the models."""
    from pgmig.db.connect import run
    from pgmig.project import GenerateOptions

    project = ctx.obj.project(timings)
    options = GenerateOptions(
        empty=empty,
        allow_destructive=allow_destructive,
        renames=rename or [],
        enum_renames=rename_enum_value or [],
        enum_maps=map_enum_value or [],
        defaults=default or [],
        concurrently=concurrently,
    )
    questioner = TerminalQuestioner() if sys.stdin.isatty() else Questioner()
    path = run(project.generate(message, options, questioner))
    if path is None:
        out.print("No changes: the models match the revisions; nothing written.")
    else:
        out.print(str(path), markup=False)
    _print_timings(project)


class TerminalQuestioner(Questioner):
    """Django-style questions on stderr, for a person at a terminal."""

    def ask_rename(self, candidate: Any) -> bool:
        return typer.confirm(candidate.question(), default=False, err=True)

    def ask_default(self, need: Any) -> Optional[str]:
        err.print(f"{need.describe()}.", markup=False)
        answer = typer.prompt(
            f"SQL value for existing rows of {need.name} (empty: leave a TODO in the revision)",
            default="",
            show_default=False,
            err=True,
        )
        return answer.strip() or None

    def confirm_destructive(self, changes: List[str]) -> bool:
        err.print("This revision would delete data:", style="bold red")
        for change in changes:
            err.print(f"  - {change}", markup=False)
        return typer.confirm("Write it anyway?", default=False, err=True)


@contextmanager
def _progress(verb: str) -> Iterator[Callable[[str, Any, float], None]]:
    """A Rich progress line on a terminal; plain lines (for logs and CI) otherwise."""

    def line(revision: Any, seconds: float) -> str:
        return f"{verb} {revision.id}  {revision.message}  ({seconds:.2f}s)"

    if not out.is_terminal:
        yield lambda direction, revision, seconds: out.print(line(revision, seconds), markup=False)
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=out, transient=True
    ) as bar:
        task = bar.add_task(f"{verb}: 0 revisions", total=None)
        count = [0]

        def report(direction: str, revision: Any, seconds: float) -> None:
            count[0] += 1
            bar.console.print(line(revision, seconds), markup=False)
            bar.update(task, description=f"{verb}: {count[0]} revision{'s' if count[0] != 1 else ''}")

        yield report


@app.command()
@command
def up(
    ctx: typer.Context,
    target: str = typer.Argument("head", help="Revision to stop at (id or unique prefix)."),
    sql: bool = typer.Option(False, "--sql", help="Print the SQL instead of running it."),
) -> None:
    """Apply pending revisions up to TARGET (default: head)."""
    nothing = "Already at head: nothing to apply." if target == "head" else f"Nothing to apply up to {target}."
    _run_revisions(ctx, "up", target, sql, "applied", nothing)


@app.command()
@command
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
    ctx: typer.Context, direction: str, target: Optional[str], sql: bool, verb: str, nothing: str
) -> None:
    """`up` and `down`: print the SQL, or run with progress and say when there was nothing to do."""
    from pgmig.db.connect import run

    project = ctx.obj.project()
    if sql:
        out.out("\n".join(run(project.sql(direction, target))), highlight=False)
        return
    with _progress(verb) as report:
        move = (
            project.upgrade(target or "head", progress=report)
            if direction == "up"
            else project.downgrade(target, progress=report)
        )
        done = run(move)
    if not done:
        out.print(nothing)


@app.command()
@command
def status(
    ctx: typer.Context,
    exit_code: bool = typer.Option(
        False, "--exit-code", help="Exit 1 when the database has drifted from its revisions."
    ),
    no_drift: bool = typer.Option(False, "--no-drift", help="Skip replaying the revisions to look for drift."),
) -> None:
    """Show the current revision, what is pending, applied files edited since, and drift."""
    from pgmig.db.connect import run

    project = ctx.obj.project()
    if no_drift:
        state, drift = run(project.status()), None
    else:
        state, drift = run(project.drift())
    head = state.chain.head
    out.print(f"current: {state.current or 'base (nothing applied)'}", markup=False)
    out.print(f"head:    {head or 'base (no revision files)'}", markup=False)
    if state.pending:
        out.print(f"pending: {len(state.pending)}", markup=False)
        for revision in state.pending:
            out.print(f"  {revision.id}  {revision.message}", markup=False)
    else:
        out.print("pending: none", markup=False)
    for revision in state.edited:
        err.print(f"warning: {revision.path.name} was edited after it was applied", markup=False, style="yellow")
    if drift is None:
        return
    if drift:
        out.print(f"drift: the database differs from what its revisions build ({len(drift)}):", markup=False)
        for line in drift:
            out.print(f"  {line}", markup=False)
        if exit_code:
            raise typer.Exit(1)
    else:
        out.print("drift: none", markup=False)


@app.command()
@command
def check(
    ctx: typer.Context,
    dev_url: Optional[str] = typer.Option(
        None, "--dev-url", metavar="URL", help="Server for the scratch database (default: the embedded one)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    timings: bool = TIMINGS,
) -> None:
    """CI gate: replay every revision on a scratch database, check each down, compare with the models."""
    from pgmig.db.connect import run
    from pgmig.ui import print_check

    project = ctx.obj.project(timings)
    report = run(project.check(dev_url))
    with project.timings.phase("render"):
        if as_json:
            out.out(json.dumps(report.to_json(), indent=2, default=str), highlight=False)
        else:
            print_check(out, report)
    _print_timings(project)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@command
def history(ctx: typer.Context) -> None:
    """List the revision chain, marking what is applied."""
    from pgmig.db.connect import run

    project = ctx.obj.project()
    state = run(project.status())
    if not state.chain.revisions:
        out.print("No revisions yet: pgmig generate -m MESSAGE writes the first.")
    for index, revision in enumerate(state.chain.revisions):
        mark = "applied" if index <= state.current_index else "pending"
        edited = "  (edited after it was applied)" if revision in state.edited else ""
        out.print(f"[{mark:>7}] {revision.id}  {revision.message}{edited}", markup=False)


@app.command()
@command
def stamp(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="Revision to record as applied (with all before it); 'base' clears."),
) -> None:
    """Record TARGET as the current revision without running anything."""
    from pgmig.db.connect import run

    project = ctx.obj.project()
    run(project.stamp(target))
    out.print(f"Stamped {target}.", markup=False)


@app.command()
@command
def plugins(ctx: typer.Context) -> None:
    """List discovered model registries and object-type handlers, with the package of each."""
    from pgmig.config.discovery import load_handlers
    from pgmig.config.entrypoints import REGISTRIES_GROUP, find
    from pgmig.ui import plugins_table

    state: CliState = ctx.obj
    registries = find(REGISTRIES_GROUP)
    models = state.overrides.get("models") or []
    rows = [(r.name, r.value, r.provider) for r in registries] + [(m, m, "--models") for m in models]
    out.print(plugins_table("Model registries (pgmig.registries)", ("name", "loads", "package"), rows))
    if not rows:
        out.print("  none: pass --models or declare a pgmig.registries entry point", style="dim")
    handlers = load_handlers()
    hrows = [
        (
            item.handler.kind,
            f"{type(item.handler).__module__}:{type(item.handler).__qualname__}",
            item.provider,
        )
        for item in handlers.loaded
    ]
    out.print(plugins_table("Object types (pgmig.object_types)", ("kind", "handler", "package"), hrows))
    for failure in handlers.failures:
        err.print(f"warning: {failure}", markup=False, style="yellow")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
