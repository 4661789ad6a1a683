"""A configured project: settings plus what they point at (models, handlers, database).

Commands are thin: each builds a Project and calls one method. Everything is
loaded on first use, so `pgmig plugins` never imports the models and `--help`
never imports SQLAlchemy.
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, List, Optional, Sequence

from .config import Settings, find_pyproject
from .errors import ConfigError, DatabaseError, UsageError
from .handler import ModelContext
from .plan import Plan
from .plugins import HandlerSet, load_handlers
from .questions import Questioner
from .revisions import HEAD, Chain, Revision
from .runner import Runner, Status
from .timing import NoTimings, Timings
from .versions import VersionTable

if TYPE_CHECKING:  # pragma: no cover
    from .check import CheckReport

Notice = Callable[[str], None]
Progress = Callable[[str, Revision, float], None]


class DestructiveChangeError(UsageError):
    """Generating would write a revision that deletes data, and nobody agreed to it."""


@dataclass
class GenerateOptions:
    """What `pgmig generate` is told on the command line."""

    empty: bool = False
    allow_destructive: bool = False
    renames: Sequence[str] = ()
    enum_renames: Sequence[str] = ()
    enum_maps: Sequence[str] = ()
    defaults: Sequence[str] = ()
    concurrently: bool = False


def _concurrently(ops: List[Any]) -> List[Any]:
    """Index builds and drops on existing tables CONCURRENTLY, NOT NULL through a validated check.

    The revision then runs outside a transaction (`transactional = False`), so
    each statement commits on its own and the lighter locks really are light.
    """
    from dataclasses import replace

    from .ops.index import concurrent

    return [replace(op, via_check=True) if op.name == "add_not_null" else op for op in concurrent(ops)]


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

    def runner(
        self, url: Optional[str] = None, progress: Optional[Progress] = None, chain: Optional[Chain] = None
    ) -> Runner:
        """A runner with this project's version table and timeouts (the configured database by default)."""
        return Runner(
            url or self.database_url,
            chain if chain is not None else self.chain(),
            self.versions,
            self.notice,
            progress,
            lock_timeout=self.settings.lock_timeout,
            statement_timeout=self.settings.statement_timeout,
        )

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
        return await self.runner().sql(direction, target)  # type: ignore[arg-type]

    async def generate(
        self,
        message: str,
        options: Optional["GenerateOptions"] = None,
        questioner: Optional["Questioner"] = None,
    ) -> Optional[Path]:
        """Write the next revision file; None when the models need no change.

        `questioner` answers what a person would be asked at a terminal
        (renames, defaults, consent to lose data); without one, only the
        options decide and anything unresolved is refused or left as a TODO.
        """
        from datetime import datetime, timezone

        from .revisions import load_revision_file, new_revision_id, slugify
        from .writer import format_file, render_revision

        options = options or GenerateOptions()
        questioner = questioner or Questioner()
        chain = self.chain()
        up_ops: list = []
        down_ops: list = []
        preamble: List[str] = []
        if not options.empty:
            async with self._history_database(chain) as (conn, real, url):
                work = await self._generate_work(conn, url, real, options, questioner)
            if work is None:
                return None
            up_ops, down_ops, preamble = work
        created = datetime.now(timezone.utc)
        revision_id = new_revision_id(created)
        folder = self.settings.migrations_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{revision_id}_{slugify(message)}.py"
        with self.timings.phase("render"):
            transactional = all(op.transactional for op in [*up_ops, *down_ops])
            text = render_revision(
                revision_id,
                chain.head,
                message,
                up_ops,
                down_ops,
                created,
                transactional=transactional,
                up_preamble=preamble,
            )
            path.write_text(text, encoding="utf-8")
            format_file(path)
            load_revision_file(path)  # what we wrote must load
        return path

    async def _generate_work(
        self, conn: Any, url: str, real: bool, options: "GenerateOptions", questioner: "Questioner"
    ) -> "Optional[tuple[list, list, List[str]]]":
        from .renames import parse_pairs, parse_renames, rename_candidates, without_conflicts
        from .safety import (
            add_remaps,
            apply_defaults,
            not_null_needs,
            parse_defaults,
            parse_maps,
            removed_label_rows,
            todo_lines,
            unmet_not_null,
        )

        schema = self.settings.schema_name
        models = self.models
        renames = parse_renames(options.renames, options.enum_renames)
        maps = parse_maps(parse_pairs(options.enum_maps, "--map-enum-value", "enum.OLD=NEW"))
        answers = parse_defaults(parse_pairs(options.defaults, "--default", "table.column=SQL_EXPRESSION"))

        async with self._renamed(conn, renames):
            up, down = await self._diff_both_ways(conn, url, models)
        asked = False
        for candidate in without_conflicts(rename_candidates(up), renames):
            if questioner.ask_rename(candidate):
                candidate.add_to(renames)
                asked = True
        if asked:
            async with self._renamed(conn, renames):
                up, down = await self._diff_both_ways(conn, url, models)
        if up.is_empty and not renames:
            return None

        up_ops = renames.operations(schema) + add_remaps(up.operations, maps)
        down_ops = down.operations + renames.inverse_operations(schema)

        needs = not_null_needs(up_ops)
        for need in needs:
            if (need.table, need.column) not in answers:
                answer = questioner.ask_default(need)
                if answer:
                    answers[(need.table, need.column)] = answer
        up_ops = apply_defaults(up_ops, answers)
        unresolved = [need for need in needs if (need.table, need.column) not in answers]
        preamble: List[str] = []
        if unresolved:
            problems = [need.describe() for need in unresolved]
            if real:
                async with self._renamed(conn, renames):
                    problems = await unmet_not_null(conn, unresolved) or problems
            hint = "give a value with --default " + ", ".join(f"{n.name}=EXPR" for n in unresolved)
            preamble = todo_lines(problems, hint)
            self.notice(f"warning: the revision stops with a TODO: {'; '.join(problems)} ({hint})")

        if real:
            async with self._renamed(conn, renames):
                for op in up_ops:
                    if op.name != "swap_type_values":
                        continue
                    held = await removed_label_rows(conn, op)
                    type_name = op.type_name
                    unmapped = {label: n for label, n in held.items() if label not in maps.get(type_name, {})}
                    if unmapped:
                        counts = ", ".join(f"{n} row(s) hold {label!r}" for label, n in unmapped.items())
                        flags = " ".join(f"--map-enum-value {type_name}.{label}=OTHER" for label in unmapped)
                        raise UsageError(
                            f"enum {type_name} loses labels that rows still use ({counts}); move them with {flags}"
                        )

        if options.concurrently:
            up_ops, down_ops = _concurrently(up_ops), _concurrently(down_ops)

        destructive = [describe_change(change) for change in up.changes if "deletes_data" in change.hazards]
        if destructive and not options.allow_destructive and not questioner.confirm_destructive(destructive):
            raise DestructiveChangeError(
                "the revision would delete data (" + "; ".join(destructive) + "); "
                "review the models, then rerun with --allow-destructive"
            )
        return up_ops, down_ops, preamble

    @asynccontextmanager
    async def _renamed(self, conn: Any, renames: Any) -> AsyncIterator[None]:
        """Inside: the database as if the renames had run (a transaction that is always rolled back)."""
        from .actions import DatabaseActions

        transaction = conn.transaction()
        await transaction.start()
        try:
            actor = DatabaseActions(conn)
            for op in renames.operations(self.settings.schema_name) if renames else []:
                await actor.run(op)
            yield
        finally:
            await transaction.rollback()

    @asynccontextmanager
    async def _history_database(self, chain: Chain) -> AsyncIterator["tuple[Any, bool, str]"]:
        """A connection to the schema the revisions produce, whether it holds real data, and its URL.

        The configured database is used when it is at head; otherwise the
        revisions are replayed into a scratch database, so generating never
        needs production access and never repeats a pending revision.
        """
        from .database import connect
        from .runner import read_status
        from .scratch import scratch_database

        conn = None
        try:
            conn = await connect(self.database_url)
            status = read_status(chain, await self.versions.applied(conn))
            if status.current != chain.head:
                self.notice(
                    f"the database is at {status.current or 'base'}, not at head {chain.head}: "
                    "comparing with a scratch database built from the revisions"
                )
                await conn.close()
                conn = None
        except DatabaseError as exc:
            if conn is not None:
                await conn.close()
                conn = None
            if not self.settings.database_url:
                raise
            self.notice(f"{exc}; comparing with a scratch database built from the revisions instead")
        if conn is not None:
            try:
                yield conn, True, self.database_url
            finally:
                await conn.close()
            return
        async with scratch_database(self.settings.embedded_data_dir) as url:
            with self.timings.phase("replay"):
                await self.runner(url, chain=chain).upgrade(HEAD)
            scratch = await connect(url)
            try:
                yield scratch, False, url
            finally:
                await scratch.close()

    async def _diff_both_ways(self, conn, url: str, models: ModelContext) -> "tuple[Plan, Plan]":  # type: ignore[no-untyped-def]
        from .engine import diff_both_ways

        return await diff_both_ways(conn, models, self.handlers, **self._engine_options(url))

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
                    report.missing_migration = await self._diff_one_way(conn, url, models)
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
                await self.runner(url, chain=chain).upgrade(status.current)
            expected = await Checker(self, url).state()
        actual = await Checker(self, self.database_url).state()
        return status, describe_differences(expected, actual)

    async def _diff_one_way(self, conn, url: str, models: ModelContext) -> Plan:  # type: ignore[no-untyped-def]
        from .engine import diff_database

        return await diff_database(conn, models, self.handlers, **self._engine_options(url))

    def _engine_options(self, url: str) -> dict:
        from functools import partial

        from .database import connect

        return {
            "schema": self.settings.schema_name,
            "version_table": self.settings.version_table,
            "timings": self.timings,
            "connect": partial(connect, url),
        }

    async def diff(self) -> Plan:
        """The plan that takes the configured database to the models."""
        from .database import connection
        from .safety import preflight

        models = self.models  # import errors before any connection attempt
        async with connection(self.database_url) as conn:
            plan = await self._diff_one_way(conn, self.database_url, models)
            plan.warnings = await preflight(conn, plan.operations)
            return plan


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
