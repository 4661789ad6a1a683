"""A configured project: settings plus what they point at (models, handlers, database).

Commands are thin: each builds a Project and calls one method. Everything is
loaded on first use, so `pgmig plugins` never imports the models and `--help`
never imports SQLAlchemy.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Callable, List, Optional

from .config import Settings, find_pyproject
from .errors import ConfigError
from .handler import ModelContext
from .plan import Plan
from .plugins import HandlerSet, load_handlers

Notice = Callable[[str], None]


class Project:
    def __init__(
        self,
        settings: Settings,
        handlers: Optional[HandlerSet] = None,
        notice: Optional[Notice] = None,
    ) -> None:
        self.settings = settings
        self._handlers = handlers
        self.notice: Notice = notice or (lambda message: None)

    @property
    def handlers(self) -> HandlerSet:
        if self._handlers is None:
            self._handlers = load_handlers()
            for failure in self._handlers.failures:
                self.notice(f"warning: {failure}")
        return self._handlers

    @cached_property
    def models(self) -> ModelContext:
        from .engine import model_context
        from .models import load_models

        loaded = load_models(self.settings.models, self.settings.project_root, self.settings.schema_name)
        return model_context(loaded.tables, loaded.metadata, self.settings.schema_name)

    @cached_property
    def database_url(self) -> str:
        from .database import resolve_url

        return resolve_url(self.settings, self.notice)

    async def diff(self) -> Plan:
        """The plan that takes the configured database to the models."""
        from .database import connection
        from .engine import diff_database

        models = self.models  # import errors before any connection attempt
        handlers = self.handlers
        async with connection(self.database_url) as conn:
            return await diff_database(
                conn,
                models,
                handlers,
                schema=self.settings.schema_name,
                version_table=self.settings.version_table,
            )


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


def init_project(
    cwd: Path, migrations_dir: str = "migrations", models: Optional[List[str]] = None, schema: str = "public"
) -> List[str]:
    """Write [tool.pgmig] and the migrations folder; never overwrite. Returns what was done."""
    done: List[str] = []
    pyproject = find_pyproject(cwd) or (cwd / "pyproject.toml")
    text = pyproject.read_text(encoding="utf-8") if pyproject.exists() else ""
    if re.search(r"^\s*\[tool\.pgmig\]\s*$", text, flags=re.MULTILINE):
        done.append(f"kept the existing [tool.pgmig] in {pyproject}")
        from .config import load_settings

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
    try:
        import tomllib
    except ImportError:  # pragma: no cover
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True
