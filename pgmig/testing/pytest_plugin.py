"""pytest fixtures for applications that use pgmig (loaded through the `pytest11` entry point).

    def test_signup(pgmig_db):
        pgmig_db.run(pgmig_db.connection.execute("INSERT INTO account (email) VALUES ('a@b.c')"))

- `pgmig_server`: one PostgreSQL for the test session (embedded, or the server
  in PGMIG_TEST_DATABASE_URL).
- `pgmig_database_url`: a database migrated to head with pgmig's own runner,
  once per session, from the project's [tool.pgmig] settings.
- `pgmig_db`: per test, an asyncpg connection inside a transaction that is
  rolled back at the end, so tests never see each other's rows.

Only names starting with `pgmig_` are defined, so an application's own
fixtures are never shadowed. Nothing starts until a fixture is used.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Iterator, TypeVar

import pytest

from pgmig.testing import ScratchServer, pgmig_server  # noqa: F401  (the session server fixture, shared)

T = TypeVar("T")


@pytest.fixture(scope="session")
def pgmig_database_url(pgmig_server: ScratchServer) -> Iterator[str]:  # noqa: F811
    """A database at head: every revision of the project applied by pgmig's runner."""
    from pgmig.config.settings import load_settings
    from pgmig.revisions.runner import UP
    from pgmig.services.project import Project
    from pgmig.services.run import RunOptions, run

    url = pgmig_server.create_database()
    try:
        settings = load_settings({"database_url": url})
        asyncio.run(run(Project(settings), RunOptions(UP)))
        yield url
    finally:
        pgmig_server.drop_database(url)


class TransactionalDatabase:
    """An open connection inside a transaction; `run` drives coroutines on its own event loop."""

    def __init__(self, url: str) -> None:
        import asyncpg

        self.url = url
        self.loop = asyncio.new_event_loop()
        self.connection: Any = self.loop.run_until_complete(asyncpg.connect(url))
        self._transaction = self.connection.transaction()
        self.loop.run_until_complete(self._transaction.start())

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self._transaction.rollback())
            self.loop.run_until_complete(self.connection.close())
        finally:
            self.loop.close()


@pytest.fixture
def pgmig_db(pgmig_database_url: str) -> Iterator[TransactionalDatabase]:
    database = TransactionalDatabase(pgmig_database_url)
    try:
        yield database
    finally:
        database.close()
