"""What a revision's `up` and `down` receive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from pgmig.ops.actor import DatabaseActions

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg

    # To a type checker the traced connection is an asyncpg connection, which it delegates to.
    _Connection = asyncpg.Connection[asyncpg.Record]
else:
    _Connection = object


class NoConnectionError(AttributeError):
    """`migrator.connection` was used while SQL is only printed (`pgmig up --sql`): there is none.

    An `AttributeError`, which the `--sql` renderer reports as a revision it cannot show.
    """


class TracedConnection(_Connection):
    """The asyncpg connection a revision gets, remembering the last statement it was given.

    When a data migration's query fails, the runner can then say which
    statement it was, as it does for the actor's own statements. Every other
    attribute is the connection's own.
    """

    _TRACED = ("execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table")

    def __init__(self, connection: asyncpg.Connection[Any]) -> None:
        self._connection = connection
        self.last_statement: object = None

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            attribute = getattr(self._connection, name)
            if name not in self._TRACED:
                return attribute

            def traced(*args: Any, **kwargs: Any) -> Any:
                self.last_statement = args[0] if args else None
                return attribute(*args, **kwargs)

            return traced


class Migrator:
    """What `up` and `down` receive: `actor` makes schema changes, `connection` serves data migrations.

    When SQL is only being printed (`pgmig up --sql`) there is no connection:
    the actor records instead of running, and `connection` raises
    `NoConnectionError`; `await migrator.actor.execute(sql, *args)` is the
    data step that `--sql` can show.
    """

    def __init__(self, connection: Optional[asyncpg.Connection[Any]], actor: DatabaseActions) -> None:
        self._connection = TracedConnection(connection) if connection is not None else None
        self.actor: DatabaseActions = actor

    @property
    def connection(self) -> TracedConnection:
        """The open asyncpg connection (traced); raises `NoConnectionError` under `--sql`."""
        if self._connection is None:
            raise NoConnectionError(
                "migrator.connection does not exist while SQL is only printed, not run; "
                "a data step that the printed SQL can show is `await migrator.actor.execute(sql, *args)`"
            )
        return self._connection
