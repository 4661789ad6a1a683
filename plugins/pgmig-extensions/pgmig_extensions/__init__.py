"""pgmig-extensions: Postgres extensions as pgmig schema objects.

    from pgmig_extensions import extension
    extension(SQLModel, "citext")
    extension(metadata, "hstore", version="1.8")

Extensions are database-wide: pgmig manages every extension installed
outside pg_catalog (so plpgsql is never touched), in whichever schema.
Importing this package registers its operations, which is why revision
files that create or drop extensions start with `import pgmig_extensions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, List, Optional, Tuple

from pgmig.api import (
    DatabaseContext,
    Hazard,
    Key,
    ModelContext,
    ObjectHandler,
    Operation,
    SchemaObject,
    declare,
    declared,
    quote_ident,
    quote_literal,
    register,
)

__all__ = ["Extension", "ExtensionDeclaration", "ExtensionHandler", "extension"]


# -- declaring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtensionDeclaration:
    name: str
    schema: Optional[str] = None
    version: Optional[str] = None


def extension(
    target: Any, name: str, *, schema: Optional[str] = None, version: Optional[str] = None
) -> ExtensionDeclaration:
    """Declare that the models need extension `name` (on a MetaData, SQLModel or a declarative base).

    Without `version`, whatever version is installed is accepted and a new
    install gets the server's default; pin one to have pgmig update to it.
    """
    return declare(target, ExtensionDeclaration(name, schema, version))


# -- the object ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Extension(SchemaObject):
    kind = "extension"
    name: str
    schema: str
    version: Optional[str] = None
    # Types the extension creates: columns of these types need it first.
    types: Tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> Key:
        # Extension names are unique per database, not per schema.
        return ("extension", self.name)

    @property
    def provides(self) -> Tuple[Key, ...]:
        """Keys of the types it creates, for a planner that orders columns after their type's provider."""
        return tuple(("type", self.schema, t) for t in self.types)

    @property
    def label(self) -> str:
        return f"extension {self.name}"

    def describe(self) -> str:
        return f"extension {self.name} {self.version or ''} in schema {self.schema}".replace("  ", " ")


# -- operations ------------------------------------------------------------------------------


@register
@dataclass(frozen=True)
class CreateExtension(Operation):
    """CREATE EXTENSION; `if_not_exists` lets a revision run where someone installed it by hand."""

    name = "create_extension"
    extension_name: str
    schema: Optional[str] = None
    version: Optional[str] = None
    if_not_exists: bool = True

    def statements(self) -> List[str]:
        sql = "CREATE EXTENSION " + ("IF NOT EXISTS " if self.if_not_exists else "") + quote_ident(self.extension_name)
        if self.schema:
            sql += f" SCHEMA {quote_ident(self.schema)}"
        if self.version:
            sql += f" VERSION {quote_literal(self.version)}"
        return [sql]


@register
@dataclass(frozen=True)
class DropExtension(Operation):
    """DROP EXTENSION without CASCADE: Postgres refuses while columns still use its types."""

    name = "drop_extension"
    extension_name: str

    def statements(self) -> List[str]:
        return [f"DROP EXTENSION {quote_ident(self.extension_name)}"]

    def hazards(self) -> Tuple[Hazard, ...]:
        # Its functions, operators and types go with it.
        return (Hazard.DELETES_DATA,)


@register
@dataclass(frozen=True)
class AlterExtension(Operation):
    """Update an extension to `version` and/or move its objects to `schema`."""

    name = "alter_extension"
    extension_name: str
    version: Optional[str] = None
    schema: Optional[str] = None

    def statements(self) -> List[str]:
        out = []
        if self.version:
            out.append(f"ALTER EXTENSION {quote_ident(self.extension_name)} UPDATE TO {quote_literal(self.version)}")
        if self.schema:
            out.append(f"ALTER EXTENSION {quote_ident(self.extension_name)} SET SCHEMA {quote_ident(self.schema)}")
        return out


# -- the handler -----------------------------------------------------------------------------

EXTENSIONS_QUERY = """
SELECT e.extname AS name, n.nspname AS schema, e.extversion AS version,
       ARRAY(SELECT t.typname FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_type t ON t.oid = d.objid
             WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.refclassid = 'pg_catalog.pg_extension'::regclass
               AND d.refobjid = e.oid AND d.deptype = 'e' AND t.typtype <> 'p' AND t.typelem = 0
             ORDER BY t.typname)::text[] AS types
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY e.extname
"""


async def _installed_or_trial(db: DatabaseContext, names: List[str]) -> List[Extension]:
    """The extensions named, as installed; missing ones installed on trial and rolled back.

    Trial installs use the server's default version, which is what
    CREATE EXTENSION without VERSION will install; one that cannot be
    installed (not available, not permitted) is simply left out.
    """
    import asyncpg

    connection = db.connection
    transaction = connection.transaction()
    await transaction.start()
    try:
        installed = {row["extname"] for row in await connection.fetch("SELECT extname FROM pg_catalog.pg_extension")}
        for name in names:
            if name in installed:
                continue
            try:
                async with connection.transaction():
                    await connection.execute(f"CREATE EXTENSION {quote_ident(name)}")
            except asyncpg.PostgresError:
                continue
        rows = await connection.fetch(EXTENSIONS_QUERY)
    finally:
        await transaction.rollback()
    return [
        Extension(row["name"], row["schema"], row["version"], tuple(row["types"]))
        for row in rows
        if row["name"] in names
    ]


class ExtensionHandler(ObjectHandler):
    kind = "extension"

    def from_models(self, models: ModelContext) -> Iterable[Extension]:
        for decl in declared(models, ExtensionDeclaration):
            yield Extension(name=decl.name, schema=decl.schema or models.schema, version=decl.version)

    async def from_database(self, db: DatabaseContext) -> List[Extension]:
        rows = await db.fetch(EXTENSIONS_QUERY)
        return [Extension(row["name"], row["schema"], row["version"], tuple(row["types"])) for row in rows]

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Fill in what the models leave open, as the server would decide it.

        An unpinned version means "what is installed, else the default", so it
        never diffs. The types an extension provides are read from the
        catalog, installing it for a moment in a rolled-back transaction when
        it is not there yet, so the model side knows them before it exists.
        """
        mine = [obj for obj in objects if isinstance(obj, Extension)]
        if not mine:
            return objects
        found = {ext.name: ext for ext in await _installed_or_trial(db, [obj.name for obj in mine])}
        out: List[SchemaObject] = []
        for obj in objects:
            if isinstance(obj, Extension) and obj.name in found:
                seen = found[obj.name]
                obj = replace(obj, version=obj.version or seen.version, types=seen.types)
            out.append(obj)
        return out

    def create(self, obj: Extension) -> List[Operation]:
        return [CreateExtension(extension_name=obj.name, schema=obj.schema, version=obj.version)]

    def migrate(self, old: Extension, new: Extension) -> List[Operation]:
        """Updates and schema moves happen in place: dropping would take every column of its types with it."""
        return [
            AlterExtension(
                extension_name=new.name,
                version=new.version if new.version != old.version else None,
                schema=new.schema if new.schema != old.schema else None,
            )
        ]

    def destroy(self, obj: Extension) -> List[Operation]:
        return [DropExtension(extension_name=obj.name)]
