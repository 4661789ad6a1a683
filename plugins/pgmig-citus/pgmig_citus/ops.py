"""Operations on distribution: what revision files call as `migrator.actor.run(...)`.

Each is one call of a Citus function on the coordinator (Citus docs, "Citus
Utility Functions"): the table is named by a text literal that Citus parses
as a qualified name, so quoted identifiers keep their case.

Citus runs DDL and these functions over one connection per node only when
`citus.multi_shard_modify_mode` is 'sequential' for the whole transaction; a
revision that mixes them with foreign keys needs it from the start (see the
README: the setting goes into the database URL).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Mapping, Optional, Tuple

from pgmig.api import Hazard, Operation, qualified, quote_literal, register, translate_type


def _relation(schema: str, table: str) -> str:
    """The table as the text argument Citus resolves to a regclass."""
    return quote_literal(qualified(schema, table))


# alter_distributed_table and undistribute_table copy the table into a new one and swap them
# (citus src/backend/distributed/commands/alter_table.c, ConvertTable), under an exclusive lock.
_REWRITES = (Hazard.REWRITES_TABLE, Hazard.ACCESS_EXCLUSIVE_LOCK)


def _copies_rows(table_exists: bool) -> Tuple[Hazard, ...]:
    """Distributing a table that exists copies its rows to the shards, writes waiting meanwhile;
    a table the same revision creates is empty."""
    return (Hazard.FULL_SCAN, Hazard.BLOCKS_WRITES) if table_exists else ()


# SQLSTATE undefined_function (PostgreSQL docs, Appendix A): how a database without Citus answers.
UNDEFINED_FUNCTION = "42883"

NO_CITUS = (
    "the database has no citus extension, and distributing tables runs only on a Citus coordinator. "
    "generate's proof, check and status drift run the revisions on a scratch database made on dev_url's "
    "server (the embedded PostgreSQL, without Citus, when dev_url is unset): set dev_url to a Citus "
    "coordinator whose new databases get the extension on every node and the workers registered "
    '(pgmig-citus README, "Scratch databases"), or generate with --no-verify and run `pgmig up` on the coordinator'
)


class _CitusFunction(Operation):
    """A call of one of Citus's functions (`name` is the function's)."""

    def explain_failure(self, error: Exception) -> Optional[str]:
        """A database without the citus extension has none of its functions: say so, and what to do."""
        if getattr(error, "sqlstate", None) == UNDEFINED_FUNCTION and f"{self.name}(" in str(error):
            return NO_CITUS
        return None

    def schemas_translated(self, mapping: Mapping[str, str]) -> "_CitusFunction":
        """The group it joins (`colocate_with`, "schema.table") in the target's schema too, for
        schema-per-tenant fleets (`pgmig.ops.base.translate_schemas`)."""
        group = getattr(self, "colocate_with", None)
        if not isinstance(group, str) or group == "none":
            return self
        return replace(self, colocate_with=translate_type(group, mapping))  # type: ignore[call-arg]


@register
@dataclass(frozen=True)
class CreateDistributedTable(_CitusFunction):
    """SELECT create_distributed_table(table, column, colocate_with => ..., shard_count => ...).

    `colocate_with` is "schema.table" (quoted where needed) of a distributed
    table, or None for a new colocation group ('none'). `table_exists`: the
    table was there before this revision, so its rows are copied to the
    shards (a full scan under a lock that blocks writes).
    """

    name = "create_distributed_table"
    table_name: str
    column_name: str
    schema: str = "public"
    colocate_with: Optional[str] = None
    shard_count: Optional[int] = None
    table_exists: bool = False

    def statements(self) -> List[str]:
        args = [_relation(self.schema, self.table_name), quote_literal(self.column_name)]
        args.append(f"colocate_with => {quote_literal(self.colocate_with or 'none')}")
        if self.shard_count is not None:
            args.append(f"shard_count => {int(self.shard_count)}")
        return [f"SELECT pg_catalog.create_distributed_table({', '.join(args)})"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return _copies_rows(self.table_exists)


@register
@dataclass(frozen=True)
class CreateReferenceTable(_CitusFunction):
    """SELECT create_reference_table(table): a copy of the table on every node."""

    name = "create_reference_table"
    table_name: str
    schema: str = "public"
    table_exists: bool = False

    def statements(self) -> List[str]:
        return [f"SELECT pg_catalog.create_reference_table({_relation(self.schema, self.table_name)})"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return _copies_rows(self.table_exists)


@register
@dataclass(frozen=True)
class UndistributeTable(_CitusFunction):
    """SELECT undistribute_table(table): the rows come back into one local table on the coordinator.

    Citus refuses while a foreign key references the table or leaves it
    (without cascade_via_foreign_keys, which pgmig never passes: it would
    undistribute every table the keys reach); plans drop those keys first.
    """

    name = "undistribute_table"
    table_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"SELECT pg_catalog.undistribute_table({_relation(self.schema, self.table_name)})"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return _REWRITES


@register
@dataclass(frozen=True)
class AlterDistributedTable(_CitusFunction):
    """SELECT alter_distributed_table(table, distribution_column => ..., shard_count => ...,
    colocate_with => ..., cascade_to_colocated => ...): a new distribution column, shard count or
    colocation group. The table is rewritten and its shards moved.

    `colocate_with`: "schema.table" of the group to join, or "none" for a
    group of its own; None leaves the group alone. `cascade_to_colocated`
    True changes the shard count of the whole group.
    """

    name = "alter_distributed_table"
    table_name: str
    schema: str = "public"
    column_name: Optional[str] = None
    shard_count: Optional[int] = None
    colocate_with: Optional[str] = None
    cascade_to_colocated: Optional[bool] = None

    def statements(self) -> List[str]:
        args = [_relation(self.schema, self.table_name)]
        if self.column_name is not None:
            args.append(f"distribution_column => {quote_literal(self.column_name)}")
        if self.shard_count is not None:
            args.append(f"shard_count => {int(self.shard_count)}")
        if self.colocate_with is not None:
            args.append(f"colocate_with => {quote_literal(self.colocate_with)}")
        if self.cascade_to_colocated is not None:
            args.append(f"cascade_to_colocated => {'true' if self.cascade_to_colocated else 'false'}")
        return [f"SELECT pg_catalog.alter_distributed_table({', '.join(args)})"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return _REWRITES


__all__ = ["AlterDistributedTable", "CreateDistributedTable", "CreateReferenceTable", "UndistributeTable"]
