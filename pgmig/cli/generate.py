"""`pgmig generate`: flags parsed into GenerateOptions, questions asked at a terminal."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from pgmig.cli.context import DEV_URL, TIMINGS, CliState, paused_gc, refuse_together, run
from pgmig.cli.output import err, out, print_summary, print_timings, printable


def generate(
    ctx: typer.Context,
    message: str = typer.Option(
        ..., "-m", "--message", metavar="MESSAGE", help="What the revision does; becomes its docstring and file name."
    ),
    empty: bool = typer.Option(False, "--empty", help="Write a blank revision (for data migrations)."),
    dev_url: Optional[str] = DEV_URL,
    allow_destructive: bool = typer.Option(
        False,
        "--allow-destructive",
        help=(
            "Write the revision even if it deletes data: drops tables, columns or enum labels, "
            "or changes a column's type in a way that can change values."
        ),
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
    no_verify: bool = typer.Option(
        False,
        "--no-verify",
        help="Write the revision without proving it first on a scratch database (up, diff, down, schema back).",
    ),
    timings: bool = TIMINGS,
) -> None:
    """Write the next revision file from the difference between the revisions and the models."""
    from pgmig.cli.flags import parse_defaults, parse_enum_maps, parse_renames
    from pgmig.cli.prompts import TerminalQuestioner
    from pgmig.services.generate import GenerateOptions, Questioner, Summary
    from pgmig.services.generate import generate as generate_service

    for flag, given in (
        ("--rename", rename),
        ("--rename-enum-value", rename_enum_value),
        ("--map-enum-value", map_enum_value),
        ("--default", default),
        ("--allow-destructive", allow_destructive),
        ("--concurrently", concurrently),
    ):
        refuse_together(
            {"--empty": empty, flag: bool(given)}, f"--empty writes a blank revision, which {flag} has no say in"
        )
    state: CliState = ctx.obj
    options = GenerateOptions(
        message=message,
        empty=empty,
        allow_destructive=allow_destructive,
        renames=parse_renames(rename or [], rename_enum_value or []),
        enum_maps=parse_enum_maps(map_enum_value or []),
        defaults=parse_defaults(default or []),
        concurrently=concurrently,
        verify=not no_verify,
    )
    project = state.project(timings, dev_url)
    questioner = TerminalQuestioner() if sys.stdin.isatty() else Questioner()
    said: List[Summary] = []
    with paused_gc():
        path = run(generate_service(project, options, questioner, said.append))
    if path is None and not project.chain().revisions:
        # A database made by another tool (Alembic, by hand) that already matches the models: no
        # revision builds it yet, which is baseline's job.
        out.print(
            "No changes: the database already matches the models, but no revision builds it; "
            'adopt it with pgmig baseline -m "baseline" (README: "Adopting an existing database"); nothing written.',
            markup=False,
        )
    elif path is None:
        out.print("No changes: the models match the revisions; nothing written.")
    else:
        out.print(printable(str(path), one_line=True), markup=False)
        # On stderr: stdout stays the path alone, for `$(pgmig generate ...)` in a script.
        for summary in said:
            print_summary(err, summary)
    print_timings(project.timings)
