"""Native enum types: created before their columns, labels inserted in declaration order.

No `from __future__ import annotations` here: SQLModel table models are
defined in this module and need their annotations evaluated.
"""

import enum
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from pgmig.errors import DatabaseError, SchemaError
from pgmig.ops.enum import AddType, AddTypeValues, DropType, EnumColumn, RenameTypeValue, SwapTypeValues
from pgmig.schema.handlers.enum import Enum, EnumHandler, insertions

from .helpers import create_all, diff, fetch, migrate, run_sql, snapshot

# -- helpers -----------------------------------------------------------------------

ENUM_LABELS_QUERY = """
SELECT n.nspname AS schema, t.typname AS name,
       array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = $1
GROUP BY n.nspname, t.typname
ORDER BY t.typname
"""


def enum_labels(url: str, schema: str = "public") -> Dict[str, List[str]]:
    """Enum name -> labels in pg_enum sort order (what helpers.snapshot does not cover)."""
    return {row["name"]: list(row["labels"]) for row in fetch(url, ENUM_LABELS_QUERY, schema)}


def full_snapshot(url: str, schema: str = "public") -> Dict[str, Any]:
    return {**snapshot(url, schema), "enums": enum_labels(url, schema)}


@pytest.fixture
def other_url(pgmig_server: Any) -> Iterator[str]:
    """A second fresh database, for building the expected state with create_all."""
    url = pgmig_server.create_database()
    try:
        yield url
    finally:
        pgmig_server.drop_database(url)


def expected_snapshot(url: str, metadata: sa.MetaData, schema: str = "public") -> Dict[str, Any]:
    create_all(url, metadata)
    return full_snapshot(url, schema)


def expected_snapshot_fresh(url: str, metadata: sa.MetaData, schema: str = "public") -> Dict[str, Any]:
    """expected_snapshot in a database that already holds the tables: empty it first."""
    run_sql(url, f"DROP SCHEMA {schema} CASCADE", f"CREATE SCHEMA {schema}")
    return expected_snapshot(url, metadata, schema)


def sql_of(plan: Any) -> List[str]:
    return plan.statements()


def index_of(statements: Sequence[str], fragment: str) -> int:
    matches = [i for i, s in enumerate(statements) if fragment in s]
    assert len(matches) == 1, (fragment, statements)
    return matches[0]


def status_table(metadata: sa.MetaData, labels: Sequence[str], name: str = "ticket") -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.Enum(*labels, name="status")),
    )


def ticket_rows(url: str) -> List[Dict[str, Any]]:
    return fetch(url, "SELECT id, status::text AS status FROM ticket ORDER BY id")


# -- operations --------------------------------------------------------------------


def test_operation_sql_quotes_names_and_labels() -> None:
    assert AddType(type_name="Mood", values=["it's", "b"], schema="app").statements() == [
        """CREATE TYPE "app"."Mood" AS ENUM ('it''s', 'b')"""
    ]
    assert DropType(type_name="mood").statements() == ['DROP TYPE "public"."mood"']
    assert DropType(type_name="mood").hazards() == ("deletes_data",)
    assert AddTypeValues(type_name="mood", values=["a", "b"], before="c").statements() == [
        """ALTER TYPE "public"."mood" ADD VALUE IF NOT EXISTS 'a' BEFORE 'c'""",
        """ALTER TYPE "public"."mood" ADD VALUE IF NOT EXISTS 'b' AFTER 'a'""",
    ]
    assert AddTypeValues(type_name="mood", values=["x"]).statements() == [
        """ALTER TYPE "public"."mood" ADD VALUE IF NOT EXISTS 'x'"""
    ]
    assert RenameTypeValue(type_name="mood", old_value="a", new_value="b").statements() == [
        """ALTER TYPE "public"."mood" RENAME VALUE 'a' TO 'b'"""
    ]
    # Revision files pass lists; the operation stays hashable and prints them back as lists.
    op = AddTypeValues(type_name="mood", values=["a"], after="z")
    assert hash(op) == hash(AddTypeValues(type_name="mood", values=("a",), after="z"))
    assert op.arguments() == {"type_name": "mood", "values": ["a"], "after": "z"}
    with pytest.raises(TypeError):
        AddTypeValues(type_name="mood", values=["a"], before="b", after="c")


def test_insertions_anchor_each_run() -> None:
    assert insertions(("b", "d"), ("a0", "a", "b", "c", "d", "e", "f")) == [
        (["a0", "a"], "b", None),
        (["c"], None, "b"),
        (["e", "f"], None, "d"),
    ]
    assert insertions((), ("a", "b")) == [(["a", "b"], None, None)]
    assert insertions(("a",), ("a",)) == []


def test_run_sql_ops_against_server(database_url: str) -> None:
    """RENAME VALUE is not planned yet; check its SQL is accepted by the server."""
    ops = [
        AddType(type_name="mood", values=["a", "c"]),
        AddTypeValues(type_name="mood", values=["b"], after="a"),
        RenameTypeValue(type_name="mood", old_value="c", new_value="z"),
    ]
    run_sql(database_url, *[s for op in ops for s in op.statements()])
    assert enum_labels(database_url) == {"mood": ["a", "b", "z"]}


# -- reading the models ------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


def rich_metadata() -> sa.MetaData:
    """Every way SQLAlchemy spells a native enum."""
    metadata = sa.MetaData()
    shared = sa.Enum("low", "high", name="priority")
    sa.Table(
        "paint",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("by_name", sa.Enum(Color)),  # type "color", labels are member names
        sa.Column(
            "by_value",
            sa.Enum(Color, name="color_value", values_callable=lambda cls: [m.value for m in cls]),
        ),
        sa.Column("explicit", sa.Enum("a", "it's", name="Explicit Name")),
        sa.Column("many", postgresql.ARRAY(sa.Enum("x", "y", name="tag"))),
        sa.Column("priority", shared),
        sa.Column("not_native", sa.Enum("p", "q", name="no_type", native_enum=False)),
    )
    sa.Table(
        "job",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("priority", sa.Enum("low", "high", name="priority")),
    )
    sa.Enum("on", "off", name="standalone", metadata=metadata)
    return metadata


def test_from_models_reads_every_native_enum() -> None:
    from pgmig.plan.engine import model_context

    metadata = rich_metadata()
    objects = EnumHandler().from_models(model_context(metadata.sorted_tables, [metadata]))
    assert sorted(objects, key=lambda o: o.name) == [
        Enum("public", "Explicit Name", ("a", "it's")),
        Enum("public", "color", ("RED", "GREEN", "BLUE")),
        Enum("public", "color_value", ("red", "green", "blue")),
        Enum("public", "priority", ("low", "high")),
        Enum("public", "standalone", ("on", "off")),
        Enum("public", "tag", ("x", "y")),
    ]


def test_one_name_with_two_label_lists_is_an_error() -> None:
    from pgmig.plan.engine import model_context

    metadata = sa.MetaData()
    status_table(metadata, ["a", "b"], name="one")
    status_table(metadata, ["a", "c"], name="two")
    with pytest.raises(SchemaError, match=r"enum public\.status .*\['a', 'b'\].*\['a', 'c'\]"):
        EnumHandler().from_models(model_context(metadata.sorted_tables, [metadata]))


def test_create_all_of_enum_models_diffs_empty(database_url: str, other_url: str) -> None:
    metadata = rich_metadata()
    create_all(database_url, metadata)
    plan = diff(database_url, metadata)
    assert plan.is_empty, plan.statements()
    # pgmig builds the same thing from scratch.
    migrate(other_url, metadata)
    assert diff(other_url, metadata).is_empty
    assert full_snapshot(other_url) == full_snapshot(database_url)
    assert enum_labels(database_url) == {
        "Explicit Name": ["a", "it's"],
        "color": ["RED", "GREEN", "BLUE"],
        "color_value": ["red", "green", "blue"],
        "priority": ["low", "high"],
        "standalone": ["on", "off"],
        "tag": ["x", "y"],
    }


# -- creating and dropping ---------------------------------------------------------


def test_enum_created_before_the_column_and_dropped_after_the_table(database_url: str, other_url: str) -> None:
    empty = sa.MetaData()
    metadata = sa.MetaData()
    status_table(metadata, ["open", "closed"])
    sa.Table(
        "tagged",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tags", postgresql.ARRAY(sa.Enum("x", "y", name="tag"))),
    )

    statements = sql_of(migrate(database_url, metadata))
    # Each table is created whole, its enum column in its CREATE TABLE, after the type.
    assert index_of(statements, 'CREATE TYPE "public"."status"') < index_of(statements, '    "status" public.status,')
    assert index_of(statements, 'CREATE TYPE "public"."tag"') < index_of(statements, '    "tags" public.tag[],')
    assert diff(database_url, metadata).is_empty
    assert full_snapshot(database_url) == expected_snapshot(other_url, metadata)
    run_sql(database_url, "INSERT INTO ticket (id, status) VALUES (1, 'open')")

    # Back to nothing: the tables (which take their columns along) go before the types.
    statements = sql_of(migrate(database_url, empty))
    assert index_of(statements, 'DROP TABLE "public"."ticket"') < index_of(statements, 'DROP TYPE "public"."status"')
    assert index_of(statements, 'DROP TABLE "public"."tagged"') < index_of(statements, 'DROP TYPE "public"."tag"')
    assert not any("DROP COLUMN" in s for s in statements)
    assert diff(database_url, empty).is_empty
    assert full_snapshot(database_url) == {"tables": [], "columns": [], "enums": {}, "constraints": [], "indexes": []}


def test_dropping_a_column_and_its_enum(database_url: str, other_url: str) -> None:
    with_status = sa.MetaData()
    status_table(with_status, ["open", "closed"])
    without_status = sa.MetaData()
    sa.Table("ticket", without_status, sa.Column("id", sa.Integer, primary_key=True))

    migrate(database_url, with_status)
    run_sql(database_url, "INSERT INTO ticket (id, status) VALUES (1, 'open'), (2, 'closed')")

    plan = migrate(database_url, without_status)
    statements = sql_of(plan)
    assert index_of(statements, 'DROP COLUMN "status"') < index_of(statements, 'DROP TYPE "public"."status"')
    drop_type = [op for op in plan.operations if op.name == "drop_type"]
    assert drop_type and drop_type[0].hazards() == ("deletes_data",)
    assert diff(database_url, without_status).is_empty
    assert full_snapshot(database_url) == expected_snapshot(other_url, without_status)
    assert fetch(database_url, "SELECT id FROM ticket ORDER BY id") == [{"id": 1}, {"id": 2}]

    # And back: the type comes before the column that uses it.
    statements = sql_of(migrate(database_url, with_status))
    assert index_of(statements, 'CREATE TYPE "public"."status"') < index_of(statements, 'ADD COLUMN "status"')
    assert diff(database_url, with_status).is_empty
    run_sql(other_url, "DROP TABLE ticket")
    assert full_snapshot(database_url) == expected_snapshot(other_url, with_status)


def test_enum_in_another_schema(database_url: str, other_url: str) -> None:
    for url in (database_url, other_url):
        run_sql(url, "CREATE SCHEMA app")
    metadata = sa.MetaData(schema="app")
    status_table(metadata, ["open", "closed"])
    migrate(database_url, metadata, schema="app")
    assert diff(database_url, metadata, schema="app").is_empty
    assert enum_labels(database_url, "app") == {"status": ["open", "closed"]}
    assert enum_labels(database_url) == {}
    assert full_snapshot(database_url, "app") == expected_snapshot(other_url, metadata, "app")


# -- changing labels ---------------------------------------------------------------


def test_adding_labels_keeps_declaration_order(database_url: str, other_url: str) -> None:
    before = sa.MetaData()
    status_table(before, ["b", "d"])
    after = sa.MetaData()
    new_labels = ["a0", "a", "b", "c", "d", "e", "f"]
    status_table(after, new_labels)

    migrate(database_url, before)
    run_sql(database_url, "INSERT INTO ticket (id, status) VALUES (1, 'b'), (2, 'd')")

    plan = migrate(database_url, after)
    assert [c.action for c in plan.changes] == ["migrate"]
    assert [op.name for op in plan.operations] == ["add_type_values"] * 3
    assert enum_labels(database_url) == {"status": new_labels}
    assert ticket_rows(database_url) == [{"id": 1, "status": "b"}, {"id": 2, "status": "d"}]
    assert diff(database_url, after).is_empty
    assert full_snapshot(database_url) == expected_snapshot(other_url, after)

    # Committed labels are usable and sort in declaration order.
    run_sql(database_url, "INSERT INTO ticket (id, status) VALUES (3, 'f'), (4, 'a0'), (5, 'c')")
    ordered = fetch(database_url, "SELECT status::text AS status FROM ticket ORDER BY status")
    assert [row["status"] for row in ordered] == ["a0", "b", "c", "d", "f"]

    # Going back removes labels: a type swap, which fails while rows hold them
    # and leaves everything as it was.
    with pytest.raises(DatabaseError, match="invalid input value for enum"):
        migrate(database_url, before)
    assert enum_labels(database_url) == {"status": new_labels}
    assert len(ticket_rows(database_url)) == 5

    run_sql(database_url, "DELETE FROM ticket WHERE status NOT IN ('b', 'd')")
    plan = migrate(database_url, before)
    assert [op.name for op in plan.operations] == ["swap_type_values"]
    assert diff(database_url, before).is_empty
    assert full_snapshot(database_url) == expected_snapshot_fresh(other_url, before)
    assert ticket_rows(database_url) == [{"id": 1, "status": "b"}, {"id": 2, "status": "d"}]


def test_adding_labels_to_an_enum_used_by_an_array(database_url: str, other_url: str) -> None:
    def models(labels: Sequence[str]) -> sa.MetaData:
        metadata = sa.MetaData()
        sa.Table(
            "tagged",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("tags", postgresql.ARRAY(sa.Enum(*labels, name="tag"))),
        )
        return metadata

    migrate(database_url, models(["x", "z"]))
    run_sql(database_url, "INSERT INTO tagged VALUES (1, '{z,x}')")
    migrate(database_url, models(["w", "x", "y", "z"]))
    assert enum_labels(database_url) == {"tag": ["w", "x", "y", "z"]}
    assert fetch(database_url, "SELECT tags::text AS tags FROM tagged") == [{"tags": "{z,x}"}]
    assert diff(database_url, models(["w", "x", "y", "z"])).is_empty
    assert full_snapshot(database_url) == expected_snapshot(other_url, models(["w", "x", "y", "z"]))


def test_removing_an_unused_label_swaps_the_type(database_url: str, other_url: str) -> None:
    before = sa.MetaData()
    status_table(before, ["open", "pending", "closed"])
    removed = sa.MetaData()
    status_table(removed, ["open", "closed", "archived"])

    migrate(database_url, before)
    run_sql(database_url, "INSERT INTO ticket (id, status) VALUES (1, 'open'), (2, 'closed'), (3, NULL)")
    rows = ticket_rows(database_url)

    plan = migrate(database_url, removed)
    assert [op.name for op in plan.operations] == ["swap_type_values"]
    (swap,) = plan.operations
    assert swap.hazards() == ("rewrites_table", "deletes_data")
    assert swap.arguments() == {
        "type_name": "status",
        "values": ["open", "closed", "archived"],
        "columns": [EnumColumn("ticket", "status")],
        "removed_values": ["pending"],
    }
    assert enum_labels(database_url) == {"status": ["open", "closed", "archived"]}
    assert ticket_rows(database_url) == rows
    assert diff(database_url, removed).is_empty
    assert full_snapshot(database_url) == expected_snapshot(other_url, removed)
    # The swapped type takes new labels and compares in the new order.
    run_sql(database_url, "INSERT INTO ticket (id, status) VALUES (4, 'archived')")
    ordered = fetch(database_url, "SELECT id FROM ticket WHERE status IS NOT NULL ORDER BY status")
    assert [row["id"] for row in ordered] == [1, 2, 4]
    assert not fetch(database_url, "SELECT 1 FROM pg_type WHERE typname LIKE '%pgmig_new%'")

    # And back: 'archived' goes (unused again once row 4 is gone), 'pending' returns.
    run_sql(database_url, "DELETE FROM ticket WHERE id = 4")
    back = migrate(database_url, before)
    assert [op.name for op in back.operations] == ["swap_type_values"]
    assert diff(database_url, before).is_empty
    assert full_snapshot(database_url) == expected_snapshot_fresh(other_url, before)
    assert ticket_rows(database_url) == rows


def test_reordering_labels_swaps_the_type(database_url: str, other_url: str) -> None:
    before = sa.MetaData()
    status_table(before, ["open", "pending", "closed"])
    reordered = sa.MetaData()
    status_table(reordered, ["pending", "open", "closed", "new"])

    migrate(database_url, before)
    run_sql(database_url, "INSERT INTO ticket (id, status) VALUES (1, 'open'), (2, 'pending'), (3, 'closed')")
    rows = ticket_rows(database_url)

    plan = migrate(database_url, reordered)
    (swap,) = plan.operations
    assert swap.name == "swap_type_values"
    assert swap.hazards() == ("rewrites_table",)  # nothing removed
    assert enum_labels(database_url) == {"status": ["pending", "open", "closed", "new"]}
    assert ticket_rows(database_url) == rows
    ordered = fetch(database_url, "SELECT id FROM ticket ORDER BY status")
    assert [row["id"] for row in ordered] == [2, 1, 3]
    assert diff(database_url, reordered).is_empty
    assert full_snapshot(database_url) == expected_snapshot(other_url, reordered)

    back = migrate(database_url, before)
    assert [op.name for op in back.operations] == ["swap_type_values"]
    assert diff(database_url, before).is_empty
    assert full_snapshot(database_url) == expected_snapshot_fresh(other_url, before)
    assert ticket_rows(database_url) == rows


def mood_models(labels: Sequence[str], default: str = "calm") -> sa.MetaData:
    """One enum used by two tables, an array column and a server default naming a label."""
    metadata = sa.MetaData()
    mood = sa.Enum(*labels, name="mood")
    sa.Table(
        "person",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mood", mood, nullable=False, server_default=default),
        sa.Column("history", postgresql.ARRAY(mood), server_default=sa.text(f"ARRAY['{default}']::mood[]")),
    )
    sa.Table(
        "diary",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("Mood Of Day", mood),
    )
    return metadata


MOOD_ROWS = """
SELECT 'person' AS t, id, mood::text AS mood, history::text AS history FROM person
UNION ALL SELECT 'diary', id, "Mood Of Day"::text, NULL FROM diary
ORDER BY 1, 2
"""


def test_swap_converts_every_column_and_restores_defaults(database_url: str, other_url: str) -> None:
    models_a = mood_models(["calm", "happy", "sad"])
    models_b = mood_models(["angry", "calm", "happy", "sad", "bored"])

    migrate(database_url, models_a)
    run_sql(
        database_url,
        "INSERT INTO person (id) VALUES (1)",
        "INSERT INTO person (id, mood, history) VALUES (2, 'sad', '{sad,happy}'), (3, 'happy', NULL)",
        """INSERT INTO diary (id, "Mood Of Day") VALUES (1, 'happy'), (2, NULL)""",
    )
    rows = fetch(database_url, MOOD_ROWS)
    assert rows[2:] == [
        {"t": "person", "id": 1, "mood": "calm", "history": "{calm}"},
        {"t": "person", "id": 2, "mood": "sad", "history": "{sad,happy}"},
        {"t": "person", "id": 3, "mood": "happy", "history": None},
    ]
    snap_a = full_snapshot(database_url)

    # A -> B only inserts labels: no swap.
    up = migrate(database_url, models_b)
    assert {op.name for op in up.operations} == {"add_type_values"}
    assert diff(database_url, models_b).is_empty
    assert full_snapshot(database_url) == expected_snapshot(other_url, models_b)
    assert fetch(database_url, MOOD_ROWS) == rows

    # B -> A (what `down` does) removes 'angry' and 'bored': a swap of all three columns.
    back = migrate(database_url, models_a)
    (swap,) = back.operations
    assert swap.name == "swap_type_values"
    assert sorted(swap.columns) == [
        ("public", "diary", "Mood Of Day", False, None),
        ("public", "person", "history", True, "ARRAY['calm'::mood]"),
        ("public", "person", "mood", False, "'calm'::mood"),
    ]
    statements = swap.statements()
    assert statements[0] == """CREATE TYPE "public"."mood__pgmig_new" AS ENUM ('calm', 'happy', 'sad')"""
    assert (
        """ALTER TABLE "public"."person" ALTER COLUMN "history" TYPE "public"."mood__pgmig_new"[] """
        """USING "history"::text[]::"public"."mood__pgmig_new"[]"""
    ) in statements
    assert (
        """ALTER TABLE "public"."diary" ALTER COLUMN "Mood Of Day" TYPE "public"."mood__pgmig_new" """
        'USING "Mood Of Day"::text::"public"."mood__pgmig_new"'
    ) in statements
    drop_type = index_of(statements, 'DROP TYPE "public"."mood"')
    assert index_of(statements, '"mood" DROP DEFAULT') < index_of(statements, '"mood" TYPE') < drop_type
    assert index_of(statements, '"history" DROP DEFAULT') < index_of(statements, '"history" TYPE') < drop_type
    assert not any('"Mood Of Day" DROP DEFAULT' in s for s in statements)
    assert drop_type < index_of(statements, 'RENAME TO "mood"') < index_of(statements, '"mood" SET DEFAULT')
    assert index_of(statements, 'RENAME TO "mood"') < index_of(statements, '"history" SET DEFAULT')

    assert diff(database_url, models_a).is_empty
    assert full_snapshot(database_url) == snap_a  # label order and defaults included
    assert enum_labels(database_url) == {"mood": ["calm", "happy", "sad"]}
    assert fetch(database_url, MOOD_ROWS) == rows
    # The restored defaults work.
    run_sql(database_url, "INSERT INTO person (id) VALUES (4)")
    assert fetch(database_url, "SELECT mood::text AS mood, history::text AS history FROM person WHERE id = 4") == [
        {"mood": "calm", "history": "{calm}"}
    ]
    assert full_snapshot(database_url) == expected_snapshot_fresh(other_url, models_a)


def test_down_plan_of_an_add_labels_revision_swaps_the_models_columns(database_url: str) -> None:
    """`down` is planned from the models (old) to the database (new): the models know the columns."""
    from pgmig.plan.engine import diff_both_ways, model_context

    from .helpers import _with_conn, handlers

    models_a = mood_models(["calm", "happy"])
    models_b = mood_models(["calm", "happy", "sad"])
    migrate(database_url, models_a)
    run_sql(database_url, "INSERT INTO person (id) VALUES (1)")
    snap_a = full_snapshot(database_url)

    async def plans(conn: Any) -> Any:
        return await diff_both_ways(conn, model_context(models_b.sorted_tables, [models_b]), handlers())

    import asyncio

    up, down = asyncio.run(_with_conn(database_url, plans))
    assert [op.name for op in up.operations] == ["add_type_values"]
    (swap,) = down.operations
    assert swap.name == "swap_type_values"
    assert sorted(c[:4] for c in swap.columns) == [
        ("public", "diary", "Mood Of Day", False),
        ("public", "person", "history", True),
        ("public", "person", "mood", False),
    ]
    assert swap.removed_values == ("sad",)

    from pgmig.plan.engine import apply_plan

    async def run(plan: Any) -> None:
        await asyncio.wait_for(_with_conn(database_url, lambda conn: apply_plan(conn, plan)), 60)

    asyncio.run(run(up))
    assert enum_labels(database_url) == {"mood": ["calm", "happy", "sad"]}
    asyncio.run(run(down))
    assert full_snapshot(database_url) == snap_a
    assert diff(database_url, models_a).is_empty


def test_removing_a_label_rows_still_hold_fails_and_changes_nothing(database_url: str) -> None:
    before = mood_models(["calm", "happy", "sad"])
    after = mood_models(["calm", "happy"])
    migrate(database_url, before)
    run_sql(
        database_url,
        "INSERT INTO person (id) VALUES (1)",
        "INSERT INTO person (id, mood, history) VALUES (2, 'happy', '{happy,sad}')",
        """INSERT INTO diary (id, "Mood Of Day") VALUES (1, 'sad')""",
    )
    rows = fetch(database_url, MOOD_ROWS)
    snap = full_snapshot(database_url)

    with pytest.raises(DatabaseError, match=r"invalid input value for enum .*: \"sad\""):
        migrate(database_url, after)
    assert full_snapshot(database_url) == snap
    assert enum_labels(database_url) == {"mood": ["calm", "happy", "sad"]}
    assert fetch(database_url, MOOD_ROWS) == rows
    assert not fetch(database_url, "SELECT 1 FROM pg_type WHERE typname LIKE '%pgmig_new%'")


def test_swap_operation_sql_and_arguments() -> None:
    op = SwapTypeValues(
        type_name='Mo"od',
        values=["a", "it's"],
        columns=[["app", "t", "c", True, '\'{a}\'::"Mo""od"[]'], ["app", "u", "d"]],
        schema="app",
    )
    assert op.statements() == [
        """CREATE TYPE "app"."Mo""od__pgmig_new" AS ENUM ('a', 'it''s')""",
        """ALTER TABLE "app"."t" ALTER COLUMN "c" DROP DEFAULT""",
        """ALTER TABLE "app"."t" ALTER COLUMN "c" TYPE "app"."Mo""od__pgmig_new"[] """
        """USING "c"::text[]::"app"."Mo""od__pgmig_new"[]""",
        """ALTER TABLE "app"."u" ALTER COLUMN "d" TYPE "app"."Mo""od__pgmig_new" """
        'USING "d"::text::"app"."Mo""od__pgmig_new"',
        'DROP TYPE "app"."Mo""od"',
        'ALTER TYPE "app"."Mo""od__pgmig_new" RENAME TO "Mo""od"',
        """ALTER TABLE "app"."t" ALTER COLUMN "c" SET DEFAULT '{a}'::"Mo""od"[]""",
    ]
    assert op.hazards() == ("rewrites_table",)
    # Printable for a revision file, hashable however it was spelled.
    assert op.arguments() == {
        "type_name": 'Mo"od',
        "values": ["a", "it's"],
        "columns": [
            EnumColumn("t", "c", schema="app", array=True, default='\'{a}\'::"Mo""od"[]'),
            EnumColumn("u", "d", schema="app"),
        ],
        "schema": "app",
    }
    assert hash(op) == hash(SwapTypeValues(**op.arguments()))
    # The positional lists earlier pgmig wrote read as the same step.
    legacy = [["app", "t", "c", True, '\'{a}\'::"Mo""od"[]'], ["app", "u", "d", False, None]]
    assert SwapTypeValues(**{**op.arguments(), "columns": legacy}) == op
    assert SwapTypeValues(type_name="m", values=["a"], removed_values=["b"]).hazards() == ("deletes_data",)
    with pytest.raises(TypeError):
        SwapTypeValues(type_name="m", values=["a"], columns=[["public", "t"]])
    with pytest.raises(TypeError):
        SwapTypeValues(type_name="m", values=["a"], removed_values="b")


# -- SQLModel ----------------------------------------------------------------------


def sqlmodel_metadata(mood_enum: type) -> sa.MetaData:
    """A SQLModel model on its own registry, so tests never share SQLModel.metadata."""

    class Base(SQLModel, registry=registry()):
        pass

    class Person(Base, table=True):
        id: Optional[int] = Field(default=None, primary_key=True)
        mood: mood_enum  # type: ignore[valid-type]
        second_mood: Optional[mood_enum] = None  # type: ignore[valid-type]

    return Base.metadata


def test_sqlmodel_enum_field(database_url: str, other_url: str) -> None:
    class Mood(str, enum.Enum):
        happy = "HAPPY"
        sad = "SAD"

    # The same enum one release later (a class named Mood again, so the type stays "mood").
    mood_later = enum.Enum("Mood", [("calm", "CALM"), ("happy", "HAPPY"), ("sad", "SAD"), ("angry", "ANGRY")], type=str)

    before = sqlmodel_metadata(Mood)
    assert before is not SQLModel.metadata
    plan = migrate(database_url, before)
    # SQLModel names the type after the lowercased class and stores member names.
    assert enum_labels(database_url) == {"mood": ["happy", "sad"]}
    assert index_of(sql_of(plan), 'CREATE TYPE "public"."mood"') < index_of(sql_of(plan), '"mood" public.mood NOT NULL')
    assert diff(database_url, before).is_empty
    run_sql(database_url, "INSERT INTO person (id, mood) VALUES (1, 'sad')")

    later = sqlmodel_metadata(mood_later)
    migrate(database_url, later)
    assert enum_labels(database_url) == {"mood": ["calm", "happy", "sad", "angry"]}
    assert fetch(database_url, "SELECT id, mood::text AS mood FROM person") == [{"id": 1, "mood": "sad"}]
    assert diff(database_url, later).is_empty
    assert full_snapshot(database_url) == expected_snapshot(other_url, later)


def test_sqlmodel_create_all_diffs_empty(database_url: str) -> None:
    class Mood(str, enum.Enum):
        happy = "HAPPY"
        sad = "SAD"

    metadata = sqlmodel_metadata(Mood)
    create_all(database_url, metadata)
    assert diff(database_url, metadata).is_empty
