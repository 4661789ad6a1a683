"""`up`, `down` (or their SQL), `status` and `stamp` on the configured database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from pgmig.errors import UsageError
from pgmig.revisions.files import Revision, Target
from pgmig.revisions.runner import Direction, Status
from pgmig.services.project import Progress, Project


@dataclass(frozen=True)
class RunOptions:
    """One run of the revisions.

    `direction` is "up" or "down"; `target` is a revision id (or unique
    prefix), "head" (refused when there are several heads), "heads" or
    "base"; None means every head for up and one revision for down. `as_sql` records the SQL instead of running it. Raises UsageError
    for another direction.
    """

    direction: Direction
    target: Optional[str] = None
    as_sql: bool = False

    def __post_init__(self) -> None:
        if self.direction not in ("up", "down"):
            raise UsageError(f"a run goes up or down, not {self.direction!r}")


@dataclass
class RunResult:
    """The revisions applied or rolled back (or that `sql` covers, in order), and the SQL when asked for."""

    revisions: List[Revision] = field(default_factory=list)
    sql: Optional[List[str]] = None


async def run(project: Project, options: RunOptions, progress: Optional[Progress] = None) -> RunResult:
    """Apply or roll back revisions, or only record their SQL, through the runner's one loop.

    Both ways plan the range alike (see `pgmig.runner.plan_run`): an `up`
    target behind the current revision, or a `down` target ahead of it,
    raises RevisionError whether or not SQL is asked for.
    """
    runner = project.runner(progress=progress)
    if options.as_sql:
        return RunResult(sql=await runner.sql(options.direction, options.target))
    return RunResult(revisions=await runner.run(options.direction, options.target))


async def status(project: Project) -> Status:
    """The current revision, the pending ones, and applied files edited since."""
    return await project.runner().status()


async def stamp(project: Project, target: Target) -> None:
    """Record `target` (one or several revisions, and every revision they follow) as applied, and
    nothing else, without running anything."""
    await project.runner().stamp(target)
