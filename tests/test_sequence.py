"""Sequences (`sa.Sequence`): created as create_all creates them, before the defaults that call them,
changed in place with ALTER SEQUENCE (the counter goes on), dropped after what uses them.

No `from __future__ import annotations` here: SQLModel table models are defined in this module.
"""

from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from pgmig.errors import ModelsError, SchemaError
from pgmig.ops.base import Hazard
from pgmig.ops.sequence import AddSequence, AlterSequence, DropSequence
from pgmig.plan.diff import Plan
from pgmig.schema.handlers.sequence import (
    Sequence,
    SequenceHandler,
    normalized,
    sequences_called,
)
from pgmig.testing.conformance import ConformanceSuite, builtin_handlers

from .helpers import apply, both_ways, create_all, diff, fetch, migrate, run_sql, snapshot

# -- what the catalog holds -------------------------------------------------------------

SEQUENCES_QUERY = """
SELECT c.relname AS name, format_type(s.seqtypid, NULL) AS data_type, s.seqstart, s.seqincrement,
       s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       (SELECT d.deptype::text || ':' || d.refobjid::regclass::text || '.' || d.refobjsubid
        FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) AS owner
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1
ORDER BY c.relname
"""

DEFAULTS_QUERY = """
SELECT c.relname AS table_name, a.attname, pg_get_expr(d.adbin, d.adrelid) AS default_expr
FROM pg_attrdef d
JOIN pg_class c ON c.oid = d.adrelid
JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1
ORDER BY 1, 2
"""


def sequence_rows(url: str, schema: str = "public") -> List[Dict[str, Any]]:
    """Every sequence of `schema` (owned ones too) with its pg_sequence options and its owner."""
    return fetch(url, SEQUENCES_QUERY, schema)


def full_snapshot(url: str, schema: str = "public") -> Dict[str, Any]:
    """helpers.snapshot, with the sequences and the defaults spelled out (it hides which sequence)."""
    return {
        **snapshot(url, schema),
        "sequences": sequence_rows(url, schema),
        "defaults": fetch(url, DEFAULTS_QUERY, schema),
    }


@pytest.fixture
def other_url(pgmig_server: Any) -> Iterator[str]:
    """A second fresh database, for the state create_all builds."""
    url = pgmig_server.create_database()
    try:
        yield url
    finally:
        pgmig_server.drop_database(url)


def assert_like_create_all(url: str, other_url: str, metadata: sa.MetaData) -> Plan:
    """pgmig from empty builds what create_all builds, and each diffs empty against the models."""
    plan = migrate(url, metadata)
    assert diff(url, metadata).is_empty, [c.to_json() for c in diff(url, metadata).changes]
    create_all(other_url, metadata)
    leftover = diff(other_url, metadata)
    assert leftover.is_empty, [c.to_json() for c in leftover.changes]
    assert full_snapshot(url) == full_snapshot(other_url)
    return plan


def round_trip(url: str, models_a: sa.MetaData, models_b: sa.MetaData, seed: Callable[[], None]) -> Plan:
    """A (with rows) -> B with the `up` of one diff, then back with its `down`: a fresh diff is empty
    each time, B is what create_all builds, the down gives back A exactly. Returns the up plan."""
    migrate(url, models_a)
    assert diff(url, models_a).is_empty
    seed()
    before = full_snapshot(url)
    up, down = both_ways(url, models_b)
    assert not up.is_empty
    apply(url, up)
    leftover = diff(url, models_b)
    assert leftover.is_empty, [c.to_json() for c in leftover.changes]
    apply(url, down)
    assert diff(url, models_a).is_empty
    assert full_snapshot(url) == before
    return up


def kinds(plan: Plan, kind: str) -> List[Any]:
    return [c for c in plan.changes if c.kind == kind]


def position(plan: Plan, action: str, key: tuple) -> int:
    return next(i for i, c in enumerate(plan.changes) if c.action == action and c.key == key)


def nextvals(url: str, sequence: str, count: int = 1) -> List[int]:
    return [fetch(url, f"SELECT nextval('{sequence}') AS v")[0]["v"] for _ in range(count)]


# -- the inputs -------------------------------------------------------------------


def ticket_models() -> sa.MetaData:
    md = sa.MetaData()
    seq = sa.Sequence("ticket_number_seq", start=1000)
    sa.Table(
        "ticket",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.Integer, seq, server_default=seq.next_value(), nullable=False),
    )
    return md


def invoice_models(**options: Any) -> sa.MetaData:
    md = sa.MetaData()
    sa.Table("invoice", md, sa.Column("id", sa.Integer, sa.Sequence("invoice_id_seq", **options), primary_key=True))
    return md


def test_sequence_behind_a_server_default_is_created_first(database_url: str, other_url: str) -> None:
    plan = assert_like_create_all(database_url, other_url, ticket_models())
    assert position(plan, "create", ("sequence", "public", "ticket_number_seq")) < position(
        plan, "create", ("table", "public", "ticket")
    )
    run_sql(database_url, "INSERT INTO ticket DEFAULT VALUES", "INSERT INTO ticket DEFAULT VALUES")
    assert [r["number"] for r in fetch(database_url, "SELECT number FROM ticket ORDER BY id")] == [1000, 1001]


def test_sequence_of_a_primary_key_is_created(database_url: str, other_url: str) -> None:
    """The column stays a plain integer (SQLAlchemy calls nextval itself): only the sequence is new."""
    assert_like_create_all(database_url, other_url, invoice_models())
    (row,) = sequence_rows(database_url)
    assert row["name"] == "invoice_id_seq" and row["owner"] is None
    assert fetch(database_url, DEFAULTS_QUERY, "public") == []


def test_a_missing_sequence_is_not_no_changes(database_url: str) -> None:
    """A database whose invoice table has no sequence beside it: the diff creates it."""
    run_sql(database_url, "CREATE TABLE invoice (id integer PRIMARY KEY)")
    plan = diff(database_url, invoice_models())
    assert [(c.action, c.key) for c in plan.changes] == [("create", ("sequence", "public", "invoice_id_seq"))]
    assert plan.operations == [AddSequence(sequence_name="invoice_id_seq")]


def test_optional_sequence_makes_a_serial_column(database_url: str, other_url: str) -> None:
    """`Sequence(optional=True)`: create_all writes SERIAL (and no sequence of that name)."""
    assert_like_create_all(database_url, other_url, invoice_models(optional=True))
    (row,) = sequence_rows(database_url)
    assert row["owner"] is not None and row["name"] == "invoice_id_seq"  # serial's own name: table_column_seq


def test_optional_sequence_on_a_bigint_key(database_url: str, other_url: str) -> None:
    md = sa.MetaData()
    sa.Table("big", md, sa.Column("id", sa.BigInteger, sa.Sequence("big_seq", optional=True), primary_key=True))
    assert_like_create_all(database_url, other_url, md)
    assert [r["name"] for r in sequence_rows(database_url)] == ["big_id_seq"]


# -- every option, normalized as Postgres stores it ---------------------------------------------

OPTIONS: Dict[str, Dict[str, Any]] = {
    "plain": {},
    "start": {"start": 1000},
    "increment": {"increment": 5},
    "descending": {"increment": -1},
    "descending bounded": {"increment": -2, "minvalue": -100, "maxvalue": -10},
    "bounds": {"minvalue": 10, "maxvalue": 500},
    "bounds and start": {"minvalue": -5, "maxvalue": 50, "start": 1},
    "cycle": {"maxvalue": 3, "cycle": True},
    "no cycle": {"cycle": False},
    "cache": {"cache": 20},
    "no bounds": {"nominvalue": True, "nomaxvalue": True},
    "integer": {"data_type": sa.Integer},
    "smallint descending": {"data_type": sa.SmallInteger, "increment": -1},
    "bigint": {"data_type": sa.BigInteger, "start": 5},
    "everything": {
        "data_type": sa.Integer,
        "start": 7,
        "increment": 3,
        "minvalue": 1,
        "maxvalue": 1000,
        "cache": 5,
        "cycle": True,
    },
}


@pytest.mark.parametrize("options", OPTIONS.values(), ids=list(OPTIONS))
def test_options_match_create_all(database_url: str, other_url: str, options: Dict[str, Any]) -> None:
    md = ticket_models()
    sa.Sequence("standalone_seq", metadata=md, **options)
    sa.Table("invoice", md, sa.Column("id", sa.Integer, sa.Sequence("invoice_id_seq", **options), primary_key=True))
    assert_like_create_all(database_url, other_url, md)
    assert {r["name"] for r in sequence_rows(database_url)} >= {"standalone_seq", "invoice_id_seq"}


def test_model_sequence_equals_the_database_one_without_the_server() -> None:
    """`Sequence("s")` normalizes to what pg_sequence holds for a plain CREATE SEQUENCE."""
    assert normalized("public", "s") == Sequence("public", "s", "bigint", 1, 1, 2**63 - 1, 1, 1, False)
    assert normalized("public", "s", "smallint", increment=-1) == Sequence(
        "public", "s", "smallint", -1, -32768, -1, -1, 1, False
    )
    with pytest.raises(SchemaError, match="sequence public.s: data_type"):
        normalized("public", "s", "numeric")


def test_explicit_schema_and_standalone(database_url: str, other_url: str) -> None:
    md = sa.MetaData()
    sa.Sequence("counter", metadata=md, schema="public", start=10)
    plan = assert_like_create_all(database_url, other_url, md)
    assert [c.key for c in plan.changes] == [("sequence", "public", "counter")]
    assert nextvals(database_url, "counter", 2) == [10, 11]


def test_sequences_of_another_managed_schema(database_url: str, other_url: str) -> None:
    """`--schema app`: the sequences of `app` are read and made there, the default calls `app.s`."""
    for url in (database_url, other_url):
        run_sql(url, "CREATE SCHEMA app")
    md = sa.MetaData(schema="app")
    seq = sa.Sequence("number_seq", schema="app", start=5)
    sa.Table("ticket", md, sa.Column("number", sa.Integer, seq, server_default=seq.next_value(), primary_key=True))
    sa.Sequence("standalone_seq", metadata=md, increment=-1)
    run_sql(database_url, "CREATE SEQUENCE public.number_seq")  # the same name elsewhere changes nothing
    plan = migrate(database_url, md, schema="app")
    assert position(plan, "create", ("sequence", "app", "number_seq")) < position(
        plan, "create", ("table", "app", "ticket")
    )
    assert diff(database_url, md, schema="app").is_empty
    create_all(other_url, md)
    assert diff(other_url, md, schema="app").is_empty
    assert full_snapshot(database_url, "app") == full_snapshot(other_url, "app")
    run_sql(database_url, "INSERT INTO app.ticket DEFAULT VALUES")
    assert fetch(database_url, "SELECT number FROM app.ticket")[0]["number"] == 5


def test_unqualified_sequence_of_another_managed_schema_is_called_there(database_url: str) -> None:
    """`--schema app` with `Sequence("s")` (no schema): the sequence is made in `app` and the
    default calls `app.s`, whatever sequence of that name the search_path finds first."""
    run_sql(
        database_url,
        "CREATE SCHEMA app",
        "CREATE SCHEMA legacy",
        "CREATE SEQUENCE public.number_seq START 900",
        "CREATE SEQUENCE legacy.number_seq START 700",
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = legacy, public', current_database()); END $$",
    )
    md = sa.MetaData()
    seq = sa.Sequence("number_seq", start=5)
    sa.Table("ticket", md, sa.Column("number", sa.Integer, seq, server_default=seq.next_value(), primary_key=True))
    plan = migrate(database_url, md, schema="app")
    assert position(plan, "create", ("sequence", "app", "number_seq")) < position(
        plan, "create", ("table", "app", "ticket")
    )
    assert diff(database_url, md, schema="app").is_empty
    run_sql(database_url, "INSERT INTO app.ticket DEFAULT VALUES")
    assert fetch(database_url, "SELECT number FROM app.ticket")[0]["number"] == 5
    called = fetch(
        database_url,
        "SELECT pg_get_expr(adbin, adrelid, true) AS d FROM pg_attrdef WHERE adrelid = 'app.ticket'::regclass",
    )
    assert "app.number_seq" in called[0]["d"]


def test_a_sequence_in_an_unmanaged_schema_is_an_error(database_url: str) -> None:
    md = sa.MetaData()
    seq = sa.Sequence("number_seq", schema="elsewhere")
    sa.Table("ticket", md, sa.Column("number", sa.Integer, seq, server_default=seq.next_value(), primary_key=True))
    with pytest.raises(ModelsError, match="elsewhere.number_seq"):
        diff(database_url, md)


def test_sequence_shared_by_several_columns(database_url: str, other_url: str) -> None:
    md = sa.MetaData()
    shared = sa.Sequence("global_id_seq", metadata=md)
    for name in ("alpha", "beta"):
        sa.Table(name, md, sa.Column("id", sa.BigInteger, shared, server_default=shared.next_value(), primary_key=True))
    assert_like_create_all(database_url, other_url, md)
    run_sql(database_url, "INSERT INTO alpha DEFAULT VALUES", "INSERT INTO beta DEFAULT VALUES")
    ids = [r["id"] for r in fetch(database_url, "SELECT id FROM alpha UNION ALL SELECT id FROM beta ORDER BY 1")]
    assert ids == [1, 2]


def test_quoted_and_mixed_case_names(database_url: str, other_url: str) -> None:
    md = sa.MetaData()
    seq = sa.Sequence("Odd Seq", metadata=md, start=3)
    sa.Table("Orders", md, sa.Column("No", sa.Integer, seq, server_default=seq.next_value(), primary_key=True))
    plan = assert_like_create_all(database_url, other_url, md)
    assert position(plan, "create", ("sequence", "public", "Odd Seq")) < position(
        plan, "create", ("table", "public", "Orders")
    )


@pytest.mark.parametrize("name", ["n" * 70, "番号" * 25], ids=["ascii", "cjk"])
def test_names_longer_than_postgres_keeps(database_url: str, other_url: str, name: str) -> None:
    """Postgres keeps the first 63 bytes of the name (in CREATE SEQUENCE and in nextval's text)."""
    md = sa.MetaData()
    seq = sa.Sequence(name, start=2)
    sa.Table("ticket", md, sa.Column("number", sa.Integer, seq, server_default=seq.next_value(), primary_key=True))
    plan = assert_like_create_all(database_url, other_url, md)
    (created,) = kinds(plan, "sequence")
    assert len(created.key[-1].encode()) <= 63
    assert position(plan, "create", created.key) < position(plan, "create", ("table", "public", "ticket"))


def test_declared_twice_differently_is_an_error(database_url: str) -> None:
    md = sa.MetaData()
    sa.Table("a", md, sa.Column("id", sa.Integer, sa.Sequence("s", start=1), primary_key=True))
    sa.Table("b", md, sa.Column("id", sa.Integer, sa.Sequence("s", start=2), primary_key=True))
    with pytest.raises(SchemaError, match="sequence public.s is declared twice"):
        diff(database_url, md)


def test_sqlmodel_field_with_a_sequence(database_url: str, other_url: str) -> None:
    class Base(SQLModel, registry=registry()):
        pass

    class Receipt(Base, table=True):
        id: Optional[int] = Field(
            default=None, sa_column=sa.Column(sa.Integer, sa.Sequence("receipt_seq"), primary_key=True)
        )
        number: int = Field(sa_column_args=[sa.Sequence("receipt_number_seq", start=500)])

    assert_like_create_all(database_url, other_url, Base.metadata)
    assert [r["name"] for r in sequence_rows(database_url)] == ["receipt_number_seq", "receipt_seq"]


# -- the database side: what belongs to columns is not a sequence of this kind ---------------------


def test_serial_identity_and_owned_sequences_are_the_columns(database_url: str) -> None:
    run_sql(
        database_url,
        "CREATE TABLE t (id serial PRIMARY KEY, n integer GENERATED BY DEFAULT AS IDENTITY, m bigint)",
        "CREATE SEQUENCE owned_seq OWNED BY t.m",
        "CREATE SEQUENCE free_seq START 4",
    )
    objects = fetch_sequences(database_url)
    assert [o.name for o in objects] == ["free_seq"]
    assert objects[0] == normalized("public", "free_seq", start=4)


def fetch_sequences(url: str) -> List[Sequence]:
    import asyncio

    import asyncpg

    from pgmig.schema.protocol import DatabaseContext

    async def go() -> List[Sequence]:
        conn = await asyncpg.connect(url)
        try:
            return await SequenceHandler().from_database(DatabaseContext(connection=conn))
        finally:
            await conn.close()

    return asyncio.run(go())


def test_a_sequence_owned_by_a_column_stays_the_columns(database_url: str) -> None:
    """`ALTER SEQUENCE s OWNED BY t.c` (SQLAlchemy never declares it) with `c DEFAULT nextval('s')`
    is a serial column to pgmig, and no sequence of this kind. A model that declares `Sequence("s")`
    on that very column would need the owned sequence dropped before `s` is created and the default
    set after: a known limit, refused by name (the plan is a cycle) rather than run half-way."""
    run_sql(
        database_url,
        "CREATE TABLE ticket (id integer PRIMARY KEY, number bigint NOT NULL)",
        "CREATE SEQUENCE ticket_number_seq OWNED BY ticket.number",
        "ALTER TABLE ticket ALTER COLUMN number SET DEFAULT nextval('ticket_number_seq')",
    )
    assert fetch_sequences(database_url) == []
    serial = sa.MetaData()
    sa.Table("ticket", serial, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False))
    serial.tables["ticket"].append_column(sa.Column("number", sa.BigInteger, nullable=False))
    (change,) = diff(database_url, serial).changes  # the column loses its serial; nothing about a sequence
    assert change.key == ("column", "public", "ticket", "number") and change.old.autoincrement
    with pytest.raises(SchemaError, match="cycle: .*sequence public.ticket_number_seq"):
        diff(database_url, counter_models())


def test_unmodeled_sequence_is_dropped_with_a_hazard(database_url: str) -> None:
    run_sql(database_url, "CREATE SEQUENCE leftover_seq")
    plan = diff(database_url, sa.MetaData())
    (change,) = plan.changes
    assert change.action == "destroy" and change.hazards == (Hazard.DELETES_DATA,)
    assert plan.operations == [DropSequence(sequence_name="leftover_seq")]


# -- changes, both ways, with rows ------------------------------------------------------------


def counter_models(**options: Any) -> sa.MetaData:
    md = sa.MetaData()
    seq = sa.Sequence("ticket_number_seq", **options)
    sa.Table(
        "ticket",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.BigInteger, seq, server_default=seq.next_value(), nullable=False),
    )
    return md


def seed_tickets(url: str) -> Callable[[], None]:
    return lambda: run_sql(url, *["INSERT INTO ticket DEFAULT VALUES"] * 3)


CHANGES: Dict[str, Dict[str, Any]] = {
    "increment": {"increment": 5},
    "bounds": {"minvalue": 1, "maxvalue": 1000},
    "start": {"start": 1},
    "cycle": {"maxvalue": 100, "cycle": True},
    "cache": {"cache": 10},
    "integer": {"data_type": sa.Integer},
    "smallint with bounds": {"data_type": sa.SmallInteger, "maxvalue": 30000},
    "everything": {"data_type": sa.Integer, "increment": 2, "maxvalue": 5000, "cache": 3, "cycle": True},
}


@pytest.mark.parametrize("options", CHANGES.values(), ids=list(CHANGES))
def test_options_change_in_place_both_ways(database_url: str, other_url: str, options: Dict[str, Any]) -> None:
    """ALTER SEQUENCE up and down; the counter goes on where it was (no RESTART), rows kept."""
    models_a = counter_models(start=1 if "start" not in options else 100)
    if "start" in options:
        models_a, models_b = counter_models(start=100), counter_models(**options)
    else:
        models_b = counter_models(**options)
    up = round_trip(database_url, models_a, models_b, seed_tickets(database_url))
    assert [type(op) for op in up.operations] == [AlterSequence]
    assert up.changes[0].hazards == (Hazard.BLOCKS_WRITES,)  # nextval() waits, not a destructive change
    numbers = [r["number"] for r in fetch(database_url, "SELECT number FROM ticket ORDER BY id")]
    assert len(numbers) == 3
    # After up and down, the counter still goes on from the last number handed out.
    run_sql(database_url, "INSERT INTO ticket DEFAULT VALUES")
    assert fetch(database_url, "SELECT max(number) AS m FROM ticket")[0]["m"] == numbers[-1] + 1
    # B itself is what create_all builds.
    apply(database_url, diff(database_url, models_b))
    create_all(other_url, models_b)
    assert sequence_rows(database_url) == sequence_rows(other_url)


def test_alter_keeps_the_counter(database_url: str) -> None:
    migrate(database_url, counter_models())
    assert nextvals(database_url, "ticket_number_seq", 3) == [1, 2, 3]
    migrate(database_url, counter_models(increment=10, start=1))
    assert nextvals(database_url, "ticket_number_seq") == [13]


def test_add_and_drop_a_sequence_with_its_column_both_ways(database_url: str) -> None:
    models_a = sa.MetaData()
    sa.Table("ticket", models_a, sa.Column("id", sa.Integer, primary_key=True))
    up = round_trip(database_url, models_a, counter_models(start=50), seed_tickets(database_url))
    sequence, column = ("sequence", "public", "ticket_number_seq"), ("column", "public", "ticket", "number")
    assert position(up, "create", sequence) < position(up, "create", column)


def test_drop_a_default_and_its_sequence_both_ways(database_url: str) -> None:
    """The default that calls nextval goes before the sequence; down creates the sequence first."""
    models_b = sa.MetaData()
    sa.Table(
        "ticket",
        models_b,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.BigInteger, nullable=False),
    )
    migrate(database_url, counter_models(start=7))
    up, down = both_ways(database_url, models_b)
    sequence, column = ("sequence", "public", "ticket_number_seq"), ("column", "public", "ticket", "number")
    assert position(up, "migrate", column) < position(up, "destroy", sequence)
    assert Hazard.DELETES_DATA in up.changes[position(up, "destroy", sequence)].hazards
    assert position(down, "create", sequence) < position(down, "migrate", column)
    run_sql(database_url, "DELETE FROM ticket")
    round_trip(database_url, counter_models(start=7), models_b, seed_tickets(database_url))


def test_drop_a_table_and_its_sequence(database_url: str) -> None:
    round_trip(database_url, counter_models(cycle=True, maxvalue=9), sa.MetaData(), seed_tickets(database_url))


def test_a_renamed_sequence_is_a_drop_and_a_create(database_url: str) -> None:
    models_b = sa.MetaData()
    seq = sa.Sequence("ticket_no_seq")
    sa.Table(
        "ticket",
        models_b,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.BigInteger, seq, server_default=seq.next_value(), nullable=False),
    )
    up = round_trip(database_url, counter_models(), models_b, seed_tickets(database_url))
    assert {(c.action, c.key[-1]) for c in kinds(up, "sequence")} == {
        ("create", "ticket_no_seq"),
        ("destroy", "ticket_number_seq"),
    }
    new, default, old = (
        position(up, "create", ("sequence", "public", "ticket_no_seq")),
        position(up, "migrate", ("column", "public", "ticket", "number")),
        position(up, "destroy", ("sequence", "public", "ticket_number_seq")),
    )
    assert new < default < old


def keyed_models(generator: str) -> sa.MetaData:
    """`orders.id` taking its numbers from a sequence named as Postgres names a serial's: a
    standalone `Sequence("orders_id_seq")`, or the column's own (serial, identity)."""
    md = sa.MetaData()
    if generator == "sequence":
        sa.Table("orders", md, sa.Column("id", sa.Integer, sa.Sequence("orders_id_seq"), primary_key=True))
    elif generator == "identity":
        sa.Table("orders", md, sa.Column("id", sa.Integer, sa.Identity(), primary_key=True))
    else:
        sa.Table("orders", md, sa.Column("id", sa.Integer, primary_key=True))
    return md


@pytest.mark.parametrize("generator", ["serial", "identity"])
def test_a_columns_own_sequence_takes_the_name_of_a_dropped_one(database_url: str, generator: str) -> None:
    """The standalone sequence goes before the serial/identity sequence of that name is made, both ways."""
    up = round_trip(
        database_url,
        keyed_models("sequence"),
        keyed_models(generator),
        lambda: run_sql(database_url, "INSERT INTO orders VALUES (1), (2)"),
    )
    dropped = position(up, "destroy", ("sequence", "public", "orders_id_seq"))
    assert dropped < position(up, "migrate", ("column", "public", "orders", "id"))


# -- views of a change ---------------------------------------------------------------------------


def test_label_describe_and_json(database_url: str) -> None:
    md = sa.MetaData()
    sa.Sequence("s", metadata=md, data_type=sa.Integer, start=1000, increment=2, cycle=True)
    plan = diff(database_url, md)
    (change,) = plan.changes
    assert change.obj.label == "sequence s"
    assert change.obj.describe() == "sequence s AS integer INCREMENT 2 START 1000 CYCLE"
    data = change.to_json()
    assert data["kind"] == "sequence" and data["action"] == "create"
    assert data["operations"] == [
        {
            "operation": "add_sequence",
            "arguments": {"sequence_name": "s", "data_type": "integer", "increment": 2, "start": 1000, "cycle": True},
            "sql": ['CREATE SEQUENCE "public"."s" AS integer INCREMENT BY 2 START WITH 1000 CYCLE'],
        }
    ]
    apply(database_url, plan)
    changed = sa.MetaData()
    sa.Sequence("s", metadata=changed, data_type=sa.Integer, start=1000, increment=2)
    (migrate_change,) = diff(database_url, changed).changes
    assert migrate_change.to_json()["changes"] == {"cycle": {"old": True, "new": False}}
    assert migrate_change.operations == [AlterSequence(sequence_name="s", cycle=False)]
    assert migrate_change.operations[0].statements() == ['ALTER SEQUENCE "public"."s" NO CYCLE']


def test_sequences_called_reads_names_as_regclass_does() -> None:
    assert sequences_called("nextval('s'::regclass)", "app") == (("sequence", "app", "s"),)
    assert sequences_called('nextval(\'Other."My ""Seq"\'::regclass)', "app") == (("sequence", "other", 'My "Seq'),)
    assert sequences_called("nextval('it''s')", "public") == (("sequence", "public", "it's"),)
    assert sequences_called("now()", "public") == ()
    assert sequences_called(None, "public") == ()


def test_alter_sequence_statements() -> None:
    assert AlterSequence(sequence_name="s").statements() == []
    assert AlterSequence(
        sequence_name="s", data_type="integer", minvalue=1, maxvalue=2147483647, schema="app"
    ).statements() == ['ALTER SEQUENCE "app"."s" AS integer MINVALUE 1 MAXVALUE 2147483647']
    with pytest.raises(ValueError, match="smallint, integer or bigint"):
        AddSequence(sequence_name="s", data_type="numeric").statements()


# -- the conformance suite ---------------------------------------------------------------------------


def _conformance_models(version: int) -> sa.MetaData:
    md = sa.MetaData()
    options: Dict[str, Any] = {"start": 100} if version == 1 else {"start": 100, "increment": 5, "cycle": True}
    if version < 3:
        seq = sa.Sequence("order_no_seq", **options)
        sa.Table(
            "orders",
            md,
            sa.Column("id", sa.Integer, sa.Sequence("orders_id_seq"), primary_key=True),
            sa.Column("no", sa.Integer, seq, server_default=seq.next_value(), nullable=False),
        )
        sa.Sequence("standalone_seq", metadata=md, data_type=sa.Integer if version == 1 else sa.BigInteger)
    else:
        sa.Table("orders", md, sa.Column("id", sa.Integer, primary_key=True))
    return md


class TestSequenceConformance(ConformanceSuite):
    kinds = ("sequence", "column")
    handlers = builtin_handlers()

    def initial(self) -> sa.MetaData:
        return _conformance_models(1)

    def changed(self) -> sa.MetaData:
        return _conformance_models(2)

    def removed(self) -> sa.MetaData:
        return _conformance_models(3)


# -- through the command line: generate (with its proof), up, down ----------------------------------

TICKETS = """
import sqlalchemy as sa
from sqlmodel import Field, SQLModel

number_seq = sa.Sequence("ticket_number_seq", start=1000{options})


class Ticket(SQLModel, table=True):
    id: int = Field(sa_column=sa.Column(sa.Integer, sa.Sequence("ticket_id_seq"), primary_key=True))
    number: int = Field(sa_column=sa.Column(sa.Integer, number_seq, server_default=number_seq.next_value(), nullable=False))
"""


def test_generate_up_down_with_sequences(project: Any) -> None:
    project.models(TICKETS.format(options=""))
    first = project.generate("tickets")
    text = first.read_text()
    assert 'add_sequence(sequence_name="ticket_number_seq", start=1000)' in text, text
    assert text.index("add_sequence") < text.index("create_table")
    project.cli("up")
    assert "No changes" in project.cli("diff").stdout
    run_sql(project.url, "INSERT INTO ticket (id) VALUES (nextval('ticket_id_seq'))")
    before = full_snapshot(project.url)

    project.models(TICKETS.format(options=", increment=10, cycle=True, maxvalue=100000"))
    preview = project.cli("diff").stdout
    assert "~ sequence ticket_number_seq: increment: 1 → 10" in preview, preview
    second = project.generate("step by ten")
    assert "alter_sequence(" in second.read_text()
    project.cli("up")
    run_sql(project.url, "INSERT INTO ticket (id) VALUES (nextval('ticket_id_seq'))")
    assert [r["number"] for r in fetch(project.url, "SELECT number FROM ticket ORDER BY id")] == [1000, 1010]
    project.cli("down")
    assert {k: v for k, v in full_snapshot(project.url).items() if k != "sequences"} == {
        k: v for k, v in before.items() if k != "sequences"
    }
    assert [r["seqincrement"] for r in sequence_rows(project.url)] == [1, 1]
    project.cli("down", "base", "--yes")
    assert sequence_rows(project.url) == []


@pytest.mark.parametrize("generator", ["serial", "identity"])
def test_a_default_calling_a_columns_own_sequence_waits_for_that_column(database_url: str, generator: str) -> None:
    """`alpha.id DEFAULT nextval('zeta_id_seq')`, the sequence of zeta's serial (or identity) key:
    zeta is created first (create_all, going by name, would create alpha first and fail), and
    dropped after alpha's default stops calling it."""
    md = sa.MetaData()
    own = sa.Identity() if generator == "identity" else None
    sa.Table("zeta", md, sa.Column("id", sa.Integer, *([own] if own else []), primary_key=True))
    sa.Table(
        "alpha",
        md,
        sa.Column("id", sa.Integer, primary_key=True, server_default=sa.text("nextval('zeta_id_seq')")),
    )
    plan = migrate(database_url, md)
    assert position(plan, "create", ("table", "public", "zeta")) < position(
        plan, "create", ("table", "public", "alpha")
    )
    assert diff(database_url, md).is_empty
    run_sql(database_url, "INSERT INTO zeta DEFAULT VALUES", "INSERT INTO alpha DEFAULT VALUES")
    assert fetch(database_url, "SELECT id FROM alpha") == [{"id": 2}]
    plain = sa.MetaData()
    sa.Table("alpha", plain, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False))
    up, down = both_ways(database_url, plain)
    alpha_id, zeta = ("column", "public", "alpha", "id"), ("table", "public", "zeta")
    assert position(up, "migrate", alpha_id) < position(up, "destroy", zeta)
    assert position(down, "create", zeta) < position(down, "migrate", alpha_id)
    before = full_snapshot(database_url)
    apply(database_url, up)
    assert diff(database_url, plain).is_empty
    apply(database_url, down)
    assert full_snapshot(database_url) == before
