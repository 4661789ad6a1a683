"""Operations on indexes."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, List, Optional, Sequence, Tuple

from pgmig.db.quoting import ident_list, qualified, quote_ident, quote_literal
from pgmig.errors import RevisionError
from pgmig.ops.base import Hazard, Operation, register

# A key written as a bare name is a column name (quoted by the operation);
# anything else (`"Nick Name"`, `lower((email)::text)`, `a DESC`) is SQL as written.
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")


def key_sql(key: str) -> str:
    return quote_ident(key) if _BARE_NAME.match(key) else key


def create_index_sql(
    *,
    schema: Optional[str],
    table_name: str,
    index_name: str,
    columns: Sequence[str],
    unique: bool = False,
    method: str = "btree",
    where: Optional[str] = None,
    include: Sequence[str] = (),
    nulls_not_distinct: bool = False,
    options: Optional[str] = None,
    concurrently: bool = False,
) -> str:
    """The one CREATE INDEX builder: revisions run it and normalization renders models through it."""
    sql = "CREATE UNIQUE INDEX " if unique else "CREATE INDEX "
    if concurrently:
        sql += "CONCURRENTLY "
    sql += f"{quote_ident(index_name)} ON {qualified(schema, table_name)} USING {quote_ident(method)} "
    sql += "(" + ", ".join(key_sql(key) for key in columns) + ")"
    if include:
        sql += f" INCLUDE ({ident_list(include)})"
    if nulls_not_distinct:
        sql += " NULLS NOT DISTINCT"
    if options:
        sql += f" WITH ({options})"
    if where:
        sql += f" WHERE {where}"
    return sql


def drop_invalid_index_sql(schema: str, index_name: str) -> str:
    """Drop the index `schema.index_name` if it exists and is INVALID; leave a valid one alone.

    A CREATE INDEX CONCURRENTLY that fails (duplicate rows for a unique index,
    a cancel, a lock timeout) leaves its index behind, marked invalid, and the
    retry would then stop at "relation already exists". A DO block runs
    outside a transaction block as its own statement, but cannot run DROP
    INDEX CONCURRENTLY; a plain DROP INDEX is acceptable here because an
    invalid index serves no query and holds no rows anyone reads, so dropping
    it reads nothing: the ACCESS EXCLUSIVE lock it takes on the table lasts
    only for the catalog update (and lock_timeout bounds the wait for it).
    """
    condition = (
        "SELECT 1 FROM pg_catalog.pg_index i "
        "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = {quote_literal(schema)} AND c.relname = {quote_literal(index_name)} "
        "AND NOT i.indisvalid"
    )
    body = f"BEGIN IF EXISTS ({condition}) THEN DROP INDEX {qualified(schema, index_name)}; END IF; END"
    tag = "$pgmig$"
    while tag in body:  # a name that contains the quote's tag
        tag = tag[:-1] + "_$"
    return f"DO {tag} {body} {tag}"


_EXISTING_INDEX = """
SELECT i.indisvalid AS valid, i.indisunique AS is_unique, am.amname AS method,
       tn.nspname AS table_schema, t.relname AS table_name, i.indnkeyatts AS key_count,
       ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k, true)
             FROM pg_catalog.generate_series(1, i.indnatts) AS k ORDER BY k) AS keys,
       pg_catalog.pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE n.nspname = $1 AND c.relname = $2
"""

# Sort order, null order, collation and operator class follow a key in the
# CREATE INDEX text but are not part of pg_get_indexdef(index, column, ...).
_KEY_OPTIONS = re.compile(r"(\s+(ASC|DESC|NULLS\s+(FIRST|LAST)|COLLATE\s+\S+))+\s*\Z", re.IGNORECASE)


def _spelling(sql: str) -> str:
    """A key or predicate with quotes, parentheses, case and spaces left out: enough to tell
    whether an index the catalog holds is the one a step builds, across the ways it is spelled."""
    return re.sub(r'[\s"()]', "", sql).lower()


def concurrent(operations: Sequence[Operation]) -> List[Operation]:
    """`operations` with every index build and drop on an existing table made CONCURRENTLY.

    What `generate --concurrently` applies to both directions of a revision,
    which must then be marked `transactional = False`.
    """
    out: List[Operation] = []
    for op in operations:
        if isinstance(op, AddIndex) and not op.new_table:
            op = replace(op, concurrently=True)
        elif isinstance(op, DropIndex):
            op = replace(op, concurrently=True)
        out.append(op)
    return out


@register
@dataclass(frozen=True)
class AddIndex(Operation):
    """Create an index.

    `columns` are the index keys in order: a bare name (`email`) is a column
    and gets quoted; anything else, an already quoted name included, is SQL
    as Postgres prints it (`"Nick Name"`, `lower((email)::text)`, `a DESC`). `include` names columns; `where` and `options` (the
    storage parameters of `WITH (...)`) are SQL. `new_table` says the table
    is created by the same revision, so building the index blocks nobody.

    `concurrently=True` builds without blocking writes (SHARE UPDATE
    EXCLUSIVE instead of SHARE) and outside any transaction block; it first
    drops an INVALID index of the same name left by an earlier failed
    build, so running the revision again after a failure just works.
    """

    name = "add_index"
    locks = 4
    keeps_rows = True
    table_name: str
    index_name: str
    columns: Tuple[str, ...]
    unique: bool = False
    method: str = "btree"
    where: Optional[str] = None
    include: Tuple[str, ...] = ()
    nulls_not_distinct: bool = False
    options: Optional[str] = None
    schema: str = "public"
    concurrently: bool = False
    new_table: bool = False

    def __post_init__(self) -> None:
        # Revision files pass lists; keep the operation hashable and comparable.
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "include", tuple(self.include))
        if not self.columns:
            raise ValueError("an index needs at least one column or expression")

    @property
    def transactional(self) -> bool:  # type: ignore[override]  # CREATE INDEX CONCURRENTLY: no transaction block
        return not self.concurrently

    def statements(self) -> List[str]:
        cleanup = [drop_invalid_index_sql(self.schema, self.index_name)] if self.concurrently else []
        return cleanup + [
            create_index_sql(
                schema=self.schema,
                table_name=self.table_name,
                index_name=self.index_name,
                columns=self.columns,
                unique=self.unique,
                method=self.method,
                where=self.where,
                include=self.include,
                nulls_not_distinct=self.nulls_not_distinct,
                options=self.options,
                concurrently=self.concurrently,
            )
        ]

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when a valid index of this name is there with this definition (an earlier run
        built it); False when there is none, or an INVALID one (a failed or killed CONCURRENTLY
        build, which the statements drop and build again). A valid index of this name with another
        table, method, uniqueness, keys or predicate is a RevisionError naming both definitions.
        """
        row = await connection.fetchrow(_EXISTING_INDEX, self.schema, self.index_name)
        if row is None or not row["valid"]:
            return False
        keys = [key_sql(key) for key in self.columns]
        wanted = [_spelling(_KEY_OPTIONS.sub("", key)) for key in keys] + [
            _spelling(quote_ident(name)) for name in self.include
        ]
        same = (
            (row["table_schema"], row["table_name"]) == (self.schema, self.table_name)
            and bool(row["is_unique"]) == self.unique
            and row["method"] == self.method
            and row["key_count"] == len(keys)
            and [_spelling(key) for key in row["keys"]] == wanted
            and _spelling(row["predicate"] or "") == _spelling(self.where or "")
        )
        if same:
            return True
        raise RevisionError(
            f"index {qualified(self.schema, self.index_name)} exists with another definition "
            f"({row['definition']}) than the step builds ({self.statements()[-1]}): drop or rename it, "
            "or give the step another index_name"
        )

    def hazards(self) -> Tuple[Hazard, ...]:
        if self.new_table:
            return ()
        # A plain CREATE INDEX holds SHARE on the table for the whole build;
        # a unique one also checks every existing row for duplicates.
        build: Tuple[Hazard, ...] = (Hazard.INDEX_BUILD,)
        hazards = build if self.concurrently else build + (Hazard.BLOCKS_WRITES,)
        return hazards + ((Hazard.FULL_SCAN,) if self.unique else ())


@register
@dataclass(frozen=True)
class DropIndex(Operation):
    """Drop an index; `concurrently=True` waits for running queries instead of blocking them."""

    name = "drop_index"
    locks = 4
    keeps_rows = True
    index_name: str
    schema: str = "public"
    concurrently: bool = False

    @property
    def transactional(self) -> bool:  # type: ignore[override]
        return not self.concurrently

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when no index of this name is left (an earlier run dropped it)."""
        found = await connection.fetchval("SELECT pg_catalog.to_regclass($1)", qualified(self.schema, self.index_name))
        return found is None

    def statements(self) -> List[str]:
        how = "DROP INDEX CONCURRENTLY " if self.concurrently else "DROP INDEX "
        return [how + qualified(self.schema, self.index_name)]


@register
@dataclass(frozen=True)
class RenameIndex(Operation):
    """Rename an index; SHARE UPDATE EXCLUSIVE on the index (PostgreSQL 12+: reads and writes go
    on), catalog only (ALTER INDEX ... RENAME TO)."""

    name = "rename_index"
    locks = 2
    keeps_rows = True
    index_name: str
    new_name: str
    schema: str = "public"

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the index has its new name and the old name is gone (an earlier run renamed it)."""
        old, new = (qualified(self.schema, name) for name in (self.index_name, self.new_name))
        found = await connection.fetchrow(
            "SELECT pg_catalog.to_regclass($1) IS NULL AS gone, pg_catalog.to_regclass($2) IS NOT NULL AS there",
            old,
            new,
        )
        return bool(found["gone"] and found["there"])

    def statements(self) -> List[str]:
        return [f"ALTER INDEX {qualified(self.schema, self.index_name)} RENAME TO {quote_ident(self.new_name)}"]
