"""Issue 19, the runner: non-transactional revisions that can run again after a failure, and a
revision's SystemExit / KeyboardInterrupt / other BaseException reported as its failure.

Every scenario runs on the real server: the first run fails part-way, the database is
repaired (rows fixed, a lock released), and the second run must finish with the schema
`create_all` builds and the version table in step.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Dict, List

import asyncpg
import pytest
from sqlalchemy import Column, Index, Integer, MetaData, Table, Text

from pgmig.errors import DatabaseError, RevisionError
from pgmig.revisions.files import load_chain
from pgmig.revisions.runner import MigrationTimeoutError, Runner
from pgmig.revisions.version_table import VersionTable
from tests.helpers import create_all, diff, fetch, pgmig_cli, run_sql, snapshot

VERSIONS = VersionTable("public", "pgmig_revisions")


def _items(*indexes: str) -> MetaData:
    """item(id, a, b) and other(id, c), with the named indexes of these four (create_all's shape)."""
    metadata = MetaData()
    item = Table("item", metadata, Column("id", Integer, primary_key=True), Column("a", Text), Column("b", Text))
    other = Table("other", metadata, Column("id", Integer, primary_key=True), Column("c", Text))
    known = {
        "ix_item_a": lambda: Index("ix_item_a", item.c.a),
        "ux_item_b": lambda: Index("ux_item_b", item.c.b, unique=True),
        "ix_item_ab_desc": lambda: Index("ix_item_ab_desc", item.c.a, item.c.b.desc()),
        "ix_other_c": lambda: Index("ix_other_c", other.c.c),
    }
    for name in indexes:
        known[name]()
    return metadata


ADD = {
    "ix_item_a": "await migrator.actor.add_index(table_name='item', index_name='ix_item_a', columns=['a'], "
    "concurrently=True)",
    "ux_item_b": "await migrator.actor.add_index(table_name='item', index_name='ux_item_b', columns=['b'], "
    "unique=True, concurrently=True)",
    "ix_item_ab_desc": "await migrator.actor.add_index(table_name='item', index_name='ix_item_ab_desc', "
    "columns=['a', 'b DESC'], concurrently=True)",
    "ix_other_c": "await migrator.actor.add_index(table_name='other', index_name='ix_other_c', columns=['c'], "
    "concurrently=True)",
}


def _drop(name: str) -> str:
    return f"await migrator.actor.drop_index(index_name={name!r}, concurrently=True)"


def write_revision(
    folder: Path, rid: str, up: list[str], down: list[str], transactional: bool = False, prelude: str = ""
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"        {line}" for line in up) or "        pass"
    back = "\n".join(f"        {line}" for line in down) or "        pass"
    path = folder / f"{rid}_step.py"
    path.write_text(
        f"{prelude}"
        "from pgmig import MigrationRevisionBase, Migrator\n\n\n"
        "class MigrationRevision(MigrationRevisionBase):\n"
        f"    up_revision = {rid!r}\n"
        "    down_revision = None\n"
        f"    transactional = {transactional}\n\n"
        "    async def up(self, migrator: Migrator):\n"
        f"{body}\n\n"
        "    async def down(self, migrator: Migrator):\n"
        f"{back}\n"
    )
    return path


def runner(folder: Path, url: str, **timeouts: str) -> Runner:
    return Runner(url, load_chain(folder), VERSIONS, **timeouts)


def up(folder: Path, url: str, **timeouts: str) -> list[str]:
    return [r.id for r in asyncio.run(runner(folder, url, **timeouts).upgrade())]


def down(folder: Path, url: str, **timeouts: str) -> list[str]:
    return [r.id for r in asyncio.run(runner(folder, url, **timeouts).downgrade())]


def applied(url: str) -> list[str]:
    if fetch(url, "SELECT to_regclass('pgmig_revisions') IS NOT NULL AS t")[0]["t"]:
        return [row["id"] for row in fetch(url, "SELECT id FROM pgmig_revisions ORDER BY id")]
    return []


def indexes(url: str) -> Dict[str, bool]:
    rows = fetch(
        url,
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT i.indisprimary",
    )
    return {row["relname"]: row["indisvalid"] for row in rows}


# -- 1. a non-transactional revision runs again after a failure, both directions --------


def test_up_retried_after_a_unique_build_fails_on_duplicates(database_url: str, tmp_path: Path) -> None:
    create_all(database_url, _items())
    run_sql(database_url, "INSERT INTO item (id, a, b) VALUES (1, 'x', 'dup'), (2, 'y', 'dup'), (3, 'z', 'ok')")
    write_revision(tmp_path, "r1", [ADD["ix_item_a"], ADD["ux_item_b"]], [_drop("ux_item_b"), _drop("ix_item_a")])
    with pytest.raises(DatabaseError) as failed:
        up(tmp_path, database_url)
    message = str(failed.value)
    assert "UniqueViolation" in message
    # Which steps stayed applied, and that a rerun is safe.
    assert "these steps stay applied: add_index(table_name='item', index_name='ix_item_a'" in message
    assert "ux_item_b" not in message.split("stay applied:")[1]
    assert "running pgmig up again is safe" in message
    assert indexes(database_url) == {"ix_item_a": True, "ux_item_b": False}
    assert applied(database_url) == []

    run_sql(database_url, "UPDATE item SET b = 'fixed' WHERE id = 2")
    assert up(tmp_path, database_url) == ["r1"]
    assert indexes(database_url) == {"ix_item_a": True, "ux_item_b": True}
    assert applied(database_url) == ["r1"]
    assert diff(database_url, _items("ix_item_a", "ux_item_b")).is_empty
    assert len(fetch(database_url, "SELECT * FROM item")) == 3

    # Down, then up again from scratch: the revision stays a plain round trip.
    assert down(tmp_path, database_url) == ["r1"]
    assert diff(database_url, _items()).is_empty and applied(database_url) == []


def _holding_lock(url: str, table: str, work: Any) -> Any:
    """Run `work()` (in a thread) while another session holds ACCESS EXCLUSIVE on `table`."""

    async def scenario() -> Any:
        import asyncpg

        holder = await asyncpg.connect(url)
        try:
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
            try:
                return await asyncio.to_thread(work)
            finally:
                await transaction.rollback()
        finally:
            await holder.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("direction", ["up", "down"])
def test_retried_after_a_lock_timeout_on_the_second_step(database_url: str, tmp_path: Path, direction: str) -> None:
    built = ("ix_item_a", "ix_item_ab_desc", "ix_other_c")
    start = _items() if direction == "up" else _items(*built)
    create_all(database_url, start)
    run_sql(database_url, "INSERT INTO item (id, a, b) VALUES (1, 'x', 'y')", "INSERT INTO other VALUES (1, 'c')")
    write_revision(
        tmp_path,
        "r1",
        [ADD["ix_item_a"], ADD["ix_other_c"], ADD["ix_item_ab_desc"]],
        [_drop("ix_item_a"), _drop("ix_other_c"), _drop("ix_item_ab_desc")],
    )
    if direction == "down":
        run_sql(
            database_url, VERSIONS.create_sql(), VERSIONS.insert_sql("r1", load_chain(tmp_path).revisions[0].checksum)
        )
    run = up if direction == "up" else down

    with pytest.raises(MigrationTimeoutError) as failed:
        _holding_lock(database_url, "other", lambda: run(tmp_path, database_url, lock_timeout="200ms"))
    message = str(failed.value)
    first = (
        "add_index(table_name='item', index_name='ix_item_a'"
        if direction == "up"
        else "drop_index(index_name='ix_item_a'"
    )
    assert f"these steps stay applied: {first}" in message
    assert f"running pgmig {direction} again is safe" in message
    after_failure = indexes(database_url)
    if direction == "up":
        assert after_failure.get("ix_item_a") is True and "ix_item_ab_desc" not in after_failure
    else:
        assert "ix_item_a" not in after_failure and after_failure.get("ix_other_c") is True

    assert run(tmp_path, database_url) == ["r1"]
    end = _items(*built) if direction == "up" else _items()
    assert diff(database_url, end).is_empty
    assert all(indexes(database_url).values())
    assert applied(database_url) == (["r1"] if direction == "up" else [])
    assert fetch(database_url, "SELECT a, b FROM item") == [{"a": "x", "b": "y"}]


def test_rerun_rebuilds_an_invalid_index_and_keeps_a_finished_one(database_url: str, tmp_path: Path) -> None:
    """A killed CONCURRENTLY build leaves an INVALID index: the rerun drops and rebuilds it."""
    create_all(database_url, _items())
    run_sql(database_url, "INSERT INTO item (id, a, b) VALUES (1, 'x', 'd'), (2, 'y', 'd')")
    # An invalid index as a killed build leaves it, and a finished one of the same revision.
    run_sql(database_url, "CREATE INDEX ix_item_ab_desc ON item (a, b DESC)")
    with pytest.raises(asyncpg.UniqueViolationError):
        run_sql(database_url, "CREATE UNIQUE INDEX CONCURRENTLY ux_item_b ON item (b)")
    assert indexes(database_url) == {"ix_item_ab_desc": True, "ux_item_b": False}
    oid = fetch(database_url, "SELECT 'ix_item_ab_desc'::regclass::oid AS o")[0]["o"]
    run_sql(database_url, "UPDATE item SET b = 'e' WHERE id = 2")
    write_revision(tmp_path, "r1", [ADD["ix_item_ab_desc"], ADD["ux_item_b"]], [_drop("ux_item_b")])
    assert up(tmp_path, database_url) == ["r1"]
    assert indexes(database_url) == {"ix_item_ab_desc": True, "ux_item_b": True}
    # The finished index counted as done: not built again.
    assert fetch(database_url, "SELECT 'ix_item_ab_desc'::regclass::oid AS o")[0]["o"] == oid
    assert diff(database_url, _items("ix_item_ab_desc", "ux_item_b")).is_empty


def test_an_index_of_the_same_name_and_another_definition_is_not_taken_for_done(
    database_url: str, tmp_path: Path
) -> None:
    create_all(database_url, _items())
    run_sql(database_url, "CREATE INDEX ix_item_a ON item (b)")
    write_revision(tmp_path, "r1", [ADD["ix_item_a"]], [_drop("ix_item_a")])
    with pytest.raises(RevisionError, match=r'index "public"."ix_item_a" exists with another definition'):
        up(tmp_path, database_url)
    assert applied(database_url) == []


ADD_CHECK = "await migrator.actor.add_check(table_name='item', constraint_name='ck_a', expression='length(a) > 0')"
FAIL = "await migrator.actor.execute('SELECT 1/0')"


@pytest.mark.parametrize(
    "existing, done",
    [("CHECK (length(a) > 0)", True), ("CHECK (length(a) > 0) NOT VALID", False), ("CHECK (a <> 'x')", False)],
)
def test_a_check_of_the_same_name_counts_as_done_only_with_the_same_definition(
    database_url: str, tmp_path: Path, existing: str, done: bool
) -> None:
    """A rerun finds its own check (done); another body, or one left NOT VALID, is refused naming it."""
    create_all(database_url, _items())
    run_sql(database_url, f"ALTER TABLE item ADD CONSTRAINT ck_a {existing}")
    write_revision(tmp_path, "r1", [ADD_CHECK], [])
    if done:
        assert up(tmp_path, database_url) == ["r1"]
    else:
        with pytest.raises(RevisionError, match="constraint ck_a of"):
            up(tmp_path, database_url)
        assert applied(database_url) == []
    [definition] = [
        row["d"]
        for row in fetch(
            database_url, "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conname = 'ck_a'"
        )
    ]
    assert definition == existing.replace("(length(a) > 0)", "((length(a) > 0))").replace(
        "(a <> 'x')", "((a <> 'x'::text))"
    )


def test_a_check_added_before_the_failure_is_done_on_the_rerun(database_url: str, tmp_path: Path) -> None:
    create_all(database_url, _items())
    path = write_revision(tmp_path, "r1", [ADD_CHECK, FAIL], [])
    with pytest.raises(DatabaseError, match="these steps stay applied: add_check"):
        up(tmp_path, database_url)
    path.write_text(path.read_text().replace("SELECT 1/0", "SELECT 1"))
    assert up(tmp_path, database_url) == ["r1"]


def _add_c(**kwargs: Any) -> str:
    arguments = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    return f"await migrator.actor.add_column(table_name='item', column_name='c', data_type='integer', {arguments})"


@pytest.mark.parametrize(
    "existing, step, said",
    [
        ("integer", {"nullable": False, "default": "7"}, "allowing NULL"),
        ("integer DEFAULT 5", {"default": "7"}, "with default 5"),
        ("integer", {"default": "7"}, "with default none"),
    ],
)
def test_a_column_of_the_same_name_and_type_but_another_nullability_or_default_is_refused(
    database_url: str, tmp_path: Path, existing: str, step: Dict[str, Any], said: str
) -> None:
    create_all(database_url, _items())
    run_sql(database_url, f"ALTER TABLE item ADD COLUMN c {existing}")
    write_revision(tmp_path, "r1", [_add_c(**step)], [])
    with pytest.raises(RevisionError, match=f"column c of .* exists {said}"):
        up(tmp_path, database_url)
    assert applied(database_url) == []


@pytest.mark.parametrize(
    "steps",
    [
        [_add_c(nullable=False, default="7")],
        [_add_c(default="'7'::integer + 0")],
        # Added with a default for the rows, then the default dropped: the later step explains the column.
        [
            _add_c(nullable=False, default="7"),
            "await migrator.actor.set_column_default(table_name='item', column_name='c', default=None)",
        ],
    ],
)
def test_a_column_added_before_the_failure_is_done_on_the_rerun(
    database_url: str, tmp_path: Path, steps: List[str]
) -> None:
    create_all(database_url, _items())
    path = write_revision(tmp_path, "r1", [*steps, FAIL], [])
    with pytest.raises(DatabaseError, match="these steps stay applied: add_column"):
        up(tmp_path, database_url)
    path.write_text(path.read_text().replace("SELECT 1/0", "SELECT 1"))
    assert up(tmp_path, database_url) == ["r1"]


def test_rename_index_outside_a_transaction_runs_again(database_url: str, tmp_path: Path) -> None:
    create_all(database_url, _items("ix_item_a"))
    write_revision(
        tmp_path,
        "r1",
        [
            "await migrator.actor.rename_index(index_name='ix_item_a', new_name='ix_item_a2')",
            "await migrator.actor.execute('SELECT 1/0')",
        ],
        [],
    )
    with pytest.raises(DatabaseError, match="these steps stay applied: rename_index"):
        up(tmp_path, database_url)
    (tmp_path / "r1_step.py").write_text((tmp_path / "r1_step.py").read_text().replace("SELECT 1/0", "SELECT 1"))
    assert up(tmp_path, database_url) == ["r1"]
    assert set(indexes(database_url)) == {"ix_item_a2"}


ITEM_V1 = """
from typing import Optional
from sqlmodel import Field, SQLModel


class Item(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    a: Optional[str] = None
    b: Optional[str] = None
"""

ITEM_V2 = """
from typing import Optional
from sqlmodel import Field, SQLModel


class Item(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    a: Optional[str] = Field(default=None, index=True)
    b: Optional[str] = Field(default=None, unique=True)
    c: Optional[int] = None


class Tag(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    label: str = Field(index=True)
"""


def test_a_generated_concurrently_revision_runs_again_after_it_failed(database_url: str, tmp_path: Path) -> None:
    """The issue's input through the CLI: `generate --concurrently` (a new table, a new column, two
    indexes built CONCURRENTLY); the unique build fails on duplicates, the rerun after the fix
    finishes, and the database then matches the models."""
    from tests.sample_project import Project

    project = Project(tmp_path, database_url)
    project.models(ITEM_V1)
    project.generate("init")
    project.cli("up")
    run_sql(database_url, "INSERT INTO item (id, a, b) VALUES (1, 'x', 'dup'), (2, 'y', 'dup')")
    project.models(ITEM_V2)
    path = project.generate("indexes", "--concurrently")
    assert "transactional = False" in path.read_text()

    failed = project.cli("up", ok=False)
    assert failed.returncode == 3, failed
    # `unique=True` is a UNIQUE constraint: its ADD fails, after the new column was added.
    assert "these steps stay applied: add_column(table_name='item', column_name='c'" in failed.stderr
    assert "running pgmig up again is safe" in failed.stderr
    assert len(project.applied()) == 1

    run_sql(database_url, "UPDATE item SET b = 'other' WHERE id = 2")
    project.cli("up")
    assert len(project.applied()) == 2
    assert project.cli("diff", "--exit-code").returncode == 0
    assert all(indexes(database_url).values())
    project.cli("down")
    assert project.cli("up").returncode == 0 and project.cli("diff", "--exit-code").returncode == 0


def test_a_connection_cut_inside_a_non_transactional_revision(database_url: str, tmp_path: Path) -> None:
    create_all(database_url, _items())
    cut_once = (
        "if await migrator.connection.fetchval(\"SELECT to_regclass('cut_once') IS NULL\"): "
        "await migrator.connection.execute('CREATE TABLE cut_once ()') and "
        "await migrator.connection.execute('SELECT pg_terminate_backend(pg_backend_pid())')"
    )
    write_revision(tmp_path, "r1", [ADD["ix_item_a"], cut_once, ADD["ux_item_b"]], [])
    with pytest.raises(DatabaseError) as failed:
        up(tmp_path, database_url)
    assert "lost the connection" in str(failed.value)
    assert "these steps stay applied: add_index(table_name='item', index_name='ix_item_a'" in str(failed.value)
    assert up(tmp_path, database_url) == ["r1"]
    assert indexes(database_url) == {"ix_item_a": True, "ux_item_b": True}


# -- 2. SystemExit, KeyboardInterrupt, any BaseException: the revision's failure ----------


RAISES = {
    "exit0": ("import sys\n", "sys.exit(0)", "sys.exit(0)"),
    "exit3": ("import sys\n", "sys.exit(3)", "sys.exit(3)"),
    "interrupt": ("", "raise KeyboardInterrupt", "KeyboardInterrupt"),
    "base": ("class Stop(BaseException):\n    pass\n\n\n", "raise Stop('halt')", "Stop: halt"),
    "generator_exit": ("", "raise GeneratorExit", "GeneratorExit"),
}


@pytest.mark.parametrize("transactional", [True, False])
@pytest.mark.parametrize("kind", sorted(RAISES))
@pytest.mark.parametrize("direction", ["up", "down"])
def test_base_exception_is_the_revisions_failure(
    database_url: str, tmp_path: Path, kind: str, direction: str, transactional: bool
) -> None:
    prelude, statement, said = RAISES[kind]
    create_all(database_url, _items())
    create = "await migrator.actor.execute('CREATE TABLE made (id int)')"
    lines = [create if direction == "up" else create.replace("made", "made_in_down"), statement]
    write_revision(
        tmp_path,
        "r1",
        lines if direction == "up" else [create],
        lines if direction == "down" else ["await migrator.actor.execute('DROP TABLE made')"],
        transactional=transactional,
        prelude=prelude,
    )
    if direction == "down":
        assert up(tmp_path, database_url) == ["r1"]
    before = snapshot(database_url)
    run = up if direction == "up" else down
    with pytest.raises(RevisionError) as failed:
        run(tmp_path, database_url)
    assert f"revision r1_step.py ({direction})" in str(failed.value) and said in str(failed.value)
    assert applied(database_url) == (["r1"] if direction == "down" else [])
    if transactional:
        assert snapshot(database_url) == before  # nothing of it applied
    else:
        # The revision's own SQL ran and committed; pgmig cannot tell whether it may run twice.
        assert "these steps stay applied: execute_sql(sql='CREATE TABLE made" in str(failed.value)
        assert "which pgmig cannot check: execute_sql(" in str(failed.value)


@pytest.mark.parametrize("kind", sorted(RAISES))
def test_base_exception_while_the_sql_is_printed(database_url: str, tmp_path: Path, kind: str) -> None:
    prelude, statement, said = RAISES[kind]
    write_revision(tmp_path, "r1", [statement], [], transactional=True, prelude=prelude)
    with pytest.raises(RevisionError, match="revision r1_step.py \\(up\\)") as failed:
        asyncio.run(runner(tmp_path, database_url).sql("up"))
    assert said in str(failed.value)


def test_base_exception_while_importing_a_revision(tmp_path: Path) -> None:
    path = write_revision(tmp_path, "r1", [], [], prelude="import sys\nsys.exit(0)\n")
    with pytest.raises(RevisionError, match=r"r1_step.py failed to import: it called sys.exit\(0\)"):
        load_chain(path.parent)


def _cli_project(tmp_path: Path, url: str, prelude: str, statement: str) -> Any:
    from tests.sample_project import Project

    project = Project(tmp_path, url)
    project.models(
        "from typing import Optional\nfrom sqlmodel import Field, SQLModel\n\n\n"
        "class Thing(SQLModel, table=True):\n    id: Optional[int] = Field(default=None, primary_key=True)\n"
    )
    project.cli("generate", "-m", "init")
    (path,) = project.files()
    text = path.read_text()
    marker = "    async def up(self, migrator: Migrator) -> None:\n"
    assert marker in text
    path.write_text(prelude + text.replace(marker, marker + f"        {statement}\n", 1))
    return project


@pytest.mark.parametrize("kind", ["exit0", "interrupt"])
def test_cli_exits_as_a_revision_failure(database_url: str, tmp_path: Path, kind: str) -> None:
    prelude, statement, said = RAISES[kind]
    project = _cli_project(tmp_path, database_url, prelude, statement)
    result = project.cli("up", ok=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert said in result.stderr and "(up)" in result.stderr
    assert applied(database_url) == [] and fetch(database_url, "SELECT to_regclass('thing') AS t") == [{"t": None}]
    # check replays the revision: a failed check (exit 1, as DESIGN.md gives it), saying why.
    result = project.cli("check", ok=False)
    assert result.returncode == 1 and said in result.stdout, result
    result = project.cli("check", "--json", ok=False)
    assert result.returncode == 1, result
    report = json.loads(result.stdout)
    assert said in json.dumps(report), report


# -- 3. a version table of another shape ----------------------------------------------


@pytest.mark.parametrize(
    "create, said",
    [
        ("CREATE TABLE pgmig_revisions (version_num varchar(32) PRIMARY KEY)", "it has no column id (text)"),
        (
            "CREATE TABLE pgmig_revisions (id text PRIMARY KEY, checksum text, applied_at text, duration float8)",
            "its column applied_at is text, not timestamp with time zone",
        ),
        (
            "CREATE TABLE pgmig_revisions (id text PRIMARY KEY, checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now(), duration float8 NOT NULL DEFAULT 0, owner text NOT NULL)",
            "its column owner is NOT NULL without a default",
        ),
        ("CREATE VIEW pgmig_revisions AS SELECT 'x'::text AS id", "it is not a table"),
    ],
)
def test_a_version_table_of_another_shape_is_named(database_url: str, tmp_path: Path, create: str, said: str) -> None:
    from pgmig.revisions.version_table import VersionTableError

    run_sql(database_url, create)
    write_revision(tmp_path, "r1", ["await migrator.actor.execute('CREATE TABLE made (id int)')"], [], True)
    for attempt in (
        lambda: up(tmp_path, database_url),
        lambda: asyncio.run(runner(tmp_path, database_url).stamp("r1")),
    ):
        with pytest.raises(VersionTableError) as failed:
            attempt()
        assert said in str(failed.value) and '"public"."pgmig_revisions" is not pgmig\'s' in str(failed.value)
        assert "version_table in [tool.pgmig] (PGMIG_VERSION_TABLE)" in str(failed.value)
        assert failed.value.exit_code == 3
    assert fetch(database_url, "SELECT to_regclass('made') AS t") == [{"t": None}]


def test_a_version_table_of_another_tool_through_the_cli(database_url: str, tmp_path: Path) -> None:
    project = _cli_project(tmp_path, database_url, "", "pass")
    run_sql(database_url, "CREATE TABLE pgmig_revisions (version bigint PRIMARY KEY, dirty boolean NOT NULL)")
    for command in ("up", "status", "down"):
        result = project.cli(command, ok=False)
        assert result.returncode == 3, result
        assert "unexpected" not in result.stderr and "is not pgmig's: it has no column id" in result.stderr
    # Pointed at a table of its own, pgmig works beside the other tool's.
    result = pgmig_cli(
        "up", cwd=tmp_path, env={"PGMIG_DATABASE_URL": database_url, "PGMIG_VERSION_TABLE": "pgmig_versions"}
    )
    assert result.returncode == 0, result
    assert fetch(database_url, "SELECT count(*) AS n FROM pgmig_versions") == [{"n": 1}]


# -- 4. a model table named like the version table ---------------------------------------

CLASHING = """
from typing import Optional
from sqlmodel import Field, SQLModel


class Thing(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)


class Versions(SQLModel, table=True):
    __tablename__ = {name!r}
    __table_args__ = {args}
    id: Optional[int] = Field(default=None, primary_key=True)
"""


@pytest.mark.parametrize(
    "name, args, env, clash",
    [
        ("pgmig_revisions", "{}", {}, '"public"."pgmig_revisions"'),
        ("releases", "{}", {"PGMIG_VERSION_TABLE": "releases"}, '"public"."releases"'),
        ("pgmig_revisions", "{'schema': 'app'}", {"PGMIG_SCHEMA": "app"}, '"app"."pgmig_revisions"'),
    ],
)
@pytest.mark.parametrize("command", ["generate", "diff", "check"])
def test_a_model_table_named_like_the_version_table_is_refused(
    database_url: str, tmp_path: Path, name: str, args: str, env: Dict[str, str], clash: str, command: str
) -> None:
    from tests.sample_project import Project

    project = Project(tmp_path, database_url)
    project.models(CLASHING.format(name=name, args=args))
    extra = ["-m", "init"] if command == "generate" else []
    result = pgmig_cli(
        command, *extra, cwd=tmp_path, env={"PGMIG_DATABASE_URL": database_url, "PGMIG_DEV_URL": database_url, **env}
    )
    assert result.returncode == 2, result
    assert f"the model table {clash} has the name of pgmig's version table {clash}" in result.stderr
    assert not (tmp_path / "migrations").exists() or not list((tmp_path / "migrations").glob("*.py"))


def test_a_model_table_of_that_name_in_another_schema_is_fine(database_url: str, tmp_path: Path) -> None:
    from tests.sample_project import Project

    project = Project(tmp_path, database_url)
    project.models(CLASHING.format(name="pgmig_revisions", args="{'schema': 'app'}"))
    env = {"PGMIG_DATABASE_URL": database_url, "PGMIG_DEV_URL": database_url, "PGMIG_SCHEMA": "public,app"}
    assert pgmig_cli("generate", "-m", "init", cwd=tmp_path, env=env).returncode == 0
    assert pgmig_cli("up", cwd=tmp_path, env=env).returncode == 0
    assert fetch(database_url, "SELECT to_regclass('app.pgmig_revisions') IS NOT NULL AS t") == [{"t": True}]
