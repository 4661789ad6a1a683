"""The actor: runs operations on a connection and records them.

`DatabaseActions` is what revision files call (`await migrator.actor.add_column(...)`),
what handlers call to say how to create, change or drop an object, and what
`--sql` and `generate` read back: with a connection it executes and records,
without one it only records.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, List, Optional

from pgmig.errors import DatabaseError
from pgmig.ops.base import Operation, lookup


class DatabaseActions:
    def __init__(
        self,
        connection: Any = None,
        committed: Optional[Callable[[], Awaitable[Any]]] = None,
    ) -> None:
        """`committed` opens (once) a second, autocommitting connection to the same database."""
        self.connection = connection
        self.recorded: List[Operation] = []
        self._committed = committed

    async def run(self, operation: Operation) -> None:
        """Record `operation`, and execute its statements when connected.

        An operation whose result cannot be used in the transaction that made
        it (a new enum label) runs on the autocommitting connection when the
        main one is inside a transaction, so the rest of the revision can use
        it while staying in one transaction.
        """
        self.recorded.append(operation)
        if self.connection is None:
            return
        connection = self.connection
        if operation.commit_before_use and self._committed is not None and connection.is_in_transaction():
            connection = await self._committed()
        for statement in operation.statements():
            await execute(connection, statement)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        if name.startswith("_"):
            raise AttributeError(name)
        op_class = lookup(name)

        async def call(**arguments: Any) -> None:
            try:
                operation = op_class(**arguments)
            except TypeError as exc:
                raise TypeError(f"actor.{name}(): {exc}") from None
            await self.run(operation)

        call.__name__ = name
        call.__doc__ = op_class.__doc__
        return call

    def take(self) -> List[Operation]:
        """Return and forget what was recorded since the last call."""
        taken, self.recorded = self.recorded, []
        return taken


async def execute(connection: Any, statement: str, *args: Any) -> Optional[str]:
    import asyncpg

    try:
        return await connection.execute(statement, *args)
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"{exc.__class__.__name__}: {exc} (while running: {statement})") from exc
