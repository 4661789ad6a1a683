"""Column types in Postgres's own spelling.

Model types are compiled with SQLAlchemy's PostgreSQL dialect (so pgmig writes
exactly what `create_all` would) and then spelled the way `format_type()`
prints them, so both sides compare as text. The column handler additionally
lets the server render model types when it can (see ColumnHandler.normalize);
this table is the offline fallback and covers what SQLAlchemy emits.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from pgmig.db.quoting import stored_name

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.engine import Dialect

_SIMPLE = {
    "INTEGER": "integer",
    "INT": "integer",
    "INT4": "integer",
    "BIGINT": "bigint",
    "INT8": "bigint",
    "SMALLINT": "smallint",
    "INT2": "smallint",
    "BOOLEAN": "boolean",
    "BOOL": "boolean",
    "TEXT": "text",
    "VARCHAR": "character varying",
    "CHARACTER VARYING": "character varying",
    "CHAR": "character(1)",
    "CHARACTER": "character(1)",
    "REAL": "real",
    "FLOAT4": "real",
    "FLOAT": "double precision",
    "FLOAT8": "double precision",
    "DOUBLE PRECISION": "double precision",
    "DOUBLE": "double precision",
    "NUMERIC": "numeric",
    "DECIMAL": "numeric",
    "DATE": "date",
    "TIME": "time without time zone",
    "TIME WITHOUT TIME ZONE": "time without time zone",
    "TIME WITH TIME ZONE": "time with time zone",
    "TIMESTAMP": "timestamp without time zone",
    "TIMESTAMP WITHOUT TIME ZONE": "timestamp without time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "TIMESTAMPTZ": "timestamp with time zone",
    "INTERVAL": "interval",
    "UUID": "uuid",
    "BYTEA": "bytea",
    "JSON": "json",
    "JSONB": "jsonb",
    "INET": "inet",
    "CIDR": "cidr",
    "MACADDR": "macaddr",
    "MONEY": "money",
    "TSVECTOR": "tsvector",
    "OID": "oid",
}

_WITH_ARGS = {
    "VARCHAR": "character varying",
    "CHARACTER VARYING": "character varying",
    "CHAR": "character",
    "CHARACTER": "character",
    "NUMERIC": "numeric",
    "DECIMAL": "numeric",
    "BIT": "bit",
    "VARBIT": "bit varying",
}

_ARGS = re.compile(r"^(?P<base>[A-Z ]+?)\s*\((?P<args>[^)]*)\)(?P<rest>.*)$")
_TIME_PRECISION = re.compile(r"^(?P<base>TIME|TIMESTAMP)\s*\((?P<p>\d+)\)\s*(?P<tz>WITH(?:OUT)? TIME ZONE)?$")


@lru_cache(maxsize=4096)  # called per column; a schema has few distinct type spellings
def canonical_type(sql_type: str) -> str:
    """Spell a type as `format_type()` does: `VARCHAR(20)` -> `character varying(20)`."""
    text = " ".join(sql_type.strip().split())
    dims = ""
    while text.endswith("[]"):
        dims += "[]"
        text = text[:-2].rstrip()
    upper = text.upper()
    if upper in _SIMPLE:
        return _SIMPLE[upper] + dims
    timed = _TIME_PRECISION.match(upper)
    if timed:
        tz = (timed.group("tz") or "WITHOUT TIME ZONE").lower()
        base = "timestamp" if timed.group("base") == "TIMESTAMP" else "time"
        return f"{base}({timed.group('p')}) {tz}{dims}"
    with_args = _ARGS.match(upper)
    if with_args and with_args.group("base").strip() in _WITH_ARGS and not with_args.group("rest").strip():
        args = ",".join(part.strip() for part in with_args.group("args").split(","))
        return f"{_WITH_ARGS[with_args.group('base').strip()]}({args}){dims}"
    return text + dims


def compile_type(sa_type: Any, dialect: "Dialect") -> str:
    return canonical_type(sa_type.compile(dialect=dialect))


def type_signature(sa_type: Any) -> Optional[Tuple[Any, ...]]:
    """What SQLAlchemy's compiler reads of one of its own plain types: its class and attributes.

    Two such types with equal signatures compile alike. None for the types
    whose rendering may depend on more than that (anything outside
    SQLAlchemy, decorators, enums, arrays); a signature whose attributes do
    not hash raises TypeError when looked up.
    """
    cls = type(sa_type)
    plain = _PLAIN_TYPES.get(cls)
    if plain is None:
        plain = _PLAIN_TYPES[cls] = _is_plain_type(cls)
    if not plain:
        return None
    return ("type", cls, *sa_type.__dict__.items())  # may not hash: the caller's lookup finds out


_PLAIN_TYPES: Dict[type, bool] = {}


def _is_plain_type(cls: type) -> bool:
    from sqlalchemy.types import ARRAY, Enum, TypeDecorator, UserDefinedType

    return cls.__module__.startswith("sqlalchemy.") and not issubclass(
        cls, (ARRAY, Enum, TypeDecorator, UserDefinedType)
    )


# A column's type as pgmig compares and writes it: format_type()'s spelling, but an enum or a
# domain (or an array of one) always schema-qualified. format_type() qualifies a type only when it is not
# visible on the session's search_path, so the same column would read `color` in one session
# and `app.color` in another, and an unqualified name written into a revision resolves to
# whichever `color` comes first on the search_path of the session that runs it.
# Reads `a` (pg_attribute), `t` (its pg_type), `et` (t's element type, or t) and `etn` (et's namespace).
TYPE_SQL = """CASE WHEN et.typtype IN ('e', 'd')
            THEN pg_catalog.quote_ident(etn.nspname) || '.' || pg_catalog.quote_ident(et.typname)
                 || CASE WHEN et.oid <> t.oid THEN '[]' ELSE '' END
            ELSE pg_catalog.format_type(a.atttypid, a.atttypmod) END"""
# The joins TYPE_SQL reads, from `a` (which may be outer-joined: the type is then NULL).
TYPE_JOINS = """LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type et
       ON et.oid = CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END
LEFT JOIN pg_catalog.pg_namespace etn ON etn.oid = et.typnamespace"""

_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_$]*\Z")


def server_quoted(name: str) -> str:
    """`name` quoted as Postgres's quote_ident() quotes it: only when it is not a plain
    lower-case name or is a reserved word (SQLAlchemy's list of PostgreSQL's)."""
    from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS

    if _PLAIN_NAME.match(name) and name not in RESERVED_WORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def enum_type_sql(schema: str, name: str, array_suffix: str = "") -> str:
    """The enum or domain `schema.name` (`array_suffix`: "[]" for an array of it) as TYPE_SQL reads it."""
    return f"{server_quoted(schema)}.{server_quoted(name)}{array_suffix}"


def enum_of(sa_type: Any, default_schema: str, dialect: Optional["Dialect"] = None) -> Optional[Tuple[str, str]]:
    """(schema, name) of the native Postgres enum a model type uses, directly, as array items or
    behind a TypeDecorator (see `native_enum`); the name as Postgres keeps it (`stored_name`)."""
    enum = native_enum(sa_type, dialect)
    if enum is None:
        return None
    return (enum.schema or default_schema, stored_name(enum.name))


def native_enum(sa_type: Any, dialect: Optional["Dialect"] = None) -> Optional[Any]:
    """The native `sa.Enum` a model type compiles to, if any: the type itself, the item type of an
    ARRAY, or what a TypeDecorator stands for (see `item_type`)."""
    enum = item_type(sa_type, dialect)
    if isinstance(enum, _sqlalchemy_types()[1]) and enum.native_enum and enum.name:
        return enum
    return None


def domain_of(sa_type: Any, default_schema: str, dialect: Optional["Dialect"] = None) -> Optional[Tuple[str, str]]:
    """(schema, name) of the Postgres domain (`postgresql.DOMAIN`) a model type uses, directly, as
    array items or behind a TypeDecorator (see `item_type`); the name as Postgres keeps it."""
    domain = item_type(sa_type, dialect)
    if isinstance(domain, _sqlalchemy_types()[3]) and domain.name:
        return (domain.schema or default_schema, stored_name(domain.name))
    return None


def item_type(sa_type: Any, dialect: Optional["Dialect"] = None) -> Any:
    """The type a model type's values have: the type itself, the item type of an ARRAY, or what a
    TypeDecorator stands for on `dialect` (its `load_dialect_impl`, which by default is its `impl`;
    without a dialect, its `impl`), unwrapped as often as they nest."""
    array, _, decorator, _ = _sqlalchemy_types()
    for _ in range(8):  # decorators of arrays of decorators: a few levels at most
        if isinstance(sa_type, decorator):
            sa_type = sa_type.load_dialect_impl(dialect) if dialect is not None else sa_type.impl_instance
        elif isinstance(sa_type, array):
            sa_type = sa_type.item_type
        else:
            break
    return sa_type


@lru_cache(maxsize=None)
def _sqlalchemy_types() -> Tuple[Any, Any, Any, Any]:
    """(ARRAY, Enum, TypeDecorator, DOMAIN), imported on first use: `pgmig --help` must not import
    SQLAlchemy, and an import statement in a function called once per column costs more than the rest of it."""
    from sqlalchemy.dialects.postgresql import DOMAIN
    from sqlalchemy.types import ARRAY, Enum, TypeDecorator

    return ARRAY, Enum, TypeDecorator, DOMAIN
