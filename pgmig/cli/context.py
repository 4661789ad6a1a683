"""What every command shares: the global options, how the CLI words hints, and the synchronous edge."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Coroutine, Dict, Iterator, Optional, TypeVar

import typer

from pgmig.cli.output import err, notice, shown
from pgmig.errors import Hint, PgmigWarning

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.services.project import Project

T = TypeVar("T")

DEV_URL = typer.Option(
    None,
    "--dev-url",
    metavar="URL",
    help="Server to make scratch databases on (also a global option) [env PGMIG_DEV_URL; default: the embedded one]",
    show_default=False,
)

TIMINGS = typer.Option(
    False,
    "--timings",
    help="After the output, print a line 'timing: PHASE SECONDS' per phase on stderr (e.g. 'timing: compare 0.12s').",
)

# The flag of each service option a hint can name.
FLAGS = {
    "models": "--models",
    "schemas": "--schema",
    "allow_destructive": "--allow-destructive",
    "defaults": "--default",
    "enum_maps": "--map-enum-value",
    "verify": "--no-verify",
    "message": "-m",
    "dev_url": "--dev-url",
    "yes": "--yes",
    "as_sql": "--sql",
    "renames": "--rename",
    "renames.enum_values": "--rename-enum-value",
    "start": "--from",
    "targets": "--targets (repeatable) or PGMIG_TARGETS",
}


def refuse_together(flags: Dict[str, bool], why: str) -> None:
    """Raise UsageError (exit 2, one line) when two or more of `flags` (flag: given) are given:
    they ask for contradictory things, and doing one of them silently would hide the other.
    `why` says what each does, so the user can choose."""
    given = [flag for flag, on in flags.items() if on]
    if len(given) > 1:
        from pgmig.errors import UsageError

        raise UsageError(f"{' and '.join(given)} do not go together ({why}): give one of them")


def word_hint(hint: Hint) -> str:
    """A hint in the CLI's words: `give a value with --default article.published=EXPR`."""
    flag = FLAGS.get(hint.option)
    if flag is None:
        return str(hint)
    given = " ".join(f"{flag} {value}" for value in hint.values) if hint.values else flag
    return f"{hint.action} with {given}"


@dataclass
class CliState:
    """The global options of one invocation (`ctx.obj` of every command)."""

    overrides: Dict[str, Any] = field(default_factory=dict)
    debug: bool = False

    def project(self, timings: bool = False, dev_url: Optional[str] = None) -> "Project":
        """The project the options configure, reporting on stderr and wording hints with flags;
        `dev_url`: a command's own `--dev-url`, which wins over the global one."""
        from pgmig.config.settings import load_settings
        from pgmig.db.urls import remember_secrets
        from pgmig.services.project import Project
        from pgmig.timing import Timings

        # Known before anything can fail, so that every message hides them (pgmig.db.urls.redact_text),
        # even one about a URL that never reaches a connection.
        if dev_url is not None:
            self.overrides["dev_url"] = dev_url
        for url in (
            self.overrides.get("database_url"),
            self.overrides.get("dev_url"),
            os.environ.get("PGMIG_DATABASE_URL"),
            os.environ.get("PGMIG_DEV_URL"),
        ):
            remember_secrets(url)
        settings = load_settings(self.overrides)
        remember_secrets(settings.database_url)
        remember_secrets(settings.dev_url)
        return Project(
            settings,
            notice=notice,
            timings=Timings() if timings else None,
            word_hint=word_hint,
        )


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run for the CLI's synchronous edge; pgmig's warnings become `warning: ...` lines."""
    if sys.platform == "win32":  # pragma: no cover
        asyncio.set_event_loop_policy(asyncio.WindowsSelectorEventLoopPolicy())  # type: ignore[attr-defined]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PgmigWarning)
        try:
            return asyncio.run(coroutine)
        finally:
            for warning in caught:
                if issubclass(warning.category, PgmigWarning):
                    notice(f"warning: {warning.message}")
                else:
                    # Another library's warning, in Python's format, through the same redaction.
                    text = warnings.formatwarning(
                        warning.message, warning.category, warning.filename, warning.lineno, warning.line
                    )
                    err.file.write(shown(text))


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a command diffs (diff, generate, check).

    A diff allocates a few objects per column and per catalog row and frees
    them all at the end; on a large schema the collector would otherwise run
    full collections over everything the process holds (SQLAlchemy, the
    models) several times, which cost up to a third of a diff at 1,000 tables.
    A process-wide switch, so only the CLI, which owns the process, flips it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # Hand what the diff allocated to the oldest generation at once:
            # re-enabled as it is, the collector would start with a young
            # generation of some 200,000 objects to traverse (10-25 ms at
            # 1,000 tables). Freezing and unfreezing moves lists; it does
            # not traverse them.
            gc.freeze()
            gc.unfreeze()
            gc.enable()
