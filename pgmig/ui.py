"""Rendering for people: the Rich preview of a plan and the plugin listing.

Only this module and cli.py import rich; the plan itself stays plain data so
`--json` and revision files render from the same objects.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text
from rich.tree import Tree

from pgmig.plan.diff import CREATE, DESTROY, MIGRATE, SYMBOLS, Change, Plan
from pgmig.schema.objects import Key

STYLES = {CREATE: "green", MIGRATE: "yellow", DESTROY: "red"}


def _value(value: Any) -> str:
    return "∅" if value is None else str(value)


def change_line(change: Change) -> Text:
    obj = change.obj
    line = Text(f"{SYMBOLS[change.action]} ", style=STYLES[change.action])
    if change.action == MIGRATE:
        line.append(obj.label)
        diffs = change.differences()
        parts = [f"{name}: {_value(old)} → {_value(new)}" for name, (old, new) in diffs.items()]
        if parts:
            line.append(": " + "; ".join(parts))
    else:
        line.append(obj.describe())
    if change.implicit:
        line.append(" (dropped with its table)", style="dim")
    for hazard in change.hazards:
        line.append(f" [{hazard}]", style="bold red")
    return line


def plan_tree(plan: Plan, title: str) -> Tree:
    """Changes grouped by table: the table's own change heads its group."""
    root = Tree(Text(title, style="bold"))
    groups: Dict[Key, List[Change]] = {}
    for change in plan.changes:
        groups.setdefault(change.obj.group, []).append(change)
    for group, changes in groups.items():
        head = next((c for c in changes if c.key == group), None)
        if head is not None:
            branch = root.add(change_line(head))
        else:
            kind, *names = group
            branch = root.add(Text(f"{kind} {names[-1]}", style="bold"))
        for change in changes:
            if change is not head:
                branch.add(change_line(change))
    return root


def summary_counts(plan: Plan) -> str:
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


def print_check(console: Console, report: Any) -> None:
    """One line per revision (ok / what failed), then the comparison with the models."""
    for item in report.revisions:
        style = "green" if item.status == "ok" else "bold red"
        console.print(Text.assemble((f"{item.status:>6} ", style), f"{item.revision.id}  {item.revision.message}"))
        for problem in item.problems:
            console.print(Text(f"         {problem}", style="red"))
    for problem in report.problems:
        console.print(Text(f"failed: {problem}", style="bold red"))
    plan = report.missing_migration
    if plan is not None and not plan.is_empty:
        console.print(Text("failed: the models need a migration that no revision makes:", style="bold red"))
        print_plan(console, plan, "Missing from the revisions")
    elif plan is not None:
        console.print(Text("ok: the revisions build exactly what the models describe", style="green"))
    if report.ok:
        console.print(Text(f"check passed ({len(report.revisions)} revisions)", style="bold green"))
