"""Applying and rolling back revisions.

One run holds a session-level advisory lock on its own connection from start
to end, so two `pgmig up` at once never apply a revision twice: the second
waits, then re-reads the version table and finds nothing left to do. Each
revision runs in its own transaction together with its version-table row.

pgmig's sessions start with no timeouts (`pgmig.db.connect.OWN_TIMEOUTS`,
whatever the database's or role's defaults): the wait for the advisory lock,
reading the version table and writing its row must not time out. Each
revision's statements, on the session and on its autocommit side
connection, get `lock_timeout` and `statement_timeout`, so a statement
queued behind another transaction's lock fails after a few seconds instead
of stalling every query on that table.

`up`, `down` and their `--sql` share one path: `plan_run` turns the
version table and a target into the revisions to run (refusing a target in
the wrong direction), and one loop (`Runner._walk`) carries each revision
out through a mode: `_Execute` runs it on the connection, `_Record` writes
the SQL it would run, with its transaction boundaries (Alembic's `as_sql`).
"""

from __future__ import annotations

import hashlib
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from typing import (
    Any,
    AsyncContextManager,
    AsyncIterator,
    Callable,
    Dict,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
)

from pgmig.db.quoting import quote_ident, sql_comment, terminated
from pgmig.errors import ConnectionLostError, DatabaseError, PgmigError, RevisionError, UsageError, agree, plural
from pgmig.ops.actor import DatabaseActions, SideSteps, forget_schema, side_steps
from pgmig.ops.base import Operation, UnknownOperationError, safe_to_rerun, translate_schemas
from pgmig.ops.data import StepArgumentError
from pgmig.revisions.files import BASE, HEADS, Chain, Revision, Target, described_exit, foreign_exit
from pgmig.revisions.migrator import Migrator, NoConnectionError
from pgmig.revisions.parts import (
    DEFAULT_SERVER,
    OUT_OF_SHARED_MEMORY,
    LockTable,
    LockTableError,
    Progress,
    ProgressTable,
    estimate,
    part_ends,
    read_lock_table,
    steps_digest,
)
from pgmig.revisions.version_table import (
    INSUFFICIENT_PRIVILEGE,
    AppliedRevision,
    BookkeepingPrivilegeError,
    VersionTable,
)

Direction = Literal["up", "down"]
UP: Direction = "up"
DOWN: Direction = "down"


def edited_note(where: Optional[str] = None) -> str:
    """What status and check say of a file in `Status.edited`, after its name; `where` names the database."""
    applied = f"applied to {where}" if where else "applied"
    return (
        f"was edited after it was {applied} (its code changed, not only its layout); if that is intended, "
        "pgmig stamp --accept-edits records it as it is now"
    )


@dataclass
class Status:
    """The database against the revision graph: `applied` is closed under ancestry (`read_status`)."""

    chain: Chain
    applied: Dict[str, AppliedRevision]
    partial: List[Progress] = field(default_factory=list)
    """Revisions committed in part (`commit_in_parts`) by a run that stopped between parts."""
    problems: List[str] = field(default_factory=list)
    """Where the version table does not follow the revisions (read leniently: `read_status`)."""

    @property
    def heads(self) -> Tuple[str, ...]:
        """Where the database stands: its applied revisions that no applied revision follows, in graph
        order; () at base, several when two branches' revisions are applied and their merge is not."""
        return self.chain.tips(self.applied)

    @property
    def current(self) -> str:
        """`heads` for people: `base` (nothing applied), one id, or `a + b`; never a target (use `heads`)."""
        return " + ".join(self.heads) or BASE

    @property
    def pending(self) -> List[Revision]:
        """Revisions not applied, in the order `up` applies them (on every branch)."""
        return [r for r in self.chain.revisions if r.id not in self.applied]

    @property
    def edited(self) -> List[Revision]:
        """Applied revisions whose file changed meaning since it was applied (`Revision.matches`:
        a reformatted file, or one whose comments or docstrings changed, is not edited)."""
        return [r for r in self.chain.revisions if r.id in self.applied and not r.matches(self.applied[r.id].checksum)]

    @property
    def legacy(self) -> List[Revision]:
        """Applied revisions whose row holds the hash of the file's bytes (written by an earlier pgmig) and
        matches the file: their rows can take the checksum over meaning."""
        return [
            r
            for r in self.chain.revisions
            if r.id in self.applied
            and self.applied[r.id].checksum != r.checksum
            and r.matches(self.applied[r.id].checksum)
        ]


def read_status(chain: Chain, applied: Dict[str, AppliedRevision], strict: bool = True) -> Status:
    """Check the version table against the files: every applied revision has a file, and whatever an
    applied revision follows is applied too (any such set is valid: one branch applied before the
    other's revision or their merge existed, say). Raises RevisionError naming the files otherwise;
    with `strict` False (what only reads: status, history) the problems are in `Status.problems`."""
    problems: List[str] = []
    unknown = [rid for rid in applied if rid not in chain.by_id]
    if unknown:
        problems.append(
            f"the database has applied {agree(len(unknown), 'revision', 'revisions')} {', '.join(unknown)} that no file in the migrations folder "
            "defines (a missing file, or a database from another branch?)"
        )
    for revision in chain.revisions:
        missing = [parent for parent in revision.parents if revision.id in applied and parent not in applied]
        if missing:
            problems.append(
                f"revision {revision.id} is applied but {chain.described(missing)}, which it follows, is not; "
                "the version table does not follow the revisions (was the revision re-parented after it was "
                "applied? put its down_revision back and join the branches with pgmig merge; otherwise "
                "pgmig stamp REV records where the database really stands)"
            )
    if problems and strict:
        raise RevisionError(problems[0])
    return Status(chain, applied, problems=problems)


@dataclass(frozen=True)
class RunPlan:
    """What one `up` or `down` runs: `revisions` in the order they run."""

    direction: Direction
    revisions: List[Revision]


def plan_run(status: Status, direction: Direction, target: Target = None) -> RunPlan:
    """The revisions between where the database stands and `target`, in the order they run.

    `up` (default target: `heads`, every branch): the revisions `target`
    needs that are not applied, each after all it follows, so a branch's
    revision whose file sorts before revisions already applied on the
    other branch is applied too; none when the database is at `target`.
    `down`: a revision id rolls back every applied revision that follows
    it, directly or not (the id itself stays); `base` rolls back all; no
    target rolls back the one revision the database stands at (a merge
    revision: only it, leaving both its parents). Latest first.

    Raises RevisionError for an unknown target, `head` with several heads,
    an `up` target behind the database (an applied revision follows it), a
    `down` target not applied, a `down` from base other than `down base`,
    and a `down` without target when the database stands on several branches.
    """
    chain, applied = status.chain, set(status.applied)
    if direction == UP:
        wanted = chain.closure(HEADS if target is None else target)
        todo = wanted - applied
        # Behind: an applied revision follows what `target` names (`base`: anything applied).
        followers = {rid for name in chain.tips(wanted) for rid in chain.descendants(name)} - wanted
        if not todo and target not in (None, HEADS) and (followers & applied if wanted else applied):
            raise RevisionError(f"{target} is behind the current revision {status.current}; use pgmig down")
        return RunPlan(direction, chain.ordered(todo))
    if not applied and target != BASE:
        raise RevisionError("the database is at base (nothing applied): there is nothing to roll back")
    if target is None:
        if len(status.heads) > 1:
            raise RevisionError(
                f"the database stands on {len(status.heads)} branches ({chain.described(status.heads)}): "
                "name the revision to roll back to (pgmig down REV rolls back what follows REV), or merge them"
            )
        undo = set(status.heads)
    elif target == BASE:
        undo = applied
    else:
        keep = chain.closure(target)
        if not keep <= applied:
            raise RevisionError(f"{target} is ahead of the current revision {status.current}; use pgmig up")
        undo = {rid for name in chain.tips(keep) for rid in chain.descendants(name)} & applied - keep
    return RunPlan(direction, chain.ordered(undo)[::-1])


RELATIVE = re.compile(r"([+-])([0-9]+)")
"""A relative target: `+N` (up: the next N pending revisions), `-N` (down: the last N applied)."""


def relative_steps(direction: Direction, spec: str) -> int:
    """N of a relative target `spec` (`+N` for up, `-N` for down; `RELATIVE` must match it).

    Raises UsageError for a sign that goes the other way and for N = 0: checkable before any
    database is read (a fleet refuses it before any target runs)."""
    found = RELATIVE.fullmatch(spec)
    assert found is not None  # the caller matched it
    sign, steps = found.group(1), int(found.group(2))
    wanted = "+" if direction == "up" else "-"
    if sign != wanted:
        other = "down -" if direction == "up" else "up +"
        raise UsageError(
            f"pgmig {direction} {spec}: {direction} takes {wanted}N ({'forward' if direction == 'up' else 'back'}); "
            f"pgmig {other}{steps} goes the other way"
        )
    if steps == 0:
        raise UsageError(f"pgmig {direction} {spec}: give a number of revisions of at least 1")
    return steps


def relative_target(current: Status, direction: Direction, spec: str) -> str:
    """The revision id (or `base`) that `+N` (up) or `-N` (down) names from where the database stands:
    the N-th pending revision in the order up applies them, or the applied revision N before the
    current one. Only where the history runs in a line: the run must cover exactly N revisions.

    Raises UsageError for a sign that goes the other way, N = 0, N beyond what is pending or applied,
    and a range where the history branches or merges (a revision id says which branch)."""
    steps = relative_steps(direction, spec)
    if direction == "up":
        pending = current.pending
        if steps > len(pending):
            raise UsageError(
                f"pgmig up {spec}: only {plural(len(pending), 'revision')} {agree(len(pending), 'is', 'are')} pending"
            )
        target = pending[steps - 1].id
    else:
        applied = current.chain.ordered(set(current.applied))
        if steps > len(applied):
            raise UsageError(
                f"pgmig down {spec}: only {plural(len(applied), 'revision')} {agree(len(applied), 'is', 'are')} applied"
            )
        target = BASE if steps == len(applied) else applied[-steps - 1].id
    if len(plan_run(current, direction, target).revisions) != steps:
        raise UsageError(
            f"pgmig {direction} {spec}: the history branches or merges within {plural(steps, 'revision')} of the "
            "current one; name the revision to stop at (pgmig history lists them)"
        )
    return target


_OFFLINE_APPLIED_AT = datetime(1970, 1, 1, tzinfo=timezone.utc)


def offline_applied(chain: Chain, start: Target) -> Dict[str, AppliedRevision]:
    """The version table of a database standing at `start` (a revision, several, or `base`) as
    `pgmig up` leaves it: one row per revision `start` needs, with its file's checksum. What
    offline `--sql` plans from. Raises RevisionError for a name `Chain.resolve` refuses."""
    return {
        rid: AppliedRevision(rid, chain.by_id[rid].checksum, _OFFLINE_APPLIED_AT, 0.0) for rid in chain.closure(start)
    }


def _described(target: Target) -> str:
    if target is None:
        return BASE
    return target if isinstance(target, str) else " + ".join(target)


def plan_rollback(status: Status, revision_id: str) -> RunPlan:
    """`down` of exactly `revision_id` and the applied revisions that follow it, latest first (other
    branches stay): how `check` undoes one revision of a graph. Raises RevisionError for an unknown id."""
    chain = status.chain
    undo = chain.descendants(chain.resolve(revision_id)) & set(status.applied)
    return RunPlan(DOWN, chain.ordered(undo)[::-1])


class MigrationTimeoutError(DatabaseError):
    """A statement waited longer than lock_timeout for a lock, or ran longer than statement_timeout."""


LOCK_NOT_AVAILABLE, QUERY_CANCELED = "55P03", "57014"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what caused it, nearest first (at most ten deep)."""
    current: Optional[BaseException] = exc
    for _ in range(10):
        if current is None:
            return
        yield current
        current = current.__cause__ or current.__context__


def _timeout_cause(exc: BaseException) -> Optional[str]:
    """LOCK_NOT_AVAILABLE / QUERY_CANCELED when a timeout (not a user's cancel) is behind `exc`."""
    for current in _causes(exc):
        state = getattr(current, "sqlstate", None)
        if state == LOCK_NOT_AVAILABLE:
            return LOCK_NOT_AVAILABLE
        if state == QUERY_CANCELED and "statement timeout" in str(current):
            return QUERY_CANCELED
    return None


def _out_of_locks(exc: BaseException) -> bool:
    """Whether Postgres's "out of shared memory" (53200: the lock table is full) is behind `exc`."""
    return any(getattr(current, "sqlstate", None) == OUT_OF_SHARED_MEMORY for current in _causes(exc))


def lock_table_message(
    revision: Revision, direction: Direction, table: LockTable, needed: Optional[int], left: str
) -> str:
    """What a revision that does not fit the server's lock table is told: its name, the
    estimate (`needed`; None when Postgres ran out), the server's settings and the ways out.
    `left`: what of the revision stayed applied, as `_Execute._left` words it."""
    name = f"revision {revision.path.name} ({direction})"
    if needed is not None:
        what = f"{name} needs about {needed} locks in one transaction (pgmig's estimate of its steps)"
    else:
        what = f"{name} ran out of the server's lock table (Postgres: out of shared memory, SQLSTATE 53200)"
    ways = (
        "raise max_locks_per_transaction on the server (ALTER SYSTEM SET max_locks_per_transaction = ..., "
        "then restart it), or run it when fewer sessions hold locks"
    )
    if not revision.commit_in_parts:
        ways = (
            "set commit_in_parts = True in its MigrationRevision class (it then commits in parts of at most "
            f"{table.budget} locks and resumes after the last committed part if stopped), or " + ways
        )
    return (
        f"{what}, while the server's lock table holds {table.described()} locks for all sessions together"
        f"{left}; {ways}; then run pgmig {direction} again"
    )


async def _quietly(awaitable: Any) -> None:
    """Clean-up that must not hide the error being reported (the connection may be gone)."""
    try:
        await awaitable
    except Exception:  # noqa: BLE001 - best effort by design
        pass


@asynccontextmanager
async def _run_lock_privilege() -> AsyncIterator[None]:
    """Taking the run's advisory lock: EXECUTE on the advisory-lock functions (PUBLIC has it by
    default; a hardened database may revoke it) refused is pgmig's bookkeeping, not a revision."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        raise BookkeepingPrivilegeError(
            f"pgmig's run lock (the advisory lock that keeps two runs apart, not a revision) was refused: {exc}; "
            "it needs EXECUTE on pg_catalog.pg_try_advisory_lock(bigint), pg_advisory_lock(bigint) and "
            "pg_advisory_unlock(bigint) (GRANT EXECUTE ON FUNCTION pg_catalog.pg_try_advisory_lock(bigint) TO "
            "the role, and likewise the others); nothing was applied"
        ) from None


def lock_key(versions: VersionTable) -> int:
    digest = hashlib.sha256(f"pgmig:{versions.schema}.{versions.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Runner:
    """Runs revisions of one chain against one database URL."""

    def __init__(
        self,
        url: str,
        chain: Chain,
        versions: VersionTable,
        notice: Optional[Callable[[str], None]] = None,
        progress: Optional[Callable[[str, Revision, float], None]] = None,
        lock_timeout: str = "5s",
        statement_timeout: str = "0",
        schema_map: Optional[Mapping[str, str]] = None,
    ) -> None:
        """`lock_timeout` and `statement_timeout` are Postgres durations ("200ms", "5s"); "0" means none.

        `schema_map` runs the revisions in other schemas than they were written for (a fleet's
        schema-per-tenant target, `{"public": "tenant_a"}`): every step's schema fields are renamed
        (`pgmig.ops.base.translate_schemas`), and the run's sessions put the new schemas first on
        their search_path, so SQL text naming no schema (`execute`, data steps) finds them too.
        """
        from pgmig.db.connect import check_duration

        self.url = url
        self.lock_timeout = check_duration(lock_timeout)
        self.statement_timeout = check_duration(statement_timeout)
        self.chain = chain
        self.versions = versions
        self.notice = notice or (lambda message: None)
        self.progress = progress or (lambda direction, revision, seconds: None)
        self._committed: Optional[Callable[[], Any]] = None
        self._held: Any = None
        self.parts_table = ProgressTable(versions.schema, versions.name)
        self._lock_table: Optional[LockTable] = None
        self.schema_map: Dict[str, str] = dict(schema_map or {})
        self.translate: Optional[Callable[[Operation], Operation]] = (
            partial(translate_schemas, mapping=self.schema_map) if self.schema_map else None
        )

    async def _enter_schemas(self, conn: Any) -> None:
        """Put the mapped schemas first on `conn`'s search_path (for the session; see `schema_map`)."""
        if self.schema_map:
            first = ", ".join(quote_ident(name) for name in dict.fromkeys(self.schema_map.values()))
            await conn.execute(
                "SELECT pg_catalog.set_config('search_path', $1 || ', ' || "
                "pg_catalog.current_setting('search_path'), false)",
                first,
            )

    async def lock_table(self, conn: Any) -> LockTable:
        """The server's lock-table settings, read once a runner."""
        if self._lock_table is None:
            self._lock_table = await read_lock_table(conn)
        return self._lock_table

    # -- connections and the lock --------------------------------------------------

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        """A connection holding the run's advisory lock, and a lazily opened autocommit side connection.

        Inside `async with runner.session()`, further calls (upgrade, downgrade)
        reuse the held session instead of connecting and locking again.
        """
        from pgmig.db.connect import connect, set_timeouts

        if self._held is not None:
            yield self._held
            return
        conn = await connect(self.url)
        side: List[Any] = []
        try:
            key = lock_key(self.versions)
            async with _run_lock_privilege():
                if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    self.notice("waiting for another pgmig run on this database to finish...")
                    await conn.execute("SELECT pg_advisory_lock($1)", key)
            timeouts = self.timeouts
            await self._enter_schemas(conn)

            async def committed() -> Any:
                if not side:
                    side.append(await connect(self.url))
                    await set_timeouts(side[0], **timeouts)
                    await self._enter_schemas(side[0])
                return side[0]

            self._committed = committed
            self._held = conn
            try:
                yield conn
            finally:
                self._held = None
                if not conn.is_closed():
                    # A lost session has already dropped its locks on the server.
                    await _quietly(conn.execute("SELECT pg_advisory_unlock($1)", key))
        finally:
            for extra in side:
                await _quietly(extra.close())
            await _quietly(conn.close())

    @property
    def timeouts(self) -> Dict[str, str]:
        """The configured timeouts, as `set_timeouts` takes them: for the revisions' statements only."""
        return dict(lock_timeout=self.lock_timeout, statement_timeout=self.statement_timeout)

    async def status(self) -> Status:
        from pgmig.db.connect import connection

        async with connection(self.url) as conn:
            status = read_status(self.chain, await self.versions.applied(conn), strict=False)
            for row in await self.parts_table.rows(conn):
                revision = next((r for r in self.chain.revisions if r.id == row.revision_id), None)
                direction = UP if row.direction == UP else DOWN
                steps = await _recorded(revision, direction, self.translate) if revision else None
                status.partial.append(replace(row, total=len(steps) if steps is not None else None))
            return status

    # -- up / down: the range is planned once, then one loop runs or records it -----

    async def upgrade(self, target: Target = None) -> List[Revision]:
        """Apply the pending revisions up to `target` (default: every head); returns those applied."""
        return await self.run(UP, target)

    async def downgrade(self, target: Optional[str] = None) -> List[Revision]:
        """Roll back one revision, or every revision after `target` (`base`: all); returns those rolled back."""
        return await self.run(DOWN, target)

    async def rollback(self, revision_id: str) -> List[Revision]:
        """Roll back `revision_id` and the applied revisions that follow it, nothing else (`plan_rollback`)."""
        async with self.session() as conn:
            status = read_status(self.chain, await self.versions.applied(conn))
            await self._renew_checksums(conn, status)
            return await self._execute(conn, plan_rollback(status, revision_id))

    async def run(self, direction: Direction, target: Target = None) -> List[Revision]:
        """Run `plan_run(direction, target)` on the database, holding the run's lock.

        Raises RevisionError for a target in the wrong direction (see
        `plan_run`), DatabaseError / MigrationTimeoutError when a statement fails.
        """
        self.chain.closure(target)  # an unknown target needs no database to be reported
        async with self.session() as conn:
            status = read_status(self.chain, await self.versions.applied(conn))
            await self._renew_checksums(conn, status)
            return await self._execute(conn, plan_run(status, direction, target))

    async def _execute(self, conn: Any, plan: RunPlan) -> List[Revision]:
        """`plan` run on the session's connection."""
        await self._refuse_partial(conn, plan)
        if plan.revisions:
            # The version table's privileges, asked before any revision runs, so a role that
            # lacks one is told so and not that the first revision failed.
            await self.versions.missing_privileges(conn, ("INSERT",) if plan.direction == UP else ("DELETE",))
        return await self._walk(plan, _Execute(self, conn))

    async def _refuse_partial(self, conn: Any, plan: RunPlan) -> None:
        """RevisionError when a revision is partly applied (`commit_in_parts`, a run stopped between
        parts) and `plan` does not start by finishing it in the same direction: anything else
        would run over a half-made revision."""
        for row in await self.parts_table.rows(conn):
            first = plan.revisions[0] if plan.revisions else None
            if first is not None and first.id == row.revision_id and plan.direction == row.direction:
                continue
            name = next((r.path.name for r in self.chain.revisions if r.id == row.revision_id), row.revision_id)
            raise RevisionError(
                f"revision {name} is partly applied (its {row.direction} committed {row.steps} steps, then the run "
                f"stopped): run pgmig {row.direction} to finish it first (or, having finished or undone it by hand, "
                "record where the database stands with pgmig stamp); nothing was run"
            )

    async def sql(self, direction: Direction, target: Target = None, start: Target = None) -> List[str]:
        """The SQL `run(direction, target)` would run, with transaction boundaries, without running it.

        The range is planned exactly as `run` plans it, so the same targets
        are refused with the same errors: from the version table as it is
        now, or, given `start` (a revision, or `base`), offline, as if the
        database stood at `start` (Alembic's `upgrade --sql from:to`):
        nothing connects, and parts of `commit_in_parts` revisions are sized
        for a server with default settings. A revision that uses
        `migrator.connection` is shown up to that step, as comments (see
        `_Record`), and a warning says so.
        """
        self.chain.closure(target)
        if start is not None:
            applied = offline_applied(self.chain, start)
            plan = plan_run(read_status(self.chain, applied), direction, target)
            record = _Record(self.versions, create_version_table=not applied, lock_table=DEFAULT_SERVER, offline=True)
            if plan.revisions:
                record.lines.append(
                    sql_comment(
                        f"offline: written without reading the database, for one that stands at {_described(start)} "
                        "(its version table as pgmig up would have left it)"
                    )
                )
        else:
            from pgmig.db.connect import connection

            async with connection(self.url) as conn:
                has_table = await self.versions.exists(conn)
                plan = plan_run(read_status(self.chain, await self.versions.applied(conn)), direction, target)
                table = await self.lock_table(conn)
            record = _Record(self.versions, create_version_table=not has_table, lock_table=table)
        record.translate = self.translate
        await self._walk(plan, record)
        for name in record.unshown:
            self.notice(
                f"warning: revision {name} uses migrator.connection, which does not exist when SQL is only printed: "
                "the script shows it as comments up to that step and does not run it (use "
                "await migrator.actor.execute(sql, *args) for data steps --sql can show)"
            )
        return record.lines

    async def _walk(self, plan: RunPlan, mode: "_Mode") -> List[Revision]:
        """The one loop of `up`, `down` and their SQL: each revision's step, then its version-table row."""
        for revision in plan.revisions:
            if mode.stopped:
                break
            started = time.perf_counter()
            step = getattr(revision.instance(), plan.direction)
            async with mode.revision(revision, plan.direction) as migrator:
                await step(migrator)
                await mode.bookkeep(revision, plan.direction, time.perf_counter() - started)
            mode.done(revision, plan.direction, time.perf_counter() - started)
        return plan.revisions

    async def stamp(self, target: Target) -> None:
        """Record the database as standing at `target` (see `Target`: the named revisions and all they
        follow are recorded as applied, every other row removed) without running anything."""
        wanted = self.chain.closure(target)
        async with self.session() as conn:
            await self.versions.missing_privileges(conn, ("INSERT",))
            await self.versions.ensure(conn)
            applied = await self.versions.applied(conn)
            await self._renew_checksums(conn, Status(self.chain, applied))  # unchecked: stamp mends the table
            async with conn.transaction():
                for revision in self.chain.revisions:
                    if revision.id in wanted and revision.id not in applied:
                        await self.versions.record(conn, revision.id, revision.checksum, 0.0)
                for rid in applied:
                    if rid not in wanted:
                        await self.versions.remove(conn, rid)
                await self.parts_table.clear(conn)

    async def _renew_checksums(self, conn: Any, status: Status) -> None:
        """Give the rows an earlier pgmig wrote (the hash of a file's bytes, still matching the file) the
        checksum over meaning, so that formatting the file later is not an edit; applied times kept.
        Skipped when the role may not UPDATE the version table: those rows keep matching the bytes."""
        if status.legacy and await self.versions.may(conn, "UPDATE"):
            await self.versions.set_checksums(conn, {r.id: r.checksum for r in status.legacy})

    async def accept(self, revisions: Sequence[Revision]) -> List[Revision]:
        """Record the current checksum of each of `revisions` that is applied and edited since (its file
        changed meaning), keeping its applied time and duration; nothing runs. Returns those recorded.

        Raises BookkeepingPrivilegeError when the role may not UPDATE the version table.
        """
        wanted = {revision.id for revision in revisions}
        async with self.session() as conn:
            status = read_status(self.chain, await self.versions.applied(conn))
            accepted = [revision for revision in status.edited if revision.id in wanted]
            if accepted:
                await self.versions.missing_privileges(conn, ("UPDATE",))
                await self.versions.set_checksums(conn, {r.id: r.checksum for r in accepted})
            return accepted


async def _recorded(
    revision: Revision, direction: Direction, translate: Optional[Callable[[Operation], Operation]] = None
) -> Optional[List[Operation]]:
    """The steps a revision's `direction` takes (each through `translate`: `Runner.schema_map`),
    recorded without a database; None when it cannot be recorded (it reads `migrator.connection`,
    or raises): the real run then reports it."""
    actor = DatabaseActions(None, translate=translate)
    try:
        await getattr(revision.instance(), direction)(Migrator(None, actor))
    except Exception:  # noqa: BLE001 - the real run reports the revision's own errors
        return None
    except BaseException as exc:  # sys.exit() too: the real run reports it as the revision's failure
        if not foreign_exit(exc):
            raise
        return None
    return actor.recorded


def _side_steps(steps: Optional[List[Operation]]) -> Optional[SideSteps]:
    """Where the revision's commit-before-use steps run, from a recording of its steps; None
    when it has none, or could not be recorded: they then run on the side connection as they come."""
    if steps is None or not any(op.commit_before_use for op in steps):
        return None
    return side_steps(steps)


def _kept(kept: Sequence[Operation]) -> str:
    """What stays applied of a failed revision: the steps committed on their own."""
    if not kept:
        return ""
    statements = "; ".join(s for op in kept for s in op.statements())
    return f"; committed on their own, these steps stay applied: {statements}"


def _call(op: Operation) -> str:
    """A step as its revision file calls it: `add_index(index_name='ix', ...)`."""
    return f"{op.name}(" + ", ".join(f"{key}={value!r}" for key, value in op.arguments().items()) + ")"


def _left(revision: Revision, direction: Direction, actor: DatabaseActions) -> str:
    """What a failed revision leaves applied, as the end of its error message.

    Transactional: the steps committed on their own (`_kept`). Not
    transactional: each step committed as it ran, so the ones that ran stay;
    running the revision again is safe, as every step that can run outside a
    transaction first asks the catalog whether it is done (`Operation.already_done`).
    """
    if revision.transactional:
        return _kept(actor.kept)
    done = actor.outside
    stayed = f"these steps stay applied: {'; '.join(_call(op) for op in done)}" if done else "no step of it was applied"
    unsafe = [op for op in done if not safe_to_rerun(op)]
    if unsafe:
        rerun = (
            f"running pgmig {direction} again runs these again, which pgmig cannot check: "
            f"{'; '.join(_call(op) for op in unsafe)}; make them safe to repeat (IF NOT EXISTS, IF EXISTS) "
            "or undo them by hand first"
        )
    else:
        rerun = f"running pgmig {direction} again is safe: steps found done are skipped and the failed one is retried"
    return f"; the revision is not transactional (each step commits as it runs), so {stayed}; {rerun}"


def _connection_lost(conn: Any, exc: BaseException) -> bool:
    """Whether the revision's session is gone (see `connection_lost`), not an error of its own."""
    from pgmig.db.connect import connection_lost

    return bool(conn.is_closed()) or connection_lost(exc)


class _Mode(Protocol):
    """How the loop carries out one revision: on the database, or as SQL text."""

    @property
    def stopped(self) -> bool:
        """True when no further revision is to be carried out (a script that cannot go on)."""
        ...

    def revision(self, revision: Revision, direction: Direction) -> AsyncContextManager[Migrator]:
        """Around one revision's step: the Migrator it gets; errors leaving it are worded here."""
        ...

    async def bookkeep(self, revision: Revision, direction: Direction, seconds: float) -> None:
        """The version-table row of a revision that ran (inside its transaction)."""
        ...

    def done(self, revision: Revision, direction: Direction, seconds: float) -> None:
        """After a revision (and its row) went through."""
        ...


class _Parts:
    """One run of a `commit_in_parts` revision: the parts of its steps still to run, the
    transaction of the current one, and the progress row written as each part commits.

    `done` steps were committed by an earlier run (skipped now); `ends` are where the
    remaining parts end (`part_ends`).
    """

    def __init__(
        self, runner: Runner, conn: Any, revision: Revision, direction: Direction, steps: Sequence[Operation], done: int
    ) -> None:
        self.runner = runner
        self.conn = conn
        self.revision = revision
        self.direction = direction
        self.steps = steps
        self.done = done
        self.resumed_at = done
        self.ends: List[int] = []
        self.part = 0
        self._transaction: Any = None

    @asynccontextmanager
    async def transactions(self, budget: int) -> AsyncIterator[None]:
        """Around the revision's run: the first part's transaction begun, the last one's committed
        (with the version-table row written inside it), or the current one rolled back."""
        self.ends = part_ends(self.steps, budget, self.done)
        self.runner.notice(
            f"revision {self.revision.path.name} ({self.direction}) commits in parts: {plural(len(self.ends), 'part')} "
            f"for steps {self.done + 1}-{len(self.steps)}, each within {budget} locks of the server's lock table"
        )
        self._transaction = self.conn.transaction()
        await self._transaction.start()
        try:
            yield
        except BaseException:
            if not self.conn.is_closed():
                await _quietly(self._transaction.rollback())
            raise
        await self._transaction.commit()

    async def before(self, index: int, step: Operation) -> bool:
        """Before the revision's step `index`: True to skip it (an earlier run committed it);
        at the end of a part, commit the part with its progress row and begin the next."""
        if index >= len(self.steps) or step != self.steps[index]:
            raise RevisionError(
                f"its step {index + 1} ({step.name}) is not what the same revision called when pgmig recorded it "
                "before running: a revision committing in parts must call the same steps in the same order on "
                "every run, whatever the database holds"
            )
        if index < self.resumed_at:
            return True
        if self.part < len(self.ends) - 1 and index == self.ends[self.part]:
            await self.runner.parts_table.save(
                self.conn, self.revision.id, self.direction, index, steps_digest(self.steps[:index])
            )
            await self._transaction.commit()
            self.done = index
            self.part += 1
            self._transaction = self.conn.transaction()
            await self._transaction.start()
        return False

    def left(self) -> str:
        """What a failure leaves applied, as the end of its error message."""
        if self.done == 0:
            return "; it commits in parts, and no part of it was committed: nothing of it was applied"
        return (
            f"; it commits in parts: {self.done} of its {len(self.steps)} steps are committed and stay applied, "
            f"the rest was rolled back; running pgmig {self.direction} again resumes after step {self.done}"
        )


class _Execute:
    """Runs each revision on the session's connection, in its own transaction unless it opts out."""

    stopped = False

    def __init__(self, runner: Runner, conn: Any) -> None:
        self.runner = runner
        self.conn = conn
        self._parts: Optional[_Parts] = None

    @asynccontextmanager
    async def revision(self, revision: Revision, direction: Direction) -> AsyncIterator[Migrator]:
        from pgmig.db.connect import set_timeouts

        conn = self.conn
        # The revision's own statements (migrator.connection) must not run prepared against types an
        # earlier revision dropped and made again (see `forget_schema`).
        await forget_schema(conn)
        steps = await _recorded(revision, direction, self.runner.translate)
        # The revision's statements (its preflight reads its tables) wait and run within the
        # configured timeouts; set outside its transaction, so they stay set if it rolls back.
        await set_timeouts(conn, **self.runner.timeouts)
        table = await self.runner.lock_table(conn)
        self._parts = parts = await self._plan_parts(revision, direction, steps) if revision.commit_in_parts else None
        if steps is not None:
            await self._preflight(revision, direction, steps, parts.done if parts is not None else 0)
            needed = estimate(steps)
            if revision.transactional and parts is None and needed > table.slots:
                raise LockTableError(
                    lock_table_message(revision, direction, table, needed, "; nothing of it was applied")
                )
        side = _side_steps(steps) if revision.transactional and parts is None else None
        committed = self.runner._committed if parts is None else None
        before = parts.before if parts is not None else None
        actor = DatabaseActions(
            conn, committed=committed, side=side, planned=steps, before=before, translate=self.runner.translate
        )
        migrator = Migrator(conn, actor)
        name = f"revision {revision.path.name} ({direction})"
        try:
            if parts is not None:
                async with parts.transactions(table.budget):
                    yield migrator
            elif revision.transactional:
                await actor.commit_first()
                async with conn.transaction():
                    yield migrator
            else:
                yield migrator
        except BookkeepingPrivilegeError as exc:
            undone = "was rolled back with it" if revision.transactional else "stays applied (it is not transactional)"
            raise BookkeepingPrivilegeError(f"{exc}; revision {revision.path.name} ({direction}) {undone}") from exc
        except (DatabaseError, RevisionError) as exc:
            if _connection_lost(conn, exc):
                raise self._lost(exc, name, revision, direction, actor) from exc
            if _timeout_cause(exc):
                raise self._timed_out(exc, str(exc), revision, direction, actor) from exc
            if _out_of_locks(exc):
                raise self._out_of_locks(revision, direction, actor, table) from exc
            raise type(exc)(f"{name} failed: {exc}{self._left(revision, direction, actor)}") from exc
        except Exception as exc:
            import asyncpg

            if _connection_lost(conn, exc):
                raise self._lost(exc, name, revision, direction, actor) from exc
            if isinstance(exc, asyncpg.PostgresError):
                statement = migrator.connection.last_statement if migrator.connection is not None else None
                where = f" (while running: {statement})" if isinstance(statement, str) else ""
                detail = f"{exc.__class__.__name__}: {exc}{where}"
                if _timeout_cause(exc):
                    raise self._timed_out(exc, detail, revision, direction, actor) from exc
                if _out_of_locks(exc):
                    raise self._out_of_locks(revision, direction, actor, table) from exc
                raise DatabaseError(f"{name} failed: {detail}{self._left(revision, direction, actor)}") from exc
            raise RevisionError(
                f"{name} raised {exc.__class__.__name__}: {exc}{self._left(revision, direction, actor)}"
            ) from exc
        except BaseException as exc:
            if not foreign_exit(exc):
                raise
            raise RevisionError(f"{name} {described_exit(exc)}{self._left(revision, direction, actor)}") from exc
        finally:
            self._parts = None

    def _lost(
        self, exc: BaseException, name: str, revision: Revision, direction: Direction, actor: DatabaseActions
    ) -> ConnectionLostError:
        """The error for a revision whose session was lost: what stays applied, and to run it again."""
        # A step's DatabaseError already names the error and the statement it was running.
        detail = str(exc) if isinstance(exc, (DatabaseError, RevisionError)) else f"{exc.__class__.__name__}: {exc}"
        if not revision.transactional or self._parts is not None:
            kept = self._left(revision, direction, actor).lstrip("; ")
        elif actor.kept:
            kept = "the server rolled the revision back" + _kept(actor.kept)
        else:
            kept = "the server rolled the revision back: nothing of it was applied"
        return ConnectionLostError(
            f"lost the connection to the database during {name}: {detail}; {kept}; run pgmig {direction} again"
        )

    def _left(self, revision: Revision, direction: Direction, actor: DatabaseActions) -> str:
        """What a failed revision leaves applied (`_left`, or its parts' account)."""
        if self._parts is not None:
            return self._parts.left()
        return _left(revision, direction, actor)

    def _out_of_locks(
        self, revision: Revision, direction: Direction, actor: DatabaseActions, table: LockTable
    ) -> LockTableError:
        left = self._left(revision, direction, actor) if self._parts is not None or actor.kept else ""
        rolled_back = left or "; the revision was rolled back, nothing of it was applied"
        return LockTableError(lock_table_message(revision, direction, table, None, rolled_back))

    async def _plan_parts(
        self, revision: Revision, direction: Direction, steps: Optional[Sequence[Operation]]
    ) -> _Parts:
        """The parts of a `commit_in_parts` revision still to run: its steps recorded beforehand
        (RevisionError when they cannot be: a step through `migrator.connection` could not be
        skipped on a resume), and where an earlier run stopped (its progress row, whose digest
        must match the steps it counts)."""
        name = f"revision {revision.path.name} ({direction})"
        if steps is None:
            raise RevisionError(
                f"{name} commits in parts, so pgmig records its steps before running it (to count them, and to "
                "skip those committed by an earlier run), and recording it failed: it reads migrator.connection "
                "(a data step there cannot be skipped or counted; use await migrator.actor.execute(sql, *args)) "
                "or raised without a database; nothing of it was applied"
            )
        row = await self.runner.parts_table.find(self.conn, revision.id)
        done = 0
        if row is not None:
            if row.direction != direction or row.steps > len(steps) or row.digest != steps_digest(steps[: row.steps]):
                raise RevisionError(
                    f"{name}: an earlier run committed {row.steps} steps of its {row.direction}, and the revision's "
                    f"first {row.steps} steps are not those any more (the file was edited before the step where "
                    "it stopped): restore them, or undo those steps by hand and delete its row from "
                    f"{self.runner.parts_table.qualified}; nothing was run"
                )
            done = row.steps
            self.runner.notice(f"{name}: resuming after step {done} of {len(steps)} (committed by an earlier run)")
        return _Parts(self.runner, self.conn, revision, direction, steps, done)

    async def _preflight(
        self, revision: Revision, direction: Direction, steps: Sequence[Operation], done: int = 0
    ) -> None:
        """Ask each step what it would do to the rows the database holds (`Operation.preflight`)
        before anything of the revision runs: a step that would fail on them stops the revision
        with a RevisionError saying which rows and how to move them; one that would change them
        is said as a warning (its revision marks it destructive, and it was agreed to). The first
        `done` steps were committed by an earlier run (a revision in parts): not asked again."""
        problems = [
            problem
            for index, op in enumerate(steps)
            if index >= done
            for problem in await op.preflight(self.conn, steps[done:index])
        ]
        name = f"revision {revision.path.name} ({direction})"
        for problem in problems:
            if not problem.fails:
                self.runner.notice(f"warning: {name}: {problem.message}")
        failing = [problem.message for problem in problems if problem.fails]
        if failing:
            raise RevisionError(
                f"{name} would fail on the rows the database holds, so nothing of it ran: {'; '.join(failing)}; "
                f"edit the revision's {direction}() accordingly, then run pgmig {direction} again"
            )

    async def bookkeep(self, revision: Revision, direction: Direction, seconds: float) -> None:
        from pgmig.db.connect import own_timeouts

        versions = self.runner.versions
        await own_timeouts(self.conn)  # pgmig's own writes, not the revision's: no timeouts
        if direction == UP:
            # Created here, in the revision's own transaction, so a run that
            # fails before anything is applied leaves the database untouched.
            await versions.ensure(self.conn)
            await versions.record(self.conn, revision.id, revision.checksum, seconds)
        else:
            await versions.remove(self.conn, revision.id)
        if revision.commit_in_parts:
            await self.runner.parts_table.clear(self.conn, revision.id)

    def done(self, revision: Revision, direction: Direction, seconds: float) -> None:
        self.runner.progress(direction, revision, seconds)

    def _timed_out(
        self,
        exc: BaseException,
        detail: str,
        revision: Revision,
        direction: Direction,
        actor: DatabaseActions,
    ) -> MigrationTimeoutError:
        """The error for a statement stopped by lock_timeout or statement_timeout: what, where, what now."""
        command = "pgmig up" if direction == UP else "pgmig down"
        if _timeout_cause(exc) == LOCK_NOT_AVAILABLE:
            what = (
                f"waited longer than lock_timeout ({self.runner.lock_timeout}) for a lock that another session "
                "holds (a long transaction or query on the same table)"
            )
            retry = (
                f"run {command} again when the table is quieter, or allow a longer wait with "
                "PGMIG_LOCK_TIMEOUT (lock_timeout in [tool.pgmig]; 0 waits forever)"
            )
        else:
            what = f"a statement ran longer than statement_timeout ({self.runner.statement_timeout})"
            retry = (
                f"run {command} again with a higher limit: PGMIG_STATEMENT_TIMEOUT "
                "(statement_timeout in [tool.pgmig]; 0 means no limit)"
            )
        if self._parts is not None:
            rolled_back = self._parts.left().lstrip("; ")
        elif revision.transactional and actor.kept:
            rolled_back = "the revision was rolled back" + _kept(actor.kept)
        elif revision.transactional:
            rolled_back = "the revision was rolled back, nothing of it was applied"
        else:
            rolled_back = _left(revision, direction, actor).lstrip("; ")
        return MigrationTimeoutError(
            f"revision {revision.path.name} ({direction}) {what}: {detail}; {rolled_back}; {retry}"
        )


def _committed_first(revision: Revision, direction: Direction) -> str:
    """What a script says of a revision's steps committed before its transaction (new enum labels):
    where the database stands when the script stops after them, and from which point to rerun it.

    Each revision above commits at its own COMMIT, so rerunning a script from its start fails at the
    first of those already applied (a CREATE TYPE that exists); these statements alone may run again.
    """
    # up: the revision's parents are applied; down: the revision itself still is.
    stand = (" + ".join(revision.parents) or BASE) if direction == UP else revision.id
    rest = (
        f", or write the rest anew with pgmig {direction} --sql --from {stand} (and this script's target)"
        if direction == DOWN or len(revision.parents) < 2
        else ""
    )
    return (
        "committed on their own, before this revision's transaction: a new enum label cannot be used in the "
        "transaction that adds it (Postgres 55P04), so they stay if that transaction fails. The revisions above "
        f"this one are committed. If the script stops after these statements and before this revision's COMMIT, "
        f"the database stands at {stand} with these labels added: rerun the script from this revision's first "
        f"line on (IF NOT EXISTS lets these statements run again; the revisions above must not){rest}. The "
        "revision's other steps and its version-table row commit together at its COMMIT."
    )


class _Record:
    """Records each revision as SQL text (Alembic's `as_sql`): what `_Execute` would send, in its transactions.

    A step that must be committed before it is used (a new enum label) is
    shown committed on its own before the revision's transaction, as the
    runner commits it, and the script says so. A revision that reads
    `migrator.connection` (there is none) is shown as comments up to that
    step, named in `unshown`, and the script stops there: what follows
    assumes it ran. `offline`: planned without the database (parts sized
    for a server with default settings).
    """

    def __init__(
        self, versions: VersionTable, create_version_table: bool, lock_table: LockTable, offline: bool = False
    ) -> None:
        self.versions = versions
        self.lock_table = lock_table
        self.offline = offline
        self.lines: List[str] = []
        self.unshown: List[str] = []
        # Created with the first revision's row, in its transaction, as `_Execute` creates it:
        # after the revision's steps, which may create the schema the table lives in.
        self._create_version_table = create_version_table
        self._bookkeeping: List[str] = []
        self.translate: Optional[Callable[[Operation], Operation]] = None

    @property
    def stopped(self) -> bool:
        return bool(self.unshown)

    @asynccontextmanager
    async def revision(self, revision: Revision, direction: Direction) -> AsyncIterator[Migrator]:
        actor = DatabaseActions(None, translate=self.translate)
        self._bookkeeping = []
        try:
            yield Migrator(None, actor)
        except NoConnectionError:
            self._unshown(revision, direction, actor.recorded)
            return
        except (UnknownOperationError, StepArgumentError) as exc:
            raise RevisionError(f"revision {revision.path.name} ({direction}) failed: {exc}") from exc
        except Exception as exc:  # the revision's own code: reported as its failure, as when it runs
            if isinstance(exc, PgmigError):
                raise
            raise RevisionError(
                f"revision {revision.path.name} ({direction}) raised {exc.__class__.__name__}: {exc}"
            ) from exc
        except BaseException as exc:
            if not foreign_exit(exc):
                raise
            raise RevisionError(f"revision {revision.path.name} ({direction}) {described_exit(exc)}") from exc
        lines = self.lines
        lines.append(sql_comment(f"{direction}: {revision.id} ({revision.path.name})"))
        if revision.commit_in_parts:
            self._parts(actor.recorded)
            lines.extend([*self._bookkeeping, "COMMIT;", ""])
            return
        if not revision.transactional:
            lines.append(
                "-- not transactional (transactional = False): each statement commits as it runs; after a failure, "
                "pgmig up (not this script) reruns it safely, skipping the steps found done"
            )
        side = side_steps(actor.recorded) if revision.transactional else None
        if side is not None and side.first:
            lines.append(sql_comment(_committed_first(revision, direction)))
            lines.extend(terminated(s) for op in side.first for s in op.statements())
        if revision.transactional:
            lines.append("BEGIN;")
        for index, op in enumerate(actor.recorded):
            if side is None or index not in side.hoisted:
                lines.extend(terminated(s) for s in op.statements())
        lines.extend(self._bookkeeping)
        if revision.transactional:
            lines.append("COMMIT;")
        lines.append("")

    def _unshown(self, revision: Revision, direction: Direction, steps: Sequence[Operation]) -> None:
        """A revision whose `direction` reads `migrator.connection`: its steps before that, as comments
        (for review, not run), what to do instead, and the end of the script."""
        self.unshown.append(revision.path.name)
        self.lines.append(sql_comment(f"{direction}: {revision.id} ({revision.path.name})"))
        self.lines.append(
            sql_comment(
                f"NOT IN THIS SCRIPT: its {direction}() reads migrator.connection (a data step run from Python on a "
                "live connection), which pgmig cannot write as SQL. Its steps before that, for review only "
                "(commented out, not run):"
            )
        )
        self.lines.extend(sql_comment(f"  {s};") for op in steps for s in op.statements())
        self.lines.append(
            sql_comment(
                f"The script stops here, since what follows assumes this revision ran: run pgmig {direction} "
                f"{revision.id} (or write its data step as await migrator.actor.execute(sql, *args)), then ask "
                "for the rest with --sql again."
            )
        )
        self.lines.append("")

    def _parts(self, steps: Sequence[Operation]) -> None:
        """A `commit_in_parts` revision's steps, in the transactions `_Execute` runs them in
        (`part_ends` with this server's budget), all but the last ended by a commented COMMIT;
        the version-table row goes in the last (see `bookkeep`)."""
        budget = self.lock_table.budget
        ends = part_ends(steps, budget)
        server = "a server with default settings" if self.offline else "this server"
        self.lines.append(
            sql_comment(
                f"commit_in_parts: {plural(len(ends), 'part')} of at most {budget} locks (a quarter of {server}'s lock "
                f"table, {self.lock_table.described()}); pgmig records each part's progress and resumes after "
                "the last one committed"
            )
        )
        start = 0
        for number, end in enumerate(ends, 1):
            self.lines.append("BEGIN;")
            self.lines.extend(terminated(statement) for op in steps[start:end] for statement in op.statements())
            if number < len(ends):
                self.lines.append(f"COMMIT;  -- part {number} of {len(ends)}: steps {start + 1}-{end} of {len(steps)}")
            start = end

    async def bookkeep(self, revision: Revision, direction: Direction, seconds: float) -> None:
        versions = self.versions
        if direction == UP and self._create_version_table:
            self._bookkeeping.append(terminated(versions.create_sql()))
            self._create_version_table = False
        sql = (
            versions.insert_sql(revision.id, revision.checksum) if direction == UP else versions.delete_sql(revision.id)
        )
        self._bookkeeping.append(terminated(sql))

    def done(self, revision: Revision, direction: Direction, seconds: float) -> None:
        pass
