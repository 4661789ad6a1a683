"""The distribution handler: how Citus spreads each table, compared with the cluster's catalog.

The cluster's truth is `pg_dist_partition` (one row per Citus table: its
method, distribution column and colocation group) and `pg_dist_colocation`
(each group's shard count), read on the coordinator. Hash-distributed
tables ('h') and reference tables ('n' with replication model 't') are
managed; Citus local tables and the legacy append/range methods are left
alone.

Colocation is compared as groups, not as the names users give: each side
lists, for every distributed table, the other tables of its group (within
the managed schemas). On the models a group is what `colocate_with` links
join; a table naming none starts a group of its own. A plan moves a table
(`alter_distributed_table(colocate_with => ...)`) when it must leave a
partner the models no longer colocate with it and is not on the side of the
group's first table, or when it must join the table it names (see
`_stays`); the others stay, so a changed grouping is reached in one plan,
in either direction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Tuple

from pgmig.api import (
    DatabaseContext,
    DeclarationError,
    Key,
    ModelContext,
    ObjectHandler,
    Operation,
    SchemaObject,
    declared,
    model_column_type,
    qualified,
)

from .declare import HASH, REFERENCE, TableDistribution
from .ops import AlterDistributedTable, CreateDistributedTable, CreateReferenceTable, UndistributeTable

Name = Tuple[str, str]  # (schema, table)


def _text(name: Name) -> str:
    return f"{name[0]}.{name[1]}"


@dataclass(frozen=True)
class Distribution(SchemaObject):
    """How Citus spreads one table: by hash of `column` over `shard_count` shards, or as a reference table.

    `colocation`: "schema.table" of the other tables in its colocation
    group, sorted. `colocate_with`: the table to join when the plan creates
    or moves it (None: a group of its own); on the database side, the
    group's first table by name.
    """

    kind = "distribution"
    schema: str
    table: str
    method: str
    column: Optional[str] = None
    shard_count: Optional[int] = None
    colocation: Tuple[str, ...] = ()
    colocate_with: Optional[Name] = field(default=None, compare=False)
    has_primary_key: bool = field(default=False, compare=False)
    # False when the plan creates the table too: distributing an empty table moves no rows.
    table_exists: bool = field(default=True, compare=False)

    @property
    def key(self) -> Key:
        return ("distribution", self.schema, self.table)

    @property
    def parent(self) -> Key:
        return ("table", self.schema, self.table)

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        """Its table, the distribution column and the primary key (Citus checks that the key
        holds the column), and the distribution of the table it colocates with."""
        deps: List[Key] = [self.parent]
        if self.column is not None:
            deps.append(("column", self.schema, self.table, self.column))
        if self.has_primary_key:
            deps.append(("constraint", self.schema, self.table, "primary_key"))
        if self.colocate_with is not None:
            deps.append(("distribution",) + self.colocate_with)
        return tuple(deps)

    def rebuilt_with(self, key: Key) -> bool:
        """Citus keeps the table distributed through a new primary key or another table's change;
        not through a new type of its distribution column, which it refuses to alter in place
        (the planner undistributes the table around that change and distributes it again)."""
        return self.column is None or key != ("column", self.schema, self.table, self.column)

    @property
    def precedes_users_of(self) -> Tuple[Key, ...]:
        """Foreign keys on or to the table wait for its distribution (and go before it is undone):
        Citus refuses a foreign key between a local and a distributed table."""
        return (self.parent,)

    def precedes(self, other: SchemaObject) -> bool:
        return other.kind == "constraint" and getattr(other, "constraint_type", None) == "foreign_key"

    def rebuilds(self, new: SchemaObject) -> Tuple[Key, ...]:
        """Moving the table to another group (or a new count) drops the foreign keys between it and
        other distributed tables (citus alter_table.c, WarningsForDroppingForeignKeysWithDistributedTables).
        Those referencing it rely on its primary key, which is named rebuilt, so the planner drops
        them before and adds them after (`drops_along`). Its own keys to a table that stays put
        cannot outlive the move (the two would no longer be colocated: refused at diff time), and
        those to a table that moves too are carried by that table's move.
        """
        if not isinstance(new, Distribution) or not _alters_group(self, new) or not self.has_primary_key:
            return ()
        return (_primary_key((self.schema, self.table)),)

    def drops_along(self, new: SchemaObject, dependent: SchemaObject) -> bool:
        return self._linked_by(dependent)

    def displaces(self, dependent: SchemaObject) -> bool:
        """Citus refuses to distribute a table, or to undistribute it, while a foreign key that
        stays links it to another table (undistribute_table: "cannot complete operation because
        table is referenced by a foreign key"; create_distributed_table on a table that a foreign
        key to a reference table made a Citus local table). The planner drops those keys before
        and adds them after, so `down` restores them exactly. Citus's own way,
        `cascade_via_foreign_keys`, would also undistribute every table the keys reach, which
        the models may keep distributed (Citus docs, "undistribute_table")."""
        return self._linked_by(dependent)

    def _linked_by(self, dependent: SchemaObject) -> bool:
        """Whether `dependent` is a foreign key on this table or to it."""
        if not self.precedes(dependent):
            return False
        mine = (self.schema, self.table)
        on = (getattr(dependent, "schema", None), getattr(dependent, "table", None))
        to = (getattr(dependent, "referred_schema", None) or on[0], getattr(dependent, "referred_table", None))
        return mine in (on, to)

    @property
    def label(self) -> str:
        return f"distribution of {self.table}"

    def describe(self) -> str:
        if self.method == REFERENCE:
            return f"{self.table}: reference table"
        text = f"{self.table}: distributed by {self.column}"
        if self.shard_count is not None:
            text += f" over {self.shard_count} shards"
        if self.colocation:
            text += f", colocated with {', '.join(self.colocation)}"
        return text


# -- the cluster's catalog -----------------------------------------------------------------

PARTITION_QUERY = """
SELECT n.nspname AS schema, c.relname AS name, p.partmethod::text AS method, p.repmodel::text AS repmodel,
       CASE WHEN p.partmethod = 'h' THEN pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) END AS column,
       p.colocationid AS colocation_id, g.shardcount AS shard_count,
       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS has_pk
FROM pg_catalog.pg_dist_partition p
JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_dist_colocation g ON g.colocationid = p.colocationid
WHERE n.nspname = ANY($1::text[])
ORDER BY n.nspname, c.relname
"""


def _primary_key(name: Name) -> Key:
    return ("constraint", name[0], name[1], "primary_key")


async def _citus_installed(db: DatabaseContext) -> bool:
    rows = await db.fetch("SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL AS found")
    return bool(rows[0]["found"])


async def read_distributions(db: DatabaseContext) -> List[Distribution]:
    """Every hash-distributed and reference table of the managed schemas, as pg_dist_partition has it
    (none where the citus extension is not installed)."""
    if not await _citus_installed(db):
        return []
    rows = [
        row
        for row in await db.fetch(PARTITION_QUERY, list(db.schemas))
        if row["method"] == "h" or (row["method"] == "n" and row["repmodel"] == "t")
    ]
    groups: Dict[int, List[Name]] = {}
    for row in rows:
        if row["method"] == "h":
            groups.setdefault(row["colocation_id"], []).append((row["schema"], row["name"]))
    out: List[Distribution] = []
    for row in rows:
        name = (row["schema"], row["name"])
        if row["method"] != "h":
            out.append(Distribution(row["schema"], row["name"], REFERENCE, has_primary_key=row["has_pk"]))
            continue
        members = sorted(groups[row["colocation_id"]])
        leader = members[0]
        out.append(
            Distribution(
                row["schema"],
                row["name"],
                HASH,
                column=row["column"],
                shard_count=row["shard_count"],
                colocation=tuple(_text(m) for m in members if m != name),
                colocate_with=leader if leader != name else None,
                has_primary_key=row["has_pk"],
            )
        )
    return out


# -- the models ----------------------------------------------------------------------------


def _groups(decls: Dict[Name, TableDistribution], resolve: Any) -> Dict[Name, Name]:
    """Each hash-distributed table -> the root of its colocation group (the table at the end of
    its `colocate_with` links). Raises DeclarationError for a link to a table not hash-distributed
    in the models, and for a cycle of links."""
    roots: Dict[Name, Name] = {}
    for name, decl in decls.items():
        if decl.method != HASH:
            continue
        seen = [name]
        current = decl
        while current.colocate_with is not None:
            target = resolve(current.colocate_with)
            found = decls.get(target)
            if found is None or found.method != HASH:
                raise DeclarationError(
                    f"distributed({_text(seen[-1])!r}, colocate_with={_text(target)!r}): "
                    f"{_text(target)} is not declared distributed() in the models; Citus colocates "
                    "only with a hash-distributed table"
                )
            if target in seen:
                raise DeclarationError(
                    f"colocate_with links go round in a circle: {' -> '.join(_text(n) for n in seen + [target])}"
                )
            seen.append(target)
            current = found
        roots[name] = seen[-1]
    return roots


def _check_foreign_keys(models: ModelContext, decls: Dict[Name, TableDistribution], roots: Dict[Name, Name]) -> None:
    """Raise DeclarationError for a foreign key Citus refuses, naming both tables and why.

    Citus accepts a foreign key from a distributed table to a colocated
    distributed table (on the distribution columns) or to a reference table,
    from a reference table to a reference table, and from a local table to a
    reference table (Citus docs, "Distributing by Tenant ID" and "Table Types";
    src/backend/distributed/commands/foreign_constraint.c).
    """

    def what(name: Name) -> str:
        decl = decls.get(name)
        return "local" if decl is None else decl.method

    for table in models.tables:
        here = (models.table_schema(table), table.name)
        for fk in table.foreign_key_constraints:
            referred = fk.referred_table
            there = (referred.schema or models.schema, referred.name)
            if there[0] not in models.schemas:
                continue  # another schema's table: its distribution is not the models' to say
            mine, theirs = what(here), what(there)
            label = f"foreign key {fk.name or '(unnamed)'} from {_text(here)} to {_text(there)}"
            why: Optional[str] = None
            if theirs == HASH and mine != HASH:
                why = f"Citus refuses a foreign key from a {mine} table to a distributed table"
            elif mine == HASH and theirs == "local":
                why = (
                    "Citus refuses a foreign key from a distributed table to a local table: declare "
                    f"{_text(there)} reference() or distributed() colocated with {_text(here)}"
                )
            elif mine == REFERENCE and theirs == "local":
                why = "Citus refuses a foreign key from a reference table to a local table: declare it reference() too"
            elif mine == HASH and theirs == HASH:
                if roots[here] != roots[there]:
                    why = (
                        "Citus accepts a foreign key between distributed tables only when they are colocated "
                        "(a shard's rows must find the rows they reference on the same node): declare "
                        f"distributed({here[1]!r}, ..., colocate_with={_text(there)!r}) or link both to one group"
                    )
                else:
                    here_column, there_column = decls[here].column, decls[there].column
                    pairs = [(element.parent.name, element.column.name) for element in fk.elements]
                    if (here_column, there_column) not in pairs:
                        why = (
                            f"Citus needs a foreign key between distributed tables to pair their distribution "
                            f"columns ({here_column} -> {there_column})"
                        )
            if why is not None:
                raise DeclarationError(f"{label}: {why}")


def _check_column_types(
    models: ModelContext, tables: Dict[Name, Any], decls: Dict[Name, TableDistribution], resolve: Any
) -> None:
    """Raise DeclarationError for a table colocated with one whose distribution column has another
    type or collation, naming both tables, columns and types. Citus refuses to colocate them
    ("cannot colocate tables ...: Distribution column types don't match", citus
    colocation_utils.c, EnsureColumnTypeEquality); it compares the type itself, not its
    modifier (varchar(20) and varchar(30) colocate)."""

    def spelled(name: Name, column: str) -> Tuple[str, Optional[str]]:
        data_type, collation = model_column_type(models, tables[name], column)
        return re.sub(r"\([^)]*\)", "", data_type).strip(), collation

    for name, decl in decls.items():
        if decl.method != HASH or decl.colocate_with is None or decl.column is None:
            continue
        target = resolve(decl.colocate_with)
        other = decls[target].column
        assert other is not None  # _groups checked that it is hash-distributed
        mine, theirs = spelled(name, decl.column), spelled(target, other)
        if mine == theirs:
            continue
        if mine[0] != theirs[0]:
            what, shown = "type", (mine[0], theirs[0])
        else:
            what, shown = (
                "collation",
                (f'{mine[0]} COLLATE "{mine[1] or "default"}"', f'{theirs[0]} COLLATE "{theirs[1] or "default"}"'),
            )
        raise DeclarationError(
            f"distributed({_text(name)!r}, {decl.column!r}, colocate_with={_text(target)!r}): Citus colocates "
            f"tables only when their distribution columns have the same {what}: "
            f"{_text(name)}.{decl.column} is {shown[0]}, {_text(target)}.{other} is {shown[1]}; "
            f"give both columns one {what}, or colocate the table with none"
        )


def model_distributions(models: ModelContext) -> List[Distribution]:
    """The declared distributions of the managed schemas' model tables.

    Raises DeclarationError for a declaration on a table the models lack, a
    colocation link to a table not hash-distributed, a shard count given to
    a table that colocates with another, a colocation of distribution columns
    of different types, and a foreign key Citus refuses.
    """
    tables = {(models.table_schema(t), t.name): t for t in models.tables}
    decls: Dict[Name, TableDistribution] = {}
    for decl in declared(models, TableDistribution):
        name = (decl.schema or models.schema, decl.table)
        if name not in tables:
            if name[0] in models.schemas:
                raise DeclarationError(f"distribution declared for {_text(name)}, which the models do not define")
            continue
        if name in decls and decls[name] != decl:
            raise DeclarationError(f"{_text(name)} is declared distributed twice, differently")
        decls[name] = decl

    if not decls:
        return []

    def resolve(target: Tuple[Optional[str], str]) -> Name:
        return (target[0] or models.schema, target[1])

    roots = _groups(decls, resolve)
    _check_column_types(models, tables, decls, resolve)
    members: Dict[Name, List[Name]] = {}
    for name, root in roots.items():
        members.setdefault(root, []).append(name)
    _check_foreign_keys(models, decls, roots)

    def has_pk(name: Name) -> bool:
        table = tables.get(name)
        return table is not None and table.primary_key is not None and len(table.primary_key.columns) > 0

    out: List[Distribution] = []
    for name, decl in decls.items():
        if decl.method == REFERENCE:
            out.append(Distribution(name[0], name[1], REFERENCE, has_primary_key=has_pk(name)))
            continue
        root = roots[name]
        out.append(
            Distribution(
                name[0],
                name[1],
                HASH,
                column=decl.column,
                shard_count=decls[root].shard_count,
                colocation=tuple(sorted(_text(m) for m in members[root] if m != name)),
                colocate_with=resolve(decl.colocate_with) if decl.colocate_with is not None else None,
                has_primary_key=has_pk(name),
            )
        )
    return out


def _stays(old: Distribution, new: Distribution) -> bool:
    """Whether the table keeps its colocation group (the others of the group move, if any must).

    Of an old group that the models split, the part holding the group's first
    table by name stays and every other table moves: each table tells which
    side it is on from its own old and new partners, so the tables of one
    group agree without seeing each other. A table that stays must also be
    beside the table it names already.
    """
    me = _text((new.schema, new.table))
    anchor = min((me, *old.colocation))
    target = new.colocate_with
    return (anchor == me or anchor in new.colocation) and (target is None or _text(target) in old.colocation)


def _alters_group(old: Distribution, new: Distribution) -> bool:
    """Whether the table moves to another colocation group, or its group gets a new shard count:
    either way alter_distributed_table gives it a group anew (see `DistributionHandler.migrate`)."""
    return old.method == new.method == HASH and (not _stays(old, new) or new.shard_count != old.shard_count)


class DistributionHandler(ObjectHandler):
    """The `distribution` kind: declarations (`distributed`, `reference`) against pg_dist_partition.

    Reads nothing from a database without the citus extension, so installing
    the plugin changes nothing for a plain PostgreSQL. Raises DeclarationError
    (exit 2) from `from_models` for declarations Citus would refuse.
    """

    kind = "distribution"

    def from_models(self, models: ModelContext) -> Iterable[Distribution]:
        return models.derived(model_distributions)

    async def from_database(self, db: DatabaseContext) -> List[Distribution]:
        return await read_distributions(db)

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Fill in what the models leave to the cluster: the shard count (`citus.shard_count`), and
        whether the table exists already (distributing its rows is then a full scan)."""
        mine = [obj for obj in objects if isinstance(obj, Distribution)]
        if not mine:
            return objects
        default: Optional[int] = None
        if any(obj.method == HASH and obj.shard_count is None for obj in mine):
            rows = await db.fetch("SELECT pg_catalog.current_setting('citus.shard_count', true) AS n")
            default = int(rows[0]["n"]) if rows and rows[0]["n"] else None
        existing = await db.existing_tables((obj.schema, obj.table) for obj in mine)
        out: List[SchemaObject] = []
        for obj in objects:
            if isinstance(obj, Distribution):
                count = obj.shard_count if obj.shard_count is not None or obj.method != HASH else default
                obj = replace(obj, shard_count=count, table_exists=(obj.schema, obj.table) in existing)
            out.append(obj)
        return out

    def create(self, obj: Distribution) -> List[Operation]:
        if obj.method == REFERENCE:
            return [CreateReferenceTable(table_name=obj.table, schema=obj.schema, table_exists=obj.table_exists)]
        assert obj.column is not None
        return [
            CreateDistributedTable(
                table_name=obj.table,
                column_name=obj.column,
                schema=obj.schema,
                colocate_with=qualified(*obj.colocate_with) if obj.colocate_with is not None else None,
                # A table joining a group takes its count; Citus refuses both at once.
                shard_count=obj.shard_count if obj.colocate_with is None else None,
                table_exists=obj.table_exists,
            )
        ]

    def migrate(self, old: Distribution, new: Distribution) -> List[Operation]:
        """alter_distributed_table for a new column, shard count or group; a change between hash
        and reference undistributes the table and distributes it again."""
        if old.method != new.method or new.method == REFERENCE:
            return self.destroy(old) + self.create(new)
        target = new.colocate_with
        column = new.column if new.column != old.column else None
        if _alters_group(old, new):
            # A new count re-forms the group too: its first table starts a fresh group with the count
            # and the others join it. Citus's own ways (cascade_to_colocated, or a count alone) put
            # the table in the cluster's "default" group of that count, which may be another's.
            return [
                AlterDistributedTable(
                    table_name=new.table,
                    schema=new.schema,
                    column_name=column,
                    colocate_with=qualified(*target) if target is not None else "none",
                    shard_count=new.shard_count if target is None else None,
                    # Leaving its group: Citus asks that the others keep their count.
                    cascade_to_colocated=False if target is None and old.colocation else None,
                )
            ]
        if column is None:
            return []
        # Alone, it stays alone: left out, Citus would put the new table in the default group.
        colocate_with = None if old.colocation else "none"
        return [
            AlterDistributedTable(
                table_name=new.table, schema=new.schema, column_name=column, colocate_with=colocate_with
            )
        ]

    def destroy(self, obj: Distribution) -> List[Operation]:
        return [UndistributeTable(table_name=obj.table, schema=obj.schema)]


__all__ = ["Distribution", "DistributionHandler", "model_distributions", "read_distributions"]
