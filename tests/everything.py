"""One model set using every type and kind pgmig supports, shared by the fidelity tests."""

import enum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg


class Color(enum.Enum):
    red = "R"
    green = "G"
    blue = "B"


class Size(enum.Enum):
    small = "s"
    large = "l"


def build() -> sa.MetaData:
    md = sa.MetaData()
    size = sa.Enum(Size, name="size", values_callable=lambda e: [m.value for m in e])
    sa.Table(
        "owner",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False, server_default="anonymous"),
        comment="people who own things",
    )
    sa.Table(
        "thing",
        md,
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("owner.id", ondelete="CASCADE"), nullable=False),
        sa.Column("small", sa.SmallInteger, server_default="0"),
        sa.Column("flag", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("code", sa.String(12)),
        sa.Column("letter", sa.CHAR(1)),
        sa.Column("price", sa.Numeric(10, 2), server_default="0"),
        sa.Column("ratio", sa.Float),
        sa.Column("weight", sa.REAL),
        sa.Column("born", sa.Date),
        sa.Column("at", sa.Time),
        sa.Column("created", sa.DateTime, server_default=sa.func.now()),
        sa.Column("created_tz", sa.DateTime(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("span", sa.Interval),
        sa.Column("uid", sa.Uuid, server_default=sa.text("gen_random_uuid()")),
        sa.Column("blob", sa.LargeBinary),
        sa.Column("doc", sa.JSON),
        sa.Column("docb", pg.JSONB, server_default=sa.text("'{}'::jsonb")),
        sa.Column("tags", pg.ARRAY(sa.Text), server_default="{}"),
        sa.Column("color", sa.Enum(Color), nullable=False, server_default="red"),
        sa.Column("sizes", pg.ARRAY(size)),
        sa.Column("note", sa.Text, comment="free text"),
        sa.CheckConstraint("price >= 0", name="price_not_negative"),
        sa.CheckConstraint("small < 100"),
        sa.UniqueConstraint("owner_id", "code"),
        sa.Index("ix_thing_lower_code", sa.func.lower(sa.column("code"))),
        sa.Index("ix_thing_flagged", "owner_id", postgresql_where=sa.text("flag")),
        sa.Index("ix_thing_tags", "tags", postgresql_using="gin"),
        sa.Index("ix_thing_created_desc", sa.desc("created"), postgresql_include=["price"]),
    )
    sa.Table(
        "thing_part",
        md,
        sa.Column("thing_id", sa.BigInteger, sa.ForeignKey("thing.id"), primary_key=True),
        sa.Column("part_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", size, nullable=False, server_default="s"),
    )
    sa.Table(
        "thing_part_ref",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("thing_id", sa.BigInteger, nullable=False),
        sa.Column("part_no", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["thing_id", "part_no"],
            ["thing_part.thing_id", "thing_part.part_no"],
            deferrable=True,
            initially="DEFERRED",
        ),
    )
    return md
