"""Names longer than Postgres keeps (issue 17): compared as the catalog holds them, collisions refused.

Postgres cuts every identifier to NAMEDATALEN - 1 = 63 bytes without splitting a
character (scansup.c truncate_identifier); SQLAlchemy sends table, column and
enum names as written and shortens only the constraint and index names a naming
convention makes (to 63 characters, with a hash). Each model here is built both
by pgmig and by create_all, and the two catalogs must agree, and stay agreed.
"""

from typing import Any, List

import pytest
import sqlalchemy as sa

from pgmig.db.quoting import stored_name
from pgmig.errors import ModelsError
from pgmig.plan.engine import desired_objects, model_context
from tests.helpers import create_all, diff, fetch, handlers, migrate, run_sql
from tests.test_constraint import catalog

LONG_TABLE = "order_line_items_with_a_very_long_descriptive_name_for_reporting_2024"  # 70 characters
TABLE_60 = "order_line_items_with_a_long_descriptive_name_for_reports_60"  # 60: create_all takes it
CJK_TABLE = "表" * 25  # 75 bytes: Postgres keeps 21 characters (63 bytes)
CJK_COLUMN = "名" * 22  # 66 bytes
LONG_COLUMN = "quantity_ordered_by_the_customer_before_any_discount_was_applied_x"  # 66 characters
LONG_ENUM = "fulfilment_status_of_an_order_line_item_as_reported_by_the_warehouse"  # 68 characters

CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def long_models(extra: bool = False, table: str = TABLE_60) -> sa.MetaData:
    """Every named kind with a name over 63 bytes: tables, columns, an enum, and the constraint
    and index names a naming convention makes of them; `extra` adds a column and an index.

    create_all refuses a table name over 63 characters (IdentifierError, SQLAlchemy 2.0 and
    2.1), so the ASCII table has 60; the CJK one is 25 characters, 75 bytes."""
    metadata = sa.MetaData(naming_convention=CONVENTION)
    status = sa.Enum("new", "packed", "shipped", name=LONG_ENUM)
    sa.Table(
        CJK_TABLE,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(CJK_COLUMN, sa.Text, unique=True),
    )
    columns: List[Any] = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey(f"{CJK_TABLE}.id")),
        sa.Column(LONG_COLUMN, sa.Integer, nullable=False, server_default="1"),
        sa.Column("status", status, nullable=False, server_default="new"),
        sa.CheckConstraint(f"{LONG_COLUMN} > 0", name="quantity_positive"),
        sa.UniqueConstraint("parent_id", LONG_COLUMN),
        sa.Index(None, LONG_COLUMN, "status"),
    ]
    if extra:
        columns += [sa.Column("note_" + "n" * 62, sa.Text), sa.Index(None, "parent_id", "note_" + "n" * 62)]
    sa.Table(table, metadata, *columns)
    return metadata


def test_stored_name_cuts_63_bytes_without_splitting_a_character() -> None:
    assert stored_name("a" * 63) == "a" * 63
    assert stored_name("a" * 70) == "a" * 63
    assert stored_name(CJK_TABLE) == "表" * 21
    assert stored_name("a" + "é" * 40) == "a" + "é" * 31  # 63 bytes
    assert stored_name("é" * 40) == "é" * 31  # 62 bytes: the 32nd would not fit whole
    assert stored_name("short") == "short"


def test_long_names_from_empty_match_create_all_and_settle(pgmig_server: Any, database_url: str) -> None:
    """pgmig from empty builds what create_all builds; a diff afterwards (and against create_all's
    database) is empty, where it never settled before."""
    models = long_models()
    migrate(database_url, models)
    assert diff(database_url, models).is_empty
    scratch = pgmig_server.create_database()
    try:
        create_all(scratch, models)
        assert catalog(database_url) == catalog(scratch)
        assert diff(scratch, models).is_empty, [c.to_json() for c in diff(scratch, models).changes]
    finally:
        pgmig_server.drop_database(scratch)
    tables = {row["relname"] for row in fetch(database_url, "SELECT relname FROM pg_class WHERE relkind = 'r'")}
    assert {TABLE_60, "表" * 21} <= tables


def seventy(extra: bool = False, name: str = LONG_TABLE) -> sa.MetaData:
    """A table of a 70-character name, with names of its own for its constraints and index."""
    metadata = sa.MetaData()
    columns: List[Any] = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.Text, nullable=False),
        sa.UniqueConstraint("code", name="line_code_unique"),
        sa.CheckConstraint("length(code) > 1", name="line_code_length"),
        sa.Index("ix_line_code_lower", sa.text("lower(code)")),
    ]
    if extra:
        columns += [sa.Column("note", sa.Text), sa.Index("ix_line_note", "note")]
    sa.Table(name, metadata, *columns)
    return metadata


def test_seventy_character_table_name_settles_and_round_trips(pgmig_server: Any, database_url: str) -> None:
    """create_all refuses the name; Postgres keeps its first 63 bytes, which pgmig compares: the
    catalog is create_all's of the table under that name, and a change to it round trips."""
    migrate(database_url, seventy())
    assert diff(database_url, seventy()).is_empty
    run_sql(database_url, f"INSERT INTO \"{LONG_TABLE[:63]}\" (id, code) VALUES (1, 'ab')")
    before = catalog(database_url)
    scratch = pgmig_server.create_database()
    try:
        create_all(scratch, seventy(name=LONG_TABLE[:63]))
        assert catalog(scratch) == before
        assert diff(scratch, seventy()).is_empty
    finally:
        pgmig_server.drop_database(scratch)
    plan = migrate(database_url, seventy(extra=True))
    assert sorted(c.kind for c in plan.changes) == ["column", "index"]
    assert diff(database_url, seventy(extra=True)).is_empty
    migrate(database_url, seventy())
    assert diff(database_url, seventy()).is_empty and catalog(database_url) == before
    assert fetch(database_url, f'SELECT id, code FROM "{LONG_TABLE[:63]}"') == [{"id": 1, "code": "ab"}]


def test_long_names_round_trip(pgmig_server: Any, database_url: str) -> None:
    """A long table gains a long column and a convention-named index, and loses them again; rows stay."""
    before, after = long_models(), long_models(extra=True)
    migrate(database_url, before)
    run_sql(
        database_url,
        f'INSERT INTO "{"表" * 21}" (id, "{"名" * 21}") VALUES (1, \'a\')',
        f'INSERT INTO "{TABLE_60}" (id, parent_id) VALUES (7, 1)',
    )
    snap_before = catalog(database_url)
    plan = migrate(database_url, after)
    assert [c.action for c in plan.changes] == ["create", "create"]
    assert diff(database_url, after).is_empty
    scratch = pgmig_server.create_database()
    try:
        create_all(scratch, after)
        assert catalog(database_url) == catalog(scratch)
    finally:
        pgmig_server.drop_database(scratch)
    migrate(database_url, before)
    assert diff(database_url, before).is_empty
    assert catalog(database_url) == snap_before
    assert fetch(database_url, f'SELECT id FROM "{TABLE_60}"') == [{"id": 7}]


def _objects(metadata: sa.MetaData) -> List[Any]:
    return desired_objects(model_context(list(metadata.tables.values()), [metadata]), handlers())


@pytest.mark.parametrize(
    "build, first, second",
    [
        (
            lambda m: [
                sa.Table("a" * 63 + "_one", m, sa.Column("id", sa.Integer)),
                sa.Table("a" * 63 + "_two", m, sa.Column("id", sa.Integer)),
            ],
            "table public." + "a" * 63 + "_one",
            "table public." + "a" * 63 + "_two",
        ),
        (
            lambda m: sa.Table("t", m, sa.Column("c" * 63 + "1", sa.Integer), sa.Column("c" * 63 + "2", sa.Integer)),
            "column public.t." + "c" * 63 + "1",
            "column public.t." + "c" * 63 + "2",
        ),
        (
            lambda m: [
                sa.Table("x" * 63 + "_table", m, sa.Column("id", sa.Integer)),
                sa.Table("t", m, sa.Column("id", sa.Integer), sa.Index("x" * 63, "id")),
            ],
            "table public." + "x" * 63 + "_table",
            "index " + "x" * 63 + " on table public.t",
        ),
        (
            lambda m: sa.Table(
                "t",
                m,
                sa.Column("a", sa.Enum("x", name="e" * 63 + "1")),
                sa.Column("b", sa.Enum("y", name="e" * 63 + "2")),
            ),
            "enum public." + "e" * 63 + "1",
            "enum public." + "e" * 63 + "2",
        ),
        (
            lambda m: (
                sa.Table("表" * 22 + "甲", m, sa.Column("id", sa.Integer)) is None
                or sa.Table("表" * 22 + "乙", m, sa.Column("id", sa.Integer))
            ),
            "table public." + "表" * 22 + "甲",
            "table public." + "表" * 22 + "乙",
        ),
    ],
    ids=["tables", "columns", "table-and-index", "enums", "cjk-tables"],
)
def test_names_postgres_keeps_alike_are_refused_naming_both(build: Any, first: str, second: str) -> None:
    metadata = sa.MetaData()
    build(metadata)
    with pytest.raises(ModelsError) as raised:
        _objects(metadata)
    assert first in str(raised.value) and second in str(raised.value)
    assert raised.value.exit_code == 2


def test_long_convention_names_that_stay_distinct_are_not_refused() -> None:
    """SQLAlchemy's hash suffix keeps long convention names apart; one table's name used by every
    handler is one name, not a collision."""
    names = {getattr(obj, "name", None) for obj in _objects(long_models(extra=True))}
    assert TABLE_60 in names and LONG_ENUM[:63] in names


def test_explicit_constraint_name_longer_than_sqlalchemy_allows_is_refused() -> None:
    metadata = sa.MetaData()
    sa.Table("t", metadata, sa.Column("id", sa.Integer), sa.CheckConstraint("id > 0", name="n" * 64))
    with pytest.raises(ModelsError, match="constraint n{64} on table t: its name is 64 characters"):
        _objects(metadata)


def test_long_names_written_as_a_revision_file(pgmig_server: Any, database_url: str, tmp_path: Any) -> None:
    """A revision adding the long column and index to the long tables: up, down, up again."""
    from tests.test_rebuilds import revision_round_trip

    revision_round_trip(pgmig_server, database_url, tmp_path, long_models(), long_models(extra=True))
