"""Zero-downtime options against the real server, with rows in the tables:

concurrent index builds that recover from a failed attempt, foreign keys and
checks added NOT VALID then validated, SET NOT NULL through a validated check,
and the runner's lock_timeout / statement_timeout.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, MetaData, Table, Text

from pgmig.config.settings import load_settings
from pgmig.errors import ConfigError, DatabaseError, RevisionError
from pgmig.ops.actor import DatabaseActions
from pgmig.ops.column import AddNotNull, not_null_check_name
from pgmig.ops.constraint import AddCheck, AddForeignKey
from pgmig.ops.index import AddIndex, DropIndex, concurrent, drop_invalid_index_sql
from pgmig.ops.table import CreateTable
from pgmig.revisions.files import load_chain
from pgmig.revisions.runner import MigrationTimeoutError, Runner
from pgmig.revisions.version_table import VersionTable
from tests.helpers import assert_roundtrip, create_all, diff, fetch, migrate, run_sql, snapshot, steps


async def _on(url: str, fn: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await fn(conn)
    finally:
        await conn.close()


def run_ops(url: str, *ops: Any) -> None:
    """Run operations one statement at a time in autocommit, as a non-transactional revision does."""

    async def go(conn: Any) -> None:
        actor = DatabaseActions(conn)
        for op in ops:
            await actor.run(op)

    asyncio.run(_on(url, go))


def lock_modes(url: str, statement: str) -> Dict[str, List[str]]:
    """table -> lock modes `statement` holds at its end (inside a rolled-back transaction)."""

    async def go(conn: Any) -> Dict[str, List[str]]:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(statement)
            rows = await conn.fetch(
                "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE l.pid = pg_backend_pid() AND n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1, 2"
            )
        finally:
            await transaction.rollback()
        modes: Dict[str, List[str]] = {}
        for row in rows:
            if row["mode"] != "AccessShareLock":  # what reading the catalog of a table takes
                modes.setdefault(row["relname"], []).append(row["mode"])
        return modes

    return asyncio.run(_on(url, go))


def constraint_facts(url: str) -> List[Dict[str, Any]]:
    return fetch(
        url,
        "SELECT c.relname AS table_name, k.conname, k.contype::text AS type, k.convalidated, "
        "pg_get_constraintdef(k.oid) AS definition FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' ORDER BY 1, 2",
    )


# -- 1. concurrent indexes ---------------------------------------------------------


def _users(with_index: bool) -> MetaData:
    metadata = MetaData()
    table = Table("users", metadata, Column("id", Integer, primary_key=True), Column("email", Text))
    if with_index:
        Index("users_email_uq", table.c.email, unique=True)
    return metadata


def revision_file(
    folder: Path, rid: str, down: Optional[str], up: str, down_body: str = "pass", transactional: bool = True
) -> None:
    marker = "" if transactional else "transactional = False"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{rid}_step.py").write_text(
        textwrap.dedent(
            f'''
            from pgmig import MigrationRevisionBase, Migrator

            class MigrationRevision(MigrationRevisionBase):
                up_revision = "{rid}"
                down_revision = {down!r}
                {marker}

                async def up(self, migrator: Migrator):
                    {up}

                async def down(self, migrator: Migrator):
                    {down_body}
            '''
        )
    )


VERSIONS = VersionTable("public", "pgmig_revisions")


def runner(folder: Path, url: str, **timeouts: str) -> Runner:
    return Runner(url, load_chain(folder), VERSIONS, **timeouts)


def test_concurrent_unique_index_retried_after_failed_build(database_url: str, tmp_path: Path) -> None:
    create_all(database_url, _users(False))
    run_sql(database_url, "INSERT INTO users (id, email) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'a@x')")
    plan = diff(database_url, _users(True))
    ops = concurrent(plan.operations)
    assert [op.name for op in ops] == ["add_index"] and ops[0].concurrently and not ops[0].transactional
    (add,) = ops
    arguments = ", ".join(f"{k}={v!r}" for k, v in add.arguments().items())
    revision_file(
        tmp_path,
        "r1",
        None,
        f"await migrator.actor.add_index({arguments})",
        "await migrator.actor.drop_index(index_name='users_email_uq', concurrently=True)",
        transactional=False,
    )
    # The build fails on the duplicate and leaves an INVALID index behind.
    with pytest.raises(DatabaseError, match="UniqueViolation"):
        asyncio.run(runner(tmp_path, database_url).upgrade())
    assert fetch(database_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_uq'::regclass") == [
        {"indisvalid": False}
    ]
    assert fetch(database_url, "SELECT to_regclass('pgmig_revisions') AS t") == [{"t": None}]
    # The handler sees the invalid index as needing work.
    (change,) = diff(database_url, _users(True)).changes
    assert change.action == "migrate" and change.differences() == {"valid": (False, True)}

    run_sql(database_url, "UPDATE users SET email = 'c@x' WHERE id = 3")
    assert [r.id for r in asyncio.run(runner(tmp_path, database_url).upgrade())] == ["r1"]
    assert fetch(
        database_url, "SELECT indisvalid, indisunique FROM pg_index WHERE indexrelid = 'users_email_uq'::regclass"
    ) == [{"indisvalid": True, "indisunique": True}]
    assert diff(database_url, _users(True)).is_empty
    # And down drops it concurrently.
    asyncio.run(runner(tmp_path, database_url).downgrade())
    assert diff(database_url, _users(False)).is_empty


def test_invalid_index_cleanup_leaves_a_valid_index_alone(database_url: str) -> None:
    create_all(database_url, _users(True))
    run_sql(database_url, "INSERT INTO users (id, email) VALUES (1, 'a@x')")
    run_sql(database_url, drop_invalid_index_sql("public", "users_email_uq"))
    assert fetch(database_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_uq'::regclass") == [
        {"indisvalid": True}
    ]
    # Building it again outside a transaction finds the same valid index done and leaves it
    # (issue 19: a non-transactional revision runs again); one of another definition is refused.
    oid = fetch(database_url, "SELECT 'users_email_uq'::regclass::oid AS o")
    op = AddIndex(table_name="users", index_name="users_email_uq", columns=["email"], unique=True, concurrently=True)
    run_ops(database_url, op)
    assert fetch(database_url, "SELECT 'users_email_uq'::regclass::oid AS o") == oid
    other = AddIndex(table_name="users", index_name="users_email_uq", columns=["id"], unique=True, concurrently=True)
    with pytest.raises(RevisionError, match="exists with another definition"):
        run_ops(database_url, other)
    assert diff(database_url, _users(True)).is_empty
    # Names that need quoting, and one holding the dollar-quote tag, stay literal.
    odd = drop_invalid_index_sql("public", "we$pgmig$ird'\"ix")
    assert "$pgmig$ird" in odd and not odd.startswith("DO $pgmig$ ")
    run_sql(database_url, odd)


def test_concurrent_marks_only_existing_tables() -> None:
    new = AddIndex(table_name="t", index_name="a", columns=["x"], new_table=True)
    old = AddIndex(table_name="t", index_name="b", columns=["x"])
    drop = DropIndex(index_name="c")
    made = concurrent([new, old, drop])
    assert [op.concurrently for op in made] == [False, True, True]
    assert made[1].statements()[0].startswith("DO ") and "CONCURRENTLY" in made[1].statements()[1]
    assert made[2].statements() == ['DROP INDEX CONCURRENTLY "public"."c"']


# -- 2. foreign keys and checks: NOT VALID, then VALIDATE --------------------------


def _shop(constrained: bool, extra_table: bool = False) -> MetaData:
    metadata = MetaData()
    Table("parent", metadata, Column("id", Integer, primary_key=True), Column("name", Text))
    child_args: List[Any] = [
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer, ForeignKey("parent.id") if constrained else None),
        Column("qty", Integer),
        Column("code", Text),
    ]
    if constrained:
        child_args += [CheckConstraint("qty >= 0"), CheckConstraint("length(code) < 10", name="short_code")]
    Table("child", metadata, *child_args)
    if extra_table:
        Table(
            "note",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("parent_id", Integer, ForeignKey("parent.id")),
            CheckConstraint("id > 0"),
        )
    return metadata


SEED = [
    "INSERT INTO parent (id, name) VALUES (1, 'one'), (2, 'two')",
    "INSERT INTO child (id, parent_id, qty, code) VALUES (10, 1, 3, 'a'), (11, 2, 0, 'b'), (12, NULL, 5, NULL)",
]


def test_fk_and_checks_on_existing_tables_validated_separately(pgmig_server: Any, database_url: str) -> None:
    plan = assert_roundtrip(
        pgmig_server,
        database_url,
        _shop(False),
        _shop(True, extra_table=True),
        seed=SEED,
        rows_query="SELECT id, parent_id, qty, code FROM child ORDER BY id",
    )
    adds = {
        (op.table_name, op.name, getattr(op, "constraint_name", None)): op
        for op in steps(plan)
        if op.name in ("add_foreign_key", "add_check")
    }
    existing = {key: op for key, op in adds.items() if key[0] == "child"}
    assert sorted(existing) == [
        ("child", "add_check", "child_qty_check"),
        ("child", "add_check", "short_code"),
        ("child", "add_foreign_key", "child_parent_id_fkey"),
    ]
    for (_, name, constraint), op in existing.items():
        add, validate = op.statements()
        assert add.endswith(" NOT VALID")
        assert validate == f'ALTER TABLE "public"."child" VALIDATE CONSTRAINT "{constraint}"'
        assert op.hazards() == (("blocks_writes",) if name == "add_foreign_key" else ("access_exclusive_lock",))
    # A table the plan creates is empty: the plain form, no name needed, nothing to report.
    fresh = [op for key, op in adds.items() if key[0] == "note"]
    assert len(fresh) == 2
    assert all(op.new_table and len(op.statements()) == 1 and "NOT VALID" not in op.statements()[0] for op in fresh)
    assert all(op.hazards() == () for op in fresh)
    # ... which is one CREATE TABLE holding them.
    (note,) = [op for op in plan.operations if isinstance(op, CreateTable) and op.table_name == "note"]
    assert "NOT VALID" not in note.statements()[0] and not note.hazards()

    # Forward again (assert_roundtrip ended at A) and look at the catalog.
    migrate(database_url, _shop(True, extra_table=True))
    facts = [f for f in constraint_facts(database_url) if f["type"] in ("f", "c")]
    assert {f["conname"] for f in facts if f["table_name"] == "child"} == {
        "child_parent_id_fkey",
        "child_qty_check",
        "short_code",
    }
    assert all(f["convalidated"] and "NOT VALID" not in f["definition"] for f in facts)
    assert diff(database_url, _shop(True, extra_table=True)).is_empty


def test_validate_failure_rolls_back_in_a_transaction(database_url: str) -> None:
    create_all(database_url, _shop(False))
    run_sql(database_url, *SEED, "INSERT INTO child (id, parent_id, qty) VALUES (13, 99, -1)")
    plan = diff(database_url, _shop(True))
    with pytest.raises(DatabaseError, match="VALIDATE CONSTRAINT"):
        migrate(database_url, _shop(True))
    assert [f for f in constraint_facts(database_url) if f["type"] in ("f", "c")] == []
    assert not plan.is_empty


def test_changed_anonymous_check_gets_a_free_name(pgmig_server: Any, database_url: str) -> None:
    def model(expression: str) -> MetaData:
        metadata = MetaData()
        Table(
            "item",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("price", Integer),
            CheckConstraint(expression),
        )
        return metadata

    plan = assert_roundtrip(
        pgmig_server,
        database_url,
        model("price > 0"),
        model("price >= 1"),
        seed=["INSERT INTO item VALUES (1, 5)"],
        rows_query="SELECT * FROM item",
    )
    (add,) = [op for op in plan.operations if op.name == "add_check"]
    # The old check still holds item_price_check when the new one is added.
    assert add.constraint_name == "item_price_check1" and add.statements()[0].endswith("NOT VALID")


def test_changed_fk_keeps_its_name(database_url: str) -> None:
    create_all(database_url, _shop(True))
    run_sql(database_url, *SEED)
    changed = MetaData()
    Table("parent", changed, Column("id", Integer, primary_key=True), Column("name", Text))
    Table(
        "child",
        changed,
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer, ForeignKey("parent.id", ondelete="CASCADE")),
        Column("qty", Integer),
        Column("code", Text),
        CheckConstraint("qty >= 0"),
        CheckConstraint("length(code) < 10", name="short_code"),
    )
    plan = migrate(database_url, changed)
    assert [(op.name, getattr(op, "constraint_name", None)) for op in plan.operations] == [
        ("drop_constraint", "child_parent_id_fkey"),
        ("add_foreign_key", "child_parent_id_fkey"),
    ]
    assert diff(database_url, changed).is_empty


def test_lock_modes_are_as_documented(database_url: str) -> None:
    setup = [
        "CREATE TABLE parent (id int PRIMARY KEY)",
        "CREATE TABLE child (id int, parent_id int, qty int)",
        "INSERT INTO parent VALUES (1)",
        "INSERT INTO child VALUES (1, 1, 1)",
    ]
    fk = AddForeignKey(
        table_name="child",
        columns=["parent_id"],
        referred_table="parent",
        referred_columns=["id"],
        constraint_name="fk",
    )
    check = AddCheck(table_name="child", expression="qty > 0", constraint_name="ck")
    fk_add, fk_validate = fk.statements()
    check_add, check_validate = check.statements()
    run_sql(database_url, *setup)
    assert lock_modes(database_url, fk_add) == {"child": ["ShareRowExclusiveLock"], "parent": ["ShareRowExclusiveLock"]}
    run_sql(database_url, fk_add, check_add)
    assert lock_modes(database_url, fk_validate) == {"child": ["ShareUpdateExclusiveLock"], "parent": ["RowShareLock"]}
    assert lock_modes(database_url, check_validate) == {"child": ["ShareUpdateExclusiveLock"]}
    assert lock_modes(database_url, check_add.replace('"ck"', '"ck2"')) == {"child": ["AccessExclusiveLock"]}
    # Without a name there is nothing to validate by: the plain form, scanning under its lock.
    plain = AddCheck(table_name="child", expression="qty > 0")
    assert len(plain.statements()) == 1 and plain.hazards() == ("full_scan", "access_exclusive_lock")


# -- 3. SET NOT NULL through a validated check -------------------------------------


def _not_null_facts(url: str) -> Dict[str, Any]:
    return {
        "snapshot": snapshot(url),
        "constraints": constraint_facts(url),
    }


def test_not_null_via_check_equals_plain(pgmig_server: Any, database_url: str) -> None:
    setup = [
        "CREATE TABLE article (id int PRIMARY KEY, title text)",
        "INSERT INTO article SELECT g, 'title ' || g FROM generate_series(1, 500) g",
    ]
    run_sql(database_url, *setup)
    op = AddNotNull(table_name="article", column_name="title", via_check=True)
    assert op.hazards() == ("access_exclusive_lock",)
    assert len(op.statements()) == 4

    async def go(conn: Any) -> List[str]:
        messages: List[str] = []
        conn.add_log_listener(lambda _conn, message: messages.append(message.message))
        await conn.execute("SET client_min_messages = debug1")
        await DatabaseActions(conn).run(op)
        await asyncio.sleep(0.05)
        return messages

    messages = asyncio.run(_on(database_url, go))
    # PostgreSQL saw the valid check and skipped the scan of SET NOT NULL.
    assert any("sufficient to prove that it does not contain nulls" in m for m in messages), messages

    plain = pgmig_server.create_database()
    try:
        run_sql(plain, *setup, 'ALTER TABLE "public"."article" ALTER COLUMN "title" SET NOT NULL')
        assert _not_null_facts(database_url) == _not_null_facts(plain)
    finally:
        pgmig_server.drop_database(plain)
    assert not [f for f in constraint_facts(database_url) if "pgmig_not_null" in f["conname"]]


def test_not_null_via_check_retried_after_nulls(database_url: str) -> None:
    run_sql(
        database_url,
        "CREATE TABLE article (id int PRIMARY KEY, title text)",
        "INSERT INTO article VALUES (1, 'a'), (2, NULL)",
    )
    op = AddNotNull(table_name="article", column_name="title", via_check=True)
    with pytest.raises(DatabaseError, match="VALIDATE CONSTRAINT"):
        run_ops(database_url, op)  # autocommit: the NOT VALID check stays behind
    assert [f["conname"] for f in constraint_facts(database_url) if f["type"] == "c"] == [not_null_check_name("title")]
    run_sql(database_url, "UPDATE article SET title = '' WHERE title IS NULL")
    run_ops(database_url, op)
    assert [f for f in constraint_facts(database_url) if f["type"] == "c"] == []
    assert fetch(
        database_url, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'article'::regclass AND attname = 'title'"
    ) == [{"attnotnull": True}]


def test_not_null_check_name_fits() -> None:
    long = "x" * 63
    assert len(not_null_check_name(long).encode()) <= 63
    assert not_null_check_name(long) != not_null_check_name(long[:-1] + "y")
    assert len(not_null_check_name("é" * 31).encode()) <= 63


# -- 4. lock_timeout and statement_timeout -----------------------------------------


def test_lock_timeout_fails_fast_and_applies_nothing(database_url: str, tmp_path: Path) -> None:
    revision_file(
        tmp_path,
        "r1",
        None,
        "await migrator.connection.execute('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)')",
    )
    asyncio.run(runner(tmp_path, database_url).upgrade())
    revision_file(
        tmp_path,
        "r2",
        "r1",
        "await migrator.actor.add_column(table_name='t', column_name='c', data_type='integer')\n"
        "                    await migrator.actor.add_not_null(table_name='t', column_name='id')",
    )

    async def scenario() -> None:
        import asyncpg

        blocker = await asyncpg.connect(database_url)
        try:
            await blocker.execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            started = time.perf_counter()
            with pytest.raises(MigrationTimeoutError) as failure:
                await runner(tmp_path, database_url, lock_timeout="200ms").upgrade()
            assert time.perf_counter() - started < 2.5
            message = str(failure.value)
            assert "r2_step.py" in message and "lock_timeout (200ms)" in message
            assert 'ALTER TABLE "public"."t" ADD COLUMN "c" integer' in message
            assert "nothing of it was applied" in message
            assert "pgmig up again" in message and "PGMIG_LOCK_TIMEOUT" in message
            # The run's advisory lock went with it.
            held = await blocker.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            assert held == 0
            await blocker.execute("COMMIT")
        finally:
            await blocker.close()

    asyncio.run(scenario())
    assert fetch(database_url, "SELECT id FROM pgmig_revisions") == [{"id": "r1"}]
    assert fetch(
        database_url, "SELECT count(*) AS n FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c'"
    ) == [{"n": 0}]
    assert [r.id for r in asyncio.run(runner(tmp_path, database_url, lock_timeout="200ms").upgrade())] == ["r2"]
    assert fetch(database_url, "SELECT id, c FROM t ORDER BY id") == [{"id": 1, "c": None}, {"id": 2, "c": None}]


def test_statement_timeout_names_itself(database_url: str, tmp_path: Path) -> None:
    revision_file(tmp_path, "r1", None, "await migrator.connection.execute('SELECT pg_sleep(3)')")
    started = time.perf_counter()
    with pytest.raises(MigrationTimeoutError) as failure:
        asyncio.run(runner(tmp_path, database_url, statement_timeout="100ms").upgrade())
    assert time.perf_counter() - started < 2.5
    message = str(failure.value)
    assert "statement_timeout (100ms)" in message and "SELECT pg_sleep(3)" in message
    assert "PGMIG_STATEMENT_TIMEOUT" in message and "r1_step.py" in message


def test_timeouts_are_set_on_the_session(database_url: str, tmp_path: Path) -> None:
    revision_file(
        tmp_path,
        "r1",
        None,
        "await migrator.connection.execute(\"CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock, "
        "current_setting('statement_timeout') AS statement\")",
    )
    asyncio.run(runner(tmp_path, database_url, lock_timeout="1min", statement_timeout="30s").upgrade())
    assert fetch(database_url, "SELECT * FROM seen") == [{"lock": "1min", "statement": "30s"}]
    with pytest.raises(ValueError, match="not a duration"):
        Runner(database_url, load_chain(tmp_path), VERSIONS, lock_timeout="soon")


def test_timeout_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("PGMIG_LOCK_TIMEOUT", "PGMIG_STATEMENT_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(cwd=tmp_path)
    assert (settings.lock_timeout, settings.statement_timeout) == ("5s", "0")
    (tmp_path / "pyproject.toml").write_text('[tool.pgmig]\nlock_timeout = "1min"\nstatement_timeout = 30000\n')
    settings = load_settings(cwd=tmp_path)
    assert (settings.lock_timeout, settings.statement_timeout) == ("1min", "30000")
    monkeypatch.setenv("PGMIG_LOCK_TIMEOUT", "500 ms")
    assert load_settings(cwd=tmp_path).lock_timeout == "500ms"
    monkeypatch.setenv("PGMIG_LOCK_TIMEOUT", "5 seconds")
    with pytest.raises(ConfigError, match="lock_timeout"):
        load_settings(cwd=tmp_path)
