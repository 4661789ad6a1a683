"""Test kit: a real PostgreSQL for tests, and a fresh database for each one.

Used by pgmig's own suite and meant for plugin authors and applications:
one server per test session (the embedded one in a temporary folder, or the
server named by PGMIG_TEST_DATABASE_URL), and a new database per test, so
tests never see each other's schema.

    pytest -p pgmig.testing   # or: from pgmig.testing import *  in conftest.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Coroutine, Iterator, List, Optional, TypeVar
from urllib.parse import urlsplit

TEST_URL_ENV = "PGMIG_TEST_DATABASE_URL"

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to completion on a new event loop in a worker thread, and return its result.

    Sync fixtures run between the async tests of pytest-asyncio and anyio, whose
    event loop is set for the main thread (and may be running, in a nested call):
    `asyncio.run` there would fail, or leave the thread without its current loop
    when it ends. A thread has its own current loop, so the caller's is never
    touched. Raises whatever the coroutine raises.
    """
    outcome: List[Any] = []

    def target() -> None:
        try:
            outcome.append((True, asyncio.run(coroutine)))
        except BaseException as error:  # noqa: BLE001 - handed to the caller as is
            outcome.append((False, error))

    worker = threading.Thread(target=target, name="pgmig-testing")
    worker.start()
    worker.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


class ScratchServer:
    """A PostgreSQL server on which databases are created and dropped at will."""

    def __init__(self, url: Optional[str] = None) -> None:
        self._tempdir: Optional[str] = None
        self._server: Any = None
        if url is None:
            from pgmig.db.embedded import root_home, start_server, unreachable

            # As root the embedded server runs as its own user, which must enter the folder: a fresh one
            # of ours, made 0755, in a parent it can already traverse (pgmig never chmods anyone's folder).
            parent = tempfile.gettempdir()
            if unreachable(Path(parent) / "x") is not None:
                parent = str(root_home())
            self._tempdir = tempfile.mkdtemp(prefix="pgmig-test-", dir=parent)
            os.chmod(self._tempdir, 0o755)
            self._server = start_server(Path(self._tempdir), cleanup_mode="delete")
            url = self._server.get_uri("postgres")
        self.admin_url = url

    def url_for(self, database: str) -> str:
        from pgmig.db.urls import with_database

        return with_database(self.admin_url, database)

    async def _admin(self, statement: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def create_database(self, name: Optional[str] = None, template: str = "template0") -> str:
        """Create a database and return its URL: empty, or a copy of the database named `template`.

        A template must have no other connection while it is copied (PostgreSQL
        docs, "Template Databases"); CREATE DATABASE fails otherwise.
        """
        from pgmig.db.quoting import quote_ident

        name = name or f"pgmig_test_{uuid.uuid4().hex[:12]}"
        run_sync(self._admin(f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(template)}"))
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        from pgmig.db.quoting import quote_ident

        name = urlsplit(url).path.lstrip("/")
        run_sync(self._admin(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)"))

    def close(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None


def scratch_server() -> ScratchServer:
    """The server for a test session: PGMIG_TEST_DATABASE_URL's, else an embedded one."""
    return ScratchServer(os.environ.get(TEST_URL_ENV) or None)


try:
    import pytest
except ImportError:  # pragma: no cover - the kit is optional at run time
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def pgmig_server() -> Iterator[ScratchServer]:
        """One PostgreSQL server for the whole test session."""
        server = scratch_server()
        try:
            yield server
        finally:
            server.close()

    @pytest.fixture
    def database_url(pgmig_server: ScratchServer) -> Iterator[str]:
        """The URL of a new, empty database, dropped after the test."""
        url = pgmig_server.create_database()
        try:
            yield url
        finally:
            pgmig_server.drop_database(url)


# -- for plugin authors: a handler set to test with (see pgmig.conformance) --------------


def handlers_from(handlers: Any = None) -> Any:
    """A HandlerSet from a list of handler classes or instances; None means every installed one.

    Tests pass a plain list so they run with exactly the kinds they mean,
    whatever else is installed; the same duplicate-kind check applies.
    """
    from pgmig.testing.conformance import resolve_handlers

    return resolve_handlers(handlers)


if pytest is not None:

    @pytest.fixture
    def pgmig_handlers() -> Any:
        """Every installed handler, as a user's project would run; override it in a conftest.py:

        @pytest.fixture
        def pgmig_handlers():
            return handlers_from([*builtin_handlers(), ViewHandler])
        """
        return handlers_from(None)
