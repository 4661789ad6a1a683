"""Real models that came out wrong (issue 17): each is built by pgmig as create_all builds it.

ddl_if on indexes and tables, native enums behind a TypeDecorator, a primary key
also declared unique, an index without columns.
"""

import enum
from typing import Any, Optional

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from pgmig.errors import ModelsError
from pgmig.plan.engine import desired_objects, model_context
from tests.helpers import create_all, diff, fetch, handlers, migrate, pgmig_cli, run_sql
from tests.test_constraint import catalog


def _same_as_create_all(server: Any, url: str, metadata: sa.MetaData) -> None:
    """pgmig from empty builds create_all's catalog, and a diff against create_all's database is empty."""
    plan = migrate(url, metadata)
    assert not plan.is_empty
    assert diff(url, metadata).is_empty
    scratch = server.create_database()
    try:
        create_all(scratch, metadata)
        assert catalog(url) == catalog(scratch)
        left = diff(scratch, metadata)
        assert left.is_empty, [c.to_json() for c in left.changes]
    finally:
        server.drop_database(scratch)


def _round_trip_from_empty(server: Any, url: str, metadata: sa.MetaData) -> None:
    """Empty -> the models -> empty again: `down` drops everything `up` made."""
    _same_as_create_all(server, url, metadata)
    migrate(url, sa.MetaData())
    assert catalog(url) == catalog(server.create_database())


# -- ddl_if -----------------------------------------------------------------------------


def _only_on(kind: str) -> sa.MetaData:
    metadata = sa.MetaData()
    table = sa.Table("doc", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("title", sa.Text))
    sa.Index("ix_doc_title_sqlite", table.c.title).ddl_if(dialect="sqlite")
    sa.Index("ix_doc_title_pg", table.c.title, unique=True).ddl_if(dialect="postgresql")
    sa.Index("ix_doc_title_callable", sa.func.lower(table.c.title)).ddl_if(
        callable_=lambda ddl, target, bind, **kw: kw["dialect"].name == kind
    )
    sa.Index("ix_doc_title_list", table.c.id, table.c.title).ddl_if(dialect=("mysql", "sqlite"))
    sa.CheckConstraint("id > 0", name="doc_id_positive").ddl_if(dialect="sqlite")
    table.append_constraint(sa.CheckConstraint("id < 10000000", name="doc_id_small").ddl_if(dialect="postgresql"))
    return metadata


@pytest.mark.parametrize("callable_kind", ["postgresql", "sqlite"])
def test_ddl_if_decides_for_indexes_tables_and_constraints(
    pgmig_server: Any, database_url: str, callable_kind: str
) -> None:
    metadata = _only_on(callable_kind)
    _same_as_create_all(pgmig_server, database_url, metadata)
    indexes = {
        row["indexname"] for row in fetch(database_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'doc'")
    }
    expected = {"doc_pkey", "ix_doc_title_pg"} | ({"ix_doc_title_callable"} if callable_kind == "postgresql" else set())
    assert indexes == expected
    checks = {
        row["conname"]
        for row in fetch(
            database_url, "SELECT conname FROM pg_constraint WHERE conrelid = 'doc'::regclass AND contype = 'c'"
        )
    }
    assert checks == {"doc_id_small"}


# -- enums behind a TypeDecorator ---------------------------------------------------------


class Mood(enum.Enum):
    happy = "happy"
    sad = "sad"


class MoodType(sa.types.TypeDecorator):  # type: ignore[type-arg]
    """impl is an Enum instance."""

    impl = sa.Enum(Mood, name="mood")
    cache_ok = True


class LevelType(sa.types.TypeDecorator):  # type: ignore[type-arg]
    """impl is the Enum class; the Enum itself comes from load_dialect_impl."""

    impl = sa.Enum
    cache_ok = True

    def __init__(self) -> None:
        super().__init__("low", "high", name="level")

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(sa.Enum("low", "high", name="level"))


def _decorated(extra_labels: bool = False) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "person",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mood", MoodType(), nullable=False),
        sa.Column("moods", sa.ARRAY(MoodType())),
        sa.Column("level", LevelType()),
    )
    return metadata


def test_enums_behind_a_type_decorator(pgmig_server: Any, database_url: str) -> None:
    metadata = _decorated()
    _round_trip_from_empty(pgmig_server, database_url, metadata)
    enums = {obj.name: obj.labels for obj in desired_objects(_context(metadata), handlers()) if obj.kind == "enum"}
    assert enums == {"mood": ("happy", "sad"), "level": ("low", "high")}


def _context(metadata: sa.MetaData) -> Any:
    return model_context(list(metadata.tables.values()), [metadata])


# -- a primary key declared unique too ----------------------------------------------------


class _OwnRegistry(SQLModel, registry=registry()):
    """Keeps this module's model out of SQLModel.metadata, which other tests may read."""


class Ticket(_OwnRegistry, table=True):
    __tablename__ = "pgmig_test_unique_key_ticket"

    code: str = Field(primary_key=True, unique=True)
    title: Optional[str] = None


def _sqlmodel_pk_unique() -> sa.MetaData:
    metadata = sa.MetaData()
    Ticket.__table__.to_metadata(metadata)  # type: ignore[attr-defined]
    return metadata


def _core_pk_unique() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "badge",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, unique=True),
        sa.Column("a", sa.Integer, nullable=False),
        sa.Column("b", sa.Integer, nullable=False),
        sa.UniqueConstraint("a", "b"),
        sa.UniqueConstraint("a", "b"),  # said twice: Postgres keeps one
        sa.UniqueConstraint("b", "a"),  # another order: another index
    )
    return metadata


def _convention_pk_unique() -> sa.MetaData:
    """No name for the primary key, one for the unique constraint: Postgres gives the key that name."""
    metadata = sa.MetaData(naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"})
    sa.Table("member", metadata, sa.Column("id", sa.Integer, primary_key=True, unique=True))
    return metadata


@pytest.mark.parametrize(
    "models", [_sqlmodel_pk_unique, _core_pk_unique, _convention_pk_unique], ids=["sqlmodel", "core", "named"]
)
def test_a_unique_primary_key_is_the_primary_key_only(pgmig_server: Any, database_url: str, models: Any) -> None:
    _round_trip_from_empty(pgmig_server, database_url, models())


def test_a_unique_primary_key_added_to_an_existing_table(pgmig_server: Any, database_url: str) -> None:
    """The models say what create_all builds: no unique constraint beside the key, so none is added."""
    before = sa.MetaData()
    sa.Table("badge", before, sa.Column("id", sa.Integer, primary_key=True))
    migrate(database_url, before)
    run_sql(database_url, "INSERT INTO badge (id) VALUES (1)")
    after = sa.MetaData()
    sa.Table("badge", after, sa.Column("id", sa.Integer, primary_key=True, unique=True))
    assert diff(database_url, after).is_empty


# -- an index without columns ------------------------------------------------------------


def _bare_index() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("thing", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Index("ix_thing_nothing"))
    return metadata


def test_an_index_without_columns_is_refused_naming_it() -> None:
    with pytest.raises(ModelsError, match=r"index ix_thing_nothing on table public\.thing has no column") as raised:
        desired_objects(_context(_bare_index()), handlers())
    assert raised.value.exit_code == 2


def test_an_index_without_columns_exits_2_from_the_cli(tmp_path: Any, database_url: str) -> None:
    (tmp_path / "models.py").write_text(
        "import sqlalchemy as sa\n"
        "metadata = sa.MetaData()\n"
        'sa.Table("thing", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Index("ix_thing_nothing"))\n'
    )
    result = pgmig_cli("--database-url", database_url, "--models", str(tmp_path / "models.py"), "diff", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "ix_thing_nothing" in result.stderr and "thing" in result.stderr
    assert "unexpected" not in result.stderr


def _decorated_labels(*labels: str) -> sa.MetaData:
    class Decorated(sa.types.TypeDecorator):  # type: ignore[type-arg]
        impl = sa.Enum(*labels, name="stage")
        cache_ok = True

    metadata = sa.MetaData()
    sa.Table(
        "job",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("stage", Decorated(), nullable=False, server_default=labels[0]),
    )
    return metadata


@pytest.mark.parametrize(
    "before, after",
    [(("todo", "done"), ("todo", "doing", "done")), (("todo", "doing", "done"), ("todo", "done"))],
    ids=["label-added", "label-removed-swap"],
)
def test_labels_of_an_enum_behind_a_type_decorator_change(
    pgmig_server: Any, database_url: str, before: Any, after: Any
) -> None:
    from tests.helpers import assert_roundtrip

    assert_roundtrip(
        pgmig_server,
        database_url,
        _decorated_labels(*before),
        _decorated_labels(*after),
        seed=["INSERT INTO job (id, stage) VALUES (1, 'todo'), (2, 'done')"],
        rows_query="SELECT id, stage::text FROM job ORDER BY id",
    )


@pytest.mark.parametrize("typed", [True, False])
def test_a_foreign_key_to_a_table_the_models_lack_names_it(typed: bool) -> None:
    """`create_all` says NoReferencedTableError; pgmig said "unexpected CompileError" without naming anything."""
    md = sa.MetaData()
    column = (
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("owner.id"))
        if typed
        else sa.Column("owner_id", sa.ForeignKey("owner.id"))
    )
    sa.Table("pet", md, sa.Column("id", sa.Integer, primary_key=True), column)
    with pytest.raises(ModelsError, match="pet.owner_id.*owner"):
        desired_objects(model_context(list(md.tables.values()), [md]), handlers())
