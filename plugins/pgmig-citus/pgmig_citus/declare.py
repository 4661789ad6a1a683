"""How users declare, next to their models, how Citus spreads each table.

    from pgmig_citus import distributed, reference

    distributed(Order, "tenant_id", shard_count=16)          # hash-distributed by tenant_id
    distributed(OrderLine, "tenant_id", colocate_with=Order)  # its shards live beside Order's
    reference(Country)                                        # a full copy on every node

The first argument is the table: a SQLModel or declarative model class, or a
SQLAlchemy `Table`. The declaration is kept on that table's MetaData (see
`pgmig.api.declare`), so wherever pgmig finds the models it finds these too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from pgmig.api import DeclarationError, declare

HASH = "hash"
REFERENCE = "reference"


@dataclass(frozen=True)
class TableDistribution:
    """One table's declared distribution.

    `method`: "hash" (create_distributed_table) or "reference"
    (create_reference_table). `schema` None: the managed schema.
    `colocate_with`: (schema or None, table) of the table whose colocation
    group this one joins; None: a group of its own (Citus's
    `colocate_with => 'none'`), which other tables may join.
    `shard_count`: None takes the cluster's `citus.shard_count` (a table
    joining another's group takes that group's count).
    """

    table: str
    method: str
    schema: Optional[str] = None
    column: Optional[str] = None
    colocate_with: Optional[Tuple[Optional[str], str]] = None
    shard_count: Optional[int] = None


def _table(target: Any, what: str) -> Any:
    """The SQLAlchemy Table behind `target` (a Table, or a model class with `__table__`)."""
    from sqlalchemy import Table

    if isinstance(target, Table):
        return target
    table = getattr(target, "__table__", None)
    if isinstance(table, Table):
        return table
    raise DeclarationError(f"{what}: {target!r} is not a table; pass a SQLModel table class or a sqlalchemy Table")


def distributed(
    table: Any, column: str, *, colocate_with: Any = None, shard_count: Optional[int] = None
) -> TableDistribution:
    """Declare `table` hash-distributed by `column` (Citus's `create_distributed_table`).

    `colocate_with`: another distributed table (class, Table, or "schema.table"
    name) whose shards this table's shards sit beside: joins between them,
    and foreign keys from one to the other, stay on one node. Colocated
    tables share their shard count, so give `shard_count` only to a table
    that colocates with none. Raises DeclarationError for a column the table
    lacks, a shard count below 1, or both `colocate_with` and `shard_count`.
    """
    found = _table(table, "distributed()")
    if column not in found.c:
        raise DeclarationError(f"distributed({found.name!r}, {column!r}): the table has no column {column!r}")
    if shard_count is not None and shard_count < 1:
        raise DeclarationError(f"distributed({found.name!r}): shard_count must be at least 1, not {shard_count}")
    if colocate_with is not None and shard_count is not None:
        raise DeclarationError(
            f"distributed({found.name!r}): give shard_count or colocate_with, not both: a table joining "
            "another's colocation group takes that group's shard count"
        )
    target: Optional[Tuple[Optional[str], str]] = None
    if isinstance(colocate_with, str):
        schema, _, name = colocate_with.rpartition(".")
        target = (schema or None, name)
    elif colocate_with is not None:
        other = _table(colocate_with, f"distributed({found.name!r}, colocate_with=...)")
        target = (other.schema, other.name)
    return declare(found.metadata, TableDistribution(found.name, HASH, found.schema, column, target, shard_count))


def reference(table: Any) -> TableDistribution:
    """Declare `table` a reference table (Citus's `create_reference_table`): a full copy on every
    node, which distributed tables may reference with foreign keys and join locally."""
    found = _table(table, "reference()")
    return declare(found.metadata, TableDistribution(found.name, REFERENCE, found.schema))
