"""`diff`: the plan that takes the configured database to the models."""

from __future__ import annotations

from pgmig.plan.diff import Plan
from pgmig.services.project import Project


async def diff(project: Project) -> Plan:
    """The plan from the configured database to the models, with `warnings` of what its data would trip over.

    Raises ModelsError (before connecting) when the models cannot be loaded,
    DatabaseError when the database cannot be read.
    """
    from pgmig.db.connect import connection
    from pgmig.plan.safety import preflight

    project.models  # noqa: B018 - import errors before any connection attempt
    async with connection(project.database_url) as conn:
        plan = await project.diff_one_way(conn, project.database_url)
        plan.warnings += await preflight(conn, plan.operations, project.word_hint)
        return plan
