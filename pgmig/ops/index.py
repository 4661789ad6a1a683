"""Operations on indexes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..operations import Operation, register
from ..sql import ident_list, qualified, quote_ident

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


@register
@dataclass(frozen=True)
class AddIndex(Operation):
    """Create an index.

    `columns` are the index keys in order: a bare name (`email`) is a column
    and gets quoted; anything else, an already quoted name included, is SQL
    as Postgres prints it (`"Nick Name"`, `lower((email)::text)`, `a DESC`). `include` names columns; `where` and `options` (the
    storage parameters of `WITH (...)`) are SQL. `new_table` says the table
    is created by the same revision, so building the index blocks nobody.
    """

    name = "add_index"
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

    @property  # type: ignore[override]
    def transactional(self) -> bool:  # CREATE INDEX CONCURRENTLY refuses to run in a transaction block
        return not self.concurrently

    def statements(self) -> List[str]:
        return [
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

    def summary(self) -> str:
        kind = "unique index" if self.unique else "index"
        return f"create {kind} {self.index_name} on ({', '.join(self.columns)})"

    def hazards(self) -> Tuple[str, ...]:
        if self.new_table:
            return ()
        # A plain CREATE INDEX holds SHARE on the table for the whole build.
        return ("index_build",) if self.concurrently else ("index_build", "blocks_writes")


@register
@dataclass(frozen=True)
class DropIndex(Operation):
    name = "drop_index"
    index_name: str
    schema: str = "public"
    concurrently: bool = False

    @property  # type: ignore[override]
    def transactional(self) -> bool:
        return not self.concurrently

    def statements(self) -> List[str]:
        how = "DROP INDEX CONCURRENTLY " if self.concurrently else "DROP INDEX "
        return [how + qualified(self.schema, self.index_name)]

    def summary(self) -> str:
        return f"drop index {self.index_name}"
