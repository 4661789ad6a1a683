"""pytest fixtures for applications that use pgmig (loaded through the `pytest11` entry point).

    async def test_signup(pgmig_connection):           # pytest-asyncio or anyio
        await pgmig_connection.execute("INSERT INTO account (email) VALUES ('a@b.c')")

    def test_signup_sync(pgmig_db):                    # plain pytest
        pgmig_db.run(pgmig_db.connection.execute("INSERT INTO account (email) VALUES ('a@b.c')"))

- `pgmig_server`: one PostgreSQL for the test session (embedded, or the server
  in PGMIG_TEST_DATABASE_URL).
- `pgmig_database_url`: a database migrated to head with pgmig's own runner,
  once per session, from the project's [tool.pgmig] settings.
- `pgmig_sqlalchemy_url`: the same database as a SQLAlchemy async URL
  (`postgresql+asyncpg://`), for `create_async_engine`.
- `pgmig_connection`: per async test, an asyncpg connection opened on the
  test's own event loop inside a transaction that is rolled back at the end.
- `pgmig_fresh_database_url`: per test that asks for it, a database of its own
  at head (a copy of a template migrated once), dropped after the test: for
  code that commits.
- `pgmig_db`: per sync test, an asyncpg connection inside a transaction that is
  rolled back at the end, driven by its own event loop through `run`.

Only names starting with `pgmig_` are defined, so an application's own
fixtures are never shadowed. Nothing starts until a fixture is used.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, AsyncIterator, Awaitable, Callable, Generator, Iterator, Optional, TypeVar

import pytest

from pgmig.testing import ScratchServer, pgmig_server, run_sync  # noqa: F401  (the session server fixture, shared)

T = TypeVar("T")

_ASYNC_FIXTURE = "_pgmig_async_fixture"
"""Marks the async fixtures whose event loop `pytest_fixture_setup` below chooses."""


def sqlalchemy_url(url: str, driver: str = "asyncpg") -> str:
    """`url` (a `postgresql://` URL, as the fixtures give) for SQLAlchemy with `driver`: `postgresql+asyncpg://...`.

    Only the scheme changes; the rest is pgmig's normalized URL (`pgmig.db.urls.normalize_url`),
    which raises ConfigError for a URL that is not PostgreSQL's.
    """
    from pgmig.db.urls import normalize_url

    return f"postgresql+{driver}://" + normalize_url(url)[len("postgresql://") :]


async def _migrate_to_head(url: str) -> None:
    from pgmig.config.settings import load_settings
    from pgmig.revisions.runner import UP
    from pgmig.services.project import Project
    from pgmig.services.run import RunOptions, run

    await run(Project(load_settings({"database_url": url})), RunOptions(UP))


def _migrated_database(server: ScratchServer) -> Iterator[str]:
    url = server.create_database()
    try:
        run_sync(_migrate_to_head(url))
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture(scope="session")
def pgmig_database_url(pgmig_server: ScratchServer) -> Iterator[str]:  # noqa: F811
    """A database at head: every revision of the project applied by pgmig's runner, once per session."""
    yield from _migrated_database(pgmig_server)


@pytest.fixture(scope="session")
def pgmig_sqlalchemy_url(pgmig_database_url: str) -> str:
    """`pgmig_database_url` for SQLAlchemy's async engine: `postgresql+asyncpg://...`.

    Rows committed through it stay for the rest of the session; a test that
    commits takes `pgmig_fresh_database_url` (and `sqlalchemy_url(...)` of it).
    """
    return sqlalchemy_url(pgmig_database_url)


@pytest.fixture(scope="session")
def pgmig_template_database(pgmig_server: ScratchServer) -> Iterator[str]:  # noqa: F811
    """The name of a database at head that `pgmig_fresh_database_url` copies; nothing connects to it after
    the migration, as CREATE DATABASE ... TEMPLATE requires (PostgreSQL docs, "Template Databases")."""
    from urllib.parse import unquote, urlsplit

    for url in _migrated_database(pgmig_server):
        yield unquote(urlsplit(url).path.lstrip("/"))


@pytest.fixture
def pgmig_fresh_database_url(pgmig_server: ScratchServer, pgmig_template_database: str) -> Iterator[str]:  # noqa: F811
    """The URL of a database of the test's own, at head, dropped after the test: commit at will.

    A copy of `pgmig_template_database` (the migrations run once per session; a
    copy takes a few tens of milliseconds).
    """
    url = pgmig_server.create_database(template=pgmig_template_database)
    try:
        yield url
    finally:
        pgmig_server.drop_database(url)


def _async_fixture(function: Callable[..., AsyncIterator[Any]]) -> Any:
    setattr(function, _ASYNC_FIXTURE, True)
    try:
        # Declared for pytest-asyncio's strict mode (which warns about a plain async fixture at collection);
        # the loop is chosen per test below.
        from pytest_asyncio import fixture
    except ImportError:  # anyio alone
        return pytest.fixture(function)
    return fixture(function)


@_async_fixture
async def pgmig_connection(pgmig_database_url: str) -> AsyncIterator[Any]:
    """An asyncpg connection to `pgmig_database_url` inside a transaction rolled back after the test.

    Opened and closed on the test's own event loop: under pytest-asyncio the
    loop scope of the test (its `asyncio` mark's `loop_scope`, else
    `asyncio_default_test_loop_scope`), under anyio the test's runner. The test
    must not end the transaction itself (a COMMIT would keep its rows for the
    session: use `pgmig_fresh_database_url` for that).
    """
    import asyncpg

    connection = await asyncpg.connect(pgmig_database_url)
    try:
        transaction = connection.transaction()
        await transaction.start()
        yield connection
        if connection.is_in_transaction():
            await transaction.rollback()
    finally:
        # Closing a connection also ends its transaction without committing it.
        await connection.close()


def _test_loop_scope(request: pytest.FixtureRequest) -> str:
    """The loop scope pytest-asyncio runs the requesting test in (its docs, "Concepts: event loop scope")."""
    marker = request.node.get_closest_marker("asyncio")
    scope = None if marker is None else marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if scope is None:
        try:
            scope = request.config.getini("asyncio_default_test_loop_scope")
        except ValueError:  # pytest-asyncio before 0.26 has no such option: its tests ran on function loops
            scope = None
    return str(scope or "function")


def _fixture_loop_scope(fixturedef: Any, config: pytest.Config) -> Optional[str]:
    """The loop scope pytest-asyncio runs an async fixture on (its fixture's `loop_scope`, else
    `asyncio_default_fixture_loop_scope`, "match" or unset meaning the fixture's own scope: its
    docs, "Concepts: event loop scope"); None for a fixture it does not run (sync, or unmarked in
    strict mode)."""
    function = getattr(fixturedef.func, "__func__", fixturedef.func)
    marked = getattr(function, "_force_asyncio_fixture", False)
    mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
    is_async = inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)
    if not marked and not (mode == "auto" and is_async):
        return None
    default = config.getini("asyncio_default_fixture_loop_scope")
    return str(
        getattr(function, "_loop_scope", None)
        or (default if default not in (None, "match") else None)
        or fixturedef.scope
    )


def _refuse_other_loops(name: str, request: pytest.FixtureRequest, loop_scope: str) -> None:
    """Fail the test at setup when an async fixture of its own that takes `name` (directly or through
    other fixtures) runs on another loop than the test: the connection serves both, and asyncpg's
    connection works on one loop only ("attached to a different loop" at its first await)."""
    item = getattr(request, "_pyfuncitem", None)
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    reaching = {name}
    while True:
        more = {
            other
            for other, defs in definitions.items()
            if other not in reaching and defs and reaching & set(defs[-1].argnames)
        }
        if not more:
            break
        reaching |= more
    for other in sorted(reaching - {name}):
        scope = _fixture_loop_scope(definitions[other][-1], request.config)
        if scope is not None and scope != loop_scope:
            pytest.fail(
                f"fixture {other} uses {name} on the {scope}-scoped event loop, but the test runs on the "
                f"{loop_scope}-scoped one, and a connection works on one loop only: declare it "
                f'@pytest_asyncio.fixture(loop_scope="{loop_scope}"), or set asyncio_default_fixture_loop_scope = '
                f'"{loop_scope}" in the pytest configuration (or run the test on the {scope}-scoped loop: '
                f'@pytest.mark.asyncio(loop_scope="{scope}") or asyncio_default_test_loop_scope)',
                pytrace=False,
            )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Generator[None, Any, Any]:
    """Run pgmig's async fixtures on the requesting test's event loop.

    A fixture's loop is otherwise its own choice (pytest-asyncio: the fixture's
    scope, or `asyncio_default_fixture_loop_scope`), and a connection opened on
    another loop than the test's fails with "attached to a different loop".
    anyio runs the async fixtures of its tests on the test's runner already.
    """
    function = fixturedef.func
    if not getattr(function, _ASYNC_FIXTURE, False):
        return (yield)

    # A copy, so that the choice holds for this test only: the next one may run on another loop.
    async def on_the_tests_loop(**kwargs: Any) -> AsyncIterator[Any]:
        async for value in function(**kwargs):
            yield value

    # An anyio test leaves the copy unmarked: anyio's hook runs it on the test's runner, and
    # pytest-asyncio's strict mode passes over an unmarked fixture.
    if "anyio_backend" not in request.fixturenames:
        if not request.config.pluginmanager.hasplugin("asyncio"):
            pytest.fail(
                f"{fixturedef.argname} is an async fixture: install pytest-asyncio and mark the test "
                "@pytest.mark.asyncio, or use anyio (@pytest.mark.anyio); sync tests take pgmig_db",
                pytrace=False,
            )
        import pytest_asyncio

        loop_scope = _test_loop_scope(request)
        _refuse_other_loops(fixturedef.argname, request, loop_scope)
        pytest_asyncio.fixture(on_the_tests_loop, loop_scope=loop_scope)  # type: ignore[call-overload]
    fixturedef.func = on_the_tests_loop
    try:
        return (yield)
    finally:
        fixturedef.func = function


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
        """Run `awaitable` (a call on `connection`) to completion on this connection's loop; returns its result."""
        return self.loop.run_until_complete(awaitable)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self._transaction.rollback())
            self.loop.run_until_complete(self.connection.close())
        finally:
            self.loop.close()


@pytest.fixture
def pgmig_db(request: pytest.FixtureRequest, pgmig_database_url: str) -> Iterator[TransactionalDatabase]:
    """For sync tests: a connection in a transaction rolled back after the test, on a loop of its own."""
    if inspect.iscoroutinefunction(getattr(request, "function", None)):
        # Its connection lives on its own loop: awaited on the test's, it fails ("attached to a different loop").
        pytest.fail(f"{request.node.name} is async: take pgmig_connection instead of pgmig_db", pytrace=False)
    database = TransactionalDatabase(pgmig_database_url)
    try:
        yield database
    finally:
        database.close()
