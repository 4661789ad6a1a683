"""The object-type handler protocol: one kind of schema object, end to end.

A handler reads its objects from the models and from the database, and
returns the operations that create, change and drop one. pgmig's own kinds
are handlers registered under the `pgmig.object_types` entry point, exactly
like a plugin's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Callable,
    ClassVar,
    Dict,
    Iterable,
    List,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    cast,
)

from pgmig.db.quoting import NAMEDATALEN, stored_name
from pgmig.errors import DatabaseError, ModelsError
from pgmig.ops.base import Operation
from pgmig.schema.exclude import NOTHING, Exclusions
from pgmig.schema.objects import SchemaObject
from pgmig.schema.types import compile_type, type_signature

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Dialect

T = TypeVar("T")


def managed_schemas(schema: str, schemas: Sequence[str]) -> Tuple[str, ...]:
    """The managed schemas of a context given `schema` (one) or `schemas` (several, which win)."""
    return tuple(schemas) if schemas else (schema,)


@dataclass
class ModelContext:
    """What handlers read the desired state from.

    `schemas` are the managed schemas (given alone, `schema` is the only one);
    `schema` is the first of them: where a table or enum without a schema goes.
    `exclude`: the objects left out of what the handlers read (`pgmig.schema.exclude`).
    """

    metadata: Sequence["MetaData"]
    tables: Sequence["Table"]
    schema: str = "public"
    # Results several handlers need (compiled types, the column objects): built once per diff.
    # Filled only through `derived` and `per_type`.
    cache: Dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    # (namespace..., name as Postgres keeps it) -> (the model's name, what it names), for long names.
    long_names: Dict[Tuple[str, ...], Tuple[str, str]] = field(default_factory=dict, repr=False, compare=False)
    schemas: Sequence[str] = ()
    exclude: Exclusions = NOTHING

    def __post_init__(self) -> None:
        self.schemas = managed_schemas(self.schema, self.schemas)
        self.schema = self.schemas[0]

    @cached_property
    def dialect(self) -> "Dialect":
        """The PostgreSQL dialect compiled with, set up as `create_all`'s connected engine has it (see `connected_dialect`)."""
        return connected_dialect()

    @cached_property
    def ddl(self) -> Any:
        """One DDL compiler of `dialect` (no statement): what `create_all`'s decisions are asked of."""
        dialect = self.dialect
        return dialect.ddl_compiler(dialect, None)  # type: ignore[arg-type]

    def table_schema(self, table: "Table") -> str:
        return table.schema or self.schema

    def table_name(self, table: "Table") -> str:
        """A model table's name as the catalog keeps it (cut to 63 bytes, see `stored_name`).

        Raises ModelsError when another table or index of its schema keeps the same name.
        """
        schema = self.table_schema(table)
        return self.stored(table.name, ("relation", schema), f"table {schema}.{table.name}")

    def stored(self, name: str, namespace: Tuple[str, ...], what: str) -> str:
        """`stored_name(name)`: the name as Postgres keeps it, for the model object `what` in
        `namespace` (("relation", schema) for tables and indexes, ("column", schema, table), ...).

        Raises ModelsError naming both objects when another model object of the
        namespace has a different name that Postgres keeps the same: the
        second CREATE would fail, or the diff would take one object for the other.
        """
        kept = stored_name(name)
        # Only a name near the limit can meet a cut one (a cut name is 60 to 63 bytes).
        if len(kept) >= 15 and len(kept.encode("utf-8")) >= NAMEDATALEN - 4:
            first = self.long_names.setdefault((*namespace, kept), (name, what))
            if first[0] != name:
                raise ModelsError(
                    f"{first[1]} and {what} have one name to Postgres, which keeps the first "
                    f"{NAMEDATALEN - 1} bytes of a name ({kept!r}); rename one of them"
                )
        return kept

    def creates(self, item: Any) -> bool:
        """Whether `create_all` on PostgreSQL emits `item` (an Index or a constraint: what has
        `.ddl_if`; a Table has none in SQLAlchemy 2.0 and 2.1).

        False when its `.ddl_if(dialect=..., callable_=...)` rules PostgreSQL out:
        SQLAlchemy asks DDLIf._should_execute before each CREATE INDEX and
        constraint; here it is asked with the compiler and no connection, as
        SQLAlchemy asks it of a constraint inside CREATE TABLE.
        """
        condition = getattr(item, "_ddl_if", None)
        if condition is None:
            return True
        from sqlalchemy import Index
        from sqlalchemy.schema import CreateIndex
        from sqlalchemy.sql.ddl import CreateConstraint

        statement = CreateIndex(item) if isinstance(item, Index) else CreateConstraint(item)
        return bool(condition._should_execute(statement, item, None, compiler=self.ddl))

    def derived(self, build: Callable[["ModelContext"], T]) -> T:
        """`build(self)`, computed once per ModelContext and kept under `build` itself.

        What one kind computes from the models and another reads (the column
        handler's `model_columns`, say) is reached through the function that
        provides it, so its type and its provider are plain to see.
        """
        if build not in self.cache:  # per_type's keys are tuples: a function never meets one
            self.cache[build] = build(self)
        return cast(T, self.cache[build])

    def type_sql(self, sa_type: Any) -> str:
        """A model type as `format_type()` spells it (see `per_type`)."""
        return self.per_type(sa_type, "sql", lambda t: compile_type(t, self.dialect))

    def per_type(self, sa_type: Any, what: str, compute: Callable[[Any], T]) -> T:
        """`compute(sa_type)` once per type object, and once per signature among
        SQLAlchemy's own types (every `String(40)` alike): a schema has
        thousands of columns and few distinct types. `what` names the result."""
        hit = self.cache.get((what, id(sa_type)))
        if hit is not None and hit[0] is sa_type:  # the object is kept, so its id is not reused
            return hit[1]  # type: ignore[no-any-return]
        signature = type_signature(sa_type)
        if signature is not None:
            try:
                found = self.cache.get((what, signature))
            except TypeError:  # an attribute that does not hash: computed on its own
                signature = None
            else:
                if found is not None:
                    return found[0]  # type: ignore[no-any-return]
        value = compute(sa_type)
        if signature is not None:
            self.cache[(what, signature)] = (value,)
        self.cache[(what, id(sa_type))] = (sa_type, value)
        return value


def connected_dialect() -> "Dialect":
    """SQLAlchemy's PostgreSQL dialect as a connected engine sets it up, without connecting.

    An engine's first connection runs `initialize`, which reads the server's
    `standard_conforming_strings` (on since PostgreSQL 9.1 and in every
    server pgmig supports): SQLAlchemy 2.0's unconnected dialect assumes it
    off and writes the literal `'\\'` as `'\\\\'` (two backslashes in the
    data), where `create_all` writes `'\\'`; 2.1 assumes it on. The named
    paramstyle leaves `%` alone; the default (pyformat) would write
    `LIKE 'a%'` as `LIKE 'a%%'` in defaults, checks and predicates.
    """
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]
    # What PGDialect._set_backslash_escapes finds on a server with standard_conforming_strings on.
    dialect._backslash_escapes = False
    return cast("Dialect", dialect)


async def in_chunks(rows: Sequence[T], size: int = 2000) -> AsyncIterator[Sequence[T]]:
    """`rows` a slice at a time, letting the event loop run in between.

    Turning 12,000 catalog rows into objects takes tens of milliseconds, in
    which the other reading connection could not take its next query
    (prepare, then execute: two round trips); between slices it can.
    """
    for start in range(0, len(rows), size):
        if start:
            await asyncio.sleep(0)
        yield rows[start : start + size]


@dataclass
class DatabaseContext:
    """What handlers read the current state from: one open connection and the managed schemas.

    Catalog queries filter with `nspname = ANY($1)` on `schemas`; `schema`
    is the first of them, where the version table lives (given alone, the
    only one). `exclude`: the objects dropped from what the handlers read
    (`pgmig.schema.exclude`; `read_all` applies it to every kind).
    """

    connection: "asyncpg.Connection"
    schema: str = "public"
    version_table: str = "pgmig_revisions"
    """pgmig's own table, left out of every read of the schema, with its `<name>_progress` table
    (pgmig.revisions.parts)."""
    schemas: Sequence[str] = ()
    exclude: Exclusions = NOTHING

    def __post_init__(self) -> None:
        self.schemas = managed_schemas(self.schema, self.schemas)
        self.schema = self.schemas[0]

    @property
    def server_version(self) -> int:
        """The server's version as server_version_num has it (150004 for 15.4), known since connecting."""
        version = self.connection.get_server_version()
        return version.major * 10000 + version.minor * 100 + version.micro  # asyncpg: 18.6 -> (18, 0, 6)

    async def fetch(self, query: str, *args: Any) -> List["asyncpg.Record"]:
        import asyncpg

        try:
            return await self.connection.fetch(query, *args)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading the catalog failed: {exc}") from exc

    async def existing_tables(self, tables: Iterable[Tuple[str, str]]) -> Set[Tuple[str, str]]:
        """Which of the (schema, table) pairs the database has as tables (plain or partitioned, relkind r/p).

        Model objects on a table still to be created are marked by their
        handlers, so that building them is not reported as a hazard.
        """
        wanted = sorted(set(tables))
        if not wanted:
            return set()
        rows = await self.fetch(_EXISTING_TABLES_QUERY, [s for s, _ in wanted], [t for _, t in wanted])
        return {(row["schema"], row["name"]) for row in rows}


_EXISTING_TABLES_QUERY = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN unnest($1::text[], $2::text[]) AS wanted(schema, name)
  ON wanted.schema = n.nspname AND wanted.name = c.relname
WHERE c.relkind IN ('r', 'p')
"""


class ObjectHandler:
    """Base class for a kind of schema object.

    Subclasses set `kind` and implement reading (`from_models`,
    `from_database`) and changing (`create`, `destroy`, and `migrate` where
    Postgres can alter in place). The changing methods return operation
    objects built from the operation classes (`[AddTable(table_name=...)]`):
    the same objects run a revision, print `--sql`, are written into
    generated revision files, and are what rewrite passes (defaults,
    `--concurrently`) select by class.
    """

    kind: ClassVar[str] = ""
    # How heavy `from_database` is next to other kinds' (1: a small catalog
    # read). Reads are shared out heaviest first, so that the long ones start
    # at once and the short ones fill in around them.
    read_weight: ClassVar[int] = 1

    def from_models(self, models: ModelContext) -> Iterable[SchemaObject]:
        return ()

    async def from_database(self, db: DatabaseContext) -> Iterable[SchemaObject]:
        return ()

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Bring model-side objects into the database's normal form (default: as they are).

        Called with a live connection before comparing, so a handler can let
        Postgres render an expression instead of guessing its normal form.
        """
        return objects

    def equivalent(self, current: Any, desired: Any) -> bool:
        """True when the model object `desired` certainly is what the database's `current` is, as spelled.

        Asked before normalizing, for model objects that differ from the
        database's object under the same key: True spares the server round
        trip of `normalize`, and the database's object stands in for the
        model's. Only say True when it is certain; False (the default) means
        "let normalize decide".
        """
        return False

    # `obj`, `old` and `new` are objects of this handler's kind (the
    # SchemaObject subclass its readers return); subclasses annotate them so.

    def create(self, obj: Any) -> List[Operation]:
        """The operations that create `obj`, in the order they run."""
        raise NotImplementedError

    def create_with(self, obj: Any, parts: List[Operation]) -> List[Operation]:
        """The operations that create `obj` together with the children it creates itself.

        `parts` are the `create` operations of the new children for which
        `obj.creates_with_itself(child)` is True, in plan order, as their own
        handlers made them. Default: `obj`'s own operations, then the parts.
        """
        return self.create(obj) + parts

    def migrate(self, old: Any, new: Any) -> List[Operation]:
        """The operations that turn `old` into `new` (same key, different fields).

        Default: drop and create again. Override where Postgres can alter in place.
        """
        return self.destroy(old) + self.create(new)

    def destroy(self, obj: Any) -> List[Operation]:
        """The operations that drop `obj`."""
        raise NotImplementedError
