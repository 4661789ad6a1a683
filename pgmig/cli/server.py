"""`pgmig server start|stop|status`: the project's embedded server."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from pgmig.cli.context import CliState
from pgmig.cli.output import out, printable

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.services.server import ServerInfo

app = typer.Typer(
    name="server",
    help="Manage the embedded PostgreSQL of this project (used when database_url or dev_url is not set).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _lines(info: "ServerInfo") -> None:
    """The details of one server, indented, as `status` prints them."""
    from pgmig.db.urls import redact_url

    if info.url is not None:
        out.print(f"  url:     {printable(redact_url(info.url), one_line=True)}", markup=False)
    out.print(f"  data:    {printable(str(info.data), one_line=True)}", markup=False)
    if info.pid is not None:
        out.print(f"  pid:     {info.pid}", markup=False)
    out.print(f"  version: {info.version or 'none (no data yet)'}", markup=False)


def status(
    ctx: typer.Context,
    every: bool = typer.Option(
        False, "--all", help="List every running embedded PostgreSQL on this machine, whichever project started it."
    ),
) -> None:
    """Whether the project's embedded server runs, its URL, data folder, pid and version."""
    from pgmig.services.server import made_by_pgmig, project_server, running_servers

    if every:
        found = running_servers()
        if not found:
            out.print("No embedded PostgreSQL is running.", markup=False)
        for info in found:
            if info.project is not None:
                whose = f"project {info.project}"
            else:
                whose = "a pgmig project's" if made_by_pgmig(info) else "not a pgmig project's"
            out.print(f"pid {info.pid}: {printable(str(info.data), one_line=True)} ({whose})", markup=False)
        return
    state: CliState = ctx.obj
    info = project_server(state.project())
    out.print(f"embedded server: {'running' if info.running else 'not running'}", markup=False)
    _lines(info)


def start(ctx: typer.Context) -> None:
    """Start the project's embedded server (nothing to do when it runs already)."""
    from pgmig.services.server import project_server
    from pgmig.services.server import start as start_service

    state: CliState = ctx.obj
    project = state.project()
    if project_server(project).running:
        out.print("embedded server: already running", markup=False)
    else:
        out.print("embedded server: started", markup=False)
    _lines(start_service(project))


def stop(
    ctx: typer.Context,
    delete: bool = typer.Option(
        False, "--delete", help="Also delete its data: every database in it (asks first at a terminal)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before deleting."),
    every: bool = typer.Option(
        False, "--all", help="Stop the embedded servers of every pgmig project on this machine (data kept)."
    ),
) -> None:
    """Stop the project's embedded server; the next command that needs it starts it again."""
    from pgmig.cli.prompts import confirm_or_stop
    from pgmig.errors import UsageError
    from pgmig.services.server import project_server, stop_all
    from pgmig.services.server import stop as stop_service

    if every:
        if delete:
            raise UsageError("--delete deletes one project's data: give it without --all")
        stopped = stop_all()
        for info in stopped:
            out.print(f"stopped pid {info.pid}: {printable(str(info.data), one_line=True)}", markup=False)
        if not stopped:
            out.print("No embedded server of a pgmig project is running.", markup=False)
        return
    state: CliState = ctx.obj
    project = state.project()
    if delete and not yes:
        where = printable(str(project_server(project).data), one_line=True)
        if not sys.stdin.isatty():  # deleting every database needs a yes, as other destructive commands do
            raise UsageError(f"--delete deletes every database in {where}: confirm with --yes (no terminal to ask)")
        confirm_or_stop(f"Delete the embedded server's data in {where} (every database in it)?", "Nothing deleted.")
    before = stop_service(project, delete=delete)
    out.print(
        f"embedded server: {'stopped' if before.running else 'was not running'}"
        + (f"; deleted {printable(str(before.data), one_line=True)}" if delete else ""),
        markup=False,
    )


COMMANDS = [start, stop, status]
