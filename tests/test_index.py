"""Indexes against a real server: every form SQLAlchemy can declare, round trips, and what is not an index."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List, Optional

import pytest
import sqlalchemy as sa
from sqlalchemy import func, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from pgmig.ops.actor import DatabaseActions
from pgmig.ops.index import AddIndex, DropIndex
from pgmig.schema.handlers.index import IndexHandler
from pgmig.schema.protocol import DatabaseContext
from tests.helpers import create_all, diff, fetch, migrate, run_sql, snapshot


class _OwnRegistry(SQLModel, registry=registry()):
    """Keeps this module's model out of SQLModel.metadata, which other tests may read."""


class IndexedHero(_OwnRegistry, table=True):
    __tablename__ = "pgmig_test_indexed_hero"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    secret_name: str = Field(index=True, unique=True)
    age: Optional[int] = None


INDEXES_QUERY = """
SELECT i.indexname, i.tablename, i.indexdef
FROM pg_catalog.pg_indexes i
WHERE i.schemaname = $1
ORDER BY i.indexname
"""


def index_snapshot(url: str, schema: str = "public") -> Dict[str, Any]:
    """Columns and tables (tests.helpers.snapshot) plus every index's full definition."""
    return {**snapshot(url, schema), "indexes": fetch(url, INDEXES_QUERY, schema)}


def built_from_scratch(server: Any, metadata: sa.MetaData) -> Dict[str, Any]:
    url = server.create_database()
    try:
        create_all(url, metadata)
        return index_snapshot(url)
    finally:
        server.drop_database(url)


def sql_of(plan: Any) -> List[str]:
    return plan.statements()


def index_changes(plan: Any) -> List[Any]:
    return [c for c in plan.changes if c.kind == "index"]


# -- models ------------------------------------------------------------------------


def every_form() -> sa.MetaData:
    metadata = sa.MetaData()
    users = sa.Table(
        "users",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("Nick Name", sa.Text),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("score", sa.Numeric(10, 2)),
        sa.Column("tags", sa.ARRAY(sa.Text)),
        sa.Column("doc", postgresql.JSONB),
        sa.Column("span", postgresql.INT4RANGE),
        sa.Column("country", sa.String(2), index=True),
        sa.Index("ix_users_text_expr", text('lower("Nick Name")')),
    )
    sa.Index("ix_users_plain", users.c.created_at)
    sa.Index("ix_users_unique_email", users.c.email, unique=True)
    sa.Index("ix_users_multi", users.c.country, users.c["Nick Name"], users.c.id)
    sa.Index("ix_users_lower_email", func.lower(users.c.email), unique=True, postgresql_where=~users.c.archived)
    sa.Index("ix_users_partial", users.c.score, postgresql_where=users.c.score > 0)
    sa.Index("ix_users_partial_text", users.c.id, postgresql_where=text("email LIKE '%@example.com'"))
    sa.Index("ix_users_gin", users.c.tags, postgresql_using="gin")
    sa.Index("ix_users_gin_ops", users.c.doc, postgresql_using="gin", postgresql_ops={"doc": "jsonb_path_ops"})
    sa.Index("ix_users_gist", users.c.span, postgresql_using="gist")
    sa.Index("ix_users_hash", users.c.email, postgresql_using="hash")
    sa.Index("ix_users_desc", sa.desc(users.c.created_at), users.c.score.asc().nullsfirst())
    sa.Index("ix_users_nullslast", users.c.score.desc().nullslast())
    sa.Index("ix_users_include", users.c.email, postgresql_include=["id", "Nick Name"])
    sa.Index("ix_users_nnd", users.c.country, unique=True, postgresql_nulls_not_distinct=True)
    sa.Index("ix_users_with", users.c.id, postgresql_with={"fillfactor": 70})
    sa.Index("ix_users_coalesce", func.coalesce(users.c.score, 0), users.c.email.desc())
    sa.Index("ix_users_text_pattern", users.c.email, postgresql_ops={"email": "text_pattern_ops"})
    sa.Table(
        "with_unique",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(20)),
        sa.Column("kind", sa.String(20)),
        sa.UniqueConstraint("code", "kind", name="uq_with_unique_code_kind"),
    )
    IndexedHero.__table__.to_metadata(metadata)
    return metadata


def articles(index: Optional[Callable[[sa.Table], None]] = None, *, extra_column: bool = False) -> sa.MetaData:
    metadata = sa.MetaData()
    columns = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("published", sa.Boolean, nullable=False, server_default=sa.true()),
    ]
    if extra_column:
        columns.append(sa.Column("lang", sa.String(5)))
    table = sa.Table("article", metadata, *columns)
    if index is not None:
        index(table)
    return metadata


def seed_articles(url: str) -> None:
    run_sql(
        url,
        "INSERT INTO article (title, slug) VALUES ('One', 'one'), ('Two', 'two'), ('Three', 'three')",
    )


def article_rows(url: str) -> List[Dict[str, Any]]:
    return fetch(url, "SELECT id, title, slug FROM article ORDER BY id")


# -- round trips -----------------------------------------------------------------------


def round_trip(server: Any, url: str, models_a: sa.MetaData, models_b: sa.MetaData) -> Any:
    """A from scratch with rows, migrate to B, back to A; returns the A -> B plan."""
    migrate(url, models_a)
    assert diff(url, models_a).is_empty
    seed_articles(url)
    rows = article_rows(url)

    plan = migrate(url, models_b)
    assert not plan.is_empty
    assert diff(url, models_b).is_empty
    assert index_snapshot(url) == built_from_scratch(server, models_b)
    assert article_rows(url) == rows

    back = migrate(url, models_a)
    assert not back.is_empty
    assert diff(url, models_a).is_empty
    assert index_snapshot(url) == built_from_scratch(server, models_a)
    assert article_rows(url) == rows
    return plan


def test_create_all_of_every_form_diffs_empty(database_url: str) -> None:
    metadata = every_form()
    create_all(database_url, metadata)
    plan = diff(database_url, metadata)
    assert plan.is_empty, [c.to_json() for c in plan.changes]


def test_every_form_from_scratch_matches_create_all(pgmig_server: Any, database_url: str) -> None:
    metadata = every_form()
    plan = migrate(database_url, metadata)
    # Indexes on tables the same plan creates block nobody.
    assert all(not c.hazards for c in index_changes(plan))
    assert diff(database_url, metadata).is_empty
    assert index_snapshot(database_url) == built_from_scratch(pgmig_server, metadata)


def test_plain_indexes_read_as_the_compiler_writes_them() -> None:
    """The shortcut for btree indexes over columns and expressions gives exactly what parsing
    CREATE INDEX gives, and leaves every other form (operator classes, another method, INCLUDE,
    NULLS, WITH) to the compiler."""
    from pgmig.schema.handlers.index import _model_columns, compiled_definition, plain_definition

    dialect = postgresql.dialect(paramstyle="named")
    ddl = dialect.ddl_compiler(dialect, None)
    metadata = every_form()
    quoted = sa.Table("Quoted", metadata, sa.Column("Id", sa.Integer), sa.Column("select", sa.Text))
    sa.Index("ix_quoted", quoted.c.Id, quoted.c["select"], postgresql_where=quoted.c["select"].like("a%"))
    sa.Index("ix_quoted_in", quoted.c.Id, postgresql_where=quoted.c.Id.in_([1, 2]))
    flagged = sa.Table("flagged", metadata, sa.Column("id", sa.Integer), sa.Column("On", sa.Boolean))
    sa.Index("ix_flagged_on", flagged.c.id, postgresql_where=flagged.c.On)
    sa.Index("ix_flagged_not_on", flagged.c.id, postgresql_where=~flagged.c.On)
    shortcut = set()
    for table in metadata.tables.values():
        for index in table.indexes:
            plain = plain_definition(index, ddl)
            if plain is not None:
                shortcut.add(index.name)
                fields, columns = plain
                assert fields == compiled_definition(index, ddl), index.name
                assert columns == _model_columns(index), index.name
    assert shortcut == {
        "ix_users_plain",
        "ix_users_unique_email",
        "ix_users_multi",
        "ix_users_partial",
        "ix_users_partial_text",
        "ix_users_country",
        "ix_quoted",
        "ix_quoted_in",
        "ix_flagged_on",
        "ix_flagged_not_on",
        "ix_pgmig_test_indexed_hero_name",
        "ix_pgmig_test_indexed_hero_secret_name",
        # Expressions: compiled key by key, as visit_create_index writes them.
        "ix_users_lower_email",
        "ix_users_coalesce",
        "ix_users_nullslast",
        "ix_users_text_expr",
        "ix_users_desc",
    }


def test_orm_annotated_index_expressions_read_as_the_compiler_writes_them() -> None:
    """Keys and predicates written with mapped attributes carry ORM annotations, which the
    compiler strips (by copying the predicate) before writing CREATE INDEX: the shortcut reads
    them as it does, and finds the same columns."""
    from pgmig.schema.handlers.index import _model_columns, compiled_definition, plain_definition

    class Hero:
        pass

    mapper = registry()
    table = sa.Table(
        "orm_hero",
        mapper.metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("age", sa.Integer),
        sa.Column("Status", postgresql.ENUM("on", "off", name="orm_status")),
    )
    mapper.map_imperatively(Hero, table)
    hero: Any = Hero
    sa.Index("ix_orm_hero_adult", hero.name, postgresql_where=(hero.age > 5) & (hero.Status != "off"))
    sa.Index("ix_orm_hero_lower", func.lower(hero.name), hero.age.desc(), postgresql_where=hero.age.is_not(None))
    sa.Index("ix_orm_hero_flag", table.c.age, postgresql_where=~(hero.Status == "on"))
    dialect = postgresql.dialect(paramstyle="named")
    ddl = dialect.ddl_compiler(dialect, None)
    assert len(table.indexes) == 3
    for index in table.indexes:
        plain = plain_definition(index, ddl)
        assert plain is not None, index.name
        assert plain == (compiled_definition(index, ddl), _model_columns(index)), index.name
        assert plain[0]["where"] is not None


def test_index_names_read_as_the_compiler_writes_them() -> None:
    """Plain names are taken as they are; what a convention makes or truncates, and a name too
    long for Postgres, go through the compiler as create_all's do."""
    from sqlalchemy.sql.elements import quoted_name

    from pgmig.errors import ModelsError
    from pgmig.plan.engine import model_context
    from pgmig.schema.handlers.index import unquote_ident

    dialect = postgresql.dialect(paramstyle="named")
    ddl = dialect.ddl_compiler(dialect, None)
    metadata = sa.MetaData(naming_convention={"ix": "ix_%(table_name)s_%(column_0_N_name)s"})
    table = sa.Table("Named", metadata, sa.Column("Id", sa.Integer), sa.Column("x" * 60, sa.Text))
    sa.Index("Plain Name", table.c.Id)
    sa.Index(None, table.c.Id, table.c["x" * 60])  # the convention's name, truncated
    sa.Index("ix_" + "y" * 60, table.c.Id)  # 63 characters: still taken
    sa.Index(quoted_name("Forced", True), table.c.Id)  # quote=True: the name as it is
    sa.Index(quoted_name("Bare", False), table.c.Id)  # quote=False: printed as is (the compiler's way)
    built = {ix.name for ix in IndexHandler().from_models(model_context([table], [metadata]))}
    assert built == {unquote_ident(ddl._prepared_index_name(ix, include_schema=False)) for ix in table.indexes}
    assert {"Plain Name", "ix_" + "y" * 60, "Forced", "Bare"} <= built and len(built) == 5
    sa.Index("ix_" + "z" * 61, table.c.Id)  # 64 characters: refused, as create_all refuses it
    with pytest.raises(ModelsError, match="ix_z+ on table Named: its name is 64 characters"):
        list(IndexHandler().from_models(model_context([table], [metadata])))


def test_sqlmodel_index_true_columns(database_url: str) -> None:
    metadata = sa.MetaData()
    IndexedHero.__table__.to_metadata(metadata)
    migrate(database_url, metadata)
    names = {row["indexname"] for row in fetch(database_url, INDEXES_QUERY, "public")}
    assert {"ix_pgmig_test_indexed_hero_name", "ix_pgmig_test_indexed_hero_secret_name"} <= names
    unique = fetch(
        database_url,
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_pgmig_test_indexed_hero_secret_name'",
    )
    assert unique[0]["indexdef"].startswith("CREATE UNIQUE INDEX")
    assert diff(database_url, metadata).is_empty


def test_add_index_to_table_with_rows(pgmig_server: Any, database_url: str) -> None:
    plan = round_trip(
        pgmig_server,
        database_url,
        articles(),
        articles(lambda t: sa.Index("ix_article_lower_title", func.lower(t.c.title), postgresql_where=t.c.published)),
    )
    (change,) = index_changes(plan)
    assert change.action == "create"
    assert set(change.hazards) == {"index_build", "blocks_writes"}
    (statement,) = sql_of(plan)
    assert statement == (
        'CREATE INDEX "ix_article_lower_title" ON "public"."article" USING "btree" '
        "(lower((title)::text)) WHERE published"
    )


@pytest.mark.parametrize(
    "before, after",
    [
        pytest.param(
            lambda t: sa.Index("ix_article_x", t.c.title),
            lambda t: sa.Index("ix_article_x", t.c.title, t.c.slug),
            id="columns",
        ),
        pytest.param(
            lambda t: sa.Index("ix_article_x", t.c.slug),
            lambda t: sa.Index("ix_article_x", t.c.slug, unique=True),
            id="uniqueness",
        ),
        pytest.param(
            lambda t: sa.Index("ix_article_x", t.c.slug, postgresql_where=t.c.published),
            lambda t: sa.Index("ix_article_x", t.c.slug, postgresql_where=~t.c.published),
            id="where",
        ),
        pytest.param(
            lambda t: sa.Index("ix_article_x", t.c.slug),
            lambda t: sa.Index("ix_article_x", t.c.slug.desc(), postgresql_include=["title"]),
            id="order-and-include",
        ),
        pytest.param(
            lambda t: sa.Index("ix_article_x", t.c.slug),
            lambda t: sa.Index("ix_article_x", t.c.slug, postgresql_using="hash"),
            id="method",
        ),
    ],
)
def test_change_index(pgmig_server: Any, database_url: str, before: Any, after: Any) -> None:
    plan = round_trip(pgmig_server, database_url, articles(before), articles(after))
    (change,) = index_changes(plan)
    assert change.action == "migrate"
    statements = sql_of(plan)
    assert statements[0] == 'DROP INDEX "public"."ix_article_x"'
    assert statements[1].startswith("CREATE ") and '"ix_article_x"' in statements[1]


def test_drop_index(pgmig_server: Any, database_url: str) -> None:
    plan = round_trip(
        pgmig_server,
        database_url,
        articles(lambda t: sa.Index("ix_article_slug", t.c.slug, unique=True)),
        articles(),
    )
    (change,) = index_changes(plan)
    assert change.action == "destroy" and change.hazards == ()
    assert sql_of(plan) == ['DROP INDEX "public"."ix_article_slug"']


def test_index_on_a_column_added_in_the_same_plan(pgmig_server: Any, database_url: str) -> None:
    plan = round_trip(
        pgmig_server,
        database_url,
        articles(),
        articles(lambda t: sa.Index("ix_article_lang", func.lower(t.c.lang)), extra_column=True),
    )
    statements = sql_of(plan)
    assert statements[0].startswith('ALTER TABLE "public"."article" ADD COLUMN "lang"')
    assert statements[1].startswith('CREATE INDEX "ix_article_lang"')


def test_unique_constraint_and_primary_key_are_not_indexes(database_url: str) -> None:
    metadata = every_form()
    create_all(database_url, metadata)
    found = asyncio.run(_indexes_in_database(database_url))
    assert "uq_with_unique_code_kind" not in found
    assert not any(name.endswith("_pkey") for name in found)
    assert "ix_users_unique_email" in found  # a unique *index* is one


def test_only_this_schemas_table_indexes(database_url: str) -> None:
    run_sql(
        database_url,
        "CREATE TABLE t (a int, b int)",
        "CREATE INDEX ix_t_a ON t (a)",
        "CREATE MATERIALIZED VIEW mv AS SELECT a FROM t",
        "CREATE INDEX ix_mv_a ON mv (a)",
        "CREATE SCHEMA other",
        "CREATE TABLE other.t (a int)",
        "CREATE INDEX ix_other_a ON other.t (a)",
        "CREATE TABLE pgmig_revisions (revision text PRIMARY KEY, n int)",
        "CREATE INDEX ix_revisions_n ON pgmig_revisions (n)",
        "ALTER TABLE t ADD CONSTRAINT t_a_b_excl EXCLUDE USING btree (a WITH =)",
        "CREATE TABLE child (id int PRIMARY KEY, t_b int UNIQUE)",
    )
    found = asyncio.run(_indexes_in_database(database_url))
    assert set(found) == {"ix_t_a"}
    index = found["ix_t_a"]
    assert index.dependencies == (("table", "public", "t"), ("column", "public", "t", "a"))


def test_table_drop_takes_its_indexes_implicitly(database_url: str) -> None:
    models = articles(lambda t: sa.Index("ix_article_title", t.c.title, postgresql_where=t.c.published))
    migrate(database_url, models)
    plan = migrate(database_url, sa.MetaData())
    (change,) = index_changes(plan)
    assert change.action == "destroy" and change.implicit
    assert not any(s.startswith("DROP INDEX") for s in sql_of(plan))
    assert sql_of(plan) == ['DROP TABLE "public"."article"']


def test_dropping_a_column_drops_its_index_first(pgmig_server: Any, database_url: str) -> None:
    plan = round_trip(
        pgmig_server,
        database_url,
        articles(lambda t: sa.Index("ix_article_lang", t.c.lang, t.c.slug), extra_column=True),
        articles(),
    )
    assert sql_of(plan) == [
        'DROP INDEX "public"."ix_article_lang"',
        'ALTER TABLE "public"."article" DROP COLUMN "lang"',
    ]


def test_invalid_index_is_rebuilt(database_url: str) -> None:
    models = articles(lambda t: sa.Index("ix_article_slug", t.c.slug))
    migrate(database_url, models)
    run_sql(
        database_url,
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_article_slug'::regclass",
    )
    (change,) = index_changes(diff(database_url, models))
    assert change.action == "migrate" and change.differences() == {"valid": (False, True)}
    migrate(database_url, models)
    assert diff(database_url, models).is_empty


# -- operations ------------------------------------------------------------------------


def test_add_index_quotes_names_and_keeps_expressions() -> None:
    op = AddIndex(
        table_name="user",
        index_name="Ix",
        columns=["Email", "lower((email)::text)", "created_at DESC NULLS LAST"],
        unique=True,
        method="gin",
        where="(NOT archived)",
        include=["id", "Nick Name"],
        schema="app",
    )
    assert op.statements() == [
        'CREATE UNIQUE INDEX "Ix" ON "app"."user" USING "gin" ("Email", lower((email)::text), '
        'created_at DESC NULLS LAST) INCLUDE ("id", "Nick Name") WHERE (NOT archived)'
    ]
    assert op.transactional
    assert op.hazards() == ("index_build", "blocks_writes", "full_scan")
    assert op.arguments()["columns"] == ["Email", "lower((email)::text)", "created_at DESC NULLS LAST"]


def test_concurrent_index_operations_are_not_transactional() -> None:
    add = AddIndex(table_name="t", index_name="ix", columns=["a"], concurrently=True)
    assert add.statements()[0].startswith("DO $pgmig$")
    assert add.statements()[1:] == ['CREATE INDEX CONCURRENTLY "ix" ON "public"."t" USING "btree" ("a")']
    assert not add.transactional and add.hazards() == ("index_build",)
    drop = DropIndex(index_name="ix", concurrently=True)
    assert drop.statements() == ['DROP INDEX CONCURRENTLY "public"."ix"']
    assert not drop.transactional and DropIndex(index_name="ix").transactional
    assert AddIndex(table_name="t", index_name="ix", columns=["a"], new_table=True).hazards() == ()


def test_revision_call_replays(database_url: str) -> None:
    """What a revision file would call runs the same statement."""
    run_sql(database_url, "CREATE TABLE t (a text, b int)")

    async def go() -> None:
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            actor = DatabaseActions(conn)
            await actor.add_index(
                table_name="t", index_name="ix_t", columns=["lower(a)", "b"], include=["a"], where="b > 0"
            )
            await actor.drop_index(index_name="ix_t")
            await actor.add_index(table_name="t", index_name="ix_t", columns=["b"], concurrently=True)
        finally:
            await conn.close()

    asyncio.run(go())
    assert fetch(database_url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_t'") == [
        {"indexdef": "CREATE INDEX ix_t ON public.t USING btree (b)"}
    ]


async def _indexes_in_database(url: str) -> Dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        found = await IndexHandler().from_database(DatabaseContext(connection=conn))
    finally:
        await conn.close()
    return {index.name: index for index in found}


# -- the catalog read: simple indexes without pg_get_indexdef --------------------------

_ZOO_TYPES = [
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric(8,2)",
    "text",
    "varchar(10)",
    "char(3)",
    '"char"',
    "name",
    "bytea",
    "bool",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "inet",
    "cidr",
    "macaddr",
    "bit(3)",
    "varbit",
    "jsonb",
    "tsvector",
    "tsquery",
    "int4range",
    "money",
    "pg_lsn",
    "oid",
    "zoo_mood",
    "int4[]",
    "text[]",
    "zoo_text",
    "point",
]


def _zoo(url: str) -> Dict[str, str]:
    """A table with a column of each type in _ZOO_TYPES and an index of every method that takes it.

    Returns the SQL of each index created (statements Postgres refuses,
    no default operator class for that type and method, are skipped).
    """
    columns = {f"c{n}": type_ for n, type_ in enumerate(_ZOO_TYPES)}
    run_sql(
        url,
        "CREATE TYPE zoo_mood AS ENUM ('sad', 'ok')",
        "CREATE DOMAIN zoo_text AS text",
        "CREATE TABLE zoo ("
        + ", ".join(f"{name} {type_}" for name, type_ in columns.items())
        + ', "Select" int, "Mixed Case" text)',
    )
    candidates = [
        f"CREATE INDEX zoo_{method}_{name} ON zoo USING {method} ({name})"
        for name in columns
        for method in ("btree", "hash", "gin", "gist", "brin", "spgist")
    ] + [
        'CREATE INDEX zoo_keyword ON zoo ("Select")',
        'CREATE INDEX zoo_mixed ON zoo ("Mixed Case")',
        "CREATE INDEX zoo_partial ON zoo (c1) WHERE c1 > 0 AND c6 <> ''",
        "CREATE UNIQUE INDEX zoo_unique ON zoo (c2)",
        "CREATE INDEX zoo_explicit_default ON zoo (c1 int4_ops)",
        "CREATE INDEX zoo_varchar_explicit ON zoo (c7 text_ops)",
        "CREATE INDEX zoo_pattern ON zoo (c6 text_pattern_ops)",
        "CREATE INDEX zoo_varchar_pattern ON zoo (c7 varchar_pattern_ops)",
        'CREATE INDEX zoo_collate ON zoo (c6 COLLATE "C")',
        "CREATE INDEX zoo_desc ON zoo (c1 DESC)",
        "CREATE INDEX zoo_nulls_first ON zoo (c1 NULLS FIRST)",
        "CREATE INDEX zoo_fillfactor ON zoo (c1) WITH (fillfactor = 70)",
        "CREATE INDEX zoo_include ON zoo (c1) INCLUDE (c6)",
        "CREATE INDEX zoo_two ON zoo (c1, c6)",
        "CREATE INDEX zoo_expression ON zoo (lower(c6))",
        "CREATE INDEX zoo_gist_inet_ops ON zoo USING gist (c20 inet_ops)",
        "CREATE INDEX zoo_tsvector_siglen ON zoo USING gist (c26 tsvector_ops (siglen = 100))",
        "CREATE UNIQUE INDEX zoo_nulls_not_distinct ON zoo (c0) NULLS NOT DISTINCT",
    ]
    created: Dict[str, str] = {}
    for statement in candidates:
        try:
            run_sql(url, statement)
        except Exception:  # no default operator class for this type and method, or an older server
            continue
        created[statement.split()[2] if statement.split()[1] == "INDEX" else statement.split()[3]] = statement
    return created


async def _both_reads(url: str) -> "tuple[Dict[str, Any], Dict[str, Any], Dict[str, bool]]":
    import asyncpg

    from pgmig.schema.handlers.index import DEPARSED_INDEXES_QUERY, index_of_row, indexes_query

    conn = await asyncpg.connect(url)
    try:
        db = DatabaseContext(connection=conn)
        fast_rows = await conn.fetch(indexes_query(db.server_version), ["public"], "pgmig_revisions")
        slow_rows = await conn.fetch(DEPARSED_INDEXES_QUERY, ["public"], "pgmig_revisions")
    finally:
        await conn.close()
    fast = {row["name"]: index_of_row(row) for row in fast_rows}
    slow = {row["name"]: index_of_row(row) for row in slow_rows}
    simple = {row["name"]: row["definition"] is None for row in fast_rows}
    return fast, slow, simple


def test_simple_indexes_read_without_deparsing_equal_the_deparsed_ones(database_url: str) -> None:
    """The catalog columns of a simple index give what parsing pg_get_indexdef gives, over every
    type and method with a default operator class, and each kind of index that is not simple."""
    created = _zoo(database_url)
    create_all(database_url, every_form())
    fast, slow, simple = asyncio.run(_both_reads(database_url))
    assert set(fast) == set(slow) and len(fast) > 60, sorted(created)
    for name in fast:
        assert fast[name].__dict__ == slow[name].__dict__, (name, created.get(name))
    # The common indexes take the fast path; what pg_get_indexdef spells out does not.
    for name in (
        "zoo_btree_c1",
        "zoo_btree_c7",
        "zoo_btree_c21",
        "zoo_hash_c6",
        "zoo_gin_c26",
        "zoo_keyword",
        "zoo_mixed",
        "zoo_partial",
        "zoo_unique",
        "zoo_explicit_default",
        "zoo_varchar_explicit",
        "ix_users_plain",
        "ix_users_partial",
    ):
        assert simple[name], name
    for name in (
        "zoo_pattern",
        "zoo_varchar_pattern",
        "zoo_collate",
        "zoo_desc",
        "zoo_nulls_first",
        "zoo_fillfactor",
        "zoo_include",
        "zoo_two",
        "zoo_expression",
        "zoo_gist_inet_ops",
        "zoo_tsvector_siglen",
        "zoo_btree_c32",
        "zoo_btree_c35",
        "ix_users_text_pattern",
    ):
        assert not simple[name], name
    assert fast["zoo_keyword"].keys == ('"Select"',) and fast["zoo_mixed"].keys == ('"Mixed Case"',)
