"""The normalization service: model objects rendered through the server, in Postgres's own normal form.

pgmig compares the models with the catalog as Postgres prints things
(`pg_get_expr`, `pg_get_indexdef`, `format_type`, `pg_get_viewdef`...), so a
check written `price >= 0` in the model and stored as `(price >= (0)::numeric)`
is no change. The only faithful way to know how Postgres prints a model's
object is to let it build one and read it back. Every kind does that through
this module; a kind only declares what to build and how to read it back.

The declaration (`Renderer`), for one kind:

- `kind`, `version`: name the renderings in the cache (bump `version` when
  the statements or the reading change what comes back);
- `key(what)`: the text that identifies one thing to render (`what` is any
  hashable value the kind chooses: a check's text and the columns it reads,
  an index's definition and its table). Equal `what`s render once;
- `reads(what)`: the types and tables whose definitions the rendering
  depends on (`Reads`): part of the cache key, so a changed enum or table
  misses the cache;
- `statements(items, scratch)`: SQL that builds the items under scratch
  names (`scratch.name(...)`, in `scratch.schema`), made where possible from
  the kind's own operations (`AddIndex(...).statements()` on a scratch
  table). `items` are `(number, what)` pairs; a scratch object named after
  an item's number is the same whether the item is built with others or
  alone;
- `read(items, scratch, db)`: the built items as the server prints them,
  `{number: result}`; results must be JSON values (they are kept in the
  cache, and fresh results are passed through JSON too, so both look alike);
- `relations`: how many relations (tables, indexes...) one item creates at
  most, for the lock table; `temporary`: False when the objects cannot be
  temporary (a materialized view); `settings`: `SET LOCAL` statements the
  building needs (`check_function_bodies = off`); `cacheable`: False when
  the result depends on something outside the key (the extensions a server
  has installed).

`render(db, renderer, whats)` then returns `{what: result or None}` (None:
the server could not build it, e.g. a type the plan has yet to create). The
service runs everything in ONE transaction that is always rolled back
(a savepoint when the connection is already in a transaction); each chunk
of items in a savepoint of its own, rolled back once read, so the locks its
objects took are released (PostgreSQL docs, "Explicit Locking": a lock
acquired after a savepoint is released when the savepoint is rolled back)
and no chunk creates more than `_LOCKS_PER_CHUNK` (8) times
`max_locks_per_transaction` relations: the shared lock table holds
`max_locks_per_transaction * (max_connections + max_prepared_transactions)`
locks ("Lock Management"), and a chunk takes a few sessions' share of it
(512 relations at the default 64, about what 200 scratch tables with their
indexes took in one transaction before the service). A
chunk that fails is built again one item at a time, each in a savepoint.

Where the scratch objects go: the session's temporary schema when the role
has the TEMPORARY privilege on the database, else the target schema under
unique names (`pgmig_<random>_...`) inside the same rolled-back transaction
(the migrating role can create there; other sessions never see uncommitted
catalog rows, and the random prefix keeps two diffs apart). A role that can
do neither gets "could not render" for everything and a
`NormalizationWarning`.

The cache (`NormalForms(path)`): each distinct rendering is asked of the
server once, ever. What the server said is kept in a JSON file, keyed by a
hash of: the renderer's kind and version, `key(what)`, the server's
version, `search_path` (as `current_schemas(true)` resolves it),
`standard_conforming_strings`, the signatures of every user-defined
function, operator and cast (they decide how an expression resolves), and
the definitions of the types and tables `reads(what)` names (an enum's
labels, a domain's base type and constraints, a table's columns with their
types and collations). Anything that could make a kept result stale changes
the key, and a changed key misses. "Could not render" is never kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import warnings
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    ClassVar,
    Dict,
    Generic,
    Hashable,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from pgmig.db.connect import rolled_back
from pgmig.db.quoting import qualified, quote_ident, terminated
from pgmig.errors import PgmigWarning
from pgmig.schema.protocol import DatabaseContext
from pgmig.schema.types import TYPE_JOINS, TYPE_SQL

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg

W = TypeVar("W", bound=Hashable)

_CACHE_FORMAT = 1
# A chunk creates at most this many times max_locks_per_transaction relations (see the module docstring).
_LOCKS_PER_CHUNK = 8
_MAX_ENTRIES = 100_000  # the oldest entries go first beyond this


class NormalizationWarning(PgmigWarning):
    """The server could not normalize some model objects (no privilege to build scratch objects)."""


@dataclass(frozen=True)
class Reads:
    """What a rendering depends on besides its own text: part of its cache key.

    `types`: type names as SQL spells them (`status_0`, `character
    varying(20)[]`), resolved with `to_regtype` on the search path;
    `tables`: (schema, table) whose columns the rendering reads;
    `user_types`: every user-defined type, for renderings whose types
    cannot be listed (a function's signature, a view's query).
    """

    types: Tuple[str, ...] = ()
    tables: Tuple[Tuple[str, str], ...] = ()
    user_types: bool = False


@dataclass(frozen=True)
class Scratch:
    """Where one chunk's scratch objects go and what they are called.

    `schema` is what statements qualify names with (`pg_temp`, or the
    target schema when the role may not create temporary objects);
    `namespace` is the real name of that schema, known when `read` runs
    (`pg_temp_3`), for queries that filter by schema name.
    """

    schema: str
    prefix: str
    temporary: bool
    namespace: str = ""

    def name(self, *parts: object) -> str:
        """A scratch object's name: the prefix and `parts` (63 bytes at most, as Postgres keeps them)."""
        return (self.prefix + "_".join(str(part) for part in parts))[:63]

    def qualified(self, name: str) -> str:
        return qualified(self.schema, name)

    def regclass(self, name: str) -> str:
        """`name` as text for `to_regclass()`/`::regclass`."""
        return f"{quote_ident(self.schema)}.{quote_ident(name)}"

    def create_table(
        self,
        name: str,
        columns: Sequence[Tuple[str, str, Optional[str]]] = (),
        like: Optional[Tuple[str, str]] = None,
    ) -> str:
        """CREATE [TEMPORARY] TABLE for a scratch table: `columns` are (name, type, default or None),
        or `like` (schema, table) copies a table's columns (`LIKE`: names, types, collations, NOT NULL)."""
        temporary = "TEMPORARY " if self.temporary else ""
        if like is not None:
            body = f"(LIKE {qualified(*like)})"
        else:
            body = "(" + ", ".join(_column(n, t, d) for n, t, d in columns) + ")"
        return f"CREATE {temporary}TABLE {self.qualified(name)} {body}"

    @property
    def pattern(self) -> str:
        """A LIKE pattern matching the names of this scratch's objects (and of no other object)."""
        return self.prefix.replace("_", "\\_") + "%"


def _column(name: str, data_type: str, default: Optional[str]) -> str:
    return f"{quote_ident(name)} {data_type}" + (f" DEFAULT {default}" if default is not None else "")


# Object kind -> the fields a renderer spells the server's way (see Renderer.fields).
_TEXTUAL: Dict[str, Tuple[str, ...]] = {}


class Renderer(Generic[W]):
    """What a kind declares so that the service can render its model objects (see the module docstring).

    `object_kind` and `fields` name the schema objects' fields whose
    spelling the rendering decides (a column's `data_type` and `default`):
    when the server could render nothing (no privilege), a model object
    that differs from the database's only in those fields is not reported
    as a change (see `unverified_difference`).
    """

    kind: ClassVar[str] = ""
    version: ClassVar[int] = 1
    object_kind: ClassVar[str] = ""
    fields: ClassVar[Tuple[str, ...]] = ()
    relations: ClassVar[float] = 1.0
    temporary: ClassVar[bool] = True
    settings: ClassVar[Tuple[str, ...]] = ()
    cacheable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.object_kind and cls.fields:
            known = _TEXTUAL.get(cls.object_kind, ())
            _TEXTUAL[cls.object_kind] = known + tuple(f for f in cls.fields if f not in known)

    def key(self, what: W) -> str:
        """The text identifying `what` (default: `what` as JSON; tuples of strings and numbers do)."""
        return json.dumps(what, separators=(",", ":"))

    def reads(self, what: W) -> Reads:
        return Reads()

    def statements(self, items: Sequence[Tuple[int, W]], scratch: Scratch) -> List[str]:
        raise NotImplementedError

    async def read(self, items: Sequence[Tuple[int, W]], scratch: Scratch, db: DatabaseContext) -> Dict[int, Any]:
        raise NotImplementedError


class NormalForms:
    """The service for one diff (or several): renders, with the cache kept at `path` when given.

    `scratch_statements` lists every scratch statement sent (one entry per
    script), the evidence that a diff did, or did not, build anything.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]", None] = None) -> None:
        self.path = Path(path) if path is not None else None
        self.scratch_statements: List[str] = []
        self._entries: Dict[str, Any] = {}
        self._dirty = False
        self._loaded = False
        self._stamp: Optional["asyncio.Future[Optional[str]]"] = None
        self._user_types: Optional["asyncio.Future[Optional[str]]"] = None
        self._privileges: Optional["asyncio.Future[Tuple[bool, bool]]"] = None
        self._budget: Optional[int] = None
        self._temp_schema: Dict[int, str] = {}
        # True once the role turned out unable to build scratch objects anywhere.
        self.refused = False
        self._warned = False

    # -- the cache file -------------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # no cache yet, or an unreadable one: start afresh
        if isinstance(data, dict) and data.get("format") == _CACHE_FORMAT and isinstance(data.get("entries"), dict):
            self._entries = data["entries"]

    def save(self) -> None:
        """Write the cache if it changed (atomically: a concurrent reader sees the old file or the new)."""
        if self.path is None or not self._dirty:
            return
        entries = self._entries
        if len(entries) > _MAX_ENTRIES:
            entries = dict(list(entries.items())[-_MAX_ENTRIES:])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(
            json.dumps({"format": _CACHE_FORMAT, "entries": entries}, separators=(",", ":")), encoding="utf-8"
        )
        os.replace(temporary, self.path)
        self._dirty = False

    # -- rendering --------------------------------------------------------------------------

    async def render(self, db: DatabaseContext, renderer: Renderer[W], whats: Iterable[W]) -> Dict[W, Any]:
        """`{what: the server's rendering, or None when it could not be built}` for each distinct `what`."""
        unique = list(dict.fromkeys(whats))
        results: Dict[W, Any] = {}
        if not unique:
            return results
        keys: Dict[W, Optional[str]] = {}
        if self.path is not None and renderer.cacheable:
            self._load()
            keys = await self._keys(db, renderer, unique)
            for what in unique:
                key = keys.get(what)
                if key is not None and key in self._entries:
                    results[what] = self._entries[key]
        misses = [what for what in unique if what not in results]
        if misses:
            fresh = await self._build(db, renderer, misses)
            for what in misses:
                value = fresh.get(what)
                if value is not None:
                    value = json.loads(json.dumps(value))  # the shape a cached value has
                    key = keys.get(what)
                    if key is not None:
                        self._entries[key] = value
                        self._dirty = True
                results[what] = value
        return results

    async def _build(self, db: DatabaseContext, renderer: Renderer[W], whats: Sequence[W]) -> Dict[W, Any]:
        import asyncpg

        place = await self._place(db, renderer)
        if place is None:
            self.refused = True
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"the role may neither create temporary objects nor create in schema {db.schema}, "
                    "so expressions cannot be compared in the server's spelling: objects that differ "
                    "only in spelling are not reported as changes",
                    NormalizationWarning,
                    stacklevel=2,
                )
            return {}
        schema, temporary = place
        size = max(1, int(await self._lock_budget(db) // max(renderer.relations, 1e-9)))
        connection = db.connection
        scratch = Scratch(schema=schema, prefix=f"pgmig_{secrets.token_hex(4)}_", temporary=temporary)
        out: Dict[W, Any] = {}
        async with rolled_back(connection):
            for first in range(0, len(whats), size):
                items: List[Tuple[int, W]] = list(enumerate(whats[first : first + size], start=first))
                async with rolled_back(connection):
                    for setting in renderer.settings:
                        await connection.execute(setting)
                    built = await self._execute(connection, renderer, items, scratch)
                    if not built:
                        continue
                    if temporary:
                        scratch = replace(scratch, namespace=await self._temp_namespace(connection))
                    else:
                        scratch = replace(scratch, namespace=schema)
                    try:
                        rendered = await renderer.read(built, scratch, db)
                    except asyncpg.PostgresError:
                        continue
                    for number, what in built:
                        if number in rendered:
                            out[what] = rendered[number]
        return out

    async def _execute(
        self, connection: "asyncpg.Connection", renderer: Renderer[W], items: List[Tuple[int, W]], scratch: Scratch
    ) -> List[Tuple[int, W]]:
        """Build `items` together, else one by one; the items built."""
        import asyncpg

        async def attempt(group: List[Tuple[int, W]]) -> bool:
            script = "\n".join(terminated(statement) for statement in renderer.statements(group, scratch))
            if not script:
                return True
            self.scratch_statements.append(script)
            try:
                async with connection.transaction():
                    await connection.execute(script)  # one simple-protocol round trip
            except asyncpg.PostgresError:
                return False
            return True

        if await attempt(items):
            return items
        if len(items) == 1:
            return []
        return [item for item in items if await attempt([item])]

    async def _place(self, db: DatabaseContext, renderer: Renderer[Any]) -> Optional[Tuple[str, bool]]:
        """(schema, temporary) where scratch objects go, or None when the role can create nowhere."""
        if self._privileges is None:
            self._privileges = asyncio.ensure_future(self._read_privileges(db))
        temp, create = await self._privileges
        if temp and renderer.temporary:
            return "pg_temp", True
        if create:
            return db.schema, False
        return None

    @staticmethod
    async def _read_privileges(db: DatabaseContext) -> Tuple[bool, bool]:
        row = await db.connection.fetchrow(
            "SELECT pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMPORARY'),"
            " COALESCE(pg_catalog.has_schema_privilege(n.oid, 'CREATE'), false)"
            " FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1",
            db.schema,
        )
        return row is not None and bool(row[0]), row is not None and bool(row[1])

    async def _lock_budget(self, db: DatabaseContext) -> int:
        if self._budget is None:
            setting = await db.connection.fetchval("SELECT pg_catalog.current_setting('max_locks_per_transaction')")
            self._budget = _LOCKS_PER_CHUNK * int(setting)
        return self._budget

    async def _temp_namespace(self, connection: "asyncpg.Connection") -> str:
        found = self._temp_schema.get(id(connection))
        if found is None:
            found = await connection.fetchval(
                "SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = pg_catalog.pg_my_temp_schema()"
            )
            self._temp_schema[id(connection)] = found = str(found)
        return found

    # -- cache keys -------------------------------------------------------------------------

    async def _keys(self, db: DatabaseContext, renderer: Renderer[W], whats: Sequence[W]) -> Dict[W, Optional[str]]:
        """{what: cache key}; None for every `what` when what it reads could not be read."""
        import asyncpg

        if self._stamp is None:
            self._stamp = asyncio.ensure_future(_stamp(db))
        stamp = await self._stamp
        if stamp is None:
            return {}
        reads = {what: renderer.reads(what) for what in whats}
        types = sorted({name for r in reads.values() for name in r.types})
        tables = sorted({table for r in reads.values() for table in r.tables})
        user_types: Optional[str] = ""
        if any(r.user_types for r in reads.values()):
            if self._user_types is None:
                self._user_types = asyncio.ensure_future(_user_types(db))
            user_types = await self._user_types
            if user_types is None:
                return {}
        try:
            type_prints = await _type_prints(db, types) if types else {}
            table_prints = await _table_prints(db, tables) if tables else {}
        except asyncpg.PostgresError:  # e.g. to_regtype refusing a malformed name (before PostgreSQL 16)
            return {}
        # The key hashes "\x00".join([stamp, kind, version, key(what), types..., tables..., user types]);
        # the first three are the same for every `what`: hashed once, the hash copied.
        common = hashlib.sha256("\x00".join([stamp, renderer.kind, str(renderer.version), ""]).encode())
        types_of = {name: f"type {name}={type_prints.get(name)}" for name in types}
        tables_of = {table: f"table {table[0]}.{table[1]}={table_prints.get(table)}" for table in tables}
        user = f"user types={user_types}"
        out: Dict[W, Optional[str]] = {}
        for what, read in reads.items():
            parts = [
                renderer.key(what),
                *(types_of[name] for name in read.types),
                *(tables_of[table] for table in read.tables),
                user if read.user_types else "",
            ]
            digest = common.copy()
            digest.update("\x00".join(parts).encode())
            out[what] = digest.hexdigest()
        return out


# A type's definition as far as rendering an expression can depend on it:
# kind, schema and name; an enum's labels; a domain's base type, its
# constraints and its base's labels; a composite's attributes; a range's subtype.
# For an array, its element type's.
_TYPE_PRINT = """
(SELECT pg_catalog.concat_ws('|', b.typtype, bn.nspname, b.typname, b.typcollation,
    (SELECT pg_catalog.string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e
     WHERE e.enumtypid IN (b.oid, b.typbasetype)),
    CASE WHEN b.typtype = 'd' THEN pg_catalog.format_type(b.typbasetype, b.typtypmod) || b.typnotnull::text
      || COALESCE((SELECT pg_catalog.string_agg(pg_catalog.pg_get_constraintdef(c.oid), ',' ORDER BY c.conname)
                   FROM pg_catalog.pg_constraint c WHERE c.contypid = b.oid), '') END,
    CASE WHEN b.typtype = 'c' THEN (SELECT pg_catalog.string_agg(a.attname || ' '
      || pg_catalog.format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = b.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END,
    CASE WHEN b.typtype = 'r' THEN (SELECT pg_catalog.format_type(r.rngsubtype, NULL) FROM pg_catalog.pg_range r
      WHERE r.rngtypid = b.oid) END)
 FROM pg_catalog.pg_type t
 JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE t.oid END
 JOIN pg_catalog.pg_namespace bn ON bn.oid = b.typnamespace
 WHERE t.oid = {oid})
"""

TYPE_PRINTS_QUERY = (
    "SELECT w.name, " + _TYPE_PRINT.format(oid="pg_catalog.to_regtype(w.name)") + " AS print"
    " FROM unnest($1::text[]) AS w(name)"
)

TABLE_PRINTS_QUERY = (
    """
SELECT w.schema, w.name,
       (SELECT pg_catalog.string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
                 || ' ' || a.attnotnull::text || ' ' || COALESCE(co.collname, '')
                 || CASE WHEN a.atttypid >= 16384 THEN ' ' || """
    + _TYPE_PRINT.format(oid="a.atttypid")
    + """ ELSE '' END, ',' ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute a
        LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS print
FROM unnest($1::text[], $2::text[]) AS w(schema, name)
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = w.schema
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.name
"""
)

# What decides how any expression resolves and prints: the server, the
# search path, string syntax, and the signatures (not the bodies) of every
# function, operator and cast created after initdb (oid >= 16384,
# FirstNormalObjectId), extensions' included.
STAMP_QUERY = """
SELECT pg_catalog.current_setting('server_version_num'),
       pg_catalog.current_schemas(true)::text,
       pg_catalog.current_setting('standard_conforming_strings'),
       (SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(s, ';' ORDER BY s), '')) FROM (
           SELECT n.nspname || '.' || p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')'
                  || p.prorettype::regtype::text || p.prokind::text || p.provariadic::text AS s
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid >= 16384
           UNION ALL
           SELECT n.nspname || '.' || o.oprname || o.oprleft::regtype::text || o.oprright::regtype::text
                  || o.oprresult::regtype::text
           FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
           WHERE o.oid >= 16384
           UNION ALL
           SELECT 'cast ' || c.castsource::regtype::text || ' ' || c.casttarget::regtype::text || c.castcontext::text
           FROM pg_catalog.pg_cast c WHERE c.oid >= 16384) AS signatures)
"""


async def _stamp(db: DatabaseContext) -> Optional[str]:
    import asyncpg

    try:
        async with db.connection.transaction():  # a failure must not abort the reading transaction
            row = await db.connection.fetchrow(STAMP_QUERY)
    except asyncpg.PostgresError:
        return None
    return None if row is None else "|".join(str(value) for value in row)


# Every user-defined type but tables' row types and arrays.
USER_TYPES_QUERY = (
    "SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(p, ';' ORDER BY p), '')) FROM (SELECT "
    + _TYPE_PRINT.format(oid="u.oid")  # `u`: the print's subquery has its own `t`
    + """ AS p
FROM pg_catalog.pg_type u LEFT JOIN pg_catalog.pg_class c ON c.oid = u.typrelid
WHERE u.oid >= 16384 AND NOT (u.typelem <> 0 AND u.typlen = -1) AND (c.oid IS NULL OR c.relkind = 'c')) AS prints"""
)


async def _user_types(db: DatabaseContext) -> Optional[str]:
    import asyncpg

    try:
        async with db.connection.transaction():  # a failure must not abort the reading transaction
            return str(await db.connection.fetchval(USER_TYPES_QUERY))
    except asyncpg.PostgresError:
        return None


async def _type_prints(db: DatabaseContext, names: Sequence[str]) -> Dict[str, Optional[str]]:
    async with db.connection.transaction():  # a refused name must not abort the reading transaction
        rows = await db.connection.fetch(TYPE_PRINTS_QUERY, list(names))
    return {row["name"]: row["print"] for row in rows}


async def _table_prints(db: DatabaseContext, tables: Sequence[Tuple[str, str]]) -> Dict[Tuple[str, str], Optional[str]]:
    rows = await db.connection.fetch(TABLE_PRINTS_QUERY, [s for s, _ in tables], [t for _, t in tables])
    return {(row["schema"], row["name"]): row["print"] for row in rows}


# -- the service of the diff in progress ---------------------------------------------------

_current: ContextVar[Optional[NormalForms]] = ContextVar("pgmig_normal_forms", default=None)


@asynccontextmanager
async def normal_forms(service: NormalForms) -> AsyncIterator[NormalForms]:
    """Inside: `render` uses `service` (the engine sets this around a diff); its cache is saved on the way out."""
    token = _current.set(service)
    try:
        yield service
    finally:
        _current.reset(token)
        service.save()


def current_service() -> Optional[NormalForms]:
    """The service of the diff in progress (see `normal_forms`), if any."""
    return _current.get()


def textually_equal(current: Any, desired: Any) -> bool:
    """True when `desired` differs from `current` at most in how the fields a renderer spells
    (`Renderer.fields`) are written, as far as can be told without the server.

    Without the server the normal form is unknown, so the texts are compared
    loosely (`_loose`: case, white space, parentheses and `::type` casts set
    aside, `!=` read as `<>`): `qty >= 0 AND qty < 1000` matches the catalog's
    `((qty >= 0) AND (qty < 1000))`, and `status <> 'v0'` matches
    `(status <> 'v0'::status)`; `qty < 2000` does not, and stays a change.
    """
    fields = _TEXTUAL.get(getattr(desired, "kind", ""), ())
    if not fields or type(current) is not type(desired):
        return False
    if desired.evolve(**{name: getattr(current, name) for name in fields}) != current:
        return False
    return all(_loose(getattr(current, name)) == _loose(getattr(desired, name)) for name in fields)


# A cast the catalog adds (`::text`, `::character varying(20)`, `::"my type"[]`).
_CAST = re.compile(
    r'::\s*(?:"[^"]*"|[a-z_][a-z0-9_$]*)(?:\s*\.\s*(?:"[^"]*"|[a-z_][a-z0-9_$]*))*'
    r"(?:\s+(?:varying|precision|with(?:out)?\s+time\s+zone))*(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?"
    r"(?:\s*\[\s*\])*",
    re.IGNORECASE,
)


def _loose(value: Any) -> str:
    """`value`'s text with what the server may add or drop set aside (see `textually_equal`)."""
    text = _CAST.sub("", value if isinstance(value, str) else repr(value)).lower().replace("!=", "<>")
    return "".join(ch for ch in text if not ch.isspace() and ch not in "()")


def reconcile_unverified(
    desired: Sequence[Tuple[Any, Any]], current: Mapping[Any, Any]
) -> Tuple[List[Tuple[Any, Any]], int]:
    """When the server could render nothing: the model's (key, object) pairs with each object that
    differs from a database object only in spelling replaced by that object; and how many were.

    An object under the database object's key (a column, a named check, an
    index) is compared with it; one whose key holds the spelling (an
    unnamed check) with the database's objects of its kind and parent that
    no model object claims. Such a difference could not be verified, and a
    diff must not report what it could not verify.
    """
    keys = {key for key, _ in desired}
    spare: Dict[Tuple[str, Any], List[Tuple[Any, Any]]] = {}
    for key, obj in current.items():
        if key not in keys:
            spare.setdefault((obj.kind, getattr(obj, "parent", None)), []).append((key, obj))
    out: List[Tuple[Any, Any]] = []
    replaced = 0
    for key, obj in desired:
        old = current.get(key)
        if old is not None:
            if old != obj and textually_equal(old, obj):
                obj, replaced = old, replaced + 1
        else:
            candidates = spare.get((obj.kind, getattr(obj, "parent", None)), [])
            for index, (old_key, old) in enumerate(candidates):
                if textually_equal(old, obj):
                    key, obj, replaced = old_key, old, replaced + 1
                    del candidates[index]
                    break
        out.append((key, obj))
    return out, replaced


async def render(db: DatabaseContext, renderer: Renderer[W], whats: Iterable[W]) -> Dict[W, Any]:
    """`{what: result or None}`, through the diff's service (see `normal_forms`), else one without a cache."""
    service = _current.get()
    if service is None:
        service = NormalForms()
    return await service.render(db, renderer, whats)


# -- types and defaults: the rendering every kind may need ----------------------------------


ColumnShape = Union[Tuple[str, Optional[str]], Tuple[str, None, str, Tuple[Tuple[str, str], ...]]]
"""(type, default) of a column; or (type, None, generation expression, (name, type) of the columns it reads)."""


class ColumnSpelling(Renderer[ColumnShape]):
    """(type, default or None) -> [type as format_type prints it, default as pg_get_expr prints it].

    Built as columns of scratch tables (up to 1,000 a table; Postgres allows 1,600).
    A generated column, (type, None, expression, columns read), gets a scratch
    table of its own holding the columns its expression reads (under their own
    names, which may be anything), and renders as [type, expression].
    """

    kind = "column"
    version = 3  # 3: a domain's name is schema-qualified (TYPE_SQL)
    object_kind = "column"
    fields = ("data_type", "default", "generated")
    relations = 0.001
    per_table: ClassVar[int] = 1000

    def reads(self, what: ColumnShape) -> Reads:
        if len(what) == 4:
            return Reads(types=(what[0], *(data_type for _, data_type in what[3])))
        return Reads(types=(what[0],))

    def statements(self, items: Sequence[Tuple[int, ColumnShape]], scratch: Scratch) -> List[str]:
        out = []
        plain = [(number, what) for number, what in items if len(what) == 2]
        for start in range(0, len(plain), self.per_table):
            part = plain[start : start + self.per_table]
            columns = [(f"c{number}", what[0], what[1]) for number, what in part]
            out.append(scratch.create_table(scratch.name("t", part[0][0]), columns))
        for number, what in items:
            if len(what) == 4:
                generated = f"{what[0]} GENERATED ALWAYS AS ({what[2]}) STORED"
                read = [(name, data_type, None) for name, data_type in what[3] if name != f"c{number}"]
                out.append(scratch.create_table(scratch.name("g", number), [*read, (f"c{number}", generated, None)]))
        return out

    async def read(
        self, items: Sequence[Tuple[int, ColumnShape]], scratch: Scratch, db: DatabaseContext
    ) -> Dict[int, Any]:
        rows = await db.connection.fetch(
            f"""
            SELECT a.attname, {TYPE_SQL} AS data_type,
                   pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_expr
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            {TYPE_JOINS}
            LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            -- A generated column's table also holds the columns it reads: only its own column counts.
            WHERE n.nspname = $1 AND c.relname LIKE $2
              AND (a.attgenerated <> '' OR c.relname NOT LIKE $3)
            """,
            scratch.namespace,
            scratch.pattern,
            scratch.name("g", "").replace("_", "\\_") + "%",
        )
        return {int(row["attname"][1:]): [row["data_type"], row["default_expr"]] for row in rows}


async def normal_types(db: DatabaseContext, types: Iterable[str]) -> Dict[str, str]:
    """`{type: as format_type prints it}` (`varchar(80)` -> `character varying(80)`); a type the
    server cannot build yet (an enum the plan creates) keeps its spelling."""
    wanted = list(dict.fromkeys(types))
    shapes: List[ColumnShape] = [(t, None) for t in wanted]
    rendered = await render(db, ColumnSpelling(), shapes)
    return {t: (rendered.get((t, None)) or [t])[0] for t in wanted}


__all__ = [
    "ColumnShape",
    "ColumnSpelling",
    "NormalForms",
    "NormalizationWarning",
    "Reads",
    "Renderer",
    "Scratch",
    "current_service",
    "normal_forms",
    "normal_types",
    "render",
    "reconcile_unverified",
    "textually_equal",
]
