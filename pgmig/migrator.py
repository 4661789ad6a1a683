"""What a revision's `up` and `down` receive."""

from __future__ import annotations

from typing import Any

from .actions import DatabaseActions


class Migrator:
    """`actor` makes schema changes; `connection` is the open asyncpg connection for data migrations.

    When SQL is only being printed (`pgmig up --sql`) there is no connection:
    `connection` is None and the actor records instead of running.
    """

    def __init__(self, connection: Any, actor: DatabaseActions) -> None:
        self.connection = connection
        self.actor = actor
