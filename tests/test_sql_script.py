"""`up --sql` / `down --sql` as a script a person runs with psql: data steps, offline, enum labels."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Dict

import pytest

from tests.helpers import fetch, pgmig_cli, run_sql
from tests.sample_project import V1, V2, V3, Project, rid

# Nothing listens there: a command that connects fails, one that works did not connect.
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=2"


def psql(url: str, script: str) -> subprocess.CompletedProcess:
    """`script` run by psql as a person would, stopping at the first error."""
    binary = shutil.which("psql")
    if binary is None:
        pytest.skip("psql is not installed")
    return subprocess.run(
        [binary, "-X", "-v", "ON_ERROR_STOP=1", "-q", "-d", url], input=script, capture_output=True, text=True
    )


def revision(folder: Path, name: str, rid: str, down: str = "None", up: str = "pass", undo: str = "pass") -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(
        textwrap.dedent(
            f'''
            from pgmig import MigrationRevisionBase, Migrator

            class MigrationRevision(MigrationRevisionBase):
                up_revision = "{rid}"
                down_revision = {down}

                async def up(self, migrator: Migrator) -> None:
                    {up}

                async def down(self, migrator: Migrator) -> None:
                    {undo}
            '''
        )
    )


def offline(project: Project, *args: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    result = pgmig_cli(*args, cwd=project.root, env=env)
    assert result.returncode == 0, result.stderr
    return result


def table_revision(project: Project, table: str, columns: str) -> Path:
    """The project's models (V1) and a first revision r1 making `table` with `columns`; the folder."""
    folder = project.root / "migrations"
    project.models(V1)
    revision(
        folder,
        "a.py",
        "r1",
        up=f"await migrator.actor.execute({f'CREATE TABLE {table} ({columns})'!r})",
        undo=f"await migrator.actor.execute('DROP TABLE {table}')",
    )
    return folder


def three_revisions(project: Project) -> None:
    """r1 creates a table, r2 fills it with a data step (bind parameters), r3 adds a column."""
    folder = table_revision(project, "note", "id int, body text")
    revision(
        folder,
        "b.py",
        "r2",
        '"r1"',
        up="await migrator.actor.execute('INSERT INTO note VALUES ($1, $2)', 7, \"it's $1; -- \\\\ ok\")",
        undo="await migrator.actor.execute('DELETE FROM note WHERE id = $1', 7)",
    )
    revision(
        folder,
        "c.py",
        "r3",
        '"r2"',
        up="await migrator.actor.execute('ALTER TABLE note ADD COLUMN seen bool')",
        undo="await migrator.actor.execute('ALTER TABLE note DROP COLUMN seen')",
    )


def test_data_steps_run_with_bound_parameters_and_show_as_literals(project: Project) -> None:
    three_revisions(project)
    script = project.cli("up", "--sql").stdout
    assert "INSERT INTO note VALUES (7, E'it''s $1; -- \\\\ ok');" in script, script
    assert fetch(project.url, "SELECT to_regclass('note') AS t") == [{"t": None}]  # printing ran nothing
    project.cli("up")
    assert fetch(project.url, "SELECT id, body FROM note") == [{"id": 7, "body": "it's $1; -- \\ ok"}]
    down = project.cli("down", "base", "--sql").stdout
    assert "DELETE FROM note WHERE id = 7;" in down


def test_sql_from_an_offline_start_connects_to_nothing(project: Project) -> None:
    """`--from REV` plans from REV without a database: an unreachable URL, or none (no embedded server)."""
    three_revisions(project)
    online = project.cli("up", "--sql").stdout
    for env in ({"PGMIG_DATABASE_URL": UNREACHABLE}, {}):
        script = offline(project, "up", "--sql", "--from", "base", env=env).stdout
        # The same script as planned from an empty database, and a comment saying it was planned offline.
        assert "-- offline: written without reading the database, for one that stands at base" in script
        assert script.replace(script.splitlines()[6] + "\n", "") == online, script
        assert "CREATE TABLE IF NOT EXISTS" in script  # the version table, from base
    assert not (project.root / ".pgmig").exists()  # no embedded server was started

    env = {"PGMIG_DATABASE_URL": UNREACHABLE}
    rest = offline(project, "up", "--sql", "--from", "r1", env=env).stdout
    assert "-- up: r1" not in rest and "-- up: r2" in rest and "-- up: r3" in rest
    assert "CREATE TABLE IF NOT EXISTS" not in rest
    assert "-- up: r3" not in offline(project, "up", "r2", "--sql", "--from", "r1", env=env).stdout
    assert offline(project, "up", "--sql", "--from", "r3", env=env).stdout == ""  # at head: nothing to run
    down = offline(project, "down", "base", "--sql", "--from", "r3", env=env).stdout
    assert down.index("-- down: r3") < down.index("-- down: r2") < down.index("-- down: r1")
    assert "-- down: r3" in offline(project, "down", "--sql", "--from", "r3", env=env).stdout

    # Refused as the online plan refuses, still without a database.
    behind = pgmig_cli("up", "r1", "--sql", "--from", "r2", cwd=project.root, env=env)
    assert behind.returncode == 3 and "r1 is behind the current revision r2" in behind.stderr
    unknown = pgmig_cli("up", "--sql", "--from", "r9", cwd=project.root, env=env)
    assert unknown.returncode == 3 and "'r9' is not a known revision" in unknown.stderr
    alone = pgmig_cli("up", "--from", "r1", cwd=project.root, env=env)
    assert alone.returncode == 2 and "--sql" in alone.stderr

    # The offline script, run by psql in two halves, leaves the database as pgmig up does.
    assert psql(project.url, offline(project, "up", "r1", "--sql", "--from", "base", env=env).stdout).returncode == 0
    assert psql(project.url, rest).returncode == 0
    assert project.applied() == ["r1", "r2", "r3"]
    assert "pending: none" in project.cli("status", "--no-drift").stdout
    assert fetch(project.url, "SELECT id, seen FROM note") == [{"id": 7, "seen": None}]
    assert psql(project.url, down).returncode == 0
    assert project.applied() == [] and fetch(project.url, "SELECT to_regclass('note') AS t") == [{"t": None}]


def test_a_revision_reading_migrator_connection_ends_the_script_cleanly(project: Project) -> None:
    three_revisions(project)
    (project.root / "migrations" / "b.py").write_text(
        (project.root / "migrations" / "b.py")
        .read_text()
        .replace(
            "await migrator.actor.execute('INSERT",
            "await migrator.actor.execute('SELECT 1')\n        await migrator.connection.execute('INSERT",
        )
    )
    shown = project.cli("up", "--sql")
    script = shown.stdout
    assert "-- up: r1 (a.py)" in script and "CREATE TABLE note" in script
    assert "-- NOT IN THIS SCRIPT: its up() reads migrator.connection" in script
    assert "--   SELECT 1;" in script  # its steps before that, commented out
    assert "pgmig up r2" in script and "-- up: r3" not in script and "ADD COLUMN seen" not in script
    assert "warning: revision b.py uses migrator.connection" in shown.stderr
    # What the script holds runs, and stops before the revision it cannot show.
    assert psql(project.url, script).returncode == 0
    assert project.applied() == ["r1"]
    project.cli("up")
    assert project.applied() == ["r1", "r2", "r3"]


def test_a_new_enum_label_used_in_its_revision_makes_a_script_safe_to_rerun(project: Project) -> None:
    project.models(V2)
    project.generate("one")
    project.cli("up")
    run_sql(project.url, "INSERT INTO post (title) VALUES ('kept')")
    project.models(V3)
    path = project.generate("two", "--allow-destructive")
    path.write_text(
        path.read_text().replace(
            "    async def down",
            "        await migrator.actor.execute('UPDATE post SET status = $1', 'archived')\n\n    async def down",
            1,
        )
    )
    script = project.cli("up", "--sql").stdout
    committed, _, rest = script.partition("BEGIN;")
    assert "ADD VALUE IF NOT EXISTS 'archived'" in committed
    assert "committed on their own, before this revision's transaction" in committed
    assert "the database stands at " + rid(project.files()[0]) + " with these labels added" in committed
    assert rest.count("COMMIT;") == 1 and rest.index("UPDATE post") < rest.index("INSERT INTO") < rest.index("COMMIT;")
    # Stopped after the label committed (a lost session, a failing statement): the rerun from the start works.
    assert psql(project.url, committed).returncode == 0
    assert project.applied() == [rid(p) for p in project.files()[:1]]
    failed = psql(project.url, script.replace("UPDATE post SET status", "UPDATE post SET no_such_column"))
    assert failed.returncode != 0 and project.applied() == [rid(p) for p in project.files()[:1]]
    rerun = psql(project.url, script)
    assert rerun.returncode == 0, rerun.stderr
    assert project.applied() == [rid(p) for p in project.files()]
    assert fetch(project.url, "SELECT status::text FROM post") == [{"status": "archived"}]
    assert "No changes" in project.cli("diff").stdout


ROLE_MODELS = """
import enum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class Role(enum.Enum):
    guest = "guest"
    admin = "admin"


class Person(SQLModel, table=True):
    name: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    role: Role = Field(sa_column=sa.Column(sa.Enum(Role, name="role"), nullable=False, server_default="guest"))
"""


def enum_data_revisions(project: Project) -> None:
    """r1 makes an enum column, r2 adds a label and sets a row to it (a bound parameter of the enum's
    type), r3 swaps the enum (a label removed: the type dropped and made again) and sets the row again
    with the same statement text, which a connection caching the first one's plan would run stale."""
    folder = project.root / "migrations"
    project.models(ROLE_MODELS)
    columns = "[['public', 'person', 'role', False, \"'guest'::role\"]]"
    update = "await migrator.actor.execute('UPDATE person SET role = $1 WHERE name = $2', {!r}, 'root')"
    revision(
        folder,
        "a.py",
        "r1",
        up="await migrator.actor.execute(\"CREATE TYPE role AS ENUM ('guest', 'member')\"); "
        "await migrator.actor.execute(\"CREATE TABLE person (name text PRIMARY KEY, role role NOT NULL DEFAULT 'guest')\"); "
        "await migrator.actor.execute(\"INSERT INTO person VALUES ('root', 'guest')\")",
        undo="await migrator.actor.execute('DROP TABLE person'); await migrator.actor.execute('DROP TYPE role')",
    )
    revision(
        folder,
        "b.py",
        "r2",
        '"r1"',
        up="await migrator.actor.add_type_values(type_name='role', values=['admin']); " + update.format("admin"),
        undo=update.format("guest") + "; await migrator.actor.swap_type_values(type_name='role', "
        f"values=['guest', 'member'], columns={columns}, removed_values=['admin'])",
    )
    revision(
        folder,
        "c.py",
        "r3",
        '"r2"',
        up="await migrator.actor.swap_type_values(type_name='role', values=['guest', 'admin'], "
        f"columns={columns}, removed_values=['member']); " + update.format("guest"),
        undo="await migrator.actor.swap_type_values(type_name='role', values=['guest', 'member', 'admin'], "
        f"columns={columns}); " + update.format("admin"),
    )


def test_bound_parameters_of_a_type_made_again_run_after_ddl_on_every_connection(project: Project) -> None:
    """A statement bound to an enum's old type (asyncpg caches statements and type codecs on a
    connection) runs again after the type was dropped and made anew, in one run and in check's replays."""
    enum_data_revisions(project)
    checked = project.cli("check", ok=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    project.cli("up")
    assert project.applied() == ["r1", "r2", "r3"]
    assert fetch(project.url, "SELECT role::text FROM person") == [{"role": "guest"}]
    project.cli("down", "r1")
    assert fetch(project.url, "SELECT role::text FROM person") == [{"role": "guest"}]
    project.cli("up")
    assert fetch(project.url, "SELECT enum_range(NULL::role)::text AS r") == [{"r": "{guest,admin}"}]


def test_relative_targets_with_from_are_counted_offline(project: Project) -> None:
    """`up --sql --from base +1` and `down --sql --from REV -2` count from REV, connecting to nothing."""
    three_revisions(project)
    env = {"PGMIG_DATABASE_URL": UNREACHABLE}
    one = offline(project, "up", "--sql", "--from", "base", "+1", env=env).stdout
    assert "-- up: r1" in one and "-- up: r2" not in one
    two = offline(project, "up", "--sql", "--from", "r1", "+2", env=env).stdout
    assert "-- up: r1" not in two and "-- up: r2" in two and "-- up: r3" in two
    back = offline(project, "down", "--sql", "--from", "r3", "-2", env=env).stdout
    assert "-- down: r3" in back and "-- down: r2" in back and "-- down: r1" not in back
    beyond = pgmig_cli("down", "--sql", "--from", "r1", "-2", cwd=project.root, env=env)
    assert beyond.returncode == 2 and "only 1 revision is applied" in beyond.stderr, beyond.stderr
    alone = pgmig_cli("up", "--from", "r1", "+1", cwd=project.root, env=env)
    assert alone.returncode == 2 and "--sql" in alone.stderr, alone.stderr


def test_parameters_are_written_only_in_code_and_statements_end_outside_comments(project: Project) -> None:
    """`$n` in quotes, dollar quotes, quoted names and comments stays as written, a statement ending in a
    `--` comment gets its `;` on a line of its own, and the script stores what `pgmig up` stores."""
    folder = table_revision(project, "probe", 'k int, v text, "$1" text')
    insert = (
        "INSERT INTO probe (k, v, \"$1\") VALUES ($1, $t$ $1 $t$ || $$'$2'$$ || '$1' || E'\\' $1' "
        "/* $1 /* $2 */ */ || $2, $3) -- $2 here"
    )
    revision(
        folder,
        "b.py",
        "r2",
        '"r1"',
        up=f"await migrator.actor.execute({insert!r}, 1, 'x', 'q'); "
        "await migrator.actor.execute(\"UPDATE probe SET v = v || '!' WHERE k = $1 -- $2 comment\", 1)",
    )
    script = project.cli("up", "--sql").stdout
    assert "WHERE k = 1 -- $2 comment\n;" in script, script
    assert (
        "VALUES (1, $t$ $1 $t$ || $$'$2'$$ || '$1' || E'\\' $1' /* $1 /* $2 */ */ || 'x', 'q') -- $2 here\n;" in script
    )
    assert psql(project.url, script).returncode == 0
    by_script = fetch(project.url, 'SELECT k, v, "$1" FROM probe')
    project.cli("down", "base", "--yes")
    project.cli("up")
    assert (
        fetch(project.url, 'SELECT k, v, "$1" FROM probe')
        == by_script
        == [{"k": 1, "v": " $1 '$2'$1' $1x!", "$1": "q"}]
    )


@pytest.mark.parametrize(
    "call, refused",
    [
        ("execute('UPDATE probe SET v = $1', 'a', 'b')", "given 2 value(s) and its SQL expects 1"),
        ("execute(\"UPDATE probe SET v = '$2' WHERE k = $1\", 1, 2)", "given 2 value(s) and its SQL expects 1"),
        ("execute('UPDATE probe SET v = $1', {'a': 1})", "json.dumps(value)"),
    ],
)
def test_data_step_values_that_do_not_fit_are_refused_with_sql_as_when_run(
    project: Project, call: str, refused: str
) -> None:
    folder = table_revision(project, "probe", "k int, v text")
    revision(folder, "b.py", "r2", '"r1"', up=f"await migrator.actor.{call}")
    for args in (("up", "--sql"), ("up",)):
        result = project.cli(*args, ok=False)
        assert result.returncode == 3 and "revision b.py (up)" in result.stderr and refused in result.stderr, (
            result.stderr
        )


def test_a_script_stopped_after_a_revisions_labels_is_rerun_from_where_it_says(project: Project) -> None:
    """A --from base script stopped after the labels of its 2nd revision committed: the script names where
    the database stands and from where to rerun, and both ways it advises finish the run."""
    enum_data_revisions(project)
    env = {"PGMIG_DATABASE_URL": UNREACHABLE}
    script = offline(project, "up", "--sql", "--from", "base", env=env).stdout
    second = script.index("-- up: r2")
    stopped = script[: script.index("BEGIN;", second)]  # r1 committed, r2's label committed on its own
    assert "the database stands at r1 with these labels added" in stopped[second:]
    assert "pgmig up --sql --from r1" in stopped[second:]
    assert psql(project.url, stopped).returncode == 0
    assert project.applied() == ["r1"]
    assert psql(project.url, script).returncode != 0  # from the start: r1's CREATE TYPE exists already
    assert project.applied() == ["r1"]
    # Rerun from the 2nd revision's first line on, as advised (the preamble of SETs kept).
    preamble = script[: script.index("\n\n") + 2]
    rerun = psql(project.url, preamble + script[second:])
    assert rerun.returncode == 0, rerun.stderr
    assert project.applied() == ["r1", "r2", "r3"]
    assert fetch(project.url, "SELECT role::text FROM person") == [{"role": "guest"}]
    # The other advice, the rest written anew from r1, after stopping there again.
    project.cli("down", "r1")
    run_sql(project.url, "ALTER TYPE role ADD VALUE IF NOT EXISTS 'admin'")
    rest = psql(project.url, offline(project, "up", "--sql", "--from", "r1", env=env).stdout)
    assert rest.returncode == 0, rest.stderr
    assert project.applied() == ["r1", "r2", "r3"]
    assert fetch(project.url, "SELECT enum_range(NULL::role)::text AS r") == [{"r": "{guest,admin}"}]
