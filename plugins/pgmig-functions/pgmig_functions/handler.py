"""Functions and triggers, compared as Postgres prints them.

Both sides go through `pg_get_functiondef` / `pg_get_triggerdef`: the
database's objects directly, the models' by having pgmig's normalization
service build them under scratch names (functions, with body checks off so
tables still to come do not matter; triggers on a scratch copy of their
table), inside a transaction that is always rolled back: the handler only
declares what to build and how to read it back (`FunctionSpelling`,
`TriggerSpelling`). Only what follows the object's own
name (and, for triggers, its table) is compared, so a definition written
differently but meaning the same never shows as a change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from pgmig.api import (
    FUNCTION_CALL,
    DatabaseContext,
    Key,
    ModelContext,
    ObjectHandler,
    Operation,
    Reads,
    Renderer,
    SchemaObject,
    Scratch,
    declared,
    dollar_quote,
    qualified,
    render,
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
    def provides(self) -> Tuple[Key, ...]:
        """What calls it by name (a column default, a check): created after it, dropped before it."""
        return ((FUNCTION_CALL, self.name),)

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
        """The table, the function, and the columns it names: Postgres refuses to drop or
        retype a column a trigger fires on (`UPDATE OF c`) or reads in its WHEN clause."""
        columns = tuple(("column", self.schema, self.table, c) for c in trigger_columns(self.timing, self.action))
        return (self.parent,) + ((self.function,) if self.function else ()) + columns

    @property
    def label(self) -> str:
        return f"trigger {self.name}"

    def describe(self) -> str:
        return f"trigger {self.name} {self.timing} ON {self.table} {self.action}"


_IDENT = r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*'
_UPDATE_OF = re.compile(r"\bUPDATE\s+OF\s+(.+?)(?=\s+OR\s+|$)", re.IGNORECASE | re.DOTALL)
_ROW_COLUMN = re.compile(r"\b(?:NEW|OLD)\s*\.\s*(" + _IDENT + ")", re.IGNORECASE)


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name.lower()


def trigger_columns(timing: str, action: str) -> Tuple[str, ...]:
    """The table's columns a trigger names: its `UPDATE OF` list and the NEW./OLD. columns of
    its WHEN clause (what Postgres records in pg_depend for it), each once, in order."""
    found: Dict[str, None] = {}
    for match in _UPDATE_OF.finditer(timing):
        for name in re.findall(_IDENT, match.group(1)):
            found.setdefault(_unquote(name), None)
    when, _, _ = action.partition(" EXECUTE ")
    for match in _ROW_COLUMN.finditer(when):
        found.setdefault(_unquote(match.group(1)), None)
    return tuple(found)


# -- catalog queries (on the managed schema, or on the session's temporary one) ----------

FUNCTIONS_QUERY = """
SELECT n.nspname AS schema,
       p.proname AS name,
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
               AND rc.relkind IN ('r', 'p'))::text[] AS tables,
       -- enums its arguments or result name: a type swap must drop it before and create it after
       ARRAY(SELECT DISTINCT tn.nspname || '.' || ty.typname FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_type ty ON ty.oid = d.refobjid
             JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
             WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
               AND d.refclassid = 'pg_catalog.pg_type'::regclass AND ty.typtype = 'e')::text[] AS enums
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = ANY($1::text[]) AND p.prokind = 'f'
  AND NOT EXISTS (  -- functions an extension installed belong to the extension
      SELECT 1 FROM pg_catalog.pg_depend e
      WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
ORDER BY n.nspname, p.proname, 3
"""

TRIGGERS_QUERY = """
SELECT n.nspname AS schema, c.relname AS table_name, t.tgname AS name,
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
WHERE n.nspname = ANY($1::text[]) AND NOT t.tgisinternal
ORDER BY n.nspname, c.relname, t.tgname
"""


async def read_functions(
    db: DatabaseContext, schemas: Sequence[str], as_schema: Optional[str] = None
) -> List[Function]:
    """Functions of `schemas` (one query), reported as living in `as_schema` (default: their own)."""
    out = []
    for row in await db.fetch(FUNCTIONS_QUERY, list(schemas)):
        schema = as_schema or row["schema"]
        definition, prefix, arguments = row["definition"], row["prefix"], row["arguments"]
        head = prefix + arguments + ")"
        tail = definition[len(head) :] if definition.startswith(head) else definition.split(")", 1)[1]
        out.append(
            Function(
                schema=schema,
                name=row["name"],
                identity=row["identity"],
                arguments=arguments,
                definition=tail,
                reads=tuple(("table", schema, t) for t in row["tables"]) + _enum_keys(row["enums"]),
            )
        )
    return out


_SIGNATURE_WORD = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')


def _signature_words(signature: str) -> List[str]:
    """Identifiers of a signature (`s ws_status, n "Mood"[]`): quoted as written, bare folded to lower case."""
    words = (
        quoted.replace('""', '"') if quoted else bare.lower() for quoted, bare in _SIGNATURE_WORD.findall(signature)
    )
    return list(dict.fromkeys(words))


def _model_enums(models: ModelContext) -> Set[Tuple[str, str]]:
    """(schema, name) of the native enums the models' columns use (arrays of them too)."""
    import sqlalchemy as sa

    found: Set[Tuple[str, str]] = set()
    for table in models.tables:
        for column in table.columns:
            kind = column.type
            kind = getattr(kind, "item_type", kind)  # ARRAY(Enum)
            if isinstance(kind, sa.Enum) and kind.native_enum and kind.name:
                found.add((kind.schema or models.table_schema(table), str(kind.name)))
    return found


def _enum_keys(qualified_names: Sequence[str]) -> Tuple[Key, ...]:
    """("enum", schema, name) of each `schema.name`."""
    return tuple(("enum", *name.split(".", 1)) for name in sorted(qualified_names))


def _split_trigger(row: Any) -> Tuple[str, str]:
    """(timing and events, action) of a trigger definition, cut at its prefix and its table."""
    definition = row["definition"]
    if definition.startswith(row["prefix"]):
        definition = definition[len(row["prefix"]) :]
    timing, _, action = definition.partition(row["on_table"])
    return timing.strip(), action.strip()


async def read_triggers(db: DatabaseContext, schemas: Sequence[str]) -> List[Trigger]:
    """Triggers on the tables of `schemas` (one query)."""
    out = []
    for row in await db.fetch(TRIGGERS_QUERY, list(schemas)):
        timing, action = _split_trigger(row)
        function = ("function", row["function_schema"], row["function_name"], row["function_identity"])
        out.append(Trigger(row["schema"], row["table_name"], row["name"], timing, action, function))
    return out


# -- normal forms: what the server builds, under scratch names, and reads back ------------

# (arguments, definition after the argument list)
FunctionShape = Tuple[str, str]
# (schema, table, timing and events, action)
TriggerShape = Tuple[str, str, str, str]


class FunctionSpelling(Renderer[FunctionShape]):
    """A function as `pg_get_functiondef` prints it: [identity arguments, arguments, definition].

    Built with body checks off, so tables still to come do not matter.
    """

    kind = "function"
    object_kind = "function"
    version = 2  # the enums it names (version 1: identity, arguments, definition)
    fields = ("definition",)
    settings = ("SET LOCAL check_function_bodies = off",)

    def reads(self, what: FunctionShape) -> Reads:
        return Reads(user_types=True)

    def statements(self, items: Sequence[Tuple[int, FunctionShape]], scratch: Scratch) -> List[str]:
        out: List[str] = []
        for number, (arguments, definition) in items:
            name = scratch.name("f", number)
            out += CreateFunction(
                function_name=name, parameters=arguments, definition=definition, schema=scratch.schema
            ).statements()
        return out

    async def read(
        self, items: Sequence[Tuple[int, FunctionShape]], scratch: Scratch, db: DatabaseContext
    ) -> Dict[int, Any]:
        numbered = {scratch.name("f", number): number for number, _ in items}
        return {
            numbered[got.name]: [
                got.identity,
                got.arguments,
                got.definition,
                [list(k) for k in got.reads if k[0] == "enum"],
            ]
            for got in await read_functions(db, [scratch.namespace], scratch.schema)
            if got.name in numbered
        }


def _trigger_shape(tr: "Trigger") -> TriggerShape:
    return (tr.schema, tr.table, tr.timing, tr.action)


class TriggerSpelling(Renderer[TriggerShape]):
    """A trigger as `pg_get_triggerdef` prints it, built on a copy of its table: [timing, action]."""

    kind = "trigger"
    object_kind = "trigger"
    fields = ("timing", "action")
    relations = 2  # the trigger, and at most one table copy

    def reads(self, what: TriggerShape) -> Reads:
        return Reads(tables=((what[0], what[1]),), user_types=True)

    def statements(self, items: Sequence[Tuple[int, TriggerShape]], scratch: Scratch) -> List[str]:
        copies: Dict[Tuple[str, str], str] = {}
        out: List[str] = []
        for number, (schema, table, timing, action) in items:
            if (schema, table) not in copies:
                copies[(schema, table)] = scratch.name("t", number)
                out.append(scratch.create_table(copies[(schema, table)], like=(schema, table)))
            out += CreateTrigger(
                table_name=copies[(schema, table)],
                trigger_name=scratch.name("g", number),
                timing=timing,
                action=action,
                schema=scratch.schema,
            ).statements()
        return out

    async def read(
        self, items: Sequence[Tuple[int, TriggerShape]], scratch: Scratch, db: DatabaseContext
    ) -> Dict[int, Any]:
        numbered = {scratch.name("g", number): number for number, _ in items}
        return {
            numbered[got.name]: [got.timing, got.action]
            for got in await read_triggers(db, [scratch.namespace])
            if got.name in numbered
        }


# -- functions ----------------------------------------------------------------------------


def _function_tail(decl: FunctionDeclaration) -> str:
    options = f"\n {decl.options.strip()}" if decl.options.strip() else ""
    return f"\n RETURNS {decl.returns}\n LANGUAGE {decl.language}{options}\nAS {dollar_quote(decl.body, 'function')}\n"


class FunctionHandler(ObjectHandler):
    kind = "function"

    def from_models(self, models: ModelContext) -> Iterable[Function]:
        enums: Optional[Set[Tuple[str, str]]] = None
        for decl in declared(models, FunctionDeclaration):
            schema = decl.schema or models.schema
            reads = []
            for name in decl.depends_on:
                table_schema, _, table = name.rpartition(".")
                reads.append(("table", table_schema or schema, table))
            # Enums its signature names, before the server says (a type the plan creates cannot be
            # rendered yet): a word that names no enum is no dependency of anything.
            if enums is None:
                enums = _model_enums(models)
            words = _signature_words(f"{decl.arguments} {decl.returns}")
            reads += [("enum", schema, word) for word in words if (schema, word) in enums]
            yield Function(schema, decl.name, decl.arguments, decl.arguments, _function_tail(decl), tuple(reads))

    async def from_database(self, db: DatabaseContext) -> List[Function]:
        return await read_functions(db, db.schemas)

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Each model function as the server prints it (see FunctionSpelling); one that cannot be built keeps its spelling."""
        functions = [obj for obj in objects if isinstance(obj, Function)]
        if not functions:
            return objects
        rendered = await render(db, FunctionSpelling(), [(fn.arguments, fn.definition) for fn in functions])
        by_id = {}
        for fn in functions:
            got = rendered.get((fn.arguments, fn.definition))
            if got is not None:
                enums = tuple(tuple(k) for k in got[3]) if len(got) > 3 else ()
                by_id[id(fn)] = replace(
                    fn,
                    identity=got[0],
                    arguments=got[1],
                    definition=got[2],
                    reads=tuple(dict.fromkeys(fn.reads + enums)),
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
        return await read_triggers(db, db.schemas)

    async def normalize(self, objects: List[SchemaObject], db: DatabaseContext) -> List[SchemaObject]:
        """Each model trigger as the server prints it (see TriggerSpelling); one that cannot be built keeps its spelling."""
        triggers = [obj for obj in objects if isinstance(obj, Trigger)]
        if not triggers:
            return objects
        rendered = await render(db, TriggerSpelling(), [_trigger_shape(tr) for tr in triggers])
        by_id = {}
        for tr in triggers:
            got = rendered.get(_trigger_shape(tr))
            if got is not None:
                by_id[id(tr)] = replace(tr, timing=got[0], action=got[1])
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
