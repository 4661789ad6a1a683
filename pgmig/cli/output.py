"""Rendering for people: the consoles, the Rich preview of a plan, the check report, progress, the plugin listing.

Only the cli package imports rich; the plan itself stays plain data so
`--json` and revision files render from the same objects.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text
from rich.tree import Tree

from pgmig.db.urls import redact
from pgmig.timing import NoTimings, Timings

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.plan.diff import Change, Plan
    from pgmig.revisions.files import Revision
    from pgmig.schema.objects import Key
    from pgmig.services.check import CheckReport

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def notice(message: str) -> None:
    """A one-line message for the person running pgmig (stderr, dim; passwords redacted)."""
    err.print(redact(message), markup=False, style="dim")


def warn(message: str) -> None:
    err.print(f"warning: {message}", markup=False, style="yellow")


def print_json(data: Any) -> None:
    out.out(json.dumps(data, indent=2, default=str), highlight=False)


def print_timings(timings: Timings) -> None:
    """`timing: <phase> <seconds>s` lines on stderr, when timings were asked for."""
    if not isinstance(timings, NoTimings):
        for line in timings.lines():
            err.print(line, markup=False, highlight=False)


@contextmanager
def progress(verb: str) -> "Iterator[Callable[[str, Revision, float], None]]":
    """A Rich progress line on a terminal; plain lines (for logs and CI) otherwise."""

    def line(revision: "Revision", seconds: float) -> str:
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

        def report(direction: str, revision: "Revision", seconds: float) -> None:
            count[0] += 1
            bar.console.print(line(revision, seconds), markup=False)
            bar.update(task, description=f"{verb}: {count[0]} revision{'s' if count[0] != 1 else ''}")

        yield report


def _value(value: Any) -> str:
    return "∅" if value is None else str(value)


def change_line(change: Change) -> Text:
    """`~ column title of post: type: varchar(100) → varchar(200) [rewrites_table]`."""
    from pgmig.plan.diff import CREATE, DESTROY, MIGRATE, SYMBOLS

    styles = {CREATE: "green", MIGRATE: "yellow", DESTROY: "red"}
    obj = change.obj
    line = Text(f"{SYMBOLS[change.action]} ", style=styles[change.action])
    if change.action == MIGRATE:
        line.append(obj.label)
        diffs = change.differences()
        parts = [f"{name}: {_value(old)} → {_value(new)}" for name, (old, new) in diffs.items()]
        if parts:
            line.append(": " + "; ".join(parts))
    else:
        line.append(obj.describe())
    if change.implicit:  # a part its table's CREATE TABLE or DROP TABLE carries
        line.append(
            " (created with its table)" if change.action == CREATE else " (dropped with its table)", style="dim"
        )
    for hazard in change.hazards:
        line.append(f" [{hazard}]", style="bold red")
    return line


def plan_tree(plan: Plan, title: str) -> Tree:
    """Changes grouped by table: the table's own change heads its group.

    When the plan reaches into a schema other than `public`, the tables are
    grouped by schema too (the schema's own change, if any, heading its group),
    so the preview says where each table is.
    """
    root = Tree(Text(title, style="bold"))
    groups: Dict[Key, List[Change]] = {}
    for change in plan.changes:
        groups.setdefault(change.obj.group, []).append(change)
    schema_of = {group: _schema_of(group) for group in groups}
    named = {schema for schema in schema_of.values() if schema is not None}
    parents: Dict[str, Tree] = {}

    def parent(group: Key) -> Tree:
        schema = schema_of[group]
        if schema is None or named <= {"public"}:
            return root
        if schema not in parents:
            own = groups.get(("schema", schema), [])
            head = next((c for c in own if c.key == ("schema", schema)), None)
            parents[schema] = root.add(change_line(head) if head else Text(f"schema {schema}", style="bold"))
        return parents[schema]

    for group, changes in groups.items():
        if group[0] == "schema" and len(group) == 2:  # heads its schema's group instead
            parent(group)
            continue
        head = next((c for c in changes if c.key == group), None)
        if head is not None:
            branch = parent(group).add(change_line(head))
        else:
            kind, *names = group
            branch = parent(group).add(Text(f"{kind} {names[-1]}", style="bold"))
        for change in changes:
            if change is not head:
                branch.add(change_line(change))
    return root


def _schema_of(group: Key) -> Optional[str]:
    """The schema a preview group lies in: a schema's own, or the second part of a key of three
    or more (kind, schema, name, ...); None for kinds whose keys name no schema (an extension)."""
    if group[0] == "schema" and len(group) == 2:
        return group[1]
    return group[1] if len(group) >= 3 else None


def summary_counts(plan: Plan) -> str:
    from pgmig.plan.diff import CREATE, DESTROY, MIGRATE

    counts = {CREATE: 0, MIGRATE: 0, DESTROY: 0}
    for change in plan.changes:
        counts[change.action] += 1
    return f"{counts[CREATE]} to create, {counts[MIGRATE]} to change, {counts[DESTROY]} to drop"


def print_plan(console: Console, plan: Plan, title: str) -> None:
    console.print(plan_tree(plan, title))
    console.print(Text(summary_counts(plan), style="bold"))


def print_sql(console: Console, statements: Sequence[str]) -> None:
    for statement in statements:
        console.out(statement.rstrip(";") + ";", highlight=False)


def plugins_table(title: str, columns: Sequence[str], rows: Sequence[Tuple[str, ...]]) -> RichTable:
    table = RichTable(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def print_check(console: Console, report: "CheckReport") -> None:
    """One line per revision (ok / what failed), then the comparison with the models."""
    for item in report.revisions:
        style = {"ok": "green", "skipped": "yellow"}.get(item.status, "bold red")
        console.print(Text.assemble((f"{item.status:>7} ", style), f"{item.revision.id}  {item.revision.message}"))
        for problem in item.problems:
            console.print(Text(f"          {problem}", style="yellow" if item.status == "skipped" else "red"))
    for problem in report.problems:
        console.print(Text(f"failed: {problem}", style="bold red"))
    plan = report.missing_migration
    if plan is not None and not plan.is_empty:
        console.print(Text("failed: the models need a migration that no revision makes:", style="bold red"))
        print_plan(console, plan, "Missing from the revisions")
    elif plan is not None:
        console.print(Text("ok: the revisions build exactly what the models describe", style="green"))
    if report.ok:
        skipped = sum(1 for item in report.revisions if item.status == "skipped")
        counted = f"{len(report.revisions)} revisions" + (
            f", {skipped} of them not replayed (see above)" if skipped else ""
        )
        console.print(Text(f"check passed ({counted})", style="bold green"))
