"""Domains (`postgresql.DOMAIN`): created as create_all creates them, before their columns, changed in
place with ALTER DOMAIN both ways, column types spelled schema-qualified whatever the search_path.

No `from __future__ import annotations` here: model tables are defined in this module.
"""

from typing import Any, Dict, Iterator, List, Optional

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from pgmig.errors import ModelsError, SchemaError
from pgmig.ops.base import Hazard
from pgmig.ops.domain import (
    AddDomain,
    AddDomainCheck,
    DropDomainCheck,
    RenameDomainConstraint,
    SetDomainDefault,
    SetDomainNotNull,
)
from pgmig.plan.diff import Plan

from .helpers import apply, both_ways, create_all, diff, fetch, migrate, run_sql, snapshot

DOMAINS_QUERY = """
SELECT n.nspname AS schema, t.typname AS name, format_type(t.typbasetype, t.typtypmod) AS base,
       t.typnotnull, pg_get_expr(t.typdefaultbin, 0) AS default_expr, co.collname,
       (SELECT array_agg(c.conname::text || ' ' || pg_get_constraintdef(c.oid) ORDER BY c.conname)
        FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c') AS checks
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_collation co ON co.oid = t.typcollation
WHERE t.typtype = 'd' AND n.nspname = ANY($1::text[])
ORDER BY 1, 2
"""

COLUMN_TYPES_QUERY = """
SELECT n.nspname AS schema, c.relname, a.attname, a.atttypid::regtype::text AS type,
       tn.nspname AS type_schema
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace tn ON tn.oid = t.typnamespace
WHERE n.nspname = ANY($1::text[]) AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY 1, 2, 3
"""


def catalog(database_url: str, schemas: List[str]) -> Dict[str, Any]:
    """Domains and the types of the columns (with the schema of each type) in `schemas`."""
    out: Dict[str, Any] = {
        "domains": fetch(database_url, DOMAINS_QUERY, schemas),
        "columns": fetch(database_url, COLUMN_TYPES_QUERY, schemas),
    }
    for schema in schemas:
        out[schema] = snapshot(database_url, schema)
    return out


@pytest.fixture
def other_url(pgmig_server: Any) -> Iterator[str]:
    url = pgmig_server.create_database()
    try:
        yield url
    finally:
        pgmig_server.drop_database(url)


def positive(**overrides: Any) -> Any:
    options: Dict[str, Any] = dict(check="VALUE > 0", not_null=True, default="1")
    options.update(overrides)
    return pg.DOMAIN("positive", sa.Integer, **options)


def models(domain: Any, schema: Optional[str] = None, array: bool = True) -> sa.MetaData:
    md = sa.MetaData()
    columns = [sa.Column("id", sa.Integer, primary_key=True), sa.Column("amount", domain)]
    if array:
        columns.append(sa.Column("amounts", pg.ARRAY(domain)))
    sa.Table("item", md, *columns, schema=schema)
    return md


def assert_like_create_all(database_url: str, other_url: str, metadata: sa.MetaData, schemas: List[str]) -> Plan:
    """pgmig from empty builds what create_all builds, and each diffs empty against the models."""
    plan = diff(database_url, metadata, schemas=schemas)
    apply(database_url, plan)
    assert diff(database_url, metadata, schemas=schemas).is_empty
    create_all(other_url, metadata)
    leftover = diff(other_url, metadata, schemas=schemas)
    assert leftover.is_empty, [c.to_json() for c in leftover.changes]
    assert catalog(database_url, schemas) == catalog(other_url, schemas)
    return plan


def test_from_empty_equals_create_all(database_url: str, other_url: str) -> None:
    md = models(positive())
    md.tables["item"].append_column(
        sa.Column(
            "code", pg.DOMAIN("code", sa.String(10), collation="C", constraint_name="code_shape", check="VALUE <> ''")
        )
    )
    plan = assert_like_create_all(database_url, other_url, md, ["public"])
    kinds = [c.kind for c in plan.changes]
    # Created before the table whose columns have the types.
    assert kinds.index("domain") < kinds.index("table")
    rows = catalog(database_url, ["public"])["domains"]
    assert [(r["name"], r["collname"], r["checks"]) for r in rows] == [
        ("code", "C", ["code_shape CHECK (((VALUE)::text <> ''::text))"]),
        ("positive", None, ["positive_check CHECK ((VALUE > 0))"]),
    ]
    # Rows obey the domain.
    run_sql(database_url, "INSERT INTO item (id, amount, amounts, code) VALUES (1, 5, '{1,2}', 'x')")
    with pytest.raises(Exception, match="positive_check"):
        run_sql(database_url, "INSERT INTO item (id, amount) VALUES (2, -1)")
    # And dropping the models drops the table first, then the domains.
    down = diff(database_url, sa.MetaData())
    assert [c.kind for c in down.changes].index("table") < [c.kind for c in down.changes].index("domain")
    apply(database_url, down)
    assert catalog(database_url, ["public"])["domains"] == []


def test_domain_only_named_by_constraint_name_with_not_null(database_url: str, other_url: str) -> None:
    """SQLAlchemy's constraint_name names the NOT NULL when there is one: the check is `<domain>_check`."""
    md = models(positive(constraint_name="pos_nn"), array=False)
    assert_like_create_all(database_url, other_url, md, ["public"])


CHANGES = [
    pytest.param(dict(default="1"), dict(default="2"), SetDomainDefault, id="default-changed"),
    pytest.param(dict(default=None), dict(default="7"), SetDomainDefault, id="default-added"),
    pytest.param(dict(not_null=False), dict(not_null=True), SetDomainNotNull, id="not-null"),
    pytest.param(dict(check=None), dict(check="VALUE > 0"), AddDomainCheck, id="check-added"),
    pytest.param(dict(check="VALUE > 0"), dict(check="VALUE < 1000000"), AddDomainCheck, id="check-changed"),
    pytest.param(
        dict(check="VALUE > 0", not_null=False),
        dict(check="VALUE > 0", not_null=False, constraint_name="positive_amount"),
        RenameDomainConstraint,
        id="check-renamed",
    ),
]


@pytest.mark.parametrize("before, after, operation", CHANGES)
def test_change_both_ways_with_rows(database_url: str, before: Any, after: Any, operation: type) -> None:
    """Each change is an ALTER DOMAIN in `up`, undone by `down`; rows stay; fresh diffs are empty.

    No ARRAY of the domain here: Postgres cannot SET NOT NULL or validate a check on a domain
    that an array column uses ("cannot alter type ... because column ... uses it").
    """
    models_a, models_b = models(positive(**before), array=False), models(positive(**after), array=False)
    migrate(database_url, models_a)
    assert diff(database_url, models_a).is_empty
    run_sql(database_url, "INSERT INTO item (id, amount) VALUES (1, 5), (2, 9)")
    before_catalog = catalog(database_url, ["public"])
    rows = fetch(database_url, "SELECT * FROM item ORDER BY id")
    up, down = both_ways(database_url, models_b)
    assert any(isinstance(op, operation) for op in up.operations), up.operations
    assert not any(type(op).__name__ in ("DropDomain", "AddDomain") for op in up.operations)
    apply(database_url, up)
    leftover = diff(database_url, models_b)
    assert leftover.is_empty, [c.to_json() for c in leftover.changes]
    assert fetch(database_url, "SELECT * FROM item ORDER BY id") == rows
    apply(database_url, down)
    assert diff(database_url, models_a).is_empty
    assert catalog(database_url, ["public"]) == before_catalog


def test_scanning_changes_are_marked(database_url: str) -> None:
    migrate(database_url, models(positive(check=None, not_null=False), array=False))
    plan = diff(database_url, models(positive(), array=False))
    hazards = {h for op in plan.operations for h in op.hazards()}
    assert Hazard.FULL_SCAN in hazards


def test_unnamed_check_matches_database_name(database_url: str) -> None:
    """A model check without a name is matched by definition, whatever the database calls it."""
    migrate(database_url, models(positive()))
    run_sql(database_url, "ALTER DOMAIN positive RENAME CONSTRAINT positive_check TO legacy_name")
    assert diff(database_url, models(positive())).is_empty
    plan = diff(database_url, models(positive(check="VALUE > 10")))
    assert [type(op) for op in plan.operations] == [DropDomainCheck, AddDomainCheck]
    assert plan.operations[0].constraint_name == "legacy_name"  # type: ignore[attr-defined]


def test_base_type_change_is_refused(database_url: str) -> None:
    migrate(database_url, models(positive()))
    with pytest.raises(SchemaError, match="domain public.positive: its base type"):
        diff(database_url, models(pg.DOMAIN("positive", sa.BigInteger, check="VALUE > 0", not_null=True, default="1")))


def test_second_managed_schema(database_url: str, other_url: str) -> None:
    run_sql(database_url, "CREATE SCHEMA audit")
    run_sql(other_url, "CREATE SCHEMA audit")
    md = models(pg.DOMAIN("positive", sa.Integer, check="VALUE > 0", schema="audit"), schema="audit")
    assert_like_create_all(database_url, other_url, md, ["public", "audit"])
    assert [(r["schema"], r["name"]) for r in catalog(database_url, ["public", "audit"])["domains"]] == [
        ("audit", "positive")
    ]


def test_unmanaged_schema_is_an_error(database_url: str) -> None:
    md = models(pg.DOMAIN("positive", sa.Integer, schema="elsewhere"))
    with pytest.raises(ModelsError, match="domain elsewhere.positive"):
        diff(database_url, md)


def test_qualified_whatever_the_search_path(database_url: str) -> None:
    """A decoy `legacy.positive` first on the search_path never takes the column of `public.positive`."""
    run_sql(
        database_url,
        "CREATE SCHEMA legacy",
        "CREATE DOMAIN legacy.positive AS text",
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = legacy, public', current_database()); END $$",
    )
    md = models(positive())
    plan = migrate(database_url, md)
    assert any(isinstance(op, AddDomain) for op in plan.operations)
    rows = fetch(database_url, COLUMN_TYPES_QUERY, ["public"])
    assert {(r["attname"], r["type_schema"]) for r in rows if r["attname"].startswith("amount")} == {
        ("amount", "public"),
        ("amounts", "public"),
    }
    assert diff(database_url, md).is_empty
    # A column the decoy holds is a change, not "no changes".
    run_sql(database_url, "ALTER TABLE item ALTER COLUMN amount TYPE legacy.positive USING amount::text")
    assert not diff(database_url, md).is_empty


# -- through the command line: generate (with its proof), up, down ----------------------------------

PRICES = """
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

positive = pg.DOMAIN("positive", sa.Integer, check="{check}", not_null=True, default="1")


class Price(SQLModel, table=True):
    id: int = Field(primary_key=True)
    amount: int = Field(sa_column=sa.Column(positive))
"""


def test_generate_up_down_through_the_cli(project: Any) -> None:
    project.models(PRICES.format(check="VALUE > 0"))
    first = project.generate("prices")
    text = first.read_text()
    assert "add_domain(" in text, text
    assert text.index("add_domain(") < text.index("create_table(")
    project.cli("up")
    assert "No changes" in project.cli("diff").stdout
    run_sql(project.url, "INSERT INTO price (id, amount) VALUES (1, 5)")
    before = catalog(project.url, ["public"])

    project.models(PRICES.format(check="VALUE < 1000"))
    second = project.generate("cap")
    assert "drop_domain_check(" in second.read_text() and "add_domain_check(" in second.read_text()
    project.cli("up")
    assert "No changes" in project.cli("diff").stdout
    with pytest.raises(Exception, match="positive_check"):
        run_sql(project.url, "INSERT INTO price (id, amount) VALUES (2, 5000)")
    project.cli("down")
    assert catalog(project.url, ["public"]) == before
    project.cli("down", "base", "--yes")
    assert catalog(project.url, ["public"])["domains"] == []


def test_column_moves_to_a_domain_and_back(database_url: str, other_url: str) -> None:
    """integer -> domain: the domain is created before the column changes type; down changes the
    column back before dropping the domain."""
    plain = sa.MetaData()
    sa.Table("item", plain, sa.Column("id", sa.Integer, primary_key=True), sa.Column("amount", sa.Integer))
    migrate(database_url, plain)
    run_sql(database_url, "INSERT INTO item VALUES (1, 5), (2, 7)")
    before = catalog(database_url, ["public"])
    typed = models(positive(), array=False)
    up, down = both_ways(database_url, typed)
    keys = [(c.action, c.key) for c in up.changes]
    assert keys.index(("create", ("domain", "public", "positive"))) < keys.index(
        ("migrate", ("column", "public", "item", "amount"))
    )
    apply(database_url, up)
    assert diff(database_url, typed).is_empty
    create_all(other_url, typed)
    assert catalog(database_url, ["public"]) == catalog(other_url, ["public"])
    assert fetch(database_url, "SELECT amount FROM item ORDER BY id") == [{"amount": 5}, {"amount": 7}]
    apply(database_url, down)
    assert diff(database_url, plain).is_empty
    assert catalog(database_url, ["public"]) == before


def test_domain_over_an_enum(database_url: str) -> None:
    """A domain over a native enum waits for the enum (and is spelled with it schema-qualified).
    create_all creates the enum only for a column of its own type (one is here), and may then
    create the domain first and fail: pgmig orders them."""
    mood = sa.Enum("sad", "ok", name="mood")
    md = models(pg.DOMAIN("cheerful", mood, check="VALUE <> 'sad'"), array=False)
    md.tables["item"].append_column(sa.Column("mood", mood))
    plan = migrate(database_url, md)
    assert diff(database_url, md).is_empty
    keys = [c.key for c in plan.changes]
    assert keys.index(("enum", "public", "mood")) < keys.index(("domain", "public", "cheerful"))
    down = diff(database_url, sa.MetaData())
    keys = [c.key for c in down.changes]
    assert keys.index(("domain", "public", "cheerful")) < keys.index(("enum", "public", "mood"))
    apply(database_url, down)


def test_under_an_array_column_a_check_stays_not_valid(database_url: str) -> None:
    """Postgres cannot validate a domain's check while an array column has the domain as its element
    type: the check is added NOT VALID (new values checked), both ways, and the diff then settles."""
    models_a, models_b = models(positive(check=None)), models(positive(check="VALUE < 1000"))
    migrate(database_url, models_a)
    run_sql(database_url, "INSERT INTO item (id, amount, amounts) VALUES (1, 5, '{3}')")
    before = catalog(database_url, ["public"])
    up, down = both_ways(database_url, models_b)
    [add] = [op for op in up.operations if isinstance(op, AddDomainCheck)]
    assert not add.validate and Hazard.FULL_SCAN not in add.hazards()
    apply(database_url, up)
    assert diff(database_url, models_b).is_empty
    with pytest.raises(Exception, match="positive_check"):
        run_sql(database_url, "INSERT INTO item (id, amounts) VALUES (2, '{5000}')")
    apply(database_url, down)
    assert catalog(database_url, ["public"]) == before
    # The way back adds the check again under the array column: NOT VALID as well.
    migrate(database_url, models_b)
    _, back = both_ways(database_url, models_b)
    assert back.is_empty


def test_under_an_array_column_not_null_is_refused(database_url: str) -> None:
    migrate(database_url, models(positive(not_null=False)))
    with pytest.raises(SchemaError, match="domain public.positive: NOT NULL cannot be added while an array column"):
        diff(database_url, models(positive()))
