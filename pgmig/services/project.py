"""The configured project: settings plus what they point at (models, handlers, database).

Everything is loaded on first use, so `pgmig plugins` never imports the
models and `--help` never imports SQLAlchemy. The services (`pgmig.services.*`)
take a Project and do one job each.
"""

from __future__ import annotations

from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, Callable, Optional

from pgmig.config.discovery import HandlerSet, load_handlers
from pgmig.config.settings import Settings
from pgmig.errors import WordHint
from pgmig.revisions.files import Chain, Revision
from pgmig.revisions.runner import Runner
from pgmig.revisions.version_table import VersionTable
from pgmig.schema.protocol import ModelContext
from pgmig.timing import NoTimings, Timings

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from pgmig.plan.diff import Plan

Notice = Callable[[str], None]
Progress = Callable[[str, Revision, float], None]


def _silent(message: str) -> None:
    pass


class Project:
    """One project's settings and, loaded lazily, its handlers, models, database URL and version table.

    `notice` receives one-line messages for a person (warnings, what the
    embedded server is doing); `word_hint` words an error's hint where a
    service writes one into a file or a notice (the CLI: with its flags);
    `timings` collects phase timings when the caller asked for them.
    """

    def __init__(
        self,
        settings: Settings,
        handlers: Optional[HandlerSet] = None,
        notice: Optional[Notice] = None,
        timings: Optional[Timings] = None,
        word_hint: WordHint = str,
    ) -> None:
        self.settings = settings
        self._handlers = handlers
        self.notice: Notice = notice or _silent
        self.timings: Timings = timings or NoTimings()
        self.word_hint = word_hint
        self._scratch_noticed = False

    @property
    def handlers(self) -> HandlerSet:
        """The object-type handlers (the installed ones unless given); plugins that failed are noticed."""
        if self._handlers is None:
            self._handlers = load_handlers()
            for failure in self._handlers.failures:
                self.notice(f"warning: {failure}")
        return self._handlers

    @cached_property
    def models(self) -> ModelContext:
        """The models' tables; raises ModelsError when they cannot be found or imported."""
        from pgmig.config.registries import load_models
        from pgmig.plan.engine import model_context

        with self.timings.phase("load"):
            schemas = self.settings.schema_names
            loaded = load_models(self.settings.models, self.settings.project_root, schemas=schemas)
            self.versions.refuse_model_tables(loaded.tables, self.settings.schema_name)
            return model_context(loaded.tables, loaded.metadata, schemas=schemas, exclude=self.settings.exclusions)

    @cached_property
    def database_url(self) -> str:
        """The configured URL, or the embedded server's (started on first use)."""
        from pgmig.db.connect import resolve_url

        return resolve_url(self.settings, self.notice)

    def scratch_server(self, purpose: str, dev_url: Optional[str] = None) -> Optional[str]:
        """The URL of the server to make scratch databases on for `purpose` (words such as "check" or
        "drift"): `dev_url` if given, else the `dev_url` setting; None means the project's embedded server.

        Nothing is started here. When the embedded server serves as scratch beside another configured
        database, a notice says so, once per Project (one command): that is a local server started,
        data written in `.pgmig/`, for something the user may not expect to need one.
        """
        from pgmig.db.urls import normalize_url

        given = dev_url or self.settings.dev_url
        if given:
            return normalize_url(given)
        if self.settings.database_url and not self._scratch_noticed:
            from pgmig.db.embedded import server_dir

            self._scratch_noticed = True
            self.notice(
                f"using the embedded PostgreSQL in {server_dir(self.settings.embedded_data_dir)} as the scratch "
                f"server for {purpose} (set dev_url, e.g. PGMIG_DEV_URL, to use another)"
            )
        return None

    @cached_property
    def versions(self) -> VersionTable:
        return VersionTable(self.settings.schema_name, self.settings.version_table)

    def chain(self) -> Chain:
        """The revision files, read now (RevisionError for a broken chain)."""
        from pgmig.revisions.files import load_chain

        return load_chain(self.settings.migrations_path)

    def write_revision(self, file_name: str, text: str) -> "Path":
        """Write a revision file into the migrations folder (complete and loadable, laid out by ruff),
        then run the `post_write` command on it (`pgmig.revisions.writer.write_revision`); its path.

        Raises RevisionError (nothing written), PostWriteError (written, the command failed).
        """
        from pgmig.revisions.writer import write_revision

        settings = self.settings
        return write_revision(settings.migrations_path, file_name, text, settings.post_write, settings.project_root)

    def runner(
        self,
        url: Optional[str] = None,
        progress: Optional[Progress] = None,
        chain: Optional[Chain] = None,
        offline: bool = False,
        schema: Optional[str] = None,
    ) -> Runner:
        """A runner with this project's version table and timeouts (the configured database by default).

        `offline`: one that only writes SQL (`Runner.sql` with a start), so no URL is resolved and the
        embedded server is not started. `schema` other than the first managed one runs the revisions in
        it instead (a fleet's schema-per-tenant target): its own version table there, and each step's
        schema renamed (`Runner.schema_map`).
        """
        home = self.settings.schema_name
        versions = self.versions if schema in (None, home) else VersionTable(schema, self.settings.version_table)
        return Runner(
            "" if offline else url or self.database_url,
            chain if chain is not None else self.chain(),
            versions,
            self.notice,
            progress,
            lock_timeout=self.settings.lock_timeout,
            statement_timeout=self.settings.statement_timeout,
            schema_map={home: schema} if schema not in (None, home) else None,
        )

    async def diff_one_way(self, conn: Any, url: str) -> "Plan":
        """The plan from the database behind `conn` (at `url`) to the models."""
        from pgmig.plan.engine import diff_database

        return await diff_database(conn, self.models, self.handlers, **self._engine_options(url))

    async def diff_both_ways(self, conn: Any, url: str) -> "tuple[Plan, Plan]":
        """The plans from the database behind `conn` to the models and back."""
        from pgmig.plan.engine import diff_both_ways

        return await diff_both_ways(conn, self.models, self.handlers, **self._engine_options(url))

    def _engine_options(self, url: str) -> "dict[str, Any]":
        from pgmig.db.connect import connect

        return {
            "schemas": self.settings.schema_names,
            "version_table": self.settings.version_table,
            "timings": self.timings,
            # A second connection to the same database, so catalog reads run side by side.
            "connect": partial(connect, url),
            # What the server said of the models' expressions, kept between runs (see pgmig.plan.normalize).
            "normal_forms": self.settings.embedded_data_dir / "normal-forms.json",
            "exclude": self.settings.exclusions,
        }
