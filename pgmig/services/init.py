"""`init`: write [tool.pgmig] into pyproject.toml and create the migrations folder, never overwriting.

pyproject.toml is edited with tomlkit, never as text: an existing table is
found however it is spelt (`[ tool.pgmig ]`, `[tool."pgmig"]`, a comment
after the header, dotted keys under `[tool]`, an inline table), the user's
keys, comments, order and line endings stay as they were, and every value is
a TOML string tomlkit escaped (`db\\migrations`, `my"schema`). The new text
must parse and read back the values given before it replaces the file.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

from pgmig.config.settings import find_pyproject
from pgmig.errors import ConfigError
from pgmig.files import write_new_file

# The commented [tool.pgmig] that init writes: (comment lines, key), in order; values come from InitOptions.
TABLE_LAYOUT = [
    (["Where revision files live, relative to this file."], "migrations_dir"),
    (
        [
            "Import paths or files holding your models; leave empty to use the",
            '"pgmig.registries" entry points of installed packages.',
        ],
        "models",
    ),
    (
        [
            "With no database_url (or PGMIG_DATABASE_URL), pgmig runs an embedded",
            "PostgreSQL with its data in .pgmig/ next to this file.",
            'database_url = "postgresql://user@localhost:5432/app"',
        ],
        "schema",
    ),
]


@dataclass(frozen=True)
class InitOptions:
    """Where the project is (`cwd`: its pyproject.toml is found at or above it) and what to write."""

    cwd: Path
    migrations_dir: str = "migrations"
    models: Sequence[str] = field(default_factory=list)
    schema: str = "public"


def init_project(options: InitOptions) -> List[str]:
    """Write [tool.pgmig] and the migrations folder; never overwrite. Returns what was done, in words.

    Raises ConfigError (exit 2) when the existing pyproject.toml is not valid
    UTF-8 TOML, or holds a `tool` or `tool.pgmig` that is not a table; the file is
    left untouched then.
    """
    cwd, migrations_dir = options.cwd, options.migrations_dir
    done: List[str] = []
    pyproject = find_pyproject(cwd) or (cwd / "pyproject.toml")
    text = _read(pyproject) if pyproject.exists() else ""
    existing = _parsed(pyproject, text).get("tool", {})
    if not isinstance(existing, dict):
        raise ConfigError(f"{pyproject}: tool is not a table; fix it before running pgmig init")
    if "pgmig" in existing:
        if not isinstance(existing["pgmig"], dict):
            raise ConfigError(f"{pyproject}: tool.pgmig is not a table; fix it before running pgmig init")
        done.append(f"kept the existing [tool.pgmig] in {pyproject}")
        from pgmig.config.settings import load_settings

        migrations_dir = load_settings(cwd=cwd).migrations_dir
    else:
        values: Dict[str, Any] = {
            "migrations_dir": migrations_dir,
            "models": list(options.models or []),
            "schema": options.schema,
        }
        _replace(pyproject, _with_table(pyproject, text, values), values)
        done.append(f"wrote [tool.pgmig] to {pyproject}")
    root = pyproject.parent
    folder = Path(migrations_dir)
    folder = folder if folder.is_absolute() else root / folder
    if folder.is_dir():
        done.append(f"kept the existing migrations folder {folder}")
    else:
        folder.mkdir(parents=True)
        done.append(f"created the migrations folder {folder}")
    done.extend(_ignore_server_data(root / ".gitignore"))
    return done


IGNORED = (".pgmig/", ".pgmig", "/.pgmig/", "/.pgmig")
"""The .gitignore lines that already keep the embedded server's data (`.pgmig/` beside pyproject.toml) out of git."""


def _ignore_server_data(gitignore: Path) -> List[str]:
    """Add `.pgmig/` to `gitignore`, creating the file when there is none; what was done, in words."""
    if not gitignore.exists():
        write_new_file(gitignore, ".pgmig/\n")
        return [f"created {gitignore} with .pgmig/ (the embedded server's data)"]
    text = gitignore.read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines()]
    if any(line in IGNORED for line in lines):
        return []
    with gitignore.open("a", encoding="utf-8") as handle:
        handle.write(("" if not text or text.endswith("\n") else "\n") + ".pgmig/\n")
    return ["added .pgmig/ (the embedded server's data) to .gitignore"]


def _read(pyproject: Path) -> str:
    # Bytes decoded by hand: read_text would turn CRLF into LF, and the file is written back.
    try:
        return pyproject.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid UTF-8 ({exc}); fix it before running pgmig init") from None


def _parsed(pyproject: Path, text: str) -> Dict[str, Any]:
    """`text` as tomllib reads it (what pgmig's settings will read); ConfigError naming the TOML error."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML ({exc}); fix it before running pgmig init") from None


def _with_table(pyproject: Path, text: str, values: Dict[str, Any]) -> str:
    """`text` with a commented [tool.pgmig] holding `values` added after the other `tool` tables (tomlkit
    keeps the rest as it was); an inline `tool = {...}` gains an inline `pgmig = {...}`, without comments."""
    import tomlkit
    from tomlkit.items import InlineTable

    document = tomlkit.parse(text)
    tool = document.get("tool")
    if isinstance(tool, InlineTable):
        inline = tomlkit.inline_table()
        inline.update(values)
        tool.append("pgmig", inline)
    else:
        table = tomlkit.table()
        for comments, key in TABLE_LAYOUT:
            for comment in comments:
                table.add(tomlkit.comment(comment))
            table.add(key, values[key])
        table.add(tomlkit.nl())  # a blank line before the table that follows, if one does
        if tool is None:
            tool = tomlkit.table(is_super_table=True)
            document["tool"] = tool
        # Item assignment, which tomlkit supports however `tool` is laid out (a super table of
        # [tool.x] headers, [tool] with dotted keys, tables out of order, root dotted keys).
        tool["pgmig"] = table
    result = tomlkit.dumps(document).rstrip("\n") + "\n"
    if "\r\n" in text:  # the file's line endings for the lines added
        result = re.sub(r"(?<!\r)\n", "\r\n", result)
    return result


def _replace(pyproject: Path, text: str, values: Dict[str, Any]) -> None:
    """Write `text` over `pyproject` atomically (a temporary file beside it, renamed), after checking
    that it reads back `values` as [tool.pgmig]; the file keeps its mode, a symlink its target."""
    read_back = _parsed(pyproject, text).get("tool", {}).get("pgmig")
    if read_back != values:  # pragma: no cover - tomlkit wrote something else: never write it
        raise ConfigError(f"could not add [tool.pgmig] to {pyproject} (it read back as {read_back!r})")
    target = pyproject.resolve()
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    try:
        write_new_file(temporary, text, mode)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
