"""Writing revision files: the plan's operations as readable actor calls.

The same operations that render the preview and `--sql` are written here as
`await migrator.actor.<name>(...)`, so what a person reviews is exactly what
runs. Files import only pgmig's public API, plus any plugin whose operations
they call (so a missing plugin fails at import with its package named).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence

from pgmig.ops.base import Operation

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
    raise TypeError(f"cannot write {type(value).__name__} into a revision file")


def render_call(op: Operation) -> List[str]:
    args = [f"{name}={literal(value)}" for name, value in op.arguments().items()]
    one_line = f"{INDENT}await migrator.actor.{op.name}({', '.join(args)})"
    lines: List[str] = []
    hazards = op.hazards()
    if "deletes_data" in hazards:
        lines.append(f"{INDENT}# destructive: {', '.join(hazards)}")
    elif hazards:
        lines.append(f"{INDENT}# hazards: {', '.join(hazards)}")
    if len(one_line) <= LINE_LIMIT:
        return lines + [one_line]
    lines.append(f"{INDENT}await migrator.actor.{op.name}(")
    lines.extend(f"{INDENT}    {arg}," for arg in args)
    lines.append(f"{INDENT})")
    return lines


def render_body(ops: Sequence[Operation], extra: Sequence[str] = (), preamble: Sequence[str] = ()) -> List[str]:
    lines: List[str] = [f"{INDENT}{line}" for line in preamble]
    for op in ops:
        lines.extend(render_call(op))
    lines.extend(f"{INDENT}{line}" for line in extra)
    return lines or [f"{INDENT}pass"]


def plugin_imports(ops: Iterable[Operation]) -> List[str]:
    packages = sorted({type(op).__module__.split(".")[0] for op in ops} - {"pgmig"})
    return [f"import {package}  # noqa: F401  (provides actor operations used below)" for package in packages]


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
        "from pgmig import MigrationRevisionBase, Migrator",
    ]
    header.extend(plugin_imports([*up, *down]))
    body = [
        "",
        "",
        "class MigrationRevision(MigrationRevisionBase):",
        f"    up_revision = {literal(revision_id)}",
        f"    down_revision = {literal(down_revision)}",
    ]
    if not transactional:
        body.append("    transactional = False  # CONCURRENTLY cannot run inside a transaction")
    body += ["", "    async def up(self, migrator: Migrator):", *render_body(up, preamble=up_preamble)]
    body += ["", "    async def down(self, migrator: Migrator):", *render_body(down, down_extra)]
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
