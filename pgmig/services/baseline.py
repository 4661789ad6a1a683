"""`baseline`: adopt an existing database (built by Alembic, Django, Prisma, by hand...).

The database, not the models, is read: its objects (as a diff reads them,
the version table and excluded objects left out, so another tool's version
table stays out) become the first revision, whose `up` creates them from an
empty database and whose `down` drops them again. The revision is proven on
a scratch database first (`up` builds exactly the database's schema, `down`
gives back the empty starting point, `up` applies again: see
pgmig.services.proof), written, then recorded as applied in the configured
database WITHOUT running it there. `generate` then carries the database to
the models, as for any history.

Baseline starts a history, so it refuses a migrations folder that already
holds revisions (another database of the same project is adopted with
`stamp`) and a database whose version table already records revisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pgmig.errors import PgmigError, RevisionError, UsageError, agree, plural
from pgmig.services.project import Project


@dataclass(frozen=True)
class BaselineOptions:
    """`message`: the revision's docstring and file name; `verify`: prove the revision on a scratch
    database before writing it (False: `--no-verify`, written unproven)."""

    message: str
    verify: bool = True


@dataclass(frozen=True)
class BaselineResult:
    """The revision written (`path`, `revision_id`, recorded as applied) and how many schema objects it creates."""

    path: Path
    revision_id: str
    objects: int


class HistoryExistsError(UsageError):
    """Baseline was asked of a project or database that already has a pgmig history (exit 2)."""


async def baseline(project: Project, options: BaselineOptions) -> BaselineResult:
    """Write the revision that builds the configured database's current schema from empty, and stamp it.

    Raises HistoryExistsError when the migrations folder holds revisions or
    the version table records some, UsageError when the database holds
    nothing pgmig manages, ProofError when the revision fails its proof
    (nothing written), DatabaseError, RevisionError when it was written but
    could not be recorded (the message says what to run).
    """
    from datetime import datetime, timezone

    from pgmig.db.connect import connection
    from pgmig.db.scratch import scratch_database
    from pgmig.plan.diff import build_plan
    from pgmig.revisions.files import new_revision_id, slugify
    from pgmig.revisions.writer import refuse_invalid_text, render_revision
    from pgmig.schema.objects import SchemaState
    from pgmig.services.check import Checker
    from pgmig.services.proof import prove, seed_referenced

    refuse_invalid_text(options.message, [])
    settings = project.settings
    chain = project.chain()
    if chain.revisions:
        # The first revision is the baseline: a database built like the one it was read from stands
        # there, and `up` brings the revisions after it (stamping the head would skip them).
        roots = [revision.id for revision in chain.revisions if not revision.parents]
        first = roots[0] if len(roots) == 1 else "<the baseline revision>"
        raise HistoryExistsError(
            f"{settings.migrations_path} already holds {plural(len(chain.revisions), 'revision')}: baseline starts a "
            f"history. For another database built like the first baseline, record it with `pgmig stamp {first}` "
            "and apply the revisions after it with `pgmig up`; to carry this one to the models, run `pgmig generate`"
        )
    async with connection(project.database_url) as conn:
        applied = await project.versions.applied(conn)
    if applied:
        raise HistoryExistsError(
            f"the version table {project.versions.qualified} already records {plural(len(applied), 'revision')} "
            "whose files are not in the migrations folder: restore the files, or clear the records with "
            "`pgmig stamp base` first"
        )

    state = await Checker(project, project.database_url).state()
    up = build_plan(SchemaState(), state, project.handlers)
    if up.is_empty:
        raise UsageError(
            "the database holds nothing pgmig manages (in "
            f"{agree(len(settings.schema_names), 'schema', 'schemas')} {', '.join(settings.schema_names)}, excluded objects left out): nothing to baseline; "
            "run `pgmig generate` to start from the models"
        )
    down = build_plan(state, SchemaState(), project.handlers)

    created = datetime.now(timezone.utc)
    revision_id = new_revision_id(created)
    file_name = f"{revision_id}_{slugify(options.message)}.py"
    with project.timings.phase("render"):
        text = render_revision(
            revision_id,
            None,
            options.message,
            up.operations,
            down.operations,
            transactional=all(op.transactional for op in [*up.operations, *down.operations]),
        )
    if options.verify:
        async with scratch_database(settings.embedded_data_dir, project.scratch_server("baseline's proof")) as url:
            await seed_referenced(project, url, models=False)  # the database's own references, not the models'
            with project.timings.phase("proof"):
                await prove(project, chain, file_name, text, url, expected=state)
    path = project.write_revision(file_name, text)  # with the post_write hook
    try:
        await project.runner().stamp(revision_id)
    except PgmigError as exc:
        raise RevisionError(
            f"wrote {path} but could not record it as applied: {exc}; run `pgmig stamp {revision_id}` "
            "once the database is reachable (never `pgmig up`: its objects exist already)"
        ) from exc
    return BaselineResult(path=path, revision_id=revision_id, objects=len(state))
