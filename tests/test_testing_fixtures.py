"""The pytest plugin's async fixtures in an application's own suite, under pytest-asyncio and anyio.

A sample project with two revisions runs its tests in a subprocess, as a user's
`pytest` would: each asyncio mode and loop scope, and anyio with and without
pytest-asyncio installed beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator, List

import pytest

from pgmig.testing import ScratchServer
from tests.sample_project import V1, V2, Project

# Each test states its neighbour's effects: they run in file order.
APP_TESTS = """
import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

{header}

SEEN = {{}}


async def test_1_writes_in_its_transaction(pgmig_connection):
    SEEN["loop"] = asyncio.get_running_loop()
    await pgmig_connection.execute("INSERT INTO author (name) VALUES ('rolled back')")
    assert await pgmig_connection.fetchval("SELECT count(*) FROM author") == 1


async def test_2_does_not_see_the_row_and_is_at_head(pgmig_connection):
    assert await pgmig_connection.fetchval("SELECT count(*) FROM author") == 0
    assert await pgmig_connection.fetchval("SELECT count(*) FROM pgmig_revisions") == 2
    # V2's column: the second revision ran too.
    assert await pgmig_connection.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'post' AND column_name = 'views'"
    ) == 1
    assert (asyncio.get_running_loop() is SEEN["loop"]) is {same_loop}


async def test_3_sqlalchemy_async_engine(pgmig_sqlalchemy_url):
    assert pgmig_sqlalchemy_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(pgmig_sqlalchemy_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM pgmig_revisions"))).scalar() == 2
            assert (await connection.execute(text("SELECT count(*) FROM author"))).scalar() == 0
    finally:
        await engine.dispose()


async def test_4_commits_in_a_fresh_database(pgmig_fresh_database_url):
    SEEN["fresh"] = pgmig_fresh_database_url
    connection = await asyncpg.connect(pgmig_fresh_database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM pgmig_revisions") == 2
        await connection.execute("INSERT INTO author (name) VALUES ('committed')")
    finally:
        await connection.close()
    again = await asyncpg.connect(pgmig_fresh_database_url)
    try:
        assert await again.fetchval("SELECT count(*) FROM author") == 1
    finally:
        await again.close()


async def test_5_gets_another_fresh_database(pgmig_fresh_database_url):
    assert pgmig_fresh_database_url != SEEN["fresh"]
    connection = await asyncpg.connect(pgmig_fresh_database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM author") == 0
        assert await connection.fetchval("SELECT count(*) FROM pgmig_revisions") == 2
    finally:
        await connection.close()


async def test_6_the_shared_database_saw_no_commit(pgmig_connection):
    assert await pgmig_connection.fetchval("SELECT count(*) FROM author") == 0

"""

# Sync tests beside the async ones, after them: the session's loop stays usable, and pgmig_db still works.
SYNC_TESTS = """
def test_8_sync_writes(pgmig_db):
    pgmig_db.run(pgmig_db.connection.execute("INSERT INTO author (name) VALUES ('sync')"))
    assert pgmig_db.run(pgmig_db.connection.fetchval("SELECT count(*) FROM author")) == 1


def test_9_sync_does_not_see_it(pgmig_db):
    assert pgmig_db.run(pgmig_db.connection.fetchval("SELECT count(*) FROM author")) == 0
    assert pgmig_db.run(pgmig_db.connection.fetchval("SELECT count(*) FROM pgmig_revisions")) == 2
"""

ANYIO = """
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""

# (name, header of the test module, pytest options, whether every test shares one loop)
VARIANTS = [
    ("asyncio-strict-function-loop", "pytestmark = pytest.mark.asyncio", ["-o", "asyncio_mode=strict"], False),
    ("asyncio-auto-function-loop", "", ["-o", "asyncio_mode=auto"], False),
    (
        "asyncio-strict-session-loop",
        'pytestmark = pytest.mark.asyncio(loop_scope="session")',
        ["-o", "asyncio_mode=strict"],
        True,
    ),
    (
        "asyncio-auto-session-loop",
        "",
        ["-o", "asyncio_mode=auto", "-o", "asyncio_default_test_loop_scope=session"],
        True,
    ),
    ("anyio-beside-pytest-asyncio", ANYIO, ["-o", "asyncio_mode=strict"], False),
    (
        "asyncio-strict-module-loop",
        'pytestmark = pytest.mark.asyncio(loop_scope="module")',
        ["-o", "asyncio_mode=strict"],
        True,
    ),
    # A suite whose own async fixtures share one loop: pgmig_connection still takes the test's.
    (
        "asyncio-strict-session-fixture-loop",
        "pytestmark = pytest.mark.asyncio",
        ["-o", "asyncio_mode=strict", "-o", "asyncio_default_fixture_loop_scope=session"],
        False,
    ),
    ("anyio-alone", ANYIO, ["-p", "no:asyncio"], False),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, pgmig_server: ScratchServer) -> Iterator[Project]:
    """A project with two revisions (V1, then V2), generated once for every variant."""
    url = pgmig_server.create_database()
    try:
        project = Project(tmp_path_factory.mktemp("app"), url)
        project.models(V1)
        project.generate("initial")
        project.models(V2)
        project.generate("second")
        yield project
    finally:
        pgmig_server.drop_database(url)


def run_app_tests(project: Project, server: ScratchServer, module: str, options: List[str]) -> str:
    """Run `module` as the project's test_app.py, then SYNC_TESTS, under a user's pytest; returns its output."""
    (project.root / "test_app.py").write_text(module)
    (project.root / "test_sync_app.py").write_text(SYNC_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env["PGMIG_TEST_DATABASE_URL"] = server.admin_url
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *options,
            "test_app.py",
            "test_sync_app.py",
        ],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def assert_clean(output: str, passed: int) -> None:
    assert output.startswith("exit 0\n"), output
    assert f"{passed} passed" in output, output
    for trouble in (
        "warnings summary",
        "error",
        "different loop",
        "Event loop is closed",
        "never awaited",
        "Unraisable",
        "unclosed",
    ):
        assert trouble.lower() not in output.lower(), output


@pytest.mark.parametrize("name, header, options, same_loop", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_async_fixtures_in_an_application_suite(
    app: Project, pgmig_server: ScratchServer, name: str, header: str, options: List[str], same_loop: bool
) -> None:
    module = APP_TESTS.format(header=header, same_loop=same_loop)
    # pytest-asyncio warns while its fixture loop scope is unset: a user's suite sets it.
    set_already = "no:asyncio" in options or any(o.startswith("asyncio_default_fixture_loop_scope") for o in options)
    ini = [] if set_already else ["-o", "asyncio_default_fixture_loop_scope=function"]
    assert_clean(run_app_tests(app, pgmig_server, module, [*ini, *options]), passed=8)


def test_pgmig_db_in_an_async_test_says_what_to_take(app: Project, pgmig_server: ScratchServer) -> None:
    module = "import pytest\n\n\n@pytest.mark.asyncio\nasync def test_async(pgmig_db):\n    pass\n"
    output = run_app_tests(app, pgmig_server, module, ["-o", "asyncio_default_fixture_loop_scope=function"])
    assert output.startswith("exit 1\n"), output
    assert "test_async is async: take pgmig_connection instead of pgmig_db" in output
    assert "2 passed, 1 error" in output and "different loop" not in output


def test_pgmig_connection_without_an_async_plugin_says_what_to_install(
    app: Project, pgmig_server: ScratchServer
) -> None:
    module = "def test_sync(pgmig_connection):\n    pass\n"
    output = run_app_tests(app, pgmig_server, module, ["-p", "no:asyncio"])
    assert output.startswith("exit 1\n"), output
    assert "pgmig_connection is an async fixture: install pytest-asyncio" in output, output
    assert "2 passed, 1 error" in output, output


def test_sqlalchemy_url_keeps_everything_but_the_scheme() -> None:
    from pgmig.testing.pytest_plugin import sqlalchemy_url

    assert sqlalchemy_url("postgresql://app:s3cret@db:5433/shop?sslmode=disable") == (
        "postgresql+asyncpg://app:s3cret@db:5433/shop?sslmode=disable"
    )
    assert sqlalchemy_url("postgres://app@db/shop", driver="psycopg") == "postgresql+psycopg://app@db/shop"


SEEDED = """
import pytest
import pytest_asyncio

{header}


@pytest_asyncio.fixture{declared}
async def seeded(pgmig_connection):
    await pgmig_connection.execute("INSERT INTO author (name) VALUES ('seeded')")
    yield pgmig_connection


async def test_seeded(seeded):
    assert await seeded.fetchval("SELECT count(*) FROM author") == 1
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_a_users_async_fixture_on_another_loop_than_the_test_is_told_what_to_set(
    app: Project, pgmig_server: ScratchServer, mode: str
) -> None:
    """A fixture of the user's own wrapping pgmig_connection, run on the session loop (the ini's fixture
    loop scope) while the test runs on its function loop: the connection cannot serve both, so the test
    fails at setup naming what to set, and with it set the fixture works."""
    header = "pytestmark = pytest.mark.asyncio" if mode == "strict" else ""
    options = ["-o", f"asyncio_mode={mode}", "-o", "asyncio_default_fixture_loop_scope=session"]
    output = run_app_tests(app, pgmig_server, SEEDED.format(header=header, declared=""), options)
    assert output.startswith("exit 1\n"), output
    assert "fixture seeded uses pgmig_connection on the session-scoped event loop" in output, output
    assert '@pytest_asyncio.fixture(loop_scope="function")' in output, output
    assert "asyncio_default_fixture_loop_scope" in output and "different loop" not in output, output
    assert "2 passed, 1 error" in output, output
    advised = SEEDED.format(header=header, declared='(loop_scope="function")')
    assert_clean(run_app_tests(app, pgmig_server, advised, options), passed=3)
