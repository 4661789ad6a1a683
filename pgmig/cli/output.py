"""Rendering for people: the consoles, the Rich preview of a plan, the check report, progress, the plugin listing.

Only the cli package imports rich; the plan itself stays plain data so
`--json` and revision files render from the same objects.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from rich.console import Console, ConsoleDimensions
from rich.table import Table as RichTable
from rich.text import Text
from rich.tree import Tree

from pgmig.db.urls import redact_text
from pgmig.errors import plural
from pgmig.timing import NoTimings, Timings

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.plan.diff import Change, Plan
    from pgmig.revisions.files import Revision
    from pgmig.schema.objects import Key
    from pgmig.services.check import CheckReport, RevisionCheck
    from pgmig.services.generate import Summary

UNLIMITED = 1_000_000
"""The width output to a pipe or a file is laid out for: no limit a line of pgmig reaches (an enum of
many long labels, a long database name); beyond it a tree wraps, it never crops."""


class WholeConsole(Console):
    """A Rich console that never crops what it prints.

    Rich lays out for the terminal's width, and for 80 columns (or `$COLUMNS`)
    when the output is not a terminal, cropping what a tree's line holds
    beyond it: in a CI log a preview lost its hazard labels, its enum labels
    and the database in its header. Here the width is the terminal's only at
    a terminal, where `print_plan` wraps its tree; elsewhere it is UNLIMITED.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        return size if self.is_terminal else ConsoleDimensions(UNLIMITED, size.height)

    @size.setter
    def size(self, new_size: Tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


out = WholeConsole(highlight=False, soft_wrap=True)
err = WholeConsole(stderr=True, highlight=False, soft_wrap=True)

_live: List[Console] = []
"""The console of the progress line on screen, if any: notices go through it, above the line."""


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
    """A one-line message for the person running pgmig (stderr, dim; passwords redacted).

    While a progress line is live (only at a terminal), through its console, which prints the message
    above the line: written beside it on another console, the two would overwrite each other on the screen.
    """
    (_live[-1] if _live else err).print(shown(message), markup=False, style="dim")


def warn(message: str) -> None:
    """A `warning: ...` line on stderr (secrets hidden, control characters escaped), through the
    live progress line's console while there is one (see `notice`)."""
    (_live[-1] if _live else err).print(f"warning: {shown(message)}", markup=False, style="yellow")


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


JSON_VERSION = 1
"""The version of the shape of `--json` documents (diff, check, status, history, heads: README's command
reference); raised when a field changes meaning or goes away, not when one is added."""


def print_document(data: Dict[str, Any]) -> None:
    """A `--json` document: `data` after `"version": JSON_VERSION`, as `print_json` prints it."""
    print_json({"version": JSON_VERSION, **data})


def applied_time(moment: datetime) -> str:
    """When a revision was applied (the version table's `applied_at`), in UTC to the second:
    `2026-12-01 06:00:12 UTC`, TIME_WIDTH characters."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


TIME_WIDTH = len("2026-12-01 06:00:12 UTC")


def revision_ids(revisions: "Sequence[Revision]") -> List[str]:
    """The revisions' ids, as `--json` documents name revisions."""
    return [revision.id for revision in revisions]


def pending_note(pending: "Sequence[Revision]") -> str:
    """What a diff says of the revisions its database has not applied: how many, which (the first
    few), that the diff includes what they would do, and what to run."""
    names = ", ".join(printable(revision.id, one_line=True) for revision in pending[:3])
    more = f" and {len(pending) - 3} more" if len(pending) > 3 else ""
    they, them = ("it", "it") if len(pending) == 1 else ("they", "them")
    return (
        f"pending: {plural(len(pending), 'revision')} not applied to this database ({names}{more}); "
        f"what {they} would do is part of this diff: pgmig up applies {them}"
    )


def print_timings(timings: Timings) -> None:
    """`timing: <phase> <seconds>s` lines on stderr, when timings were asked for."""
    if not isinstance(timings, NoTimings):
        for line in timings.lines():
            err.print(line, markup=False, highlight=False)


@contextmanager
def live_lines(verb: str) -> "Iterator[Callable[[Sequence[Text]], None]]":
    """Report steps as each ends: `report(lines)` prints the step's lines at once, and at a terminal
    above a live line (a spinner, `<verb>: N revisions`, the time elapsed; gone at the end).

    Elsewhere (a log, CI) the lines alone. While the line is live, `notice` and `warn` print
    through its console, above it, so nothing overwrites it or is overwritten.
    """
    if not out.is_terminal:

        def plain(lines: Sequence[Text]) -> None:
            for line in lines:
                out.print(line)

        yield plain
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=out, transient=True
    ) as bar:
        task = bar.add_task(f"{verb}: {plural(0, 'revision')}", total=None)
        count = [0]

        def report(lines: Sequence[Text]) -> None:
            count[0] += 1
            # Counted (and the live line re-rendered) before printing: a print redraws under it the
            # line as last rendered, which would otherwise lag a step behind the lines above it.
            bar.update(task, description=f"{verb}: {plural(count[0], 'revision')}", refresh=True)
            for line in lines:
                bar.console.print(line)

        _live.append(bar.console)
        try:
            yield report
        finally:
            _live.pop()


@contextmanager
def progress(verb: str) -> "Iterator[Callable[[str, Revision, float], None]]":
    """A line per revision run (`<verb> <id>  <message>  (0.12s)`), as `live_lines` prints them."""
    with live_lines(verb) as report:
        yield lambda direction, revision, seconds: report(
            [Text(f"{verb} {revision_entry(revision)}  ({seconds:.2f}s)")]
        )


@contextmanager
def check_progress() -> "Iterator[Callable[[RevisionCheck, float], None]]":
    """`check`'s verdict on each revision as its replay ends (`revision_check_lines`), as `live_lines`
    prints them."""
    with live_lines("checked") as report:
        yield lambda item, seconds: report(revision_check_lines(item, seconds))


def _value(name: str, value: Any) -> str:
    """A field's value in a `~` line: `∅` for none (or an empty list), a list as its items joined by
    commas (`public.orders, public.tag`, never Python's `('public.orders',)`), a comment quoted as
    its `COMMENT ON` statement has it."""
    if value is None or (isinstance(value, (tuple, list, frozenset, set)) and not value):
        return "∅"
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value, key=str) if isinstance(value, (frozenset, set)) else value
        return ", ".join(_value(name, item) for item in items)
    if name == "comment" and isinstance(value, str):
        from pgmig.db.quoting import quote_literal

        return quote_literal(value)
    return str(value)


def change_line(change: Change, owner: bool = False) -> Text:
    """`~ column title: type: varchar(100) → varchar(200) [rewrites_table]`, as the preview's tree
    shows it under its table; with `owner`, for a line outside the tree, the table it belongs to
    named as prompts and errors name it (`~ column title of post: type: ...`)."""
    from pgmig.plan.diff import CREATE, DESTROY, MIGRATE, SYMBOLS

    styles = {CREATE: "green", MIGRATE: "yellow", DESTROY: "red"}
    obj = change.obj
    of = f" of {obj.group[-1]}" if owner and obj.group != change.key else ""
    line = Text(f"{SYMBOLS[change.action]} ", style=styles[change.action])
    if change.action == MIGRATE:
        line.append(printable(obj.label + of, one_line=True))
        diffs = change.differences()
        parts = [f"{name}: {_value(name, old)} → {_value(name, new)}" for name, (old, new) in diffs.items()]
        if parts:
            line.append(printable(": " + "; ".join(parts), one_line=True))
    else:
        line.append(printable(obj.describe() + of, one_line=True))
    if change.action == MIGRATE and not change.operations and not change.implicit:
        # Another change does it (a Citus table leaving a group when its partner moves): counted, as
        # the object changes, and said, as no statement of its own shows under it.
        line.append(" (no statement of its own)", style="dim")
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


def summary_counts(plan: Plan, renamed: int = 0) -> str:
    """`3 to create, 1 to change, 0 to drop` (`, 2 to rename` when `renamed`)."""
    from pgmig.plan.diff import CREATE, DESTROY, MIGRATE

    counts = {CREATE: 0, MIGRATE: 0, DESTROY: 0}
    for change in plan.changes:
        counts[change.action] += 1
    renames = f", {renamed} to rename" if renamed else ""
    return f"{counts[CREATE]} to create, {counts[MIGRATE]} to change, {counts[DESTROY]} to drop{renames}"


def print_summary(console: Console, summary: "Summary") -> None:
    """What a written revision does: the preview's counts, then each change that carries a hazard,
    as the preview shows it with its table named (`~ column title of post: type: ... [rewrites_table]`)."""
    console.print(Text(f"  {summary_counts(summary.plan, summary.renamed)}", style="bold"))
    for change in summary.plan.changes:
        if change.hazards:
            console.print(Text("  ") + change_line(change, owner=True))


def print_plan(console: Console, plan: Plan, title: str) -> None:
    """The plan's tree (wrapped at a terminal, whole elsewhere: see WholeConsole), then its counts."""
    console.print(plan_tree(plan, title), soft_wrap=False)
    console.print(Text(summary_counts(plan), style="bold"))


def print_sql(statements: Sequence[str]) -> None:
    """`statements`, each ended by `;`, as `write_sql` prints them."""
    from pgmig.db.quoting import terminated

    write_sql([terminated(statement) for statement in statements])


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
    from pgmig.db.quoting import terminated

    preamble = [terminated(statement) for statement in session_sql()]
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


def revision_check_lines(item: "RevisionCheck", seconds: Optional[float] = None) -> List[Text]:
    """`     ok <id>  <message>` (or `failed`, `skipped`), with the seconds its replay took when
    given, then one indented line per problem."""
    style = {"ok": "green", "skipped": "yellow"}.get(item.status, "bold red")
    took = "" if seconds is None else f"  ({seconds:.2f}s)"
    lines = [Text.assemble((f"{item.status:>7} ", style), revision_entry(item.revision) + took)]
    for problem in item.problems:
        lines.append(Text(f"          {shown(problem)}", style="yellow" if item.status == "skipped" else "red"))
    return lines


def print_check(console: Console, report: "CheckReport", streamed: bool = False) -> None:
    """One line per revision (ok / what failed), then the comparison with the models; `streamed`: the
    replayed revisions' lines were printed as they ended (`check_progress`), so only those not replayed are."""
    for item in report.revisions:
        if not streamed or item.status == "skipped":
            for line in revision_check_lines(item):
                console.print(line)
    for problem in report.problems:
        console.print(Text(f"failed: {shown(problem)}", style="bold red"))
    plan = report.missing_migration
    if plan is not None and not plan.is_empty:
        console.print(Text("failed: the models need a migration that no revision makes:", style="bold red"))
        print_plan(console, plan, "Missing from the revisions")
        console.print(Text('write it with pgmig generate -m "MESSAGE", then run pgmig check again', style="bold"))
    elif plan is not None:
        console.print(Text("ok: the revisions build exactly what the models describe", style="green"))
    if report.ok:
        skipped = sum(1 for item in report.revisions if item.status == "skipped")
        counted = plural(len(report.revisions), "revision") + (
            f", {skipped} of them not replayed (see above)" if skipped else ""
        )
        console.print(Text(f"check passed ({counted})", style="bold green"))
