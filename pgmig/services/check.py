"""`pgmig check` and drift: proving the revisions build what the models describe.

Everything runs on a scratch database (a throwaway database on the embedded
server, or on the `dev_url` server); the configured database is only read,
for checksums and drift. Schemas are compared as pgmig's own schema states,
so plugin objects count exactly like tables and columns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Collection, Dict, List, Optional, Sequence

from pgmig.errors import ConnectionLostError, DatabaseError, PgmigError
from pgmig.plan.diff import Plan, diff_states
from pgmig.plan.engine import current_state
from pgmig.revisions.files import Chain, Revision
from pgmig.revisions.runner import Runner, Status, edited_note, read_status
from pgmig.schema.exclude import Exclusions
from pgmig.schema.objects import SchemaState, key_text
from pgmig.schema.protocol import DatabaseContext
from pgmig.services.project import Project

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass
class RevisionCheck:
    revision: Revision
    status: str = OK
    problems: List[str] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return {
            "revision": self.revision.id,
            "file": self.revision.path.name,
            "status": self.status,
            "problems": self.problems,
        }


@dataclass
class CheckReport:
    revisions: List[RevisionCheck] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    missing_migration: Optional[Plan] = None

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and all(r.status in (OK, SKIPPED) for r in self.revisions)
            and (self.missing_migration is None or self.missing_migration.is_empty)
        )

    def to_json(self) -> Dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "revisions": [r.to_json() for r in self.revisions],
            "missing_migration": self.missing_migration.to_json() if self.missing_migration else None,
        }


async def version_mismatch(database_url: str, scratch_url: str) -> Optional[str]:
    """A line saying that the scratch server's major version is not the database's, or None.

    Definitions read back from two servers of different major versions may print differently
    (PostgreSQL 16 stopped qualifying a view's columns with their table, say), so a comparison
    of the two sides can differ where nothing does: said next to such differences.
    """
    from pgmig.db.connect import connection

    majors = []
    for url in (database_url, scratch_url):
        async with connection(url) as conn:
            majors.append(int(await conn.fetchval("SHOW server_version_num")) // 10000)
    if majors[0] == majors[1]:
        return None
    return (
        f"the scratch server is PostgreSQL {majors[1]} and the database's {majors[0]}, which print some "
        "definitions (views, expressions) differently: set dev_url to a server of the database's major version"
    )


def describe_differences(expected: SchemaState, actual: SchemaState) -> List[str]:
    """What `actual` has that `expected` has not, object by object, in words."""
    lines = []
    for change in diff_states(expected, actual):
        if change.action == "create":
            lines.append(f"{key_text(change.key)} is there but should not be")
        elif change.action == "destroy":
            lines.append(f"{key_text(change.key)} is missing")
        else:
            diffs = "; ".join(f"{k}: {o!r} instead of {n!r}" for k, (n, o) in change.differences().items())
            lines.append(f"{key_text(change.key)} differs ({diffs})")
    return lines


CheckProgress = Callable[[RevisionCheck, float], None]
"""Told of each revision as its replay ends: its check so far and the seconds the replay took."""


class Checker:
    """Replays a chain on a scratch database and checks every revision's down; `progress` is told
    of each revision as its check ends."""

    def __init__(
        self,
        project: Project,
        scratch_url: str,
        notice: Optional[Callable[[str], None]] = None,
        progress: Optional[CheckProgress] = None,
    ) -> None:
        self.project = project
        self.url = scratch_url
        self.notice = notice or (lambda message: None)
        self.progress = progress or (lambda item, seconds: None)

    async def state(
        self, conn: Any = None, exclude: Optional[Exclusions] = None, schemas: Optional[Sequence[str]] = None
    ) -> SchemaState:
        """The database's objects: on `conn` alone (the replay's session), else read as a diff reads them,
        on two connections sharing a snapshot (drift reads a whole production schema).

        `exclude`: what is left out (default: the project's exclusions; the version table always is);
        `schemas`: the schemas read (default: the managed ones; a fleet's schema target: its own).
        """
        from functools import partial

        from pgmig.db.connect import connect, connection

        settings = self.project.settings
        context = partial(
            DatabaseContext,
            schemas=settings.schema_names if schemas is None else tuple(schemas),
            version_table=settings.version_table,
            exclude=settings.exclusions if exclude is None else exclude,
        )
        if conn is not None:
            return await current_state(context(conn), self.project.handlers)
        async with connection(self.url) as own:
            return await current_state(context(own), self.project.handlers, connect=partial(connect, self.url))

    def runner(self, chain: Chain) -> Runner:
        """A runner on the scratch database."""
        return self.project.runner(self.url, chain=chain)

    async def run(self, chain: Chain, skip: Collection[str] = ()) -> CheckReport:
        """One session for the whole replay: every step reuses its connection and lock.

        `skip`: revisions not checked, which the scratch database has
        applied already (closed under ancestry); the others are checked.
        """
        runner = self.runner(chain)
        async with runner.session() as conn:
            return await self._run(chain, runner, conn, skip)

    async def _run(self, chain: Chain, runner: Runner, conn: Any, skip: Collection[str]) -> CheckReport:
        """Each revision once, in graph order (a branch's revisions and their merge included): up, down
        (of that revision alone, back to the state before it), up again; the states compared after each."""
        report = CheckReport()
        before = await self.state(conn)
        for revision in chain.revisions:
            if revision.id in skip:
                continue
            item = RevisionCheck(revision)
            report.revisions.append(item)
            started = time.perf_counter()
            after = await self._check(item, runner, conn, before)
            self.progress(item, time.perf_counter() - started)
            if after is None:
                report.problems.append(f"replay stopped at {revision.path.name}")
                break
            before = after
        return report

    async def _check(
        self, item: RevisionCheck, runner: Runner, conn: Any, before: SchemaState
    ) -> Optional[SchemaState]:
        """`item`'s revision up, down (back to `before`), up again, the states compared after each;
        the state it leaves, or None when a step failed (the replay cannot go on)."""
        revision = item.revision
        if not await _step(item, "up", runner.upgrade(revision.id)):
            return None
        after = await self.state(conn)
        if not await _step(item, "down", runner.rollback(revision.id)):
            return None
        _compare(item, "down does not restore", before, await self.state(conn))
        if not await _step(item, "up after down", runner.upgrade(revision.id)):
            return None
        again = await self.state(conn)
        _compare(item, "up after down differs", after, again)
        return again


def _restarts(item: RevisionCheck, status: Optional[Status]) -> bool:
    """Whether `item` failed at the `up` of a revision the configured database has applied, unedited
    since: a database adopted mid-history, whose check starts again from its objects (see `_adopted`)."""
    if status is None or item.status != FAILED or not item.problems[:1]:
        return False
    failed_up = item.problems[0].startswith("up failed")
    return failed_up and item.revision.id in status.applied and item.revision not in status.edited


def _adopted(checked: CheckReport, status: Optional[Status]) -> bool:
    """Whether the replay from empty stopped at an `up` of a revision the configured database has applied,
    unedited since (a database adopted mid-history: that revision assumes objects an empty database
    lacks); a file edited after it was applied may be what fails, so it is reported as it is."""
    return bool(checked.problems and checked.revisions) and _restarts(checked.revisions[-1], status)


async def _step(item: RevisionCheck, label: str, step: Awaitable[Any]) -> bool:
    """Run one step of the replay; False (and the problem noted) when it failed."""
    try:
        await step
    except ConnectionLostError:
        raise  # the scratch session ended, not the revision: no finding about it
    except PgmigError as exc:
        item.status = FAILED
        item.problems.append(f"{label} failed: {_explained(str(exc))}")
        return False
    return True


def _compare(item: RevisionCheck, problem: str, expected: SchemaState, found: SchemaState) -> None:
    if found != expected:
        item.status = FAILED
        item.problems.extend(f"{problem}: {line}" for line in describe_differences(expected, found))


def _explained(message: str) -> str:
    """A step's error, with what 55P04 means in a revision."""
    if "55P04" in message or "unsafe use of new value" in message:
        return message + " (a new enum label is used in the transaction that added it)"
    return message


def _applied_database(project: Project) -> Optional[str]:
    """The database `up` would run against, in words, when it may hold applied revisions: the configured
    one, or the embedded server's once it has data (without data it holds nothing: not started for it)."""
    if project.settings.database_url:
        return "the configured database"
    from pgmig.db.embedded import has_data

    return "the embedded server's database" if has_data(project.settings.embedded_data_dir) else None


@dataclass(frozen=True)
class CheckOptions:
    """`dev_url`: the server the scratch database is made on (default: the embedded one)."""

    dev_url: Optional[str] = None


async def check(
    project: Project, options: Optional[CheckOptions] = None, progress: Optional[CheckProgress] = None
) -> CheckReport:
    """Replay every revision on a scratch database, check each down, and compare with the models.

    `progress` is told of each revision's check as it ends, except a failure the check then starts
    again from (a database adopted mid-history: the revisions it has applied are not replayed).

    Also reports applied files whose meaning changed since (`Status.edited`) on the database `up` would
    run against: the configured one, or the embedded server's when it has data.
    Problems are in the report (`ok` is False), not raised; raises
    ModelsError, DatabaseError when the scratch server cannot be used.
    """
    from pgmig.db.connect import connection
    from pgmig.db.scratch import scratch_database
    from pgmig.services.proof import Source, scratch_from, seed_referenced

    options = options or CheckOptions()
    chain = project.chain()
    report = CheckReport()
    status: Optional[Status] = None
    where = _applied_database(project)
    if where is not None:
        try:
            async with connection(project.database_url) as conn:
                status = read_status(chain, await project.versions.applied(conn))
            report.problems.extend(f"{revision.path.name} {edited_note(where)}" for revision in status.edited)
        except DatabaseError as exc:
            project.notice(f"skipped the checksum check: {exc}")
    project.models  # noqa: B018 - import errors before the scratch database is made
    dev_url = project.scratch_server("check", options.dev_url)
    async with scratch_database(project.settings.embedded_data_dir, dev_url) as url:
        await seed_referenced(project, url)
        with project.timings.phase("replay"):
            told = progress or (lambda item, seconds: None)

            def first(item: RevisionCheck, seconds: float) -> None:
                if not _restarts(item, status):
                    told(item, seconds)

            checked = await Checker(project, url, project.notice, first).run(chain)
        if not _adopted(checked, status):
            return await _finish(project, report, checked, url)
    assert status is not None and status.applied
    # The history does not build from empty: start from the configured database's objects instead.
    stopped = checked.revisions[-1]
    project.notice(
        f"the revisions do not build from an empty database ({stopped.problems[0]} in {stopped.revision.path.name}); "
        f"checking from the configured database's objects at {status.current}"
    )
    source = Source(project.database_url, status.heads)
    async with scratch_from(project, chain, source, dev_url, purpose="check") as url:
        with project.timings.phase("replay"):
            checked = await Checker(project, url, project.notice, progress).run(chain, skip=status.applied)
        skipped = [
            RevisionCheck(
                revision, SKIPPED, [f"not replayed: the check starts from the database's objects at {status.current}"]
            )
            for revision in chain.ordered(status.applied)
        ]
        checked.revisions = skipped + checked.revisions
        return await _finish(project, report, checked, url)


async def _finish(project: Project, report: CheckReport, checked: CheckReport, url: str) -> CheckReport:
    """`report` with the replay's results, and (when the replay went through) what the models still need."""
    from pgmig.db.connect import connection

    report.revisions, report.problems = checked.revisions, report.problems + checked.problems
    if not checked.problems:
        async with connection(url) as conn:
            report.missing_migration = await project.diff_one_way(conn, url)
    return report


def drift_at_hand(project: Project) -> bool:
    """Whether `status` measures drift unasked: only when a scratch server is at hand without starting
    one, i.e. `dev_url` is set or the configured database is the embedded server itself.

    Drift replays the applied revisions on a scratch database, so against a real `database_url`
    with no `dev_url` it would start the embedded server (creating `.pgmig/` on first use: seconds
    for a command that otherwise reads one table); `status --drift` asks for it then.
    """
    return bool(project.settings.dev_url) or not project.settings.database_url


async def drift(project: Project) -> "tuple[Status, Optional[List[str]]]":
    """The configured database against what its applied revisions should have built, object by object.

    Returns the status and the differences in words (empty: no drift), or
    None when drift cannot be measured: the revisions do not build from an
    empty database (a database adopted mid-history), so no schema built
    from the history exists to compare with; a notice says why. Comparing
    with a copy of the database's own objects (generate's and check's
    fallback) would always read "no drift", which would be a lie.
    """
    from pgmig.services.proof import HistoryError, scratch_at

    chain = project.chain()
    status = await project.runner(chain=chain).status()
    if status.partial:  # its committed parts are neither applied nor absent: every object would be drift
        return status, None
    try:
        async with scratch_at(
            project, chain, status.heads, purpose="status's drift", models=False
        ) as url:  # drift needs no models
            expected = await Checker(project, url).state()
            differences = describe_differences(expected, await Checker(project, project.database_url).state())
            note = await version_mismatch(project.database_url, url) if differences else None
    except HistoryError as exc:
        project.notice(f"warning: drift not measured: {exc}")
        return status, None
    return status, [*differences, f"note: {note}"] if note else differences
