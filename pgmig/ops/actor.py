"""The actor: runs operations on a connection and records them.

`DatabaseActions` is what revision files call (`await migrator.actor.add_column(...)`)
and what `--sql` and `generate` read back: with a connection it executes and
records, without one it only records. Its typed methods, one per built-in
operation, come from the generated `pgmig.ops.actor_methods`; a plugin's
operations run with `actor.run(PluginOperation(...))`, or by name
(`actor.create_view(...)`), which type checkers do not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, FrozenSet, List, Optional, Sequence, Tuple

from pgmig.errors import DatabaseError
from pgmig.ops.actor_methods import OperationMethods
from pgmig.ops.base import Operation, build, lookup
from pgmig.ops.data import ExecuteSQL

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg


@dataclass(frozen=True)
class SideSteps:
    """Where a revision's `commit_before_use` steps run, worked out from its recorded steps.

    `first`: the steps to commit before the revision's transaction begins
    (each rewritten by `Operation.ahead_of`), and `hoisted` the positions of
    the steps they stand for, which the revision's run then skips. `in_place`:
    positions of steps that run inside the transaction (what they change is
    made there). `steps`: the recorded steps the positions refer to.
    """

    steps: Tuple[Operation, ...]
    first: Tuple[Operation, ...] = ()
    hoisted: FrozenSet[int] = frozenset()
    in_place: FrozenSet[int] = frozenset()


def side_steps(steps: Sequence[Operation]) -> SideSteps:
    """Plan the steps that must be committed before use so that none waits on the revision's transaction.

    Run on an autocommitting side connection while the transaction holds
    locks, ADD VALUE waits for the lock a RENAME VALUE of the same type took
    in the transaction, which waits for the revision to end: a deadlock. So
    each such step is committed before the transaction begins, where it
    waits on nothing of the revision's.
    """
    first: List[Operation] = []
    hoisted: List[int] = []
    in_place: List[int] = []
    for index, step in enumerate(steps):
        if not step.commit_before_use:
            continue
        ahead = step.ahead_of(steps[:index])
        if ahead is None:
            in_place.append(index)
        else:
            first.append(ahead)
            hoisted.append(index)
    return SideSteps(tuple(steps), tuple(first), frozenset(hoisted), frozenset(in_place))


class DatabaseActions(OperationMethods):
    """The actor a revision's `migrator.actor` is.

    `connection` is None when SQL is only recorded (`pgmig up --sql`).
    `committed` opens (once) a second, autocommitting connection to the same database.
    `side`: where the revision's commit-before-use steps run (see `side_steps`), when
    its steps were recorded beforehand; `planned`: those recorded steps (a step found
    done is told the ones after it). `kept` lists the steps committed on their
    own, which stay applied whatever happens to the revision's transaction.
    `before(index, step)` is awaited before each step runs (a revision committing in parts
    ends a part there); True skips the step (committed by an earlier run). `translate` rewrites
    each step before it is recorded or run (a fleet's schema-per-tenant target: `translate_schemas`).
    """

    def __init__(
        self,
        connection: Optional[asyncpg.Connection[Any]] = None,
        committed: Optional[Callable[[], Awaitable[asyncpg.Connection[Any]]]] = None,
        side: Optional[SideSteps] = None,
        planned: Optional[Sequence[Operation]] = None,
        before: Optional[Callable[[int, Operation], Awaitable[bool]]] = None,
        translate: Optional[Callable[[Operation], Operation]] = None,
    ) -> None:
        self.connection = connection
        self._translate = translate
        self._planned = planned
        self.recorded: List[Operation] = []
        self.kept: List[Operation] = []
        self.outside: List[Operation] = []
        """Steps run (or found done) outside a transaction: each committed as it went."""
        self.skipped: List[Operation] = []
        """Of those, the steps found done already (`Operation.already_done`) and not run again."""
        self._committed = committed
        self._side = side
        self._before = before

    async def run(self, operation: Operation) -> None:
        """Record `operation`, and execute its statements when connected.

        An operation whose result cannot be used in the transaction that made
        it (a new enum label) was committed before the transaction began when
        the revision's steps were planned (`side_steps`); otherwise it runs on
        the autocommitting connection when the main one is inside a
        transaction, so the rest of the revision can use it while staying in
        one transaction. Raises `DatabaseError` naming the statement Postgres refused.
        """
        if self._translate is not None:
            operation = self._translate(operation)
        index = len(self.recorded)
        self.recorded.append(operation)
        if self.connection is None:
            return
        if self._before is not None and await self._before(index, operation):
            return
        connection = self.connection
        side, in_place = self._side, False
        if side is not None and index < len(side.steps) and side.steps[index] == operation:
            if index in side.hoisted:
                return  # committed before the transaction began
            in_place = index in side.in_place
        if (
            not in_place
            and operation.commit_before_use
            and self._committed is not None
            and connection.is_in_transaction()
        ):
            connection = await self._committed()
            self.kept.append(operation)
        if connection.is_in_transaction():
            await self._execute(connection, operation)
            return
        # Outside a transaction each step commits on its own, and a rerun after a failure
        # starts from the first step: a step whose result is there already is not run again.
        planned = self._planned
        later = (
            planned[index + 1 :] if planned is not None and index < len(planned) and planned[index] == operation else ()
        )
        if await operation.already_done(connection, later):
            self.skipped.append(operation)
        else:
            await self._execute(connection, operation)
        self.outside.append(operation)

    async def commit_first(self) -> None:
        """Commit the planned `side.first` steps on the connection, outside any transaction."""
        if self._side is None or self.connection is None:
            return
        for operation in self._side.first:
            await self._execute(self.connection, operation)
            self.kept.append(operation)

    async def _execute(self, connection: Any, operation: Operation) -> None:
        for statement, parameters in operation.bound_statements():
            if parameters:
                # A step of the revision's own (migrator.connection) may have changed a type since.
                await forget_schema(connection)
            try:
                await execute(connection, statement, *parameters)
            except DatabaseError as exc:
                cause = exc.__cause__
                why = operation.explain_failure(cause) if isinstance(cause, Exception) else None
                if why is None:
                    raise
                raise DatabaseError(f"{exc}: {why}") from cause
        # Whatever the step changed (a type dropped and made again by an enum swap, a domain, a
        # table's row type), statements prepared before it must not run with the old types.
        await forget_schema(connection)
        if self.connection is not None and self.connection is not connection:
            await forget_schema(self.connection)

    async def execute(self, sql: str, *args: Any) -> None:
        """Run one SQL statement of the revision's own (a data step), `$1`, `$2`... bound to `args`.

        Unlike `migrator.connection.execute`, it is recorded, so `pgmig up --sql` shows it.
        """
        await self.run(ExecuteSQL(sql=sql, parameters=args))

    if not TYPE_CHECKING:
        # Plugin operations by name, for revision files written before `run(...)`:
        # hidden from type checkers, which would otherwise accept any name.
        def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
            if name.startswith("_"):
                raise AttributeError(name)
            op_class = lookup(name)

            async def call(**arguments: Any) -> None:
                await self.run(build(op_class, **arguments))

            call.__name__ = name
            call.__doc__ = op_class.__doc__
            return call


async def forget_schema(connection: Any) -> None:
    """Drop what `connection` cached of the schema: its prepared statements and type codecs.

    asyncpg prepares each statement once per connection and keeps the
    parameter types the server gave it (and the codecs of those types). A
    statement prepared before DDL that dropped and made a type again (an enum
    swap, `down` then `up` in check's replays) is then bound to a type OID
    that no longer exists, and the server refuses it with "cache lookup
    failed for type NNN" (XX000) when it plans it again. asyncpg's
    `Connection.reload_schema_state()` (documented there for schema changes)
    clears both caches, without a round trip; the next statement is prepared
    again. Connections of a pool clear the pool's caches.
    """
    await connection.reload_schema_state()


async def execute(connection: Any, statement: str, *args: Any) -> Optional[str]:
    """`connection.execute(statement, *args)`, a Postgres error raised as `DatabaseError` naming the statement."""
    import asyncpg

    try:
        result: Optional[str] = await connection.execute(statement, *args)
        return result
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"{exc.__class__.__name__}: {exc} (while running: {statement})") from exc
