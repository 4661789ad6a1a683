"""`diff`: the plan that takes the configured database to the models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List

from pgmig.errors import PgmigError
from pgmig.plan.diff import Plan
from pgmig.revisions.files import Revision
from pgmig.services.project import Project


@dataclass
class Diff:
    """`plan`: from the database to the models, with `warnings` of what its data would trip over;
    `pending`: the revisions the database has not applied, in the order `up` applies them. The plan
    then includes what they would make: it compares the database with the models, not the history."""

    plan: Plan
    pending: List[Revision] = field(default_factory=list)


async def diff(project: Project) -> Diff:
    """The plan from the configured database to the models, and the revisions it has not applied.

    Raises ModelsError (before connecting) when the models cannot be loaded,
    DatabaseError when the database cannot be read.
    """
    from pgmig.db.connect import connection
    from pgmig.plan.safety import preflight

    project.models  # noqa: B018 - import errors before any connection attempt
    async with connection(project.database_url) as conn:
        plan = await project.diff_one_way(conn, project.database_url)
        plan.warnings += await preflight(conn, plan.operations, project.word_hint)
        return Diff(plan, await _pending(project, conn))


async def _pending(project: Project, conn: Any) -> List[Revision]:
    """The revisions not applied on `conn`'s database; none when the files or the version table cannot
    be read (a broken chain, another tool's table): `status` and `up` say why, a diff needs neither."""
    from pgmig.revisions.runner import read_status

    try:
        chain = project.chain()
        if not chain.revisions:
            return []
        return read_status(chain, await project.versions.applied(conn), strict=False).pending
    except PgmigError:
        return []
