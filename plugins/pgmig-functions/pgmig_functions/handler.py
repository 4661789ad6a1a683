"""Functions and triggers, compared as Postgres prints them.

Both sides go through `pg_get_functiondef` / `pg_get_triggerdef`: the
database's objects directly, the models' by creating them in the session's
temporary schema (functions, with body checks off so tables still to come do
not matter) or on a temporary copy of their table (triggers), inside a
transaction that is always rolled back. Only what follows the object's own
name (and, for triggers, its table) is compared, so a definition written
differently but meaning the same never shows as a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from pgmig.api import (
    DatabaseContext,
    Key,
    ModelContext,
    ObjectHandler,
    Operation,
    SchemaObject,
    declared,
    dollar_quote,
    qualified,
    quote_ident,
)

from .declare import FunctionDeclaration, TriggerDeclaration
from .ops import CreateFunction, CreateTrigger, DropFunction, DropTrigger


@dataclass(frozen=True)
class Function(SchemaObject):
    kind = "function"
    schema: str
    name: str
    identity: str  # argument types as Postgres prints them: part of the key (overloads)
    arguments: str = field(compare=False)  # with names and defaults, for CREATE
    definition: str = ""  # everything after the argument list
    reads: Tuple[Key, ...] = field(default=(), compare=False)

    @property
    def key(self) -> Key:
        return ("function", self.schema, self.name, self.identity)

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        return self.reads

    @property
    def label(self) -> str:
        return f"function {self.name}({self.identity})"

    def describe(self) -> str:
        return f"function {self.name}({self.arguments}) {' '.join(self.definition.split())[:80]}"


@dataclass(frozen=True)
class Trigger(SchemaObject):
    kind = "trigger"
    schema: str
    table: str
    name: str
    timing: str  # BEFORE UPDATE OR INSERT ...
    action: str  # FOR EACH ROW ... EXECUTE FUNCTION f()
    function: Optional[Key] = field(default=None, compare=False)

    @property
    def key(self) -> Key:
        return ("trigger", self.schema, self.table, self.name)

    @property
    def parent(self) -> Key:
        return ("table", self.schema, self.table)

    @property
    def dependencies(self) -> Tuple[Key, ...]:
        return (self.parent,) + ((self.function,) if self.function else ())

    @property
    def label(self) -> str:
        return f"trigger {self.name}"

    def describe(self) -> str:
        return f"trigger {self.name} {self.timing} ON {self.table} {self.action}"


# -- catalog queries (on the managed schema, or on the session's temporary one) ----------

FUNCTIONS_QUERY = """
SELECT p.proname AS name,
       pg_catalog.pg_get_function_identity_arguments(p.oid) AS identity,
       pg_catalog.pg_get_function_arguments(p.oid) AS arguments,
       pg_catalog.pg_get_functiondef(p.oid) AS definition,
       'CREATE OR REPLACE FUNCTION '
         || pg_catalog.quote_ident(CASE WHEN n.oid = pg_catalog.pg_my_temp_schema() THEN 'pg_temp' ELSE n.nspname END)
         || '.' || pg_catalog.quote_ident(p.proname) || '(' AS prefix,
       ARRAY(SELECT DISTINCT rc.relname FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid
             WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
               AND d.refclassid = 'pg_catalog.pg_class'::regclass AND rc.relnamespace = n.oid
               AND rc.relkind IN ('r', 'p'))::text[] AS tables
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1 AND p.prokind = 'f'
  AND NOT EXISTS (  -- functions an extension installed belong to the extension
      SELECT 1 FROM pg_catalog.pg_depend e
      WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
ORDER BY p.proname, 2
"""

TRIGGERS_QUERY = """
SELECT c.relname AS table_name, t.tgname AS name,
       pg_catalog.pg_get_triggerdef(t.oid) AS definition,
       'CREATE ' || CASE WHEN t.tgconstraint <> 0 THEN 'CONSTRAINT ' ELSE '' END || 'TRIGGER '
         || pg_catalog.quote_ident(t.tgname) || ' ' AS prefix,
       ' ON ' || pg_catalog.quote_ident(CASE WHEN n.oid = pg_catalog.pg_my_temp_schema() THEN 'pg_temp' ELSE n.nspname END)
         || '.' || pg_catalog.quote_ident(c.relname) || ' ' AS on_table,
       fn.nspname AS function_schema, p.proname AS function_name,
       pg_catalog.pg_get_function_identity_arguments(p.oid) AS function_identity
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace fn ON fn.oid = p.pronamespace
WHERE n.nspname = $1 AND NOT t.tgisinternal
ORDER BY c.relname, t.tgname
"""

TEMP_SCHEMA_QUERY = "SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = pg_catalog.pg_my_temp_schema()"


async def read_functions(db: DatabaseContext, schema: str, as_schema: str) -> List[Function]:
    """Functions of `schema` (one query), reported as living in `as_schema`."""
    out = []
    for row in await db.fetch(FUNCTIONS_QUERY, schema):
        definition, prefix, arguments = row["definition"], row["prefix"], row["arguments"]
        head = prefix + arguments + ")"
        tail = definition[len(head) :] if definition.startswith(head) else definition.split(")", 1)[1]
        out.append(
            Function(
                schema=as_schema,
                name=row["name"],
                identity=row["identity"],
                arguments=arguments,
                definition=tail,
                reads=tuple(("table", as_schema, t) for t in row["tables"]),
            )
        )
    return out


def _split_trigger(row: Any) -> Tuple[str, str]:
    """(timing and events, action) of a trigger definition, cut at its prefix and its table."""
    definition = row["definition"]
    if definition.startswith(row["prefix"]):
        definition = definition[len(row["prefix"]) :]
    timing, _, action = definition.partition(row["on_table"])
    return timing.strip(), action.strip()


async def read_triggers(db: DatabaseContext, schema: str) -> List[Trigger]:
    out = []
    for row in await db.fetch(TRIGGERS_QUERY, schema):
        timing, action = _split_trigger(row)
        function = ("function", row["function_schema"], row["function_name"], row["function_identity"])
        out.append(Trigger(schema, row["table_name"], row["name"], timing, action, function))
    return out


async def _in_rolled_back_transaction(
    db: DatabaseContext, statements: Sequence[Sequence[str]], read: Any
) -> Tuple[List[bool], Any]:
    """Run each group of statements in its own savepoint, then `read(temp_schema)`; undo everything.

    Returns which groups succeeded, so a definition that cannot be built
    yet keeps the models' spelling instead of failing the whole diff.
    """
    import asyncpg

    connection = db.connection
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute("SET LOCAL check_function_bodies = off")
        ok = []
        for group in statements:
            try:
                async with connection.transaction():
                    for statement in group:
                        await connection.execute(statement)
                ok.append(True)
            except asyncpg.PostgresError:
                ok.append(False)
        temp_schema = await connection.fetchval(TEMP_SCHEMA_QUERY)
        result = await read(temp_schema) if temp_schema else None
    finally:
        await transaction.rollback()
    return ok, result


# -- functions ----------------------------------------------------------------------------


def _function_tail(decl: FunctionDeclaration) -> str:
    options = f"\n {decl.options.strip()}" if decl.options.strip() else ""
    return f"\n RETURNS {decl.returns}\n LANGUAGE {decl.language}{options}\nAS {dollar_quote(decl.body, 'function')}\n"


class FunctionHandler(ObjectHandler):
    kind = "function"

    def from_models(self, models: ModelContext) -> Iterable[Function]:
        for decl in declared(models, FunctionDeclaration):
            schema = decl.schema or models.schema
            reads = []
            for name in decl.depends_on:
                table_schema, _, table = name.rpartition(".")
                reads.append(("table", table_schema or schema, table))
            yield Function(schema, decl.name, decl.arguments, decl.arguments, _function_tail(decl), tuple(reads))

    async def from_database(self, db: DatabaseContext) -> List[Function]:
        return await read_functions(db, db.schema, db.schema)

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Create each model function in pg_temp under a scratch name and read it back."""
        functions = [obj for obj in objects if isinstance(obj, Function)]
        if not functions:
            return objects
        scratch = {f"pgmig_function_{n}": fn for n, fn in enumerate(functions)}
        groups = [
            [f"CREATE FUNCTION {qualified('pg_temp', name)}({fn.arguments}){fn.definition}"]
            for name, fn in scratch.items()
        ]

        async def read(temp_schema: str) -> List[Function]:
            return await read_functions(db, temp_schema, "pg_temp")

        _, rendered = await _in_rolled_back_transaction(db, groups, read)
        by_id = {}
        for got in rendered or ():
            original = scratch.get(got.name)
            if original is not None:
                by_id[id(original)] = replace(
                    original, identity=got.identity, arguments=got.arguments, definition=got.definition
                )
        return [by_id.get(id(obj), obj) for obj in objects]

    def create(self, obj: Function) -> List[Operation]:
        return [
            CreateFunction(
                function_name=obj.name, parameters=obj.arguments, definition=obj.definition, schema=obj.schema
            )
        ]

    def migrate(self, old: Function, new: Function) -> List[Operation]:
        """CREATE OR REPLACE keeps triggers and grants; it refuses a new return type, so that one is dropped first."""
        if _returns(old.definition) != _returns(new.definition):
            return self.destroy(old) + self.create(new)
        return self.create(new)

    def destroy(self, obj: Function) -> List[Operation]:
        return [DropFunction(function_name=obj.name, parameters=obj.identity, schema=obj.schema)]


def _returns(definition: str) -> str:
    for line in definition.splitlines():
        if line.strip().upper().startswith("RETURNS "):
            return line.strip()
    return ""


# -- triggers -----------------------------------------------------------------------------


class TriggerHandler(ObjectHandler):
    kind = "trigger"

    def from_models(self, models: ModelContext) -> Iterable[Trigger]:
        for decl in declared(models, TriggerDeclaration):
            schema = decl.schema or models.schema
            action = f"FOR EACH {decl.for_each}"
            if decl.when:
                action += f" WHEN ({decl.when})"
            action += f" EXECUTE FUNCTION {qualified(schema, decl.function)}()"
            yield Trigger(
                schema=schema,
                table=decl.table,
                name=decl.name,
                timing=f"{decl.timing} {' OR '.join(decl.events)}",
                action=action,
                function=("function", schema, decl.function, ""),
            )

    async def from_database(self, db: DatabaseContext) -> List[Trigger]:
        return await read_triggers(db, db.schema)

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Build each model trigger on a temporary copy of its table and read it back."""
        triggers = [obj for obj in objects if isinstance(obj, Trigger)]
        if not triggers:
            return objects
        copies: Dict[Tuple[str, str], str] = {}
        for tr in triggers:
            copies.setdefault((tr.schema, tr.table), f"pgmig_trigger_table_{len(copies)}")
        scratch = {f"pgmig_trigger_{n}": tr for n, tr in enumerate(triggers)}
        groups = [
            [f"CREATE TEMPORARY TABLE {quote_ident(copy)} (LIKE {qualified(schema, table)})"]
            for (schema, table), copy in copies.items()
        ]
        groups += [
            [
                f"CREATE TRIGGER {quote_ident(name)} {tr.timing} "
                f"ON {qualified('pg_temp', copies[(tr.schema, tr.table)])} {tr.action}"
            ]
            for name, tr in scratch.items()
        ]

        async def read(temp_schema: str) -> List[Trigger]:
            return await read_triggers(db, temp_schema)

        _, rendered = await _in_rolled_back_transaction(db, groups, read)
        by_id = {}
        for got in rendered or ():
            original = scratch.get(got.name)
            if original is not None:
                by_id[id(original)] = replace(original, timing=got.timing, action=got.action)
        return [by_id.get(id(obj), obj) for obj in objects]

    def create(self, obj: Trigger) -> List[Operation]:
        return [
            CreateTrigger(
                table_name=obj.table, trigger_name=obj.name, timing=obj.timing, action=obj.action, schema=obj.schema
            )
        ]

    def destroy(self, obj: Trigger) -> List[Operation]:
        return [DropTrigger(table_name=obj.table, trigger_name=obj.name, schema=obj.schema)]


__all__ = ["Function", "FunctionHandler", "Trigger", "TriggerHandler", "read_functions", "read_triggers"]
