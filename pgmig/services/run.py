"""`up`, `down` (or their SQL), `status` and `stamp` on the configured database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional

from pgmig.errors import Hint, UsageError, plural
from pgmig.revisions.files import Revision, Target
from pgmig.revisions.runner import Direction, Status
from pgmig.services.project import Progress, Project


@dataclass(frozen=True)
class RunOptions:
    """One run of the revisions.

    `direction` is "up" or "down"; `target` is a revision id (or unique
    prefix), "head" (refused when there are several heads), "heads" or
    "base"; None means every head for up and one revision for down. `as_sql` records the SQL instead of
    running it; `start` (a revision id or prefix, or "base") with `as_sql` writes it offline, for a
    database standing at `start`, without connecting to any (nor starting the embedded server). Raises
    UsageError for another direction, or `start` without `as_sql`.
    """

    direction: Direction
    target: Optional[str] = None
    as_sql: bool = False
    start: Optional[str] = None

    def __post_init__(self) -> None:
        if self.direction not in ("up", "down"):
            raise UsageError(f"a run goes up or down, not {self.direction!r}")
        if self.start is not None and not self.as_sql:
            raise UsageError(
                "a starting revision only goes with printing the SQL (a run reads where the database stands)",
                hint=Hint("print the SQL offline", "as_sql"),
            )


@dataclass
class RunResult:
    """The revisions applied or rolled back (or that `sql` covers, in order), and the SQL when asked for."""

    revisions: List[Revision] = field(default_factory=list)
    sql: Optional[List[str]] = None


async def run(project: Project, options: RunOptions, progress: Optional[Progress] = None) -> RunResult:
    """Apply or roll back revisions, or only record their SQL, through the runner's one loop.

    Both ways plan the range alike (see `pgmig.runner.plan_run`): an `up`
    target behind the current revision, or a `down` target ahead of it,
    raises RevisionError whether or not SQL is asked for (offline: behind or
    ahead of `options.start`).
    """
    if options.start is not None:
        runner = project.runner(offline=True)
        return RunResult(sql=await runner.sql(options.direction, options.target, start=options.start))
    runner = project.runner(progress=progress)
    if options.as_sql:
        return RunResult(sql=await runner.sql(options.direction, options.target))
    return RunResult(revisions=await runner.run(options.direction, options.target))


async def status(project: Project, start: Optional[str] = None) -> Status:
    """The current revision, the pending ones, and applied files edited since.

    `start` (a revision id or prefix, or "base"): the status of a database standing there, as
    `pgmig up` would have left it, worked out offline (what `--sql --from` plans from): nothing
    connects. Raises RevisionError for a `start` that names no revision.
    """
    if start is not None:
        from pgmig.revisions.runner import offline_applied, read_status

        chain = project.chain()
        return read_status(chain, offline_applied(chain, start))
    return await project.runner().status()


async def stamp(project: Project, target: Target) -> None:
    """Record `target` (one or several revisions, and every revision they follow) as applied, and
    nothing else, without running anything."""
    await project.runner().stamp(target)


@dataclass(frozen=True)
class AcceptOptions:
    """Which edited files `accept_edits` accepts: `target` (a revision id or unique prefix), or every
    applied revision whose file changed meaning when None; `yes` is the consent given up front."""

    target: Optional[str] = None
    yes: bool = False


ACCEPT_YES = Hint("review the changes (e.g. git log -p on each file), then rerun", "yes")


class EditsNotAcceptedError(UsageError):
    """Applied revision files changed meaning, and nobody agreed to record them as they are now."""

    def __init__(self, revisions: List[Revision]) -> None:
        self.revisions = revisions
        names = ", ".join(revision.path.name for revision in revisions)
        super().__init__(
            f"{plural(len(revisions), 'applied revision file')} changed meaning since "
            f"{'it was' if len(revisions) == 1 else 'they were'} applied ({names}); "
            "nothing was accepted",
            hint=ACCEPT_YES,
        )


async def accept_edits(
    project: Project, options: AcceptOptions, confirm: Optional[Callable[[List[Revision]], bool]] = None
) -> List[Revision]:
    """Record the current checksums of applied revisions whose files changed meaning since they were
    applied (`Status.edited`), keeping their applied times; nothing runs on the database's schema.

    The version table keeps a checksum per file, not its text, so what changed
    cannot be shown from it: `confirm` is shown the revisions (a person at a
    terminal compares them with version control) and answers whether to
    accept them. Returns those recorded (none: no file was edited). Raises
    EditsNotAcceptedError (exit 2) without `options.yes` or `confirm`'s yes,
    RevisionError for an unknown `target`.
    """
    current = await status(project)
    edited = current.edited
    if options.target is not None:
        chosen = current.chain.resolve(options.target)
        edited = [revision for revision in edited if revision.id == chosen]
    if not edited:
        return []
    if not options.yes and not (confirm is not None and confirm(edited)):
        raise EditsNotAcceptedError(edited)
    return await project.runner(chain=current.chain).accept(edited)
