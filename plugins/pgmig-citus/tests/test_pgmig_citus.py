"""pgmig-citus: declarations checked without a cluster, then round trips on a real Citus cluster.

The cluster tests need PGMIG_TEST_CITUS_URL (the coordinator, as printed by
`../shared/citus/cluster.sh start`); each test works in a schema of its own
in that database, dropped after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import sqlalchemy as sa
from pgmig_citus import DistributionHandler, distributed, reference
from pgmig_citus.handler import model_distributions
from pgmig_citus.ops import AlterDistributedTable, CreateDistributedTable, UndistributeTable

from pgmig.api import DeclarationError, Hazard
from pgmig.cli.output import change_line
from pgmig.plan.diff import Plan
from pgmig.plan.engine import apply_plan, diff_both_ways, model_context
from pgmig.testing import database_url, pgmig_server  # noqa: F401  (fixtures)
from pgmig.testing.conformance import (  # _run: a sync call on a connection with pgmig's session settings
    ConformanceSuite,
    _run,
    builtin_handlers,
    catalog,
    check_conformance,
    plan_for,
)

HANDLERS = [*builtin_handlers(), DistributionHandler]
CITUS_URL_ENV = "PGMIG_TEST_CITUS_URL"


# -- models --------------------------------------------------------------------------------


def shop(
    *,
    colocate_lines: bool = True,
    lines_shard_count: Optional[int] = None,
    note_column: bool = False,
    sku_index: bool = False,
    distribute_lines: bool = True,
    fk: bool = True,
    statuses: Tuple[str, ...] = (),
    check: bool = False,
    tag: Optional[str] = None,
    orders_shard_count: int = 4,
    tag_id: Any = sa.Integer,
    local: Tuple[str, ...] = (),
) -> sa.MetaData:
    """Orders and their lines, distributed by tenant; countries as a reference table. The tables
    named in `local` are declared nothing (plain PostgreSQL tables)."""
    md = sa.MetaData()
    country = sa.Table(
        "country", md, sa.Column("code", sa.String(2), primary_key=True), sa.Column("name", sa.Text, nullable=False)
    )
    orders = sa.Table(
        "orders",
        md,
        sa.Column("tenant_id", sa.Integer, primary_key=True),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("country", sa.String(2), sa.ForeignKey("country.code"), nullable=False),
    )
    if statuses:
        orders.append_column(sa.Column("status", sa.Enum(*statuses, name="order_status")))
    line_columns: List[Any] = [
        sa.Column("tenant_id", sa.Integer, primary_key=True),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("sku", sa.Text, nullable=False),
    ]
    if note_column:
        line_columns.append(sa.Column("note", sa.Text))
    if check:
        line_columns.append(sa.CheckConstraint("id > 0", name="order_line_id_positive"))
    if fk:
        line_columns.append(
            sa.ForeignKeyConstraint(
                ["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"], name="order_line_order_fkey"
            )
        )
    lines = sa.Table("order_line", md, *line_columns)
    if sku_index:
        sa.Index("ix_order_line_sku", lines.c.sku)
    if "country" not in local:
        reference(country)
    if "orders" not in local:
        distributed(orders, "tenant_id", shard_count=orders_shard_count)
    if tag is not None:
        tags = sa.Table("tag", md, sa.Column("id", tag_id, primary_key=True), sa.Column("label", sa.Text))
        if tag == "reference":
            reference(tags)
        else:
            distributed(tags, "id", shard_count=2)
    if distribute_lines and "order_line" not in local:
        if colocate_lines:
            distributed(lines, "tenant_id", colocate_with=orders)
        else:
            distributed(lines, "tenant_id", shard_count=lines_shard_count or 4)
    return md


# -- declarations: no cluster needed -------------------------------------------------------


def _declared(md: sa.MetaData) -> Any:
    return model_distributions(model_context(list(md.sorted_tables), [md], "public"))


def test_colocated_tables_list_each_other_and_share_the_shard_count() -> None:
    found = {d.table: d for d in _declared(shop())}
    assert found["country"].method == "reference"
    assert found["orders"].colocation == ("public.order_line",)
    assert found["order_line"].colocation == ("public.orders",)
    assert found["order_line"].shard_count == found["orders"].shard_count == 4
    assert found["order_line"].colocate_with == ("public", "orders")
    # The line's distribution waits for the orders' (it colocates with them) and for its primary key.
    assert ("distribution", "public", "orders") in found["order_line"].dependencies
    assert ("constraint", "public", "order_line", "primary_key") in found["order_line"].dependencies


def test_foreign_key_between_tables_not_colocated_is_refused_naming_both() -> None:
    with pytest.raises(DeclarationError) as caught:
        _declared(shop(colocate_lines=False))
    message = str(caught.value)
    assert "public.order_line" in message and "public.orders" in message
    assert "colocated" in message


def test_foreign_key_from_a_local_table_to_a_distributed_one_is_refused() -> None:
    with pytest.raises(DeclarationError, match="from a local table to a distributed table"):
        _declared(shop(distribute_lines=False))


def test_foreign_key_must_pair_the_distribution_columns() -> None:
    md = sa.MetaData()
    a = sa.Table("a", md, sa.Column("tenant_id", sa.Integer, primary_key=True), sa.Column("id", sa.Integer))
    b = sa.Table(
        "b",
        md,
        sa.Column("tenant_id", sa.Integer, primary_key=True),
        sa.Column("a_tenant", sa.Integer, sa.ForeignKey("a.tenant_id")),
    )
    distributed(a, "tenant_id")
    distributed(b, "tenant_id", colocate_with=a)
    with pytest.raises(DeclarationError, match=r"pair their distribution columns \(tenant_id -> tenant_id\)"):
        _declared(md)


def test_declaration_errors() -> None:
    md = sa.MetaData()
    a = sa.Table("a", md, sa.Column("id", sa.Integer, primary_key=True))
    local = sa.Table("local", md, sa.Column("id", sa.Integer, primary_key=True))
    with pytest.raises(DeclarationError, match="no column 'nope'"):
        distributed(a, "nope")
    with pytest.raises(DeclarationError, match="not both"):
        distributed(a, "id", colocate_with=local, shard_count=4)
    with pytest.raises(DeclarationError, match="not a table"):
        reference(object())
    distributed(a, "id", colocate_with=local)
    with pytest.raises(DeclarationError, match="public.local is not declared distributed"):
        _declared(md)


def test_operations_say_what_they_cost() -> None:
    alter = AlterDistributedTable(table_name="t", schema="s", colocate_with="none")
    assert Hazard.REWRITES_TABLE in alter.hazards()
    assert Hazard.REWRITES_TABLE in UndistributeTable(table_name="t").hazards()
    assert CreateDistributedTable(table_name="t", column_name="c").hazards() == ()
    assert alter.statements() == ["SELECT pg_catalog.alter_distributed_table('\"s\".\"t\"', colocate_with => 'none')"]


# -- a real cluster --------------------------------------------------------------------------


@pytest.fixture
def citus_url() -> str:
    url = os.environ.get(CITUS_URL_ENV)
    if not url:
        pytest.skip(f"{CITUS_URL_ENV} is not set: start a cluster with ../shared/citus/cluster.sh (see its README)")
    # Citus runs distributed DDL in one transaction only in sequential mode (README, "Citus").
    return url + ("&" if "?" in url else "?") + "citus.multi_shard_modify_mode=sequential"


@pytest.fixture
def citus_schema(citus_url: str) -> Iterator[str]:
    """A schema of its own on the coordinator (Citus creates it on the workers too), dropped after."""
    schema = f"citus_{uuid.uuid4().hex[:10]}"
    _run(citus_url, lambda conn: conn.execute(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        _run(citus_url, lambda conn: conn.execute(f'DROP SCHEMA "{schema}" CASCADE'))


def _plans(url: str, md: sa.MetaData, schema: str) -> Tuple[Plan, Plan]:
    tables = [t for t in md.sorted_tables if (t.schema or schema) == schema]
    models = model_context(tables, [md], schema)
    from pgmig.testing.conformance import resolve_handlers

    handlers = resolve_handlers(HANDLERS)
    return _run(url, lambda conn: diff_both_ways(conn, models, handlers, schema=schema))


def _apply(url: str, plan: Plan) -> None:
    _run(url, lambda conn: apply_plan(conn, plan))


GROUPS_QUERY = """
SELECT c.relname AS name, p.partmethod::text AS method, g.shardcount AS shards,
       pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) AS column,
       ARRAY(SELECT o.relname::text FROM pg_catalog.pg_dist_partition q
             JOIN pg_catalog.pg_class o ON o.oid = q.logicalrelid
             WHERE q.colocationid = p.colocationid AND o.relnamespace = c.relnamespace ORDER BY 1) AS group_members
FROM pg_catalog.pg_dist_partition p
JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
LEFT JOIN pg_catalog.pg_dist_colocation g ON g.colocationid = p.colocationid
WHERE c.relnamespace = $1::regnamespace
ORDER BY 1
"""


def _cluster(url: str, schema: str) -> Dict[str, Any]:
    """What the coordinator's catalog says of the schema: every object pgmig reads, and
    pg_dist_partition's own rows (method, column, shard count, colocated tables)."""

    async def groups(conn: Any) -> List[Tuple[Any, ...]]:
        return [tuple(row) for row in await conn.fetch(GROUPS_QUERY, schema)]

    return {"objects": catalog(url, HANDLERS, schema), "partition": _run(url, groups)}


# A relation's columns (names, types, order) and how many indexes it has; `{}` is the relation.
SHAPE = (
    "SELECT (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) "
    "FROM pg_attribute WHERE attrelid = x.r AND attnum > 0 AND NOT attisdropped) || ' | ' || "
    "(SELECT count(*) FROM pg_index WHERE indrelid = x.r) FROM (SELECT {}::regclass AS r) x"
)
PLACEMENT_SHAPE = SHAPE.format("'%s'")  # run_command_on_placements puts each shard's name there
COORDINATOR_SHAPE = SHAPE.format("$1")


def _assert_workers_consistent(url: str, schema: str) -> None:
    """Every shard placement on the workers has the coordinator's columns (names, types, order) and
    as many indexes: DDL through the coordinator reached each shard."""

    async def check(conn: Any) -> None:
        tables = [
            row["name"]
            for row in await conn.fetch(
                "SELECT c.relname AS name FROM pg_catalog.pg_dist_partition p JOIN pg_catalog.pg_class c "
                "ON c.oid = p.logicalrelid WHERE c.relnamespace = $1::regnamespace",
                schema,
            )
        ]
        for table in tables:
            relation = f'"{schema}"."{table}"'
            expected = await conn.fetchval(COORDINATOR_SHAPE, relation)
            rows = await conn.fetch(
                "SELECT nodeport, success, result FROM pg_catalog.run_command_on_placements($1, $2)",
                relation,
                PLACEMENT_SHAPE,
            )
            assert rows, f"{relation} has no shard placements"
            for row in rows:
                assert row["success"], f"{relation} on port {row['nodeport']}: {row['result']}"
                assert row["result"] == expected, f"{relation} on port {row['nodeport']}: {row['result']} != {expected}"

    _run(url, check)
    _assert_types_on_workers(url, schema)


def _assert_types_on_workers(url: str, schema: str) -> None:
    """Every enum of the schema has the coordinator's labels, in order, on every worker."""

    async def check(conn: Any) -> None:
        for row in await conn.fetch(
            "SELECT t.oid::regtype::text AS name, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) AS labels "
            "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid WHERE t.typnamespace = $1::regnamespace "
            "GROUP BY t.oid",
            schema,
        ):
            query = (
                "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum "
                f"WHERE enumtypid = '{row['name']}'::regtype"
            )
            workers = await conn.fetch("SELECT nodeport, success, result FROM run_command_on_workers($1)", query)
            assert len(workers) == 2
            for worker in workers:
                assert (worker["success"], worker["result"]) == (True, row["labels"]), (row["name"], worker)

    _run(url, check)


def _step(url: str, schema: str, md: sa.MetaData) -> Plan:
    """Up to `md` and back down, then up again: the fresh diff is empty after up, the workers match
    the coordinator, and down gives back the cluster exactly as it was."""
    before = _cluster(url, schema)
    up, down = _plans(url, md, schema)
    assert not up.is_empty
    _apply(url, up)
    assert plan_for(url, md, HANDLERS, schema).is_empty
    _assert_workers_consistent(url, schema)
    _apply(url, down)
    assert _cluster(url, schema) == before
    _assert_workers_consistent(url, schema)
    _apply(url, _plans(url, md, schema)[0])
    assert plan_for(url, md, HANDLERS, schema).is_empty
    return up


def _sql(plan: Plan) -> List[str]:
    return plan.statements()


def _position(statements: List[str], fragment: str) -> int:
    found = [i for i, s in enumerate(statements) if fragment in s]
    assert found, f"no statement with {fragment!r} in {statements}"
    return found[0]


def test_round_trip_on_a_cluster(citus_url: str, citus_schema: str) -> None:
    """Create distributed and reference tables, add columns and indexes, change colocation,
    undistribute: each step's down restores the cluster exactly."""
    url, schema = citus_url, citus_schema

    created = _sql(_step(url, schema, shop()))
    # Each table is distributed after it exists, and before the foreign keys that need it.
    for table in ("country", "orders", "order_line"):
        assert _position(created, f'CREATE TABLE "{schema}"."{table}"') < _position(created, f'"{table}"\'')
    assert _position(created, "\"orders\"', 'tenant_id'") < _position(created, "order_line_order_fkey")
    assert _position(created, "\"order_line\"', 'tenant_id'") < _position(created, "order_line_order_fkey")
    assert _position(created, "create_reference_table") < _position(created, "REFERENCES")

    # Ordinary changes on distributed tables go through the coordinator to every shard.
    extras: Dict[str, Any] = dict(note_column=True, sku_index=True, check=True, statuses=("open", "paid"))
    changed = _sql(_step(url, schema, shop(**extras)))
    assert not any("distributed" in s for s in changed), changed
    extras["statuses"] = ("open", "paid", "void")
    relabelled = _sql(_step(url, schema, shop(**extras)))
    assert any("ADD VALUE" in s and "'void'" in s for s in relabelled), relabelled

    # A new colocation: the foreign key between them goes first, the table is moved (a rewrite).
    moved = _step(url, schema, shop(**extras, colocate_lines=False, fk=False))
    alters = [op for op in moved.operations if isinstance(op, AlterDistributedTable)]
    # One of the two leaves the group: the side without the group's first table by name.
    assert [(op.table_name, op.colocate_with) for op in alters] == [("orders", "none")]
    assert _position(_sql(moved), "DROP CONSTRAINT") < _position(_sql(moved), "alter_distributed_table")
    assert Hazard.REWRITES_TABLE in [h for c in moved.changes for h in c.hazards]

    # A new shard count for one table of its own.
    recounted = _step(url, schema, shop(colocate_lines=False, lines_shard_count=6, fk=False))
    assert any("shard_count => 6" in s for s in _sql(recounted))

    # Undistributed: the declaration is gone, the rows come back to the coordinator.
    undone = _step(url, schema, shop(distribute_lines=False, fk=False))
    assert any(isinstance(op, UndistributeTable) for op in undone.operations)


def test_undistributing_drops_the_foreign_keys_first(citus_url: str, citus_schema: str) -> None:
    _apply(citus_url, _plans(citus_url, shop(), citus_schema)[0])
    statements = _sql(_step(citus_url, citus_schema, shop(distribute_lines=False, fk=False)))
    assert _position(statements, "DROP CONSTRAINT") < _position(statements, "undistribute_table")


@pytest.mark.parametrize(
    "local", [("country", "orders", "order_line"), ("orders", "order_line")], ids=["all", "keeping-reference"]
)
def test_undistributing_tables_whose_foreign_keys_stay(
    citus_url: str, citus_schema: str, local: Tuple[str, ...]
) -> None:
    """Citus refuses undistribute_table while a foreign key links the table (and distributing a
    table with keys to others): the keys go before and come back after, in up and in down."""
    _apply(citus_url, _plans(citus_url, shop(), citus_schema)[0])
    up = _step(citus_url, citus_schema, shop(local=local))
    statements = _sql(up)
    undone = [s for s in statements if "undistribute_table" in s]
    assert len(undone) == len(local), statements
    for table in ("order_line", "orders"):  # each table's one foreign key
        dropped = _position(statements, f'"{table}" DROP CONSTRAINT')
        added = _position(statements, f'"{table}" ADD')
        assert dropped < _position(statements, "undistribute_table")
        assert _position(statements, undone[-1]) < added
    # And back: distributing tables that have foreign keys between them.
    down = _plans(citus_url, shop(), citus_schema)[0]
    statements = _sql(down)
    assert _position(statements, "DROP CONSTRAINT") < _position(statements, "create_distributed_table")
    _apply(citus_url, down)
    assert plan_for(citus_url, shop(), HANDLERS, citus_schema).is_empty
    _assert_workers_consistent(citus_url, citus_schema)


def _pair(first: Any, second: Any) -> sa.MetaData:
    """Table b colocated with table a, their distribution columns of the two types."""
    md = sa.MetaData()
    a = sa.Table("a", md, sa.Column("tenant_id", first, primary_key=True))
    b = sa.Table("b", md, sa.Column("tenant_id", second, primary_key=True))
    distributed(a, "tenant_id")
    distributed(b, "tenant_id", colocate_with=a)
    return md


@pytest.mark.parametrize(
    ("first", "second", "said"),
    [
        (sa.BigInteger, sa.Integer, ".b.tenant_id is integer, {schema}.a.tenant_id is bigint"),
        (sa.Text, sa.Text(collation="C"), 'is text COLLATE "C", {schema}.a.tenant_id is text COLLATE "default"'),
    ],
    ids=["type", "collation"],
)
def test_colocating_distribution_columns_of_different_types_is_refused_at_diff(
    citus_url: str, citus_schema: str, first: Any, second: Any, said: str
) -> None:
    """Citus refuses to colocate them at up ("cannot colocate tables"): the diff says so first."""
    with pytest.raises(DeclarationError, match="same type|same collation") as caught:
        _plans(citus_url, _pair(first, second), citus_schema)
    assert said.format(schema=citus_schema) in str(caught.value)
    assert f"colocate_with='{citus_schema}.a'" in str(caught.value)


def test_distribution_columns_differing_only_in_length_colocate(citus_url: str, citus_schema: str) -> None:
    """Citus compares the type, not its modifier: varchar(20) and varchar(30) colocate."""
    _step(citus_url, citus_schema, _pair(sa.String(20), sa.String(30)))


def test_reference_to_distributed_and_back(citus_url: str, citus_schema: str) -> None:
    _apply(citus_url, _plans(citus_url, shop(tag="reference"), citus_schema)[0])
    statements = _sql(_step(citus_url, citus_schema, shop(tag="hash")))
    assert _position(statements, "undistribute_table") < _position(statements, "create_distributed_table")


def test_a_table_leaves_its_group_with_a_shard_count_of_its_own(citus_url: str, citus_schema: str) -> None:
    _apply(citus_url, _plans(citus_url, shop(), citus_schema)[0])
    up = _step(citus_url, citus_schema, shop(colocate_lines=False, orders_shard_count=6, fk=False))
    # orders leaves (order_line, first by name, stays), with 6 shards; order_line keeps its 4.
    lines = {change.key[2]: change_line(change).plain for change in up.changes}
    assert lines["orders"] == (
        f"~ distribution of orders: shard_count: 4 → 6; colocation: {citus_schema}.order_line → ∅ "
        "[rewrites_table] [access_exclusive_lock]"
    ), lines
    # order_line leaves the group too, by orders' move: its change runs no statement of its own.
    assert lines["order_line"] == (
        f"~ distribution of order_line: colocation: {citus_schema}.orders → ∅ (no statement of its own)"
    )
    assert [s for s in _sql(up) if "alter_distributed_table" in s] == [
        f'SELECT pg_catalog.alter_distributed_table(\'"{citus_schema}"."orders"\', shard_count => 6, '
        "colocate_with => 'none', cascade_to_colocated => false)"
    ]


def test_a_new_type_of_the_distribution_column(citus_url: str, citus_schema: str) -> None:
    """Citus refuses to alter the distribution column: the table is undistributed around the change."""
    _apply(citus_url, _plans(citus_url, shop(tag="hash"), citus_schema)[0])
    statements = _sql(_step(citus_url, citus_schema, shop(tag="hash", tag_id=sa.BigInteger)))
    assert (
        _position(statements, "undistribute_table")
        < _position(statements, "TYPE bigint")
        < _position(statements, "create_distributed_table")
    )


def _keyed_pair(tenant_type: Any) -> sa.MetaData:
    """b colocated with a, and a foreign key from b to a, both distributed by a `tenant_type` column."""
    md = sa.MetaData()
    a = sa.Table(
        "a", md, sa.Column("tenant_id", tenant_type, primary_key=True), sa.Column("id", sa.Integer, primary_key=True)
    )
    b = sa.Table(
        "b",
        md,
        sa.Column("tenant_id", tenant_type, primary_key=True),
        sa.Column("a_id", sa.Integer),
        sa.ForeignKeyConstraint(["tenant_id", "a_id"], ["a.tenant_id", "a.id"], name="b_a_fkey"),
    )
    distributed(a, "tenant_id")
    distributed(b, "tenant_id", colocate_with=a)
    return md


def test_a_new_type_of_distribution_columns_that_a_foreign_key_joins(citus_url: str, citus_schema: str) -> None:
    """Both tables are undistributed around the type change, and the key between them, which Citus
    would not let them leave with, goes first and comes back last."""
    _apply(citus_url, _plans(citus_url, _keyed_pair(sa.Integer), citus_schema)[0])
    statements = _sql(_step(citus_url, citus_schema, _keyed_pair(sa.BigInteger)))
    assert _position(statements, "DROP CONSTRAINT") < _position(statements, "undistribute_table")
    assert _position(statements, "\"b\"', 'tenant_id', colocate_with") < _position(statements, "ADD CONSTRAINT")


def test_a_group_changes_its_shard_count_together(citus_url: str, citus_schema: str) -> None:
    md = shop()
    _apply(citus_url, _plans(citus_url, md, citus_schema)[0])
    bigger = sa.MetaData()
    for table in md.sorted_tables:
        table.to_metadata(bigger)
    reference(bigger.tables["country"])
    distributed(bigger.tables["orders"], "tenant_id", shard_count=8)
    distributed(bigger.tables["order_line"], "tenant_id", colocate_with=bigger.tables["orders"])
    up = _step(citus_url, citus_schema, bigger)
    # The group is formed again with the new count: orders first, then its line joins it; the
    # foreign key between them, which Citus drops on the way, is dropped before and added after.
    statements = _sql(up)
    assert [s for s in statements if "alter_distributed_table" in s] == [
        f'SELECT pg_catalog.alter_distributed_table(\'"{citus_schema}"."orders"\', shard_count => 8, '
        "colocate_with => 'none', cascade_to_colocated => false)",
        f'SELECT pg_catalog.alter_distributed_table(\'"{citus_schema}"."order_line"\', '
        f'colocate_with => \'"{citus_schema}"."orders"\')',
    ]
    assert _position(statements, "DROP CONSTRAINT") < _position(statements, "alter_distributed_table")
    assert _position(statements, '"order_line"\', colocate_with') < _position(statements, "ADD CONSTRAINT")


CITUS_MODELS = """
import sqlalchemy as sa
from pgmig_citus import distributed, reference

metadata = sa.MetaData()
country = sa.Table("country", metadata, sa.Column("code", sa.String(2), primary_key=True))
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True),
    sa.Column("country", sa.String(2), sa.ForeignKey("country.code")),
)
reference(country)
distributed(orders, "tenant_id")
"""


def _cli(root: Path, url: str, scratch_url: str, *args: str) -> "subprocess.CompletedProcess[str]":
    """The pgmig CLI as a user runs it, on `url`, with scratch databases on `scratch_url`'s server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env.update(PGMIG_DATABASE_URL=url, PGMIG_DEV_URL=scratch_url)
    code = "import sys; from pgmig.cli import main; sys.argv[0] = 'pgmig'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_scratch_server_without_citus_is_named_with_what_to_do(
    tmp_path: Path, citus_url: str, citus_schema: str, database_url: str
) -> None:
    """generate's proof and check run the revision on a scratch database: on a server without Citus
    the error says so and names --no-verify and dev_url, not only `function ... does not exist`."""
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "shop"\n\n[tool.pgmig]\nmodels = ["models.py"]\nschema = "{citus_schema}"\n'
    )
    (tmp_path / "models.py").write_text(CITUS_MODELS)
    proved = _cli(tmp_path, citus_url, database_url, "generate", "-m", "shop")
    assert proved.returncode == 3, proved.stdout + proved.stderr
    said = " ".join(proved.stderr.split())
    for words in ("has no citus extension", "--no-verify", "dev_url", "create_reference_table("):
        assert words in said, said
    assert not list((tmp_path / "migrations").glob("*.py"))

    written = _cli(tmp_path, citus_url, database_url, "generate", "-m", "shop", "--no-verify")
    assert written.returncode == 0, written.stdout + written.stderr
    checked = _cli(tmp_path, citus_url, database_url, "check")
    assert checked.returncode != 0
    said = " ".join((checked.stdout + checked.stderr).split())
    assert "has no citus extension" in said and "--no-verify" in said, said
    # On the coordinator itself the revision runs.
    up = _cli(tmp_path, citus_url, database_url, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert plan_for(citus_url, _models_of(tmp_path), HANDLERS, citus_schema).is_empty


def _models_of(root: Path) -> sa.MetaData:
    """The metadata of the project's models file."""
    namespace: Dict[str, Any] = {}
    exec(compile((root / "models.py").read_text(), "models.py", "exec"), namespace)
    metadata: sa.MetaData = namespace["metadata"]
    return metadata


CITUS_VIEWS = """
SELECT c.relname::text AS name FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class c ON c.oid = d.objid AND d.classid = 'pg_catalog.pg_class'::regclass
JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'citus'
WHERE d.deptype = 'e' AND c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace
"""


def test_citus_own_views_are_left_alone(citus_url: str) -> None:
    """Citus puts views of its own in public (citus_tables, citus_schemas): they are the extension's,
    so a diff of public never drops them, whatever else public holds."""
    from pgmig_views import ViewHandler

    views = _run(citus_url, lambda conn: conn.fetch(CITUS_VIEWS))
    names = {row["name"] for row in views}
    assert "citus_tables" in names
    # Something else in public, as other tests and users leave there: the diff drops it, not Citus's views.
    other = f"other_{uuid.uuid4().hex[:10]}"
    _run(citus_url, lambda conn: conn.execute(f'CREATE VIEW public."{other}" AS SELECT 1 AS one'))
    try:
        seen = catalog(citus_url, [*HANDLERS, ViewHandler], "public")
        assert ("view", "public", other) in seen
        assert not [key for key in seen if key[0] == "view" and key[-1] in names]
        plan = plan_for(citus_url, sa.MetaData(), [*HANDLERS, ViewHandler], "public")
        assert ("view", "public", other) in [change.key for change in plan.changes]
        assert not [change.key for change in plan.changes if change.key[-1] in names]
    finally:
        _run(citus_url, lambda conn: conn.execute(f'DROP VIEW public."{other}"'))


class TestDistributionConformance(ConformanceSuite):
    """pgmig's conformance suite for a plugin kind, on the cluster, in a schema of its own."""

    kinds = ("distribution",)
    handlers = HANDLERS

    def test_conformance(self, citus_url: str, citus_schema: str) -> None:  # type: ignore[override]
        check_conformance(citus_url, self.states(), kinds=self.kinds, handlers=self.handlers, schema=citus_schema)

    def initial(self) -> sa.MetaData:
        return shop(fk=False, colocate_lines=False)

    def changed(self) -> sa.MetaData:
        return shop()

    def removed(self) -> sa.MetaData:
        return shop(distribute_lines=False, fk=False)


def trio(first_count: int, third_joins: bool) -> sa.MetaData:
    """Three tables colocated with the first, or the third in a group of its own of 4 shards."""
    md = sa.MetaData()
    first, second, third = (
        sa.Table(name, md, sa.Column("tenant_id", sa.Integer, primary_key=True), sa.Column("v", sa.Text))
        for name in ("a_first", "b_second", "c_third")
    )
    distributed(first, "tenant_id", shard_count=first_count)
    distributed(second, "tenant_id", colocate_with=first)
    if third_joins:
        distributed(third, "tenant_id", colocate_with=first)
    else:
        distributed(third, "tenant_id", shard_count=4)
    return md


def test_a_group_recounts_while_one_table_leaves_it(citus_url: str, citus_schema: str) -> None:
    """The group is formed again with its new count and the leaving table gets a fresh group of its
    own: never Citus's "default" group of a count, which the other group may be by then."""
    _apply(citus_url, _plans(citus_url, trio(4, third_joins=True), citus_schema)[0])
    up = _step(citus_url, citus_schema, trio(8, third_joins=False))
    alters = {op.table_name: op for op in up.operations if isinstance(op, AlterDistributedTable)}
    assert set(alters) == {"a_first", "b_second", "c_third"}
    assert (alters["a_first"].colocate_with, alters["a_first"].shard_count) == ("none", 8)
    assert (alters["c_third"].colocate_with, alters["c_third"].shard_count) == ("none", 4)
    groups = {row[0]: (row[2], tuple(row[4])) for row in _cluster(citus_url, citus_schema)["partition"]}
    assert groups == {
        "a_first": (8, ("a_first", "b_second")),
        "b_second": (8, ("a_first", "b_second")),
        "c_third": (4, ("c_third",)),
    }


def test_a_group_named_by_schema_moves_with_a_schema_target() -> None:
    """A fleet's schema target (`URL#tenant`) joins the tenant's own group, not `public`'s."""
    from pgmig.ops.base import translate_schemas

    join = CreateDistributedTable(table_name="orderline", column_name="tenant_id", colocate_with='"public"."order"')
    moved = translate_schemas(join, {"public": "t1"})
    assert (moved.schema, moved.colocate_with) == ("t1", 't1."order"')
    alone = CreateDistributedTable(table_name="orderline", column_name="tenant_id", colocate_with="none")
    assert translate_schemas(alone, {"public": "t1"}).colocate_with == "none"
    regroup = AlterDistributedTable(table_name="orderline", colocate_with="public.order")
    assert translate_schemas(regroup, {"public": "t1"}).colocate_with == "t1.order"
