"""What a revision's `up` and `down` receive."""

from __future__ import annotations

from typing import Any

from pgmig.ops.actor import DatabaseActions


class TracedConnection:
    """The asyncpg connection a revision gets, remembering the last statement it was given.

    When a data migration's query fails, the runner can then say which
    statement it was, as it does for the actor's own statements.
    """

    _TRACED = ("execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table")

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.last_statement: Any = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._connection, name)
        if name not in self._TRACED:
            return attribute

        def traced(*args: Any, **kwargs: Any) -> Any:
            self.last_statement = args[0] if args else None
            return attribute(*args, **kwargs)

        return traced


class Migrator:
    """`actor` makes schema changes; `connection` is the open asyncpg connection for data migrations.

    When SQL is only being printed (`pgmig up --sql`) there is no connection:
    `connection` is None and the actor records instead of running.
    """

    def __init__(self, connection: Any, actor: DatabaseActions) -> None:
        self.connection = TracedConnection(connection) if connection is not None else None
        self.actor = actor
