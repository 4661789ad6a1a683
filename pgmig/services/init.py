"""`init`: write [tool.pgmig] into pyproject.toml and create the migrations folder, never overwriting."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence

from pgmig.config.settings import find_pyproject
from pgmig.errors import ConfigError

PYPROJECT_BLOCK = """
[tool.pgmig]
# Where revision files live, relative to this file.
migrations_dir = "{migrations_dir}"
# Import paths or files holding your models; leave empty to use the
# "pgmig.registries" entry points of installed packages.
models = [{models}]
# With no database_url (or PGMIG_DATABASE_URL), pgmig runs an embedded
# PostgreSQL with its data in .pgmig/ next to this file.
# database_url = "postgresql://user@localhost:5432/app"
schema = "{schema}"
"""


@dataclass(frozen=True)
class InitOptions:
    """Where the project is (`cwd`: its pyproject.toml is found at or above it) and what to write."""

    cwd: Path
    migrations_dir: str = "migrations"
    models: Sequence[str] = field(default_factory=list)
    schema: str = "public"


def init_project(options: InitOptions) -> List[str]:
    """Write [tool.pgmig] and the migrations folder; never overwrite. Returns what was done, in words.

    Raises ConfigError when the existing pyproject.toml is not valid TOML.
    """
    cwd, migrations_dir, models, schema = options.cwd, options.migrations_dir, options.models, options.schema
    done: List[str] = []
    pyproject = find_pyproject(cwd) or (cwd / "pyproject.toml")
    text = pyproject.read_text(encoding="utf-8") if pyproject.exists() else ""
    if re.search(r"^\s*\[tool\.pgmig\]\s*$", text, flags=re.MULTILINE):
        done.append(f"kept the existing [tool.pgmig] in {pyproject}")
        from pgmig.config.settings import load_settings

        migrations_dir = load_settings(cwd=cwd).migrations_dir
    else:
        if text and not _valid_toml(text):
            raise ConfigError(f"{pyproject} is not valid TOML; fix it before running pgmig init")
        block = PYPROJECT_BLOCK.format(
            migrations_dir=migrations_dir,
            models=", ".join(f'"{m}"' for m in (models or [])),
            schema=schema,
        )
        separator = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        pyproject.write_text(text + separator + block.lstrip("\n") if text else block.lstrip("\n"), encoding="utf-8")
        done.append(f"wrote [tool.pgmig] to {pyproject}")
    root = pyproject.parent
    folder = Path(migrations_dir)
    folder = folder if folder.is_absolute() else root / folder
    if folder.is_dir():
        done.append(f"kept the existing migrations folder {folder}")
    else:
        folder.mkdir(parents=True)
        done.append(f"created the migrations folder {folder}")
    gitignore = root / ".gitignore"
    if gitignore.exists():
        lines = gitignore.read_text(encoding="utf-8").splitlines()
        if ".pgmig/" not in lines and ".pgmig" not in lines:
            with gitignore.open("a", encoding="utf-8") as handle:
                handle.write(("" if not lines or lines[-1] == "" else "\n") + ".pgmig/\n")
            done.append("added .pgmig/ (the embedded server's data) to .gitignore")
    return done


def _valid_toml(text: str) -> bool:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True
