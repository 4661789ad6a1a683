"""A configured project: settings plus what they point at (models, handlers, database).

Commands are thin: each builds a Project and calls one method. Everything is
loaded on first use, so `pgmig plugins` never imports the models and `--help`
never imports SQLAlchemy.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional

from .config import Settings, find_pyproject
from .errors import ConfigError, DatabaseError, UsageError
from .handler import ModelContext
from .plan import Plan
from .plugins import HandlerSet, load_handlers
from .revisions import HEAD, Chain, Revision
from .runner import Runner, Status
from .timing import NoTimings, Timings
from .versions import VersionTable

if TYPE_CHECKING:  # pragma: no cover
    from .check import CheckReport

Notice = Callable[[str], None]
Confirm = Callable[[List[str]], bool]
Progress = Callable[[str, Revision, float], None]


class DestructiveChangeError(UsageError):
    """Generating would write a revision that deletes data, and nobody agreed to it."""


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
        self.timings: Timings = NoTimings()

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

        with self.timings.phase("load"):
            loaded = load_models(self.settings.models, self.settings.project_root, self.settings.schema_name)
            return model_context(loaded.tables, loaded.metadata, self.settings.schema_name)

    @cached_property
    def database_url(self) -> str:
        from .database import resolve_url

        return resolve_url(self.settings, self.notice)

    @cached_property
    def versions(self) -> VersionTable:
        return VersionTable(self.settings.schema_name, self.settings.version_table)

    def chain(self) -> Chain:
        from .revisions import load_chain

        return load_chain(self.settings.migrations_path)

    def runner(self, url: Optional[str] = None, progress: Optional[Progress] = None) -> Runner:
        return Runner(url or self.database_url, self.chain(), self.versions, self.notice, progress)

    async def status(self) -> Status:
        return await self.runner().status()

    async def upgrade(self, target: str = HEAD, progress: Optional[Progress] = None) -> List[Revision]:
        return await self.runner(progress=progress).upgrade(target)

    async def downgrade(self, target: Optional[str] = None, progress: Optional[Progress] = None) -> List[Revision]:
        return await self.runner(progress=progress).downgrade(target)

    async def stamp(self, target: str) -> None:
        await self.runner().stamp(target)

    async def sql(self, direction: str, target: Optional[str]) -> List[str]:
        """The SQL `up`/`down` would run from the database's current revision, without running it."""
        from .database import connection
        from .runner import UP, read_status, render_sql

        chain = self.chain()
        async with connection(self.database_url) as conn:
            has_table = await self.versions.exists(conn)
            status = read_status(chain, await self.versions.applied(conn))
        if direction == UP:
            end = chain.index(target or HEAD)
            revisions = chain.revisions[status.current_index + 1 : end + 1]
        else:
            end = status.current_index - 1 if target is None else chain.index(target)
            revisions = list(reversed(chain.revisions[end + 1 : status.current_index + 1]))
        return await render_sql(chain, revisions, direction, self.versions, not has_table)

    async def generate(
        self,
        message: str,
        *,
        empty: bool = False,
        allow_destructive: bool = False,
        confirm: Optional[Confirm] = None,
    ) -> Optional[Path]:
        """Write the next revision file; None when the models need no change."""
        from datetime import datetime, timezone

        from .revisions import load_revision_file, new_revision_id, slugify
        from .writer import format_file, render_revision

        chain = self.chain()
        up_ops: list = []
        down_ops: list = []
        if not empty:
            up, down = await self._plans_against_history(chain)
            if up.is_empty:
                return None
            destructive = [describe_change(change) for change in up.changes if "deletes_data" in change.hazards]
            if destructive and not allow_destructive:
                if confirm is None or not confirm(destructive):
                    raise DestructiveChangeError(
                        "the revision would delete data (" + "; ".join(destructive) + "); "
                        "review the models, then rerun with --allow-destructive"
                    )
            up_ops, down_ops = up.operations, down.operations
        created = datetime.now(timezone.utc)
        revision_id = new_revision_id(created)
        folder = self.settings.migrations_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{revision_id}_{slugify(message)}.py"
        with self.timings.phase("render"):
            transactional = all(op.transactional for op in [*up_ops, *down_ops])
            text = render_revision(
                revision_id, chain.head, message, up_ops, down_ops, created, transactional=transactional
            )
            path.write_text(text, encoding="utf-8")
            format_file(path)
            load_revision_file(path)  # what we wrote must load
        return path

    async def _plans_against_history(self, chain: Chain) -> "tuple[Plan, Plan]":
        """Diff the models against the schema the revisions produce.

        The configured database is used when it is at head; otherwise the
        revisions are replayed into a scratch database, so generating never
        needs production access and never repeats a pending revision.
        """
        from .database import connection
        from .runner import read_status
        from .scratch import scratch_database

        models = self.models
        try:
            async with connection(self.database_url) as conn:
                status = read_status(chain, await self.versions.applied(conn))
                if status.current == chain.head:
                    return await self._diff_both_ways(conn, models)
                self.notice(
                    f"the database is at {status.current or 'base'}, not at head {chain.head}: "
                    "comparing with a scratch database built from the revisions"
                )
        except DatabaseError as exc:
            if not self.settings.database_url:
                raise
            self.notice(f"{exc}; comparing with a scratch database built from the revisions instead")
        async with scratch_database(self.settings.embedded_data_dir) as url:
            with self.timings.phase("replay"):
                await Runner(url, chain, self.versions, self.notice).upgrade(HEAD)
            async with connection(url) as conn:
                return await self._diff_both_ways(conn, models)

    async def _diff_both_ways(self, conn, models: ModelContext) -> "tuple[Plan, Plan]":  # type: ignore[no-untyped-def]
        from .engine import diff_both_ways

        return await diff_both_ways(
            conn,
            models,
            self.handlers,
            schema=self.settings.schema_name,
            version_table=self.settings.version_table,
            timings=self.timings,
        )

    async def check(self, dev_url: Optional[str] = None) -> "CheckReport":
        """Replay every revision on a scratch database, check each down, and compare with the models."""
        from .check import Checker, CheckReport
        from .database import connection
        from .runner import read_status
        from .scratch import scratch_database

        chain = self.chain()
        report = CheckReport()
        if self.settings.database_url:
            try:
                async with connection(self.database_url) as conn:
                    status = read_status(chain, await self.versions.applied(conn))
                report.problems.extend(
                    f"{revision.path.name} was edited after it was applied to the configured database"
                    for revision in status.edited
                )
            except DatabaseError as exc:
                self.notice(f"skipped the checksum check: {exc}")
        models = self.models
        async with scratch_database(self.settings.embedded_data_dir, dev_url) as url:
            with self.timings.phase("replay"):
                checked = await Checker(self, url, self.notice).run(chain)
            report.revisions, report.problems = checked.revisions, report.problems + checked.problems
            if not checked.problems:
                async with connection(url) as conn:
                    report.missing_migration = await self._diff_one_way(conn, models)
        return report

    async def drift(self) -> "tuple[Status, List[str]]":
        """The configured database against what its applied revisions should have built, object by object."""
        from .check import Checker, describe_differences
        from .database import connection
        from .runner import read_status
        from .scratch import scratch_database

        chain = self.chain()
        async with connection(self.database_url) as conn:
            status = read_status(chain, await self.versions.applied(conn))
        async with scratch_database(self.settings.embedded_data_dir) as url:
            if status.current is not None:
                await Runner(url, chain, self.versions, self.notice).upgrade(status.current)
            expected = await Checker(self, url).state()
        actual = await Checker(self, self.database_url).state()
        return status, describe_differences(expected, actual)

    async def _diff_one_way(self, conn, models: ModelContext) -> Plan:  # type: ignore[no-untyped-def]
        from .engine import diff_database

        return await diff_database(
            conn,
            models,
            self.handlers,
            schema=self.settings.schema_name,
            version_table=self.settings.version_table,
            timings=self.timings,
        )

    async def diff(self) -> Plan:
        """The plan that takes the configured database to the models."""
        from .database import connection
        from .engine import diff_database

        models = self.models  # import errors before any connection attempt
        async with connection(self.database_url) as conn:
            return await self._diff_one_way(conn, models)


VERBS = {"create": "create", "migrate": "change", "destroy": "drop"}


def describe_change(change) -> str:  # type: ignore[no-untyped-def]
    """`drop column bio of author`: a change in words, for prompts and errors."""
    text = f"{VERBS[change.action]} {change.obj.label}"
    if change.obj.group != change.key:
        text += f" of {change.obj.group[-1]}"
    return text


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
