"""`pgmig heads` and `pgmig merge`."""

from __future__ import annotations

from typing import List, Optional

import typer

from pgmig.cli.context import CliState
from pgmig.cli.output import out, print_document, printable, revision_entry


def heads(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the heads as JSON."),
) -> None:
    """List the heads: revisions nothing follows (several after two branches each generated one)."""
    from pgmig.services.merge import heads as heads_service

    state: CliState = ctx.obj
    found = heads_service(state.project())
    if as_json:
        print_document({"heads": [{"revision": r.id, "file": r.path.name, "message": r.message} for r in found]})
        return
    if not found:
        out.print("No revisions yet: pgmig generate -m MESSAGE writes the first.")
    for revision in found:
        out.print(f"{revision_entry(revision)}  ({printable(revision.path.name, one_line=True)})", markup=False)
    if len(found) > 1:
        out.print(f"{len(found)} heads: pgmig merge -m MESSAGE writes the revision that joins them.", markup=False)


def merge(
    ctx: typer.Context,
    message: str = typer.Option(
        ..., "-m", "--message", metavar="MESSAGE", help="What the merge joins; its docstring and file name."
    ),
    revisions: Optional[List[str]] = typer.Argument(
        None, metavar="REV", help="Heads to join (ids or unique prefixes). Default: all."
    ),
) -> None:
    """Write a merge revision joining the heads (down_revision = a tuple of them); up applies it."""
    from pgmig.services.merge import MergeOptions
    from pgmig.services.merge import merge as merge_service

    state: CliState = ctx.obj
    path = merge_service(state.project(), MergeOptions(message, tuple(revisions or ())))
    out.print(printable(str(path), one_line=True), markup=False)
