"""Writing revision files: the plan's operations as readable actor calls.

The same operations that render the preview and `--sql` are written here as
`await migrator.actor.<name>(...)`, so what a person reviews is exactly what
runs. A plugin's operation is written as `await migrator.actor.run(CreateView(...))`
with its class imported from the plugin (so a missing plugin fails at import
with its package named): the typed actor has methods for pgmig's own
operations only, and the file type-checks under `mypy --strict` as written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Type

from pgmig.ops.base import Hazard, Operation
from pgmig.ops.table import TablePart

LINE_LIMIT = 99
INDENT = " " * 8


def literal(value: Any) -> str:
    """A Python literal for an operation argument (double-quoted strings, as a formatter would)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, TablePart):
        return f"{type(value).__name__}({', '.join(_part_arguments(value))})"
    raise TypeError(f"cannot write {type(value).__name__} into a revision file")


def _part_arguments(part: TablePart) -> List[str]:
    positional, keywords = part.call_arguments()
    return [literal(v) for v in positional] + [f"{name}={literal(v)}" for name, v in keywords.items()]


def _wrapped(head: str, value: Any, indent: str, tail: str) -> List[str]:
    """`head + literal(value) + tail` laid out as ruff or black would lay it out: on one line when it
    fits in LINE_LIMIT; else a list's items or a `create_table` part's arguments on one indented line
    between the brackets; else one a line, each laid out the same way."""
    if isinstance(value, (list, tuple)) and value:
        return _bracketed(f"{head}[", [("", item) for item in value], "]", indent, tail)
    if isinstance(value, TablePart):
        positional, keywords = value.call_arguments()
        items = [("", v) for v in positional] + [(f"{name}=", v) for name, v in keywords.items()]
        return _bracketed(f"{head}{type(value).__name__}(", items, ")", indent, tail)
    return [f"{indent}{head}{literal(value)}{tail}"]


def _bracketed(opening: str, items: Sequence[Tuple[str, Any]], closing: str, indent: str, tail: str) -> List[str]:
    """`opening` + the (prefix, value) items, comma separated, + `closing`: see `_wrapped`."""
    flat = ", ".join(f"{prefix}{literal(value)}" for prefix, value in items)
    if len(indent) + len(opening) + len(flat) + len(closing) + len(tail) <= LINE_LIMIT:
        return [f"{indent}{opening}{flat}{closing}{tail}"]
    inner = indent + "    "
    if len(inner) + len(flat) <= LINE_LIMIT:
        return [f"{indent}{opening}", f"{inner}{flat}", f"{indent}{closing}{tail}"]
    lines = [line for prefix, value in items for line in _wrapped(prefix, value, inner, ",")]
    return [f"{indent}{opening}", *lines, f"{indent}{closing}{tail}"]


def is_builtin(operation_class: Type[Operation]) -> bool:
    """Whether the typed actor has a method for this operation (pgmig's own, not a plugin's)."""
    from pgmig.ops.actor_methods import OperationMethods

    return callable(getattr(OperationMethods, operation_class.name, None))


def hazard_comment(op: Operation) -> Optional[str]:
    """The comment a revision writes above an operation with hazards, or None."""
    hazards = op.hazards()
    if Hazard.DELETES_DATA in hazards:
        return f"{INDENT}# destructive: {', '.join(hazards)}"
    if hazards:
        return f"{INDENT}# hazards: {', '.join(hazards)}"
    return None


def render_call(op: Operation, comment: bool = True) -> List[str]:
    """`await migrator.actor.<name>(...)` for a built-in operation, `...actor.run(Class(...))` for a plugin's.

    Laid out as ruff or black would (see `_wrapped`), under a comment naming
    its hazards (unless `comment` is False: the call before had the same one).
    """
    note = hazard_comment(op) if comment else None
    lines = [note] if note else []
    items = [(f"{name}=", value) for name, value in op.arguments().items()]
    if is_builtin(type(op)):
        return lines + _bracketed(f"await migrator.actor.{op.name}(", items, ")", INDENT, "")
    inner = _bracketed(f"{type(op).__name__}(", items, ")", INDENT + "    ", "")
    if len(inner) == 1 and len(INDENT) + len("await migrator.actor.run()") + len(inner[0].strip()) <= LINE_LIMIT:
        return lines + [f"{INDENT}await migrator.actor.run({inner[0].strip()})"]
    return lines + [f"{INDENT}await migrator.actor.run(", *inner, f"{INDENT})"]


def render_body(ops: Sequence[Operation], extra: Sequence[str] = (), preamble: Sequence[str] = ()) -> List[str]:
    lines: List[str] = [f"{INDENT}{line}" for line in preamble]
    previous: Optional[str] = None
    for op in ops:
        # One comment over a run of calls with the same hazards (the drops of a `down`).
        comment = hazard_comment(op)
        lines.extend(render_call(op, comment=comment != previous))
        previous = comment
    lines.extend(f"{INDENT}{line}" for line in extra)
    return lines or [f"{INDENT}pass"]


def plugin_imports(ops: Iterable[Operation]) -> List[str]:
    """`from <plugin module> import <Operation>, ...` for every plugin operation in `ops`."""
    names: Dict[str, Set[str]] = {}
    for op in ops:
        cls = type(op)
        if not is_builtin(cls):
            names.setdefault(cls.__module__, set()).add(cls.__name__)
    return [f"from {module} import {', '.join(sorted(names[module]))}" for module in sorted(names)]


def part_names(ops: Iterable[Operation]) -> Set[str]:
    """Names of the `create_table` parts (`Column`, `PrimaryKey`, ...) the arguments of `ops` use:
    revision files import them from `pgmig`."""
    found: Set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, TablePart):
            found.add(type(value).__name__)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    for op in ops:
        for value in op.arguments().values():
            visit(value)
    return found


def render_revision(
    revision_id: str,
    down_revision: Optional[str],
    message: str,
    up: Sequence[Operation],
    down: Sequence[Operation],
    created: datetime,
    down_extra: Sequence[str] = (),
    transactional: bool = True,
    up_preamble: Sequence[str] = (),
) -> str:
    title = message.strip().replace('"""', "'''") or "Revision"
    header = [
        f'"""{title}',
        "",
        f"Revision: {revision_id}",
        f"Revises: {down_revision or '(first revision)'}",
        f"Created: {created:%Y-%m-%d %H:%M:%S %Z}".rstrip(),
        '"""',
        "",
    ]
    # One sorted block, as isort (ruff's I001) orders third-party imports.
    pgmig_names = sorted({"MigrationRevisionBase", "Migrator", *part_names([*up, *down])})
    header.extend(sorted([f"from pgmig import {', '.join(pgmig_names)}", *plugin_imports([*up, *down])]))
    body = [
        "",
        "",
        "class MigrationRevision(MigrationRevisionBase):",
        f"    up_revision = {literal(revision_id)}",
        f"    down_revision = {literal(down_revision)}",
    ]
    if not transactional:
        body.append("    transactional = False  # CONCURRENTLY cannot run inside a transaction")
    body += ["", "    async def up(self, migrator: Migrator) -> None:", *render_body(up, preamble=up_preamble)]
    body += ["", "    async def down(self, migrator: Migrator) -> None:", *render_body(down, down_extra)]
    return "\n".join(header + body) + "\n"


def format_file(path: Path) -> None:
    """Run ruff or black on a written file when one is installed (like Alembic's post-write hooks)."""
    for command in (["ruff", "format", "--quiet"], ["black", "--quiet"]):
        exe = shutil.which(command[0])
        if exe is None:
            continue
        try:
            subprocess.run([exe, *command[1:], str(path)], check=True, capture_output=True, timeout=30)
            return
        except (subprocess.SubprocessError, OSError):
            continue
