"""The actor: runs operations on a connection and records them.

`DatabaseActions` is what revision files call (`await migrator.actor.add_column(...)`)
and what `--sql` and `generate` read back: with a connection it executes and
records, without one it only records. Its typed methods, one per built-in
operation, come from the generated `pgmig.ops.actor_methods`; a plugin's
operations run with `actor.run(PluginOperation(...))`, or by name
(`actor.create_view(...)`), which type checkers do not see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional

from pgmig.errors import DatabaseError
from pgmig.ops.actor_methods import OperationMethods
from pgmig.ops.base import Operation, build, lookup
from pgmig.ops.data import ExecuteSQL

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg


class DatabaseActions(OperationMethods):
    """The actor a revision's `migrator.actor` is.

    `connection` is None when SQL is only recorded (`pgmig up --sql`).
    `committed` opens (once) a second, autocommitting connection to the same database.
    """

    def __init__(
        self,
        connection: Optional[asyncpg.Connection[Any]] = None,
        committed: Optional[Callable[[], Awaitable[asyncpg.Connection[Any]]]] = None,
    ) -> None:
        self.connection = connection
        self.recorded: List[Operation] = []
        self._committed = committed

    async def run(self, operation: Operation) -> None:
        """Record `operation`, and execute its statements when connected.

        An operation whose result cannot be used in the transaction that made
        it (a new enum label) runs on the autocommitting connection when the
        main one is inside a transaction, so the rest of the revision can use
        it while staying in one transaction. Raises `DatabaseError` naming the
        statement Postgres refused.
        """
        self.recorded.append(operation)
        if self.connection is None:
            return
        connection = self.connection
        if operation.commit_before_use and self._committed is not None and connection.is_in_transaction():
            connection = await self._committed()
        for statement, parameters in operation.bound_statements():
            await execute(connection, statement, *parameters)

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


async def execute(connection: Any, statement: str, *args: Any) -> Optional[str]:
    """`connection.execute(statement, *args)`, a Postgres error raised as `DatabaseError` naming the statement."""
    import asyncpg

    try:
        result: Optional[str] = await connection.execute(statement, *args)
        return result
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"{exc.__class__.__name__}: {exc} (while running: {statement})") from exc
