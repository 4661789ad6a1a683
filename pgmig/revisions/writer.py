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
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Type

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
    """`head + literal(value) + tail` on one line when it fits in LINE_LIMIT; otherwise a list
    or a `create_table` part split one item a line (as ruff or black would), recursively."""
    one_line = f"{indent}{head}{literal(value)}{tail}"
    if len(one_line) <= LINE_LIMIT:
        return [one_line]
    if isinstance(value, (list, tuple)) and value:
        items = [line for item in value for line in _wrapped("", item, indent + "    ", ",")]
        return [f"{indent}{head}[", *items, f"{indent}]{tail}"]
    if isinstance(value, TablePart):
        inner = indent + "    "
        items = [f"{inner}{argument}," for argument in _part_arguments(value)]
        return [f"{indent}{head}{type(value).__name__}(", *items, f"{indent}){tail}"]
    return [one_line]


def is_builtin(operation_class: Type[Operation]) -> bool:
    """Whether the typed actor has a method for this operation (pgmig's own, not a plugin's)."""
    from pgmig.ops.actor_methods import OperationMethods

    return callable(getattr(OperationMethods, operation_class.name, None))


def render_call(op: Operation) -> List[str]:
    """`await migrator.actor.<name>(...)` for a built-in operation, `...actor.run(Class(...))` for a plugin's.

    One line when it fits in LINE_LIMIT, else one argument a line (as ruff or
    black would format it), under a comment naming its hazards.
    """
    args = [f"{name}={literal(value)}" for name, value in op.arguments().items()]
    lines: List[str] = []
    hazards = op.hazards()
    if Hazard.DELETES_DATA in hazards:
        lines.append(f"{INDENT}# destructive: {', '.join(hazards)}")
    elif hazards:
        lines.append(f"{INDENT}# hazards: {', '.join(hazards)}")
    builtin = is_builtin(type(op))
    call = f"migrator.actor.{op.name}" if builtin else type(op).__name__
    one_line = f"{call}({', '.join(args)})"
    if not builtin:
        one_line = f"migrator.actor.run({one_line})"
    if len(INDENT) + len("await ") + len(one_line) <= LINE_LIMIT:
        return lines + [f"{INDENT}await {one_line}"]
    pad = INDENT + ("    " * (1 if builtin else 2))
    arg_lines = [line for name, value in op.arguments().items() for line in _wrapped(f"{name}=", value, pad, ",")]
    inner = [f"{call}(", *(line[len(INDENT) :] for line in arg_lines), ")"]
    if not builtin:
        inner = ["migrator.actor.run(", *(f"    {line}" for line in inner[:1]), *inner[1:-1], "    )", ")"]
    return lines + [f"{INDENT}await {inner[0]}", *(f"{INDENT}{line}" for line in inner[1:])]


def render_body(ops: Sequence[Operation], extra: Sequence[str] = (), preamble: Sequence[str] = ()) -> List[str]:
    lines: List[str] = [f"{INDENT}{line}" for line in preamble]
    for op in ops:
        lines.extend(render_call(op))
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
