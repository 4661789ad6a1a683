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
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from pgmig.api import (
    FUNCTION_CALL,
    DatabaseContext,
    Hazard,
    Key,
    ModelContext,
    ObjectHandler,
    Operation,
    Renderer,
    SchemaObject,
    Scratch,
    declare,
    declared,
    quote_ident,
    quote_literal,
    register,
    render,
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
    # Functions it creates: a default, check, generated column or index calling one needs it first.
    functions: Tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> Key:
        # Extension names are unique per database, not per schema.
        return ("extension", self.name)

    @property
    def provides(self) -> Tuple[Key, ...]:
        """Keys of the types and functions it creates (see `pgmig.schema.expressions.FUNCTION_CALL`), for a
        planner that orders what uses them after their provider, and drops them before it."""
        return tuple(("type", self.schema, t) for t in self.types) + tuple((FUNCTION_CALL, f) for f in self.functions)

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
             ORDER BY t.typname)::text[] AS types,
       ARRAY(SELECT DISTINCT p.proname FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_proc p ON p.oid = d.objid
             WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.refclassid = 'pg_catalog.pg_extension'::regclass
               AND d.refobjid = e.oid AND d.deptype = 'e'
             ORDER BY p.proname)::text[] AS functions
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY e.extname
"""


class ExtensionTrial(Renderer[str]):
    """An extension the database lacks, installed for a moment: [schema, version, types].

    Trial installs use the server's default version, which is what CREATE
    EXTENSION without VERSION will install; one that cannot be installed
    (not available, not permitted) is simply left out. Not kept in the
    cache: what an install gives depends on the extension files the server
    has, which its version does not say.
    """

    kind = "extension"
    relations = 50  # an extension creates types, functions, tables...
    cacheable = False

    def statements(self, items: Sequence[Tuple[int, str]], scratch: Scratch) -> List[str]:
        return [sql for _, name in items for sql in CreateExtension(extension_name=name).statements()]

    async def read(self, items: Sequence[Tuple[int, str]], scratch: Scratch, db: DatabaseContext) -> Dict[int, Any]:
        numbered = {name: number for number, name in items}
        return {
            numbered[row["name"]]: [row["schema"], row["version"], list(row["types"]), list(row["functions"])]
            for row in await db.fetch(EXTENSIONS_QUERY)
            if row["name"] in numbered
        }


async def _installed_or_trial(db: DatabaseContext, names: List[str]) -> List[Extension]:
    """The extensions named, as installed; missing ones as a trial install gives them (see ExtensionTrial)."""
    installed = [_extension(row) for row in await db.fetch(EXTENSIONS_QUERY) if row["name"] in names]
    missing = [name for name in names if name not in {ext.name for ext in installed}]
    tried = await render(db, ExtensionTrial(), missing) if missing else {}
    return installed + [
        Extension(name, found[0], found[1], tuple(found[2]), tuple(found[3]))
        for name, found in tried.items()
        if found is not None
    ]


def _extension(row: Any) -> Extension:
    return Extension(row["name"], row["schema"], row["version"], tuple(row["types"]), tuple(row["functions"]))


class ExtensionHandler(ObjectHandler):
    kind = "extension"

    def from_models(self, models: ModelContext) -> Iterable[Extension]:
        for decl in declared(models, ExtensionDeclaration):
            yield Extension(name=decl.name, schema=decl.schema or models.schema, version=decl.version)

    async def from_database(self, db: DatabaseContext) -> List[Extension]:
        return [_extension(row) for row in await db.fetch(EXTENSIONS_QUERY)]

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
                obj = replace(obj, version=obj.version or seen.version, types=seen.types, functions=seen.functions)
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
