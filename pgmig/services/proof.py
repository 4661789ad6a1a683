"""The proof of a revision before it is written, and scratch databases built at a point of the history.

`generate` proves each new revision on a scratch database (made on `dev_url`'s
server, default the embedded one) that stands at the revision's starting
point (DESIGN.md section 5, last paragraph):

1. `up` applies,
2. a fresh diff against the models is empty,
3. `down` applies,
4. the schema read back equals the starting schema exactly (pgmig's own
   `SchemaState`, as `pgmig check` compares it),
5. `up` applies again (a `down` that left something behind shows here).

The revision is proven as written: its text is saved to a temporary file,
loaded as a revision module and run by the runner, so the file that is
written is the file that passed. A failure raises `ProofError` naming the
step and what Postgres refused (the statement) or the differences.

The starting point: when the configured database is at head, the revision
was computed against its objects, so the scratch database is built from
them (`scratch_from`: pgmig's own plan from an empty state to those objects,
applied, and head stamped); this also covers a database adopted
mid-history, one with objects and no revisions yet, and one that drifted.
Otherwise `generate` already replayed the history into a scratch database
and the proof runs there. Where the history does not build from an empty
database (a database adopted mid-history: its first revision assumes tables
that already exist, or `stamp` recorded revisions that never ran),
`scratch_at` builds from the configured database's objects at the revision
it has applied, then replays the rest. `generate`, `check` and drift share
these.
"""

from __future__ import annotations

import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Iterable, List, Optional, Set

from pgmig.db.quoting import terminated
from pgmig.errors import ConnectionLostError, Hint, PgmigError, RevisionError
from pgmig.revisions.files import BASE, Chain, Revision, Target, load_revision_file
from pgmig.services.project import Project

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.plan.diff import Plan
    from pgmig.schema.exclude import Exclusions
    from pgmig.schema.objects import Key, SchemaObject, SchemaState

UP, DIFF_AFTER_UP, DOWN, SCHEMA_AFTER_DOWN, UP_AGAIN = "up", "diff after up", "down", "schema after down", "up again"
# In place of DIFF_AFTER_UP when the revision must build a given schema (baseline), not the models.
SCHEMA_AFTER_UP = "schema after up"
STEPS = (UP, DIFF_AFTER_UP, SCHEMA_AFTER_UP, DOWN, SCHEMA_AFTER_DOWN, UP_AGAIN)

WRITE_UNPROVEN = Hint("write it unproven (then fix it by hand)", "verify")


class ProofError(RevisionError):
    """The new revision failed its proof on a scratch database, so it was not written (exit 3).

    `step` is one of STEPS; `details` are what failed: Postgres's error with
    the statement it refused, the changes a diff still finds, or the schema
    differences `down` left.
    """

    def __init__(self, step: str, details: List[str]) -> None:
        super().__init__(
            f"the new revision failed its proof on a scratch database at step '{step}': "
            f"{'; '.join(details)}; nothing was written",
            hint=WRITE_UNPROVEN,
        )
        self.step = step
        self.details = list(details)


class HistoryError(RevisionError):
    """The revisions could not be replayed on a scratch database (never on the configured one)."""


@dataclass(frozen=True)
class Source:
    """A database whose current objects stand for the history up to `at` (a `Target`: None or () for
    nothing applied, several ids when it stands on several branches)."""

    url: str
    at: Target


async def copy_objects(
    project: Project, source_url: str, target_url: str, managed: bool = True, models: bool = True
) -> None:
    """Create in the (empty) database at `target_url` the objects of the database at `source_url`.

    The objects are read as a diff reads them (the handlers in use, the
    project's schema, the version table left out) and created with pgmig's
    own plan from an empty state, so what the scratch holds is exactly what
    pgmig sees in the source. Excluded objects (`pgmig.schema.exclude`) are
    left out but for those that the copied objects or (with `models`, when
    the user excludes anything) the models' objects need: the excluded
    table a managed foreign key references (`referenced_excluded`). With
    `managed` False, only those. Raises DatabaseError, ModelsError.
    """
    from pgmig.db.connect import connection
    from pgmig.ops.actor import execute
    from pgmig.plan.diff import build_plan
    from pgmig.schema.exclude import NOTHING
    from pgmig.schema.objects import SchemaState
    from pgmig.services.check import Checker

    everything = await Checker(project, source_url).state(exclude=NOTHING)
    exclude = project.settings.exclusions
    kept = [obj for obj in everything if not exclude.excludes(obj)]
    referencing = list(kept)
    if models and project.settings.exclude:
        from pgmig.plan.engine import desired_objects

        referencing += desired_objects(project.models, project.handlers)
    needed = referenced_excluded(everything, exclude, referencing)
    state = SchemaState([*(kept if managed else ()), *(everything[key] for key in needed)])
    plan = build_plan(SchemaState(), state, project.handlers)
    async with connection(target_url) as conn:
        # Thousands of statements: sent as scripts of CHUNK, each one round trip and one commit
        # (one transaction for all would hold a lock per new relation, past the lock table's size).
        script: List[str] = []
        for op in plan.operations:
            for statement, parameters in op.bound_statements():
                if parameters:
                    await _run_script(conn, script)
                    await execute(conn, statement, *parameters)
                else:
                    script.append(statement)
                    if len(script) >= CHUNK:
                        await _run_script(conn, script)
        await _run_script(conn, script)


def referenced_excluded(
    everything: "SchemaState", exclude: "Exclusions", referencing: "Iterable[SchemaObject]"
) -> "Set[Key]":
    """The keys of the excluded objects of `everything` (a database's objects, nothing excluded) that
    the `referencing` objects depend on, and what those depend on in turn: for a managed foreign key
    to an excluded table, that table, the referenced columns and key. A scratch database needs them
    for the managed objects to build; the other columns, indexes and checks of the table stay out."""
    needed: Set[Key] = set()
    waiting = [dep for obj in referencing for dep in obj.dependencies]
    while waiting:
        key = waiting.pop()
        obj = everything.get(key)
        if obj is None or key in needed or not exclude.excludes(obj):
            continue
        needed.add(key)
        waiting.extend(obj.dependencies)
    return needed


async def seed_referenced(project: Project, url: str, models: bool = True) -> None:
    """Create in the empty scratch database at `url` what `referenced_excluded` finds in the configured
    database for its managed objects and (with `models`) the models', so that a history whose managed
    objects reference excluded ones replays there.

    Only with exclude patterns of the user's (the other tools' version tables, excluded by default, are
    referenced by nothing), and only when a database URL is configured (no embedded server is started for
    it); a configured database that cannot be read is said in a notice and the replay goes on without.
    """
    from pgmig.errors import DatabaseError

    if not project.settings.exclude or not project.settings.database_url:
        return
    try:
        await copy_objects(project, project.database_url, url, managed=False, models=models)
    except DatabaseError as exc:
        project.notice(f"warning: excluded objects the revisions reference were not copied to the scratch: {exc}")


CHUNK = 300


async def _run_script(conn: Any, script: List[str]) -> None:
    """Send `script`'s statements as one script (one transaction) and empty it.

    A chunk that fails is rolled back whole and run again statement by
    statement, so the DatabaseError names the statement Postgres refused.
    """
    from pgmig.ops.actor import execute

    if not script:
        return
    statements = list(script)
    script.clear()
    if len(statements) == 1:
        await execute(conn, statements[0])
        return
    try:
        async with conn.transaction():  # a savepoint: a failed chunk is retried statement by statement
            await conn.execute("\n".join(terminated(statement) for statement in statements))
        return
    except Exception:  # noqa: BLE001 - the statement at fault is named below
        pass
    for statement in statements:
        await execute(conn, statement)


@asynccontextmanager
async def scratch_at(
    project: Project,
    chain: Chain,
    target: Target,
    source: Optional[Source] = None,
    purpose: str = "replaying the revisions",
    models: bool = True,
) -> AsyncIterator[str]:
    """The URL of a scratch database at `target` of `chain` (None or (): base), dropped after.

    Made on `dev_url`'s server, else the embedded one (`purpose` words what for, in the notice
    that says so: see `Project.scratch_server`). The revisions are replayed from empty (after
    `seed_referenced`, `models` saying whether the models' references count). When that fails and `source` is
    given (a database at `source.at`, not after `target`), the scratch is
    rebuilt from `source`'s current objects, `source.at` is stamped and the
    rest replayed; a notice says so. Raises HistoryError when neither
    builds, worded as a failure on a scratch database.
    """
    from pgmig.db.scratch import scratch_database

    server = project.scratch_server(purpose)
    async with scratch_database(project.settings.embedded_data_dir, server) as url:
        await seed_referenced(project, url, models)
        failure = await _replayed(project, url, chain, target)
        if failure is None:
            yield url
            return
    if source is None or not chain.closure(source.at) <= chain.closure(target):
        raise HistoryError(f"replaying the revisions on an empty scratch database failed: {failure}") from failure
    project.notice(
        f"the revisions do not build from an empty database ({failure}); the scratch database starts from "
        f"the configured database's objects at {source.at or 'base'} instead"
    )
    async with scratch_from(project, chain, source, purpose=purpose) as url:
        later = await _replayed(project, url, chain, target)
        if later is not None:
            raise HistoryError(
                f"replaying the revisions after {_at(source.at)} on a scratch database built from "
                f"the configured database's objects failed: {later}"
            ) from later
        yield url


@asynccontextmanager
async def scratch_from(
    project: Project,
    chain: Chain,
    source: Source,
    dev_url: Optional[str] = None,
    purpose: str = "copying the database's objects",
) -> AsyncIterator[str]:
    """The URL of a scratch database holding `source`'s current objects, with `source.at` stamped; dropped after.

    Made on `dev_url`'s server (default: the project's dev_url, else the embedded server, noticed
    with `purpose`: see `Project.scratch_server`).
    """
    from pgmig.db.scratch import scratch_database

    server = project.scratch_server(purpose, dev_url)
    async with scratch_database(project.settings.embedded_data_dir, server) as url:
        with project.timings.phase("copy"):
            await copy_objects(project, source.url, url)
        if source.at:
            await project.runner(url, chain=chain).stamp(source.at)
        yield url


def _at(target: Target) -> str:
    """A `Target` in words: `base`, an id, or `a + b`."""
    if not target:
        return BASE
    return target if isinstance(target, str) else " + ".join(target)


async def _replayed(project: Project, url: str, chain: Chain, target: Target) -> Optional[PgmigError]:
    """Apply `chain` up to `target` on `url`; the error when a revision failed, None when it went through."""
    try:
        with project.timings.phase("replay"):
            await project.runner(url, chain=chain).upgrade(target or BASE)
    except ConnectionLostError:
        raise  # the scratch session ended: says nothing about the history
    except PgmigError as exc:
        return exc
    return None


def load_text(file_name: str, text: str) -> Revision:
    """`text` loaded as the revision file `file_name` would be (from a temporary folder); RevisionError
    when it does not load, before anything is written."""
    with tempfile.TemporaryDirectory(prefix="pgmig-proof-") as folder:
        path = Path(folder) / file_name
        path.write_text(text, encoding="utf-8")
        return load_revision_file(path)


async def prove(
    project: Project, chain: Chain, file_name: str, text: str, url: str, expected: Optional["SchemaState"] = None
) -> None:
    """Prove the revision `text` (to be saved as `file_name`, following `chain`'s head) on the scratch at `url`.

    The scratch database must stand at `chain.head`. After `up`, a fresh diff
    against the models must be empty; with `expected` (baseline: a revision
    that builds a database's schema, not the models'), the schema read back
    must equal `expected` instead (step SCHEMA_AFTER_UP). Raises ProofError
    naming the failed step; leaves the scratch database changed.
    """
    from pgmig.db.connect import connection
    from pgmig.revisions.files import build_chain
    from pgmig.services.check import Checker, describe_differences, version_mismatch

    revision = load_text(file_name, text)
    proven = build_chain([*chain.revisions, revision])
    checker = Checker(project, url)
    runner = project.runner(url, chain=proven)
    async with runner.session() as conn:
        before = await checker.state(conn)
        await _step(UP, runner.upgrade(revision.id))
        if expected is not None:
            built = describe_differences(expected, await checker.state(conn))
            if built:
                note = await version_mismatch(project.database_url, url)
                raise ProofError(SCHEMA_AFTER_UP, [*built, note] if note else built)
        else:
            # On a connection of its own, as `pgmig diff` would read it (not the run's session, with its timeouts).
            async with connection(url) as fresh:
                leftover = await project.diff_one_way(fresh, url)
            if not leftover.is_empty:
                raise ProofError(DIFF_AFTER_UP, _described(leftover))
        await _step(DOWN, runner.rollback(revision.id))
        differences = describe_differences(before, await checker.state(conn))
        if differences:
            raise ProofError(SCHEMA_AFTER_DOWN, differences)
        await _step(UP_AGAIN, runner.upgrade(revision.id))


async def _step(step: str, run: Awaitable[Any]) -> None:
    """Await one runner step; its failure (the runner's message names the statement) as a ProofError."""
    try:
        await run
    except ConnectionLostError:
        raise  # the scratch session ended: says nothing about the revision
    except PgmigError as exc:
        raise ProofError(step, [str(exc)]) from exc


def _described(plan: Plan) -> List[str]:
    """Each change a diff still finds after `up`, in words, with its statements."""
    from pgmig.services.generate import describe_change

    return [
        f"{describe_change(change)} ({'; '.join(s for op in change.operations for s in op.statements())})"
        for change in plan.changes
    ]
