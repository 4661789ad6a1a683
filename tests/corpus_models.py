"""The Postgres DDL surface of SQLAlchemy and SQLModel, one small model set a case (tests/test_corpus.py).

Each case builds a fresh MetaData. `prepare` is what `create_all`'s database
needs first that SQLAlchemy does not create (extensions, schemas): pgmig
builds its database from nothing.
"""

import enum
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], sa.MetaData]
    prepare: Tuple[str, ...] = ()
    extensions: Tuple[str, ...] = ()


CASES: List[Case] = []


def case(name: str, *, prepare: Tuple[str, ...] = (), extensions: Tuple[str, ...] = ()) -> Callable[..., Any]:
    """Register `build` (tables on the MetaData it is given) as corpus case `name`."""

    def register(build: Callable[[sa.MetaData], None]) -> Callable[[sa.MetaData], None]:
        def made() -> sa.MetaData:
            md = sa.MetaData()
            if extensions:
                from pgmig_extensions import extension

                for ext in extensions:
                    extension(md, ext)
            build(md)
            return md

        CASES.append(Case(name, made, prepare + tuple(f"CREATE EXTENSION {e}" for e in extensions), extensions))
        return build

    return register


def pk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.Integer, primary_key=True)


# -- column options ------------------------------------------------------------------


@case("server_defaults")
def _server_defaults(md: sa.MetaData) -> None:
    sa.Table(
        "defaults",
        md,
        pk(),
        sa.Column("plain", sa.Text, server_default="plain"),
        sa.Column("quote", sa.Text, server_default="it's"),
        sa.Column("backslash", sa.Text, server_default="\\"),
        sa.Column("backslash_n", sa.String(10), server_default="a\\nb"),
        sa.Column("percent", sa.Text, server_default="50%"),
        sa.Column("empty", sa.Text, server_default=""),
        sa.Column("number", sa.Integer, server_default="7"),
        sa.Column("negative", sa.Numeric(8, 2), server_default=sa.text("-1.5")),
        sa.Column("text_number", sa.Integer, server_default=sa.text("42")),
        sa.Column("flag_false", sa.Boolean, server_default=sa.false()),
        sa.Column("flag_true", sa.Boolean, server_default=sa.true()),
        sa.Column("flag_text", sa.Boolean, server_default=sa.text("true")),
        sa.Column("now", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("current", sa.DateTime, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("today", sa.Date, server_default=sa.text("CURRENT_DATE")),
        sa.Column("uid", sa.Uuid, server_default=sa.func.gen_random_uuid()),
        sa.Column("lowered", sa.Text, server_default=sa.text("lower('ABC')")),
        sa.Column("cast", sa.Text, server_default=sa.text("(1 + 2)::text")),
        sa.Column("doc", pg.JSONB, server_default=sa.text("'{\"a\": [1, 2]}'::jsonb")),
        sa.Column("tags", pg.ARRAY(sa.Text), server_default="{}"),
        sa.Column("interval", sa.Interval, server_default=sa.text("'1 day'")),
        sa.Column("literal", sa.Text, server_default=sa.literal_column("'lit'")),
    )


@case("server_default_expressions")
def _default_expressions(md: sa.MetaData) -> None:
    mood = sa.Enum("happy", "sad", name="default_mood")
    sa.Table(
        "default_expressions",
        md,
        pk(),
        sa.Column("literal", sa.Text, server_default=sa.literal("lit's")),
        sa.Column("cast", sa.Integer, server_default=sa.cast("5", sa.Integer)),
        sa.Column("coalesce", sa.Integer, server_default=sa.func.coalesce(None, 3)),
        sa.Column("clock", sa.DateTime(timezone=True), server_default=sa.func.clock_timestamp()),
        sa.Column("mood", mood, server_default="happy"),
        sa.Column("moods", pg.ARRAY(mood), server_default=sa.text("'{sad}'")),
        sa.Column("ints", pg.ARRAY(sa.Integer), server_default=sa.text("ARRAY[1, 2]")),
        sa.Column("range", pg.INT4RANGE, server_default=sa.text("'[1,5)'")),
        sa.Column("inet", pg.INET, server_default="127.0.0.1"),
        sa.Column("money", pg.MONEY, server_default=sa.text("0")),
        sa.Column("bits", pg.BIT(3), server_default=sa.text("B'101'")),
    )


@case("quoted_names")
def _quoted(md: sa.MetaData) -> None:
    t = sa.Table(
        "MixedCase Table",
        md,
        sa.Column("Id", sa.Integer, primary_key=True),
        sa.Column("select", sa.Text, unique=True),
        sa.Column('Weird "Name"', sa.Integer, sa.CheckConstraint('"Weird ""Name""" > 0')),
        sa.Column("parent", sa.Integer, sa.ForeignKey("MixedCase Table.Id")),
    )
    sa.Index("Ix Mixed", t.c.select, sa.func.lower(t.c.select))


@case("column_checks_and_unique_index")
def _column_checks(md: sa.MetaData) -> None:
    sa.Table(
        "column_checks",
        md,
        pk(),
        sa.Column("positive", sa.Integer, sa.CheckConstraint("positive > 0")),
        sa.Column("named", sa.Integer, sa.CheckConstraint("named < 10", name="named_small")),
        sa.Column("unique_col", sa.Text, unique=True),
        sa.Column("indexed", sa.Text, index=True),
        sa.Column("unique_indexed", sa.Text, unique=True, index=True),
    )


@case("column_comments_and_nullability")
def _comments(md: sa.MetaData) -> None:
    sa.Table(
        "commented",
        md,
        pk(),
        sa.Column("note", sa.Text, comment="it's a note"),
        sa.Column("required", sa.Text, nullable=False),
        sa.Column("optional", sa.Text, nullable=True),
        comment="a table's comment",
    )


@case("autoincrement_variants")
def _autoincrement(md: sa.MetaData) -> None:
    sa.Table("serial_pk", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("bigserial_pk", md, sa.Column("id", sa.BigInteger, primary_key=True))
    sa.Table("smallserial_pk", md, sa.Column("id", sa.SmallInteger, primary_key=True))
    sa.Table("no_autoincrement", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False))
    sa.Table(
        "composite_pk",
        md,
        sa.Column("a", sa.Integer, primary_key=True),
        sa.Column("b", sa.Integer, primary_key=True),
    )
    sa.Table(
        "composite_autoincrement",
        md,
        sa.Column("a", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("b", sa.Integer, primary_key=True),
    )
    sa.Table("text_pk", md, sa.Column("code", sa.String(8), primary_key=True))


@case("identity")
def _identity(md: sa.MetaData) -> None:
    sa.Table("by_default", md, sa.Column("id", sa.Integer, sa.Identity(), primary_key=True))
    sa.Table("always", md, sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True))


@case("identity_options")
def _identity_options(md: sa.MetaData) -> None:
    sa.Table(
        "identity_options",
        md,
        sa.Column(
            "id",
            sa.Integer,
            sa.Identity(start=1000, increment=5, minvalue=10, maxvalue=100000, cycle=True, cache=3),
            primary_key=True,
        ),
    )


@case("computed")
def _computed(md: sa.MetaData) -> None:
    sa.Table(
        "line",
        md,
        pk(),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("price", sa.Numeric(12, 2), nullable=False),
        sa.Column("total", sa.Numeric(12, 2), sa.Computed("quantity * price", persisted=True)),
        sa.Column("label", sa.Text, sa.Computed("'id: ' || id")),
    )


@case("collation")
def _collation(md: sa.MetaData) -> None:
    sa.Table(
        "collated",
        md,
        pk(),
        sa.Column("code", sa.String(20, collation="C")),
        sa.Column("name", sa.Text(collation="POSIX")),
    )


@case("domains", prepare=("CREATE SCHEMA audit",))
def _domains(md: sa.MetaData) -> None:
    # create_all issues CREATE DOMAIN before the tables: check, NOT NULL and default; a collation
    # and a named check; an ARRAY of a domain; a domain in another managed schema.
    positive = pg.DOMAIN("positive", sa.Integer, check="VALUE > 0", not_null=True, default="1")
    code = pg.DOMAIN("code", sa.String(10), collation="C", constraint_name="code_not_blank", check="VALUE <> ''")
    tag = pg.DOMAIN("tag", sa.Text, schema="audit")
    sa.Table(
        "priced",
        md,
        pk(),
        sa.Column("amount", positive),
        sa.Column("amounts", pg.ARRAY(positive)),
        sa.Column("code", code),
    )
    sa.Table("tagged", md, pk(), sa.Column("tag", tag), schema="audit")


@case("sequence_owned")
def _sequence_owned(md: sa.MetaData) -> None:
    sa.Table("invoice", md, sa.Column("id", sa.Integer, sa.Sequence("invoice_id_seq"), primary_key=True))


@case("sequence_shared")
def _sequence_shared(md: sa.MetaData) -> None:
    seq = sa.Sequence("ticket_number_seq", start=1000, metadata=md)
    for name in ("ticket", "voucher"):
        sa.Table(
            name,
            md,
            pk(),
            sa.Column("number", sa.Integer, seq, server_default=seq.next_value(), nullable=False),
        )


@case("long_names")
def _long_names(md: sa.MetaData) -> None:
    # SQLAlchemy counts characters (create_all refuses a table name over 63 of them), Postgres
    # keeps 63 bytes: 25 CJK characters are 75 bytes, which create_all takes and Postgres cuts.
    sa.Table(
        "注文明細" * 6 + "表",
        md,
        pk(),
        sa.Column("数量" * 12 + "列", sa.Integer, unique=True),
        sa.Column("a_column_name_that_is_much_longer_than_sixty_three_bytes_for_postgres", sa.Text, index=True),
    )


@case("schema_not_public", prepare=("CREATE SCHEMA audit",))
def _other_schema(md: sa.MetaData) -> None:
    sa.Table("entry", md, pk(), schema="audit")


# -- SQLModel's own spellings -----------------------------------------------------------


def _sqlmodel_metadata() -> sa.MetaData:
    """SQLModel models on a registry of their own (SQLModel.metadata is the process's)."""
    import datetime
    import decimal
    import uuid
    from typing import Optional

    from sqlalchemy.orm import registry
    from sqlmodel import Field, SQLModel

    class Base(SQLModel, registry=registry()):
        pass

    class Team(Base, table=True):
        id: Optional[int] = Field(default=None, primary_key=True)
        name: str = Field(max_length=80, unique=True, index=True)
        slug: str = Field(sa_column_kwargs={"server_default": "team", "comment": "the url part"})

    class Hero(Base, table=True):
        id: Optional[int] = Field(default=None, primary_key=True)
        name: str = Field(index=True)
        secret_name: str
        age: Optional[int] = Field(default=None, index=True)
        mood: Mood = Field(default=Mood.happy)
        power: decimal.Decimal = Field(default=0, max_digits=8, decimal_places=2)
        born: Optional[datetime.date] = None
        seen: datetime.datetime = Field(
            sa_type=sa.DateTime(timezone=True), sa_column_kwargs={"server_default": sa.func.now()}
        )
        token: uuid.UUID = Field(default_factory=uuid.uuid4)
        team_id: Optional[int] = Field(default=None, foreign_key="team.id", ondelete="SET NULL")
        tags: Optional[list] = Field(default=None, sa_column=sa.Column(pg.ARRAY(sa.Text)))  # type: ignore[type-arg]

    return Base.metadata


CASES.append(Case("sqlmodel_models", _sqlmodel_metadata))


# -- constraints ---------------------------------------------------------------------


@case("foreign_key_options")
def _foreign_keys(md: sa.MetaData) -> None:
    sa.Table("parent", md, pk(), sa.Column("code", sa.String(10), unique=True), sa.Column("b", sa.Integer))
    sa.Table(
        "child",
        md,
        pk(),
        sa.Column("cascade_id", sa.Integer, sa.ForeignKey("parent.id", ondelete="CASCADE", onupdate="CASCADE")),
        sa.Column("set_null_id", sa.Integer, sa.ForeignKey("parent.id", ondelete="SET NULL")),
        sa.Column("restrict_id", sa.Integer, sa.ForeignKey("parent.id", ondelete="RESTRICT", onupdate="RESTRICT")),
        sa.Column("set_default_id", sa.Integer, sa.ForeignKey("parent.id", ondelete="SET DEFAULT")),
        sa.Column("no_action_id", sa.Integer, sa.ForeignKey("parent.id", onupdate="NO ACTION")),
        sa.Column("deferred_id", sa.Integer, sa.ForeignKey("parent.id", deferrable=True, initially="DEFERRED")),
        sa.Column("immediate_id", sa.Integer, sa.ForeignKey("parent.id", deferrable=True, initially="IMMEDIATE")),
        sa.Column("not_deferrable_id", sa.Integer, sa.ForeignKey("parent.id", deferrable=False)),
        sa.Column("full_id", sa.Integer),
        sa.Column("full_b", sa.Integer),
        sa.Column("code", sa.String(10), sa.ForeignKey("parent.code", name="child_code_named_fk")),
        sa.Column("self_id", sa.Integer, sa.ForeignKey("child.id")),
        sa.ForeignKeyConstraint(["full_id", "full_b"], ["composite.a", "composite.b"], match="FULL"),
    )
    sa.Table(
        "composite",
        md,
        sa.Column("a", sa.Integer, primary_key=True),
        sa.Column("b", sa.Integer, primary_key=True),
    )


@case("unique_and_check_options")
def _unique_check(md: sa.MetaData) -> None:
    sa.Table(
        "checked",
        md,
        sa.Column("id", sa.Integer),
        sa.Column("a", sa.Integer),
        sa.Column("b", sa.Text),
        sa.Column("c", sa.Text),
        sa.PrimaryKeyConstraint("id", name="checked_named_pk"),
        sa.UniqueConstraint("a", name="checked_a_deferred", deferrable=True, initially="DEFERRED"),
        sa.UniqueConstraint("b", "c", postgresql_nulls_not_distinct=True),
        sa.CheckConstraint("a > 0", name="a_positive"),
        sa.CheckConstraint("b <> 'x\\y'"),
        sa.CheckConstraint("char_length(c) < 10 AND c LIKE 'a%'", name="c_short"),
    )


@case("unique_and_primary_key_include")
def _include(md: sa.MetaData) -> None:
    sa.Table(
        "covered",
        md,
        sa.Column("id", sa.Integer),
        sa.Column("a", sa.Integer),
        sa.Column("c", sa.Text),
        sa.PrimaryKeyConstraint("id", postgresql_include=["a"]),
        sa.UniqueConstraint("c", postgresql_include=["a", "id"]),
    )


# -- indexes -------------------------------------------------------------------------


@case("index_options")
def _indexes(md: sa.MetaData) -> None:
    t = sa.Table(
        "indexed",
        md,
        pk(),
        sa.Column("a", sa.Integer),
        sa.Column("b", sa.Text),
        sa.Column("c", pg.JSONB),
        sa.Column("d", sa.DateTime),
        sa.Column("e", pg.TSVECTOR),
        sa.Column("f", pg.INT4RANGE),
    )
    sa.Index("ix_unique", t.c.a, unique=True)
    sa.Index("ix_include", t.c.a, postgresql_include=["b"])
    sa.Index("ix_nulls_not_distinct", t.c.b, unique=True, postgresql_nulls_not_distinct=True)
    sa.Index("ix_ops", t.c.b, postgresql_ops={"b": "text_pattern_ops"})
    sa.Index("ix_gin", t.c.c, postgresql_using="gin")
    sa.Index("ix_gin_ops", t.c.c, postgresql_using="gin", postgresql_ops={"c": "jsonb_path_ops"})
    sa.Index("ix_gist", t.c.f, postgresql_using="gist")
    sa.Index("ix_brin", t.c.d, postgresql_using="brin")
    sa.Index("ix_hash", t.c.b, postgresql_using="hash")
    sa.Index("ix_tsvector", t.c.e, postgresql_using="gin")
    sa.Index("ix_with", t.c.a, postgresql_with={"fillfactor": 50})
    sa.Index("ix_partial", t.c.a, postgresql_where=t.c.b.is_not(None))
    sa.Index("ix_partial_literal", t.c.a, postgresql_where=t.c.b == "a\\b")
    sa.Index("ix_expression", sa.func.lower(t.c.b))
    sa.Index("ix_expression_text", sa.text("(c ->> 'k')"))
    sa.Index("ix_descending", t.c.d.desc(), t.c.a)
    sa.Index("ix_nulls_last", t.c.d.desc().nulls_last())
    sa.Index("ix_nulls_first", t.c.a.asc().nulls_first())


# -- dialect types -------------------------------------------------------------------


class Mood(enum.Enum):
    happy = "happy"
    sad = "sad"


TYPES: Dict[str, Any] = {
    "inet": pg.INET,
    "cidr": pg.CIDR,
    "macaddr": pg.MACADDR,
    "macaddr8": pg.MACADDR8,
    "tsvector": pg.TSVECTOR,
    "tsquery": pg.TSQUERY,
    "int4range": pg.INT4RANGE,
    "int8range": pg.INT8RANGE,
    "numrange": pg.NUMRANGE,
    "daterange": pg.DATERANGE,
    "tsrange": pg.TSRANGE,
    "tstzrange": pg.TSTZRANGE,
    "int4multirange": pg.INT4MULTIRANGE,
    "int8multirange": pg.INT8MULTIRANGE,
    "nummultirange": pg.NUMMULTIRANGE,
    "datemultirange": pg.DATEMULTIRANGE,
    "tsmultirange": pg.TSMULTIRANGE,
    "tstzmultirange": pg.TSTZMULTIRANGE,
    "money": pg.MONEY,
    "bit": pg.BIT(3),
    "varbit": pg.BIT(8, varying=True),
    "oid": pg.OID,
    "regclass": pg.REGCLASS,
    "regconfig": pg.REGCONFIG,
    "jsonpath": pg.JSONPATH,
    "interval_fields": pg.INTERVAL(fields="DAY TO SECOND", precision=3),
    "timestamp_precision": pg.TIMESTAMP(timezone=True, precision=3),
    "time_tz": pg.TIME(timezone=True),
    "bytea": pg.BYTEA,
    "double": pg.DOUBLE_PRECISION,
    "enum": sa.Enum(Mood, name="mood"),
    "hstore": pg.HSTORE,
    "citext": pg.CITEXT,
}

EXTENSION_OF = {"hstore": "hstore", "citext": "citext"}


def _typed(label: str, sa_type: Any) -> None:
    @case(f"type_{label}", extensions=(EXTENSION_OF[label],) if label in EXTENSION_OF else ())
    def build(md: sa.MetaData) -> None:
        sa.Table(
            f"typed_{label}",
            md,
            pk(),
            sa.Column("value", sa_type),
            sa.Column("values", pg.ARRAY(sa_type)),
        )


for _label, _type in TYPES.items():
    _typed(_label, _type)
