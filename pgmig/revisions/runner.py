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
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncContextManager, AsyncIterator, Callable, Dict, List, Literal, Optional, Protocol, Sequence

from pgmig.db.quoting import sql_comment
from pgmig.errors import ConnectionLostError, DatabaseError, PgmigError, RevisionError
from pgmig.ops.actor import DatabaseActions, SideSteps, side_steps
from pgmig.ops.base import Operation, UnknownOperationError, safe_to_rerun
from pgmig.revisions.files import BASE, HEAD, Chain, Revision, described_exit, foreign_exit
from pgmig.revisions.migrator import Migrator, NoConnectionError
from pgmig.revisions.version_table import (
    INSUFFICIENT_PRIVILEGE,
    AppliedRevision,
    BookkeepingPrivilegeError,
    VersionTable,
)

Direction = Literal["up", "down"]
UP: Direction = "up"
DOWN: Direction = "down"


@dataclass
class Status:
    chain: Chain
    applied: Dict[str, AppliedRevision]
    current_index: int

    @property
    def current(self) -> Optional[str]:
        return self.chain.revisions[self.current_index].id if self.current_index >= 0 else None

    @property
    def pending(self) -> List[Revision]:
        return self.chain.revisions[self.current_index + 1 :]

    @property
    def edited(self) -> List[Revision]:
        """Applied revisions whose file changed since it was applied."""
        return [r for r in self.chain.revisions if r.id in self.applied and self.applied[r.id].checksum != r.checksum]


def read_status(chain: Chain, applied: Dict[str, AppliedRevision]) -> Status:
    """Check the version table against the files: applied revisions must be a prefix of the chain."""
    unknown = [rid for rid in applied if rid not in chain.ids]
    if unknown:
        raise RevisionError(
            f"the database has applied revision(s) {', '.join(unknown)} that no file in the migrations folder "
            "defines (a missing file, or a database from another branch?)"
        )
    current = -1
    for index, revision in enumerate(chain.revisions):
        if revision.id in applied:
            if index != current + 1:
                missing = chain.revisions[current + 1].path.name
                raise RevisionError(
                    f"revision {revision.id} is applied but the earlier {missing} is not; "
                    "the version table does not follow the chain"
                )
            current = index
    return Status(chain, applied, current)


@dataclass(frozen=True)
class RunPlan:
    """What one `up` or `down` runs: `revisions` in the order they run."""

    direction: Direction
    revisions: List[Revision]


def plan_run(status: Status, direction: Direction, target: Optional[str] = None) -> RunPlan:
    """The revisions between the database's current revision and `target`, in the order they run.

    `up`: from the one after the current revision to `target` (default:
    head); none when the database is at `target` already. `down`: from the
    current revision back to the one after `target` (default: one revision;
    `base`: all). Raises RevisionError for an unknown target, an `up` target
    behind the current revision, a `down` target ahead of it, and a
    `down` from base other than `down base`.
    """
    chain, current = status.chain, status.current_index
    if direction == UP:
        target = target or HEAD
        target_index = chain.index(target)
        if target_index < current:
            raise RevisionError(f"{target} is behind the current revision {status.current}; use pgmig down")
        return RunPlan(direction, chain.revisions[current + 1 : target_index + 1])
    target_index = current - 1 if target is None else chain.index(target)
    if current < 0 and target != BASE:
        raise RevisionError("the database is at base (nothing applied): there is nothing to roll back")
    if target_index > current:
        raise RevisionError(f"{target} is ahead of the current revision {status.current}; use pgmig up")
    return RunPlan(direction, chain.revisions[max(target_index, -1) + 1 : current + 1][::-1])


class MigrationTimeoutError(DatabaseError):
    """A statement waited longer than lock_timeout for a lock, or ran longer than statement_timeout."""


LOCK_NOT_AVAILABLE, QUERY_CANCELED = "55P03", "57014"


def _timeout_cause(exc: BaseException) -> Optional[str]:
    """LOCK_NOT_AVAILABLE / QUERY_CANCELED when a timeout (not a user's cancel) is behind `exc`."""
    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 10:
        state = getattr(current, "sqlstate", None)
        if state == LOCK_NOT_AVAILABLE:
            return LOCK_NOT_AVAILABLE
        if state == QUERY_CANCELED and "statement timeout" in str(current):
            return QUERY_CANCELED
        current = current.__cause__ or current.__context__
        seen += 1
    return None


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
    ) -> None:
        """`lock_timeout` and `statement_timeout` are Postgres durations ("200ms", "5s"); "0" means none."""
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

            async def committed() -> Any:
                if not side:
                    side.append(await connect(self.url))
                    await set_timeouts(side[0], **timeouts)
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
            return read_status(self.chain, await self.versions.applied(conn))

    # -- up / down: the range is planned once, then one loop runs or records it -----

    async def upgrade(self, target: str = HEAD) -> List[Revision]:
        """Apply the pending revisions up to `target`; returns those applied (none at `target` already)."""
        return await self.run(UP, target)

    async def downgrade(self, target: Optional[str] = None) -> List[Revision]:
        """Roll back one revision, or every revision after `target` (`base`: all); returns those rolled back."""
        return await self.run(DOWN, target)

    async def run(self, direction: Direction, target: Optional[str] = None) -> List[Revision]:
        """Run `plan_run(direction, target)` on the database, holding the run's lock.

        Raises RevisionError for a target in the wrong direction (see
        `plan_run`), DatabaseError / MigrationTimeoutError when a statement fails.
        """
        if target is not None:
            self.chain.index(target)  # an unknown target needs no database to be reported
        async with self.session() as conn:
            plan = plan_run(read_status(self.chain, await self.versions.applied(conn)), direction, target)
            if plan.revisions:
                # The version table's privileges, asked before any revision runs, so a role that
                # lacks one is told so and not that the first revision failed.
                await self.versions.missing_privileges(conn, ("INSERT",) if direction == UP else ("DELETE",))
            return await self._walk(plan, _Execute(self, conn))

    async def sql(self, direction: Direction, target: Optional[str] = None) -> List[str]:
        """The SQL `run(direction, target)` would run, with transaction boundaries, without running it.

        The range is planned exactly as `run` plans it, from the version
        table as it is now, so the same targets are refused with the same
        errors. A revision that uses `migrator.connection` cannot be shown
        (RevisionError).
        """
        from pgmig.db.connect import connection

        if target is not None:
            self.chain.index(target)
        async with connection(self.url) as conn:
            has_table = await self.versions.exists(conn)
            plan = plan_run(read_status(self.chain, await self.versions.applied(conn)), direction, target)
        record = _Record(self.versions, create_version_table=not has_table)
        await self._walk(plan, record)
        return record.lines

    async def _walk(self, plan: RunPlan, mode: "_Mode") -> List[Revision]:
        """The one loop of `up`, `down` and their SQL: each revision's step, then its version-table row."""
        for revision in plan.revisions:
            started = time.perf_counter()
            step = getattr(revision.instance(), plan.direction)
            async with mode.revision(revision, plan.direction) as migrator:
                await step(migrator)
                await mode.bookkeep(revision, plan.direction, time.perf_counter() - started)
            mode.done(revision, plan.direction, time.perf_counter() - started)
        return plan.revisions

    async def stamp(self, target: str) -> None:
        """Record the chain up to `target` as applied (and nothing after it) without running anything."""
        target_index = self.chain.index(target)
        async with self.session() as conn:
            await self.versions.missing_privileges(conn, ("INSERT",))
            await self.versions.ensure(conn)
            applied = await self.versions.applied(conn)
            async with conn.transaction():
                for index, revision in enumerate(self.chain.revisions):
                    if index <= target_index and revision.id not in applied:
                        await self.versions.record(conn, revision.id, revision.checksum, 0.0)
                    elif index > target_index and revision.id in applied:
                        await self.versions.remove(conn, revision.id)
                for rid in applied:
                    if rid not in self.chain.ids:
                        await self.versions.remove(conn, rid)


async def _recorded(revision: Revision, direction: Direction) -> Optional[List[Operation]]:
    """The steps a revision's `direction` takes, recorded without a database; None when it cannot
    be recorded (it reads `migrator.connection`, or raises): the real run then reports it."""
    actor = DatabaseActions(None)
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


def _lost(
    exc: BaseException, name: str, revision: Revision, direction: Direction, actor: DatabaseActions
) -> ConnectionLostError:
    """The error for a revision whose session was lost: what stays applied, and to run it again."""
    # A step's DatabaseError already names the error and the statement it was running.
    detail = str(exc) if isinstance(exc, (DatabaseError, RevisionError)) else f"{exc.__class__.__name__}: {exc}"
    if not revision.transactional:
        kept = _left(revision, direction, actor).lstrip("; ")
    elif actor.kept:
        kept = "the server rolled the revision back" + _kept(actor.kept)
    else:
        kept = "the server rolled the revision back: nothing of it was applied"
    return ConnectionLostError(
        f"lost the connection to the database during {name}: {detail}; {kept}; run pgmig {direction} again"
    )


class _Mode(Protocol):
    """How the loop carries out one revision: on the database, or as SQL text."""

    def revision(self, revision: Revision, direction: Direction) -> AsyncContextManager[Migrator]:
        """Around one revision's step: the Migrator it gets; errors leaving it are worded here."""
        ...

    async def bookkeep(self, revision: Revision, direction: Direction, seconds: float) -> None:
        """The version-table row of a revision that ran (inside its transaction)."""
        ...

    def done(self, revision: Revision, direction: Direction, seconds: float) -> None:
        """After a revision (and its row) went through."""
        ...


class _Execute:
    """Runs each revision on the session's connection, in its own transaction unless it opts out."""

    def __init__(self, runner: Runner, conn: Any) -> None:
        self.runner = runner
        self.conn = conn

    @asynccontextmanager
    async def revision(self, revision: Revision, direction: Direction) -> AsyncIterator[Migrator]:
        from pgmig.db.connect import set_timeouts

        conn = self.conn
        steps = await _recorded(revision, direction)
        # The revision's statements (its preflight reads its tables) wait and run within the
        # configured timeouts; set outside its transaction, so they stay set if it rolls back.
        await set_timeouts(conn, **self.runner.timeouts)
        if steps is not None:
            await self._preflight(revision, direction, steps)
        side = _side_steps(steps) if revision.transactional else None
        actor = DatabaseActions(conn, committed=self.runner._committed, side=side, planned=steps)
        migrator = Migrator(conn, actor)
        name = f"revision {revision.path.name} ({direction})"
        try:
            if revision.transactional:
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
                raise _lost(exc, name, revision, direction, actor) from exc
            if _timeout_cause(exc):
                raise self._timed_out(exc, str(exc), revision, direction, actor) from exc
            raise type(exc)(f"{name} failed: {exc}{_left(revision, direction, actor)}") from exc
        except Exception as exc:
            import asyncpg

            if _connection_lost(conn, exc):
                raise _lost(exc, name, revision, direction, actor) from exc
            if isinstance(exc, asyncpg.PostgresError):
                statement = migrator.connection.last_statement if migrator.connection is not None else None
                where = f" (while running: {statement})" if isinstance(statement, str) else ""
                detail = f"{exc.__class__.__name__}: {exc}{where}"
                if _timeout_cause(exc):
                    raise self._timed_out(exc, detail, revision, direction, actor) from exc
                raise DatabaseError(f"{name} failed: {detail}{_left(revision, direction, actor)}") from exc
            raise RevisionError(
                f"{name} raised {exc.__class__.__name__}: {exc}{_left(revision, direction, actor)}"
            ) from exc
        except BaseException as exc:
            if not foreign_exit(exc):
                raise
            raise RevisionError(f"{name} {described_exit(exc)}{_left(revision, direction, actor)}") from exc

    async def _preflight(self, revision: Revision, direction: Direction, steps: Sequence[Operation]) -> None:
        """Ask each step what it would do to the rows the database holds (`Operation.preflight`)
        before anything of the revision runs: a step that would fail on them stops the revision
        with a RevisionError saying which rows and how to move them; one that would change them
        is said as a warning (its revision marks it destructive, and it was agreed to)."""
        problems = [
            problem for index, op in enumerate(steps) for problem in await op.preflight(self.conn, steps[:index])
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
        if revision.transactional and actor.kept:
            rolled_back = "the revision was rolled back" + _kept(actor.kept)
        elif revision.transactional:
            rolled_back = "the revision was rolled back, nothing of it was applied"
        else:
            rolled_back = _left(revision, direction, actor).lstrip("; ")
        return MigrationTimeoutError(
            f"revision {revision.path.name} ({direction}) {what}: {detail}; {rolled_back}; {retry}"
        )


class _Record:
    """Records each revision as SQL text (Alembic's `as_sql`): what `_Execute` would send, in its transactions.

    A step that must be committed before it is used (a new enum label) is
    shown committed on its own, as the runner's side connection commits it.
    """

    def __init__(self, versions: VersionTable, create_version_table: bool) -> None:
        self.versions = versions
        self.lines: List[str] = []
        # Created with the first revision's row, in its transaction, as `_Execute` creates it:
        # after the revision's steps, which may create the schema the table lives in.
        self._create_version_table = create_version_table
        self._bookkeeping: List[str] = []

    @asynccontextmanager
    async def revision(self, revision: Revision, direction: Direction) -> AsyncIterator[Migrator]:
        actor = DatabaseActions(None)
        self._bookkeeping = []
        try:
            yield Migrator(None, actor)
        except NoConnectionError as exc:
            raise RevisionError(
                f"revision {revision.path.name} uses migrator.connection, which has no database "
                f"to run on when the SQL is only printed: {exc}"
            ) from exc
        except UnknownOperationError as exc:
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
        side = side_steps(actor.recorded) if revision.transactional else None
        if side is not None and side.first:
            lines.append("-- committed before the transaction, so that they wait on nothing of it")
            lines.extend(s + ";" for op in side.first for s in op.statements())
        if revision.transactional:
            lines.append("BEGIN;")
        for index, op in enumerate(actor.recorded):
            if side is not None and index in side.hoisted:
                continue
            if op.commit_before_use and revision.transactional and (side is None or index not in side.in_place):
                lines.append("COMMIT;  -- the next step must be committed before it is used")
                lines.extend(s + ";" for s in op.statements())
                lines.append("BEGIN;")
            else:
                lines.extend(s + ";" for s in op.statements())
        lines.extend(self._bookkeeping)
        if revision.transactional:
            lines.append("COMMIT;")
        lines.append("")

    async def bookkeep(self, revision: Revision, direction: Direction, seconds: float) -> None:
        versions = self.versions
        if direction == UP and self._create_version_table:
            self._bookkeeping.append(versions.create_sql() + ";")
            self._create_version_table = False
        sql = (
            versions.insert_sql(revision.id, revision.checksum) if direction == UP else versions.delete_sql(revision.id)
        )
        self._bookkeeping.append(sql + ";")

    def done(self, revision: Revision, direction: Direction, seconds: float) -> None:
        pass
