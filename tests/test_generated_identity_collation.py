"""Generated columns, identity options and collations reach the database as `create_all` builds them (issue 17).

Each case is a round trip through a revision file, as `generate` writes it:
A built by pgmig with rows, `up` to B, a fresh diff is empty, the catalog
(pg_attribute's attgenerated, attidentity and attcollation, the identity
sequence's pg_sequence options, generation expressions) equals `create_all`
of B, rows survive, `down` gives back A exactly. Runs on PostgreSQL 18 (the
embedded server) and 15 (scripts/with-postgres15.sh); where they differ the
test says so.

No `from __future__ import annotations` here: table models are defined in this module.
"""

import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pgmig.errors import ModelsError
from pgmig.ops.column import (
    AddColumn,
    AddColumnIdentity,
    DropColumn,
    DropColumnExpression,
    ModifyColumnType,
    SetColumnExpression,
    SetColumnIdentityOptions,
)
from pgmig.plan.diff import Plan

from .helpers import create_all, diff, fetch, migrate, run_sql, snapshot, steps
from .test_rebuilds import plans, revision_round_trip

# SQLAlchemy 2.1 compiles VIRTUAL generated columns for PostgreSQL 18; 2.0 writes STORED or refuses.
SQLALCHEMY_VIRTUAL = hasattr(postgresql.dialect, "supports_virtual_generated_columns")

CATALOG_QUERY = """
SELECT c.relname AS table_name, a.attname, a.attgenerated::text AS generated, a.attidentity::text AS identity,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END AS collation,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END AS expression,
       s.seqtypid::regtype::text AS sequence_type, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
       s.seqcycle
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_sequence s ON a.attidentity <> ''
      AND s.seqrelid = pg_get_serial_sequence(quote_ident(c.relname), a.attname)::regclass
WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY 1, 2
"""


def catalog(url: str) -> Dict[str, Any]:
    """helpers.snapshot plus what this module is about (see CATALOG_QUERY)."""
    return {**snapshot(url), "columns_more": fetch(url, CATALOG_QUERY)}


def server_version(url: str) -> int:
    return int(fetch(url, "SHOW server_version_num")[0]["server_version_num"])


def from_empty(server: Any, url: str, metadata: sa.MetaData) -> Plan:
    """pgmig builds `metadata` from empty exactly as create_all does, and a diff against the
    create_all database is empty."""
    plan = migrate(url, metadata)
    assert diff(url, metadata).is_empty
    scratch = server.create_database()
    try:
        create_all(scratch, metadata)
        assert catalog(url) == catalog(scratch)
        leftover = diff(scratch, metadata)
        assert leftover.is_empty, [c.to_json() for c in leftover.changes]
    finally:
        server.drop_database(scratch)
    return plan


def round_trip(
    server: Any,
    url: str,
    folder: Path,
    models_a: sa.MetaData,
    models_b: sa.MetaData,
    seed: Sequence[str] = (),
    rows_query: Optional[str] = None,
) -> Plan:
    """test_rebuilds' revision round trip, comparing this module's `catalog`. Returns the A -> B plan."""
    return revision_round_trip(server, url, folder, models_a, models_b, seed, rows_query, snapshot_of=catalog)


def ops_of(plan: Plan, kind: type) -> List[Any]:
    return [op for op in steps(plan) if isinstance(op, kind)]


# -- generated columns ---------------------------------------------------------------------------------


def line_items(*extra: Callable[[], sa.Column[Any]], quantity: Any = sa.Integer) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "line_item",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("quantity", quantity, nullable=False),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        *(make() for make in extra),
    )
    return metadata


def total(expression: str = "quantity * price", persisted: Optional[bool] = True) -> Callable[[], sa.Column[Any]]:
    return lambda: sa.Column("total", sa.Numeric(12, 2), sa.Computed(expression, persisted=persisted))


def label(computed: bool = True) -> Callable[[], sa.Column[Any]]:
    if computed:
        return lambda: sa.Column("label", sa.Text, sa.Computed("'id: ' || id", persisted=True))
    return lambda: sa.Column("label", sa.Text)


SEED = ("INSERT INTO line_item (id, quantity, price) VALUES (1, 2, 3.50), (2, 5, 1.25)",)
ROWS = "SELECT id, quantity, price FROM line_item ORDER BY id"


def test_generated_columns_from_empty_equal_create_all(pgmig_server: Any, database_url: str) -> None:
    metadata = line_items(total(), label())
    from_empty(pgmig_server, database_url, metadata)
    run_sql(database_url, *SEED)
    rows = fetch(database_url, "SELECT total, label FROM line_item ORDER BY id")
    assert [(str(r["total"]), r["label"]) for r in rows] == [("7.00", "id: 1"), ("6.25", "id: 2")]


def test_computed_storage_follows_sqlalchemy_on_this_server(pgmig_server: Any, database_url: str) -> None:
    """Computed(persisted=None) is what create_all makes of it: VIRTUAL on PostgreSQL 18 with SQLAlchemy 2.1
    (which writes no keyword), STORED before 18 or with SQLAlchemy 2.0 (which writes STORED); persisted=False is
    VIRTUAL on 18 and an error naming the column before."""
    version = server_version(database_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's "created as STORED" before 18
        from_empty(pgmig_server, database_url, line_items(total(persisted=None)))
    kind = fetch(database_url, "SELECT attgenerated::text AS g FROM pg_attribute WHERE attname = 'total'")[0]["g"]
    assert kind == ("v" if version >= 180000 and SQLALCHEMY_VIRTUAL else "s")
    virtual = line_items(total(persisted=False))
    if version >= 180000:
        if SQLALCHEMY_VIRTUAL:  # SQLAlchemy 2.0's create_all refuses it: nothing to compare with
            from_empty(pgmig_server, database_url, virtual)
    else:
        with pytest.raises(ModelsError, match="line_item.total"):
            diff(database_url, virtual)


def test_issue_database_with_a_stored_generated_column_diffs_empty(database_url: str) -> None:
    """The issue's input: the generation expression was read as a default (`default: ... -> None`)."""
    run_sql(
        database_url,
        "CREATE TABLE line_item (id serial PRIMARY KEY, quantity integer NOT NULL, price numeric(10,2) NOT NULL, "
        "label text GENERATED ALWAYS AS ('id: ' || id) STORED)",
    )
    plan = diff(database_url, line_items(label()))
    assert plan.is_empty, [c.to_json() for c in plan.changes]


def test_generated_column_added_to_a_table_with_rows(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    plan = round_trip(pgmig_server, database_url, tmp_path, line_items(), line_items(total(), label()), SEED, ROWS)
    (added, *_), dropped = ops_of(plan, AddColumn), ops_of(plan, DropColumn)
    assert added.generated is not None and not dropped
    assert "rewrites_table" in added.hazards()
    values = fetch(database_url, "SELECT total::text AS total, label FROM line_item ORDER BY id")
    assert values == [{"total": "7.00", "label": "id: 1"}, {"total": "6.25", "label": "id: 2"}]


def test_changed_expression(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    """SET EXPRESSION on PostgreSQL 17+ (rewrites the table); before, the column is dropped and added
    (nothing lost: its values are derived)."""
    plan = round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        line_items(total()),
        line_items(total("quantity * price * 2")),
        SEED,
        ROWS,
    )
    if server_version(database_url) >= 170000:
        (change,) = ops_of(plan, SetColumnExpression)
        assert "rewrites_table" in change.hazards() and not ops_of(plan, DropColumn)
    else:
        (dropped,) = ops_of(plan, DropColumn)
        assert dropped.derived and not dropped.hazards() and ops_of(plan, AddColumn)
    assert fetch(database_url, "SELECT total::text AS t FROM line_item ORDER BY id") == [{"t": "14.00"}, {"t": "12.50"}]


def test_plain_column_to_generated_and_back(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    """Plain -> generated replaces the column (its values are computed now); generated -> plain is
    DROP EXPRESSION, which keeps the values."""
    plan = round_trip(pgmig_server, database_url, tmp_path, line_items(label(False)), line_items(label()), SEED, ROWS)
    (dropped,) = ops_of(plan, DropColumn)
    assert not dropped.derived and "deletes_data" in dropped.hazards()
    up, down = plans(database_url, line_items(label(False)))
    assert ops_of(up, DropColumnExpression) and not ops_of(up, DropColumn)
    migrate(database_url, line_items(label(False)))
    assert fetch(database_url, "SELECT label FROM line_item ORDER BY id") == [{"label": "id: 1"}, {"label": "id: 2"}]


def test_generated_column_carried_through_a_type_change_of_a_column_it_reads(
    pgmig_server: Any, tmp_path: Path, database_url: str
) -> None:
    """Postgres refuses ALTER COLUMN TYPE under a generated column: it is dropped before and added after."""
    plan = round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        line_items(total()),
        line_items(total(), quantity=sa.BigInteger),
        SEED,
        ROWS,
    )
    kinds = [type(op).__name__ for op in steps(plan)]
    assert kinds.index("DropColumn") < kinds.index("ModifyColumnType") < kinds.index("AddColumn")


def test_generated_column_and_the_column_it_reads_dropped_and_added(
    pgmig_server: Any, tmp_path: Path, database_url: str
) -> None:
    metadata = sa.MetaData()
    sa.Table("line_item", metadata, sa.Column("id", sa.Integer, primary_key=True))
    # No rows: `down` adds back NOT NULL columns without a default.
    plan = round_trip(pgmig_server, database_url, tmp_path, line_items(total(), label()), metadata)
    dropped = [op.column_name for op in ops_of(plan, DropColumn)]
    assert dropped.index("total") < dropped.index("quantity") and "label" in dropped


# -- identity options ----------------------------------------------------------------------------------


def tickets(identity: Optional[sa.Identity], id_type: Any = sa.Integer) -> sa.MetaData:
    metadata = sa.MetaData()
    # Without an identity, a plain integer key (not serial).
    args: Sequence[Any] = (identity,) if identity is not None else ()
    options: Dict[str, Any] = {} if identity is not None else {"autoincrement": False}
    sa.Table(
        "ticket",
        metadata,
        sa.Column("id", id_type, *args, primary_key=True, **options),
        sa.Column("title", sa.Text, nullable=False),
    )
    return metadata


TICKETS = ("INSERT INTO ticket (id, title) OVERRIDING SYSTEM VALUE VALUES (1, 'a'), (2, 'b')",)
TICKET_ROWS = "SELECT id, title FROM ticket ORDER BY id"
OPTIONS = sa.Identity(start=1000, increment=5, minvalue=10, maxvalue=100000, cycle=True, cache=20)


@pytest.mark.parametrize(
    "identity, id_type",
    [
        (sa.Identity(start=1000, increment=5), sa.Integer),
        (sa.Identity(), sa.BigInteger),
        (sa.Identity(), sa.SmallInteger),
        (sa.Identity(always=True, increment=-1), sa.Integer),
        (OPTIONS, sa.BigInteger),
    ],
)
def test_identity_options_from_empty_equal_create_all(
    pgmig_server: Any, database_url: str, identity: sa.Identity, id_type: Any
) -> None:
    from_empty(pgmig_server, database_url, tickets(identity, id_type))


def test_identity_options_changed_both_ways(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    plan = round_trip(
        pgmig_server, database_url, tmp_path, tickets(sa.Identity()), tickets(OPTIONS), TICKETS, TICKET_ROWS
    )
    (change,) = ops_of(plan, SetColumnIdentityOptions)
    assert (change.start, change.increment, change.maxvalue, change.cache, change.cycle) == (1000, 5, 100000, 20, True)


@pytest.mark.parametrize(
    "before, after",
    [
        (sa.Identity(), sa.Identity()),
        (sa.Identity(start=1000, increment=5), sa.Identity(start=1000, increment=5, maxvalue=2**31 - 1)),
    ],
)
def test_identity_through_a_type_change(
    pgmig_server: Any, tmp_path: Path, database_url: str, before: sa.Identity, after: sa.Identity
) -> None:
    """int -> bigint keeps the identity; a default maxvalue follows the type, a given one stays."""
    plan = round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        tickets(before),
        tickets(after, sa.BigInteger),
        TICKETS,
        TICKET_ROWS,
    )
    assert ops_of(plan, ModifyColumnType)
    assert bool(ops_of(plan, SetColumnIdentityOptions)) == (after.maxvalue is not None)


def test_plain_column_becomes_identity_with_options(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    plan = round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        tickets(None),
        tickets(sa.Identity(start=1000, increment=5)),
        TICKETS,
        TICKET_ROWS,
    )
    (added,) = ops_of(plan, AddColumnIdentity)
    assert added.identity_options == "INCREMENT BY 5 START WITH 1000"
    run_sql(database_url, "INSERT INTO ticket (title) VALUES ('c')")
    assert fetch(database_url, "SELECT max(id) AS id FROM ticket") == [{"id": 1000}]


# -- collations ----------------------------------------------------------------------------------------


def people(collation: Optional[str], index: bool = True) -> sa.MetaData:
    metadata = sa.MetaData()
    table = sa.Table(
        "person",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(40, collation=collation)),
        sa.Column("bio", sa.Text(collation=collation)),
        sa.Column("tags", postgresql.ARRAY(sa.String(collation=collation))),
    )
    if index:
        sa.Index("ix_person_name", table.c.name)
    return metadata


PEOPLE = ("INSERT INTO person (id, name, bio, tags) VALUES (1, 'b', 'x', '{a,B}'), (2, 'A', 'y', NULL)",)
PEOPLE_ROWS = "SELECT id, name, bio, tags FROM person ORDER BY id"


def icu_collation(url: str) -> Optional[str]:
    found = fetch(url, "SELECT collname FROM pg_collation WHERE collname = 'en-US-x-icu'")
    return found[0]["collname"] if found else None


def test_collations_from_empty_equal_create_all(pgmig_server: Any, database_url: str) -> None:
    from_empty(pgmig_server, database_url, people("C"))
    more = {(row["attname"], row["collation"]) for row in catalog(database_url)["columns_more"]}
    assert {("name", "C"), ("bio", "C"), ("tags", "C")} <= more


def test_collation_changed_both_ways(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    """ALTER COLUMN TYPE ... COLLATE; Postgres rebuilds the index on the column itself."""
    plan = round_trip(pgmig_server, database_url, tmp_path, people(None), people("C"), PEOPLE, PEOPLE_ROWS)
    changes = ops_of(plan, ModifyColumnType)
    assert {op.column_name for op in changes} == {"name", "bio", "tags"} and all(op.collation == "C" for op in changes)
    (name,) = [op for op in changes if op.column_name == "name"]
    assert "index_build" in name.hazards() and "rewrites_table" not in name.hazards()
    assert fetch(database_url, "SELECT name FROM person ORDER BY name") == [{"name": "A"}, {"name": "b"}]


def test_collation_from_one_to_another(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    other = icu_collation(database_url) or "POSIX"
    round_trip(pgmig_server, database_url, tmp_path, people("C"), people(other), PEOPLE, PEOPLE_ROWS)


def test_collation_and_type_changed_together(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    def notes(data_type: Any) -> sa.MetaData:
        metadata = sa.MetaData()
        table = sa.Table("note", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", data_type))
        sa.Index("ix_note_body", table.c.body)
        return metadata

    rows = ("INSERT INTO note (id, body) VALUES (1, 'b'), (2, 'A')",)
    plan = round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        notes(sa.String(20, collation="C")),
        notes(sa.Text()),
        rows,
        "SELECT id, body FROM note ORDER BY id",
    )
    (change,) = ops_of(plan, ModifyColumnType)
    assert change.collation is None and change.data_type == "text"


# -- more generated columns: virtual ones (PostgreSQL 18), indexes on them, quoted names -----------------


def virtual_only(url: str) -> None:
    if server_version(url) < 180000:
        pytest.skip("VIRTUAL generated columns are PostgreSQL 18+")
    if not SQLALCHEMY_VIRTUAL:
        pytest.skip("SQLAlchemy before 2.1 refuses Computed(persisted=False) on PostgreSQL")


@pytest.mark.parametrize(
    "before, after, replaced",
    [
        (total(persisted=False), total("quantity * price * 2", persisted=False), False),
        (total(), total(persisted=False), True),
        (total(persisted=False), lambda: sa.Column("total", sa.Numeric(12, 2)), True),
    ],
    ids=["virtual-expression", "stored-to-virtual", "virtual-to-plain"],
)
def test_virtual_generated_column_changes(
    pgmig_server: Any, tmp_path: Path, database_url: str, before: Any, after: Any, replaced: bool
) -> None:
    """SET EXPRESSION on a virtual column rewrites nothing; what ALTER cannot do (stored <-> virtual,
    virtual -> plain: DROP EXPRESSION is for stored columns) drops and adds the column."""
    virtual_only(database_url)
    plan = round_trip(pgmig_server, database_url, tmp_path, line_items(before), line_items(after), SEED, ROWS)
    assert bool(ops_of(plan, DropColumn)) == replaced
    for change in ops_of(plan, SetColumnExpression):
        assert "rewrites_table" not in change.hazards()


def test_index_on_a_generated_column_survives_an_expression_change(
    pgmig_server: Any, tmp_path: Path, database_url: str
) -> None:
    def indexed(expression: str) -> sa.MetaData:
        metadata = line_items(total(expression))
        table = metadata.tables["line_item"]
        sa.Index("ix_line_item_total", table.c.total)
        sa.Index("ix_line_item_big", table.c.id, postgresql_where=table.c.total > 100)
        return metadata

    round_trip(
        pgmig_server, database_url, tmp_path, indexed("quantity * price"), indexed("quantity + price"), SEED, ROWS
    )


def test_generated_column_reading_quoted_names(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    def orders(expression: Optional[str]) -> sa.MetaData:
        metadata = sa.MetaData()
        extra = (
            [sa.Column("Line Total", sa.Numeric(14, 2), sa.Computed(expression, persisted=True))] if expression else []
        )
        sa.Table(
            "Order",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("Unit Price", sa.Numeric(10, 2)),
            sa.Column("qty", sa.SmallInteger),
            *extra,
        )
        return metadata

    metadata = orders('"Unit Price" * qty')
    from_empty(pgmig_server, database_url, metadata)
    run_sql(database_url, 'DROP TABLE "Order"')
    round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        orders(None),
        metadata,
        ('INSERT INTO "Order" (id, "Unit Price", qty) VALUES (1, 2.5, 4)',),
        'SELECT id, "Unit Price", qty FROM "Order"',
    )
    assert fetch(database_url, 'SELECT "Line Total"::text AS t FROM "Order"') == [{"t": "10.00"}]


def test_identity_kind_and_options_changed_together(pgmig_server: Any, tmp_path: Path, database_url: str) -> None:
    round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        tickets(sa.Identity(always=True, start=10)),
        tickets(sa.Identity(always=False, start=10, increment=-2, minvalue=-1000, maxvalue=10)),
        TICKETS,
        TICKET_ROWS,
    )


def test_generated_column_carried_through_a_collation_change_of_a_column_it_reads(
    pgmig_server: Any, tmp_path: Path, database_url: str
) -> None:
    def names(collation: Optional[str]) -> sa.MetaData:
        metadata = sa.MetaData()
        sa.Table(
            "person",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.Text(collation=collation)),
            sa.Column("shout", sa.Text, sa.Computed("upper(name)", persisted=True)),
        )
        return metadata

    round_trip(
        pgmig_server,
        database_url,
        tmp_path,
        names(None),
        names("C"),
        ("INSERT INTO person (id, name) VALUES (1, 'ann')",),
        "SELECT id, name, shout FROM person",
    )
