"""Rendering for people: the consoles, the Rich preview of a plan, the check report, progress, the plugin listing.

Only the cli package imports rich; the plan itself stays plain data so
`--json` and revision files render from the same objects.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text
from rich.tree import Tree

from pgmig.db.urls import redact_text
from pgmig.timing import NoTimings, Timings

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.plan.diff import Change, Plan
    from pgmig.revisions.files import Revision
    from pgmig.schema.objects import Key
    from pgmig.services.check import CheckReport

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

# Invisible characters that reorder or hide what follows them on a terminal ("Trojan Source",
# CVE-2021-42574): the bidirectional embeddings, overrides and isolates.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str, *, one_line: bool = False) -> str:
    """`text` safe to write to a terminal: every control character escaped as Python spells it.

    Text from revision files, models, the database or a server (messages, names, error text)
    could otherwise move the cursor, clear the screen, retitle the window or hide what follows
    (ESC sequences, CR, BEL, backspace, the C1 controls such as CSI U+009B, bidirectional
    overrides). A newline is kept as layout unless `one_line` (a field of a one-line entry);
    everything else (Unicode category Cc, the line and paragraph separators, the bidi controls)
    becomes `\\xNN`, `\\uNNNN`, or `\\t`/`\\n`/`\\r`.
    """

    def escaped(char: str) -> str:
        if char == "\n" and not one_line:
            return char
        if char in _NAMED_ESCAPES:
            return _NAMED_ESCAPES[char]
        if char in _BIDI or char in "\u2028\u2029" or unicodedata.category(char) == "Cc":
            code = ord(char)
            return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
        return char

    if text.isprintable() and "\t" not in text:
        return text  # the common case, without a pass over each character
    return "".join(escaped(char) for char in text)


def shown(text: str, *, one_line: bool = False) -> str:
    """Text from outside pgmig (a message, a server's error, a traceback) as pgmig shows it:
    secrets hidden (pgmig.db.urls.redact_text), then control characters escaped (`printable`)."""
    return printable(redact_text(text), one_line=one_line)


def revision_entry(revision: "Revision") -> str:
    """`<id>  <message>` of a revision in a listing (history, status, up's progress, check):
    both come from a file anyone may have written, so they are shown escaped, on one line."""
    return f"{printable(revision.id, one_line=True)}  {printable(revision.message, one_line=True)}"


def notice(message: str) -> None:
    """A one-line message for the person running pgmig (stderr, dim; passwords redacted)."""
    err.print(shown(message), markup=False, style="dim")


def warn(message: str) -> None:
    """A `warning: ...` line on stderr (secrets hidden, control characters escaped)."""
    err.print(f"warning: {shown(message)}", markup=False, style="yellow")


def _redacted(data: Any) -> Any:
    """JSON-shaped `data` with every URL in its strings (keys and values) redacted; names and SQL
    are left as they are (`pairs=False, remembered=False`): a password that is also a word, such
    as `public`, must not turn the schema `public` into `***`."""
    if isinstance(data, str):
        return redact_text(data, pairs=False, remembered=False)
    if isinstance(data, dict):
        return {_redacted(key): _redacted(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_redacted(item) for item in data]
    return data


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout, secrets hidden, written as it is (see `write_sql`);
    json.dumps escapes every control character."""
    _write(
        json.dumps(
            _redacted(data), indent=2, default=lambda value: redact_text(str(value), pairs=False, remembered=False)
        )
        + "\n"
    )


def print_timings(timings: Timings) -> None:
    """`timing: <phase> <seconds>s` lines on stderr, when timings were asked for."""
    if not isinstance(timings, NoTimings):
        for line in timings.lines():
            err.print(line, markup=False, highlight=False)


@contextmanager
def progress(verb: str) -> "Iterator[Callable[[str, Revision, float], None]]":
    """A Rich progress line on a terminal; plain lines (for logs and CI) otherwise."""

    def line(revision: "Revision", seconds: float) -> str:
        return f"{verb} {revision_entry(revision)}  ({seconds:.2f}s)"

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
        line.append(printable(obj.label, one_line=True))
        diffs = change.differences()
        parts = [f"{name}: {_value(old)} → {_value(new)}" for name, (old, new) in diffs.items()]
        if parts:
            line.append(printable(": " + "; ".join(parts), one_line=True))
    else:
        line.append(printable(obj.describe(), one_line=True))
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
    root = Tree(Text(printable(title, one_line=True), style="bold"))
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
            parents[schema] = root.add(
                change_line(head) if head else Text(printable(f"schema {schema}", one_line=True), style="bold")
            )
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
            branch = parent(group).add(Text(printable(f"{kind} {names[-1]}", one_line=True), style="bold"))
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


def print_sql(statements: Sequence[str]) -> None:
    """`statements`, each ended by `;`, as `write_sql` prints them."""
    write_sql([statement.rstrip(";") + ";" for statement in statements])


def write_sql(lines: Sequence[str]) -> None:
    """SQL for a person to run, on stdout byte for byte, after the settings it relies on.

    Not through Rich, which expands a TAB and drops a CR even inside a string
    literal, so the printed SQL would store other values than pgmig runs.
    The `SET`s (pgmig.db.connect.session_sql) give psql the meaning pgmig's own
    sessions give the SQL, whatever the database's settings; nothing is printed
    when there is nothing to run.
    """
    if not any(line.strip() for line in lines):
        return
    from pgmig.db.connect import session_sql

    preamble = [statement + ";" for statement in session_sql()]
    _write("\n".join([*preamble, "", *lines]) + "\n")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def plugins_table(title: str, columns: Sequence[str], rows: Sequence[Tuple[str, ...]]) -> RichTable:
    table = RichTable(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:  # cells from package metadata: plain text (no Rich markup), escaped
        table.add_row(*(Text(printable(cell, one_line=True)) for cell in row))
    return table


def print_check(console: Console, report: "CheckReport") -> None:
    """One line per revision (ok / what failed), then the comparison with the models."""
    for item in report.revisions:
        style = {"ok": "green", "skipped": "yellow"}.get(item.status, "bold red")
        console.print(Text.assemble((f"{item.status:>7} ", style), revision_entry(item.revision)))
        for problem in item.problems:
            console.print(Text(f"          {shown(problem)}", style="yellow" if item.status == "skipped" else "red"))
    for problem in report.problems:
        console.print(Text(f"failed: {shown(problem)}", style="bold red"))
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
