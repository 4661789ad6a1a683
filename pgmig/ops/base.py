"""Operations: one change object, several views of it.

An `Operation` is one schema change with plain, printable arguments. The same
object gives the SQL that runs it (`statements`), the line a revision file
calls (`migrator.actor.<name>(**arguments)`) and its hazards. Built-in and
plugin operations register by name: the typed actor has one method per
built-in operation (generated from this registry), and plugin operations are
run by name or with `actor.run(operation)`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from pgmig.errors import PgmigError, RevisionError

OPERATIONS: Dict[str, Type["Operation"]] = {}

O = TypeVar("O", bound=Type["Operation"])
Op = TypeVar("Op", bound="Operation")


class Hazard(str, Enum):
    """What running an operation can cost, as shown in the preview, `--json` and revision comments.

    Members are strings (`Hazard.DELETES_DATA == "deletes_data"`), so JSON,
    the preview and code comparing with the plain strings see the values.
    """

    DELETES_DATA = "deletes_data"
    """Rows, columns or values are gone for good (DROP, removed enum labels, a type change that
    pgmig.ops.typecasts does not prove lossless: one that can round, truncate or refuse values)."""
    REWRITES_TABLE = "rewrites_table"
    """Postgres writes a new copy of the table (and its indexes) under ACCESS EXCLUSIVE."""
    ACCESS_EXCLUSIVE_LOCK = "access_exclusive_lock"
    """Reads and writes of the table wait while the statement runs."""
    BLOCKS_WRITES = "blocks_writes"
    """Writes wait (SHARE or SHARE ROW EXCLUSIVE), reads go on."""
    FULL_SCAN = "full_scan"
    """Every row is read (to check a constraint, fill a column or a materialized view)."""
    INDEX_BUILD = "index_build"
    """An index is built from every row of an existing table."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        # Python 3.11+ formats a mixed-in enum as `Hazard.FULL_SCAN`; f-strings must show the value.
        return self.value.__format__(spec)


@dataclass(frozen=True)
class Operation:
    """Base of every schema change. Subclasses are frozen dataclasses registered by `register`."""

    name: ClassVar[str] = ""
    transactional: ClassVar[bool] = True
    """False: Postgres refuses the statement inside a transaction block (CONCURRENTLY)."""
    commit_before_use: ClassVar[bool] = False
    """True: what it makes cannot be used in the transaction that made it (an enum label),
    so the runner commits it on its own before the rest of the revision goes on."""
    touches_any_rows: ClassVar[bool] = False
    """True: the step may change rows of any table (a revision's own SQL), so no later step can
    tell from the rows the database holds now what it will find (see `may_change`)."""
    keeps_rows: ClassVar[bool] = False
    """True: the step changes no value of any row (a constraint, an index, a default, a comment),
    so later steps' `preflight` may look past it (see `may_change`)."""
    rerunnable: ClassVar[bool] = False
    """True: running the step again after it ran, all or part of it, does no harm and ends
    as one run does (SET NOT NULL, an UPDATE of the rows still NULL), so a failed
    non-transactional revision can be run again over it. A step that overrides
    `already_done` is rerunnable too (see `safe_to_rerun`)."""
    locks: ClassVar[int] = 16
    """The object locks the step's statements hold until their transaction ends, as
    `lock_estimate` gives them unless it is overridden: a static estimate meant never to be
    below what the server takes. Built-in operations set their own; a plugin's operation
    inherits this conservative default (set it on the class to say better)."""
    # A subclass may define `call`, a classmethod building it from the arguments its actor method
    # takes (`CreateTable.call(name, *parts)`), with `call_arguments` giving them back: the typed
    # actor's method then has `call`'s parameters (scripts/generate_actor.py).
    argument_types: ClassVar[Mapping[str, Any]] = {}
    """How a revision file spells a field when that differs from the field's type (a dict for
    pairs): the typed actor's parameter type. Other fields' lists and tuples are `Sequence`s."""

    def statements(self) -> List[str]:
        """The SQL, one statement an item, as it runs and as `--sql` prints it."""
        raise NotImplementedError

    def ahead_of(self, earlier: Sequence["Operation"]) -> Optional["Operation"]:
        """For a `commit_before_use` step: the step to commit before the revision's transaction
        begins, given the steps `earlier` that precede it in the revision; None when it must
        run in place, inside the transaction (what it changes is made there).

        Committed first, it cannot wait on a lock the transaction holds (the
        transaction would wait on it in turn: a deadlock). Default: itself.
        """
        return self

    def lock_estimate(self) -> int:
        """How many entries of the server's shared lock table (rows of `pg_locks` for the
        session) the step holds until its transaction ends: default the class's `locks`.

        Postgres keeps every lock a transaction takes until it ends: a relation
        lock on each table, index, sequence and TOAST relation a statement
        creates, alters or drops, and an object lock on each type, constraint,
        default and trigger a DROP removes (AcquireDeletionLock in
        src/backend/catalog/dependency.c). The table holds
        max_locks_per_transaction x (max_connections + max_prepared_transactions)
        of them for all sessions together (docs: "Lock Management", 19.12), so a
        revision that commits in parts (`commit_in_parts`) ends a part before the
        steps' sum passes its budget. An estimate, not a count: it must not be
        below what the server takes, and tests/test_lock_budget.py measures it.
        """
        return self.locks

    def bound_statements(self) -> List[Tuple[str, Tuple[Any, ...]]]:
        """What the actor executes: each statement with its `$n` parameters (none unless overridden)."""
        return [(statement, ()) for statement in self.statements()]

    def hazards(self) -> Tuple[Hazard, ...]:
        return ()

    def explain_failure(self, error: Exception) -> Optional[str]:
        """Why Postgres refused this step and what to do, in words, when its error alone does not say
        (an asyncpg `PostgresError` raised by one of `statements`); None (the default) adds nothing.

        A plugin's function missing from the database means its extension is not installed there:
        pgmig-citus names Citus, and what to do when that database is a scratch one (`generate`'s
        proof, `check`), where Postgres would only say `function ... does not exist`.
        """
        return None

    async def preflight(self, connection: Any, earlier: Sequence["Operation"]) -> List["RowProblem"]:
        """What this step would do to the rows the database holds now, before anything of its
        revision runs (the runner refuses a revision with a failing problem); default none.

        `connection` is an asyncpg connection (queries run in a savepoint of
        their own, see `probe`); `earlier` are the steps of the revision
        before this one: where they may change the rows it reads (`may_change`),
        a step says nothing, as the database's rows no longer tell.
        """
        return []

    async def already_done(self, connection: Any, later: Sequence["Operation"] = ()) -> bool:
        """Whether the database already shows this step's result, asked before the step runs
        outside a transaction (a revision marked `transactional = False`).

        Such a revision commits step by step, so a failed run leaves its first
        steps applied and the rerun starts again from the first step: a step
        that answers True is skipped then, one that answers False runs again
        (its statements must then cope with what an interrupted attempt left,
        as `AddIndex` drops an INVALID index first). Raise a `RevisionError`
        when the database holds something else under the step's name, which
        the step must not take for its own. `later`: the revision's steps after
        this one (when they were recorded), which may have changed what this
        step made (a default dropped, NOT NULL set) before the failure.
        Default: False.
        """
        return False

    def tells_done(self) -> bool:
        """Whether `already_done` can tell this step's result from anything else in the catalog
        (default: when the class overrides it)."""
        return type(self).already_done is not Operation.already_done

    def arguments(self) -> Dict[str, Any]:
        """Arguments that differ from their defaults, in declaration order, for the revision file."""
        args: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
                continue
            args[f.name] = list(value) if isinstance(value, tuple) else value
        return args

    def call_arguments(self) -> Tuple[List[Any], Dict[str, Any]]:
        """(positional, keyword) arguments of the call a revision file writes: by default every
        argument by its keyword (`arguments`); an operation whose actor method takes some
        positionally (`create_table`'s name and parts) says so here."""
        return [], self.arguments()

    def to_json(self) -> Dict[str, Any]:
        arguments = {name: _json_value(value) for name, value in self.arguments().items()}
        return {"operation": self.name, "arguments": arguments, "sql": self.statements()}


def safe_to_rerun(operation: Operation) -> bool:
    """Whether `operation` may run again after an earlier run committed it: it says it is
    `rerunnable`, or it asks the catalog first (`already_done` overridden)."""
    return operation.rerunnable or operation.tells_done()


@dataclass(frozen=True)
class RowProblem:
    """What a step would do to existing rows, in words naming the table, column and count.

    `fails`: Postgres would refuse the statement on these rows (the revision
    cannot run as written); False: it runs, and changes or loses the values.
    """

    message: str
    fails: bool = False


COUNT_LIMIT_BYTES = 256 * 1024 * 1024
"""Tables larger on disk than this are not scanned to count rows a step affects (too slow to
ask before every run); the step's hazards still say what it may do."""


def may_change(earlier: Sequence[Operation], schema: str, table: str, column: Optional[str] = None) -> bool:
    """Whether one of the `earlier` steps may change the rows (or the name) of `column` of
    `schema.table` (of any column when None): a revision's own SQL, a step on the table as a whole
    (rename, drop, create), a step on that column or one renamed to its name, or a step whose
    `columns` list it (an enum remap or swap). Steps that declare `keeps_rows` do not count."""
    for op in earlier:
        if op.touches_any_rows:
            return True
        if op.keeps_rows:
            continue
        listed = getattr(op, "columns", None)
        if isinstance(listed, tuple) and any(
            isinstance(item, tuple) and tuple(item[:2]) == (schema, table) and (column is None or item[2] == column)
            for item in listed
        ):
            return True
        if getattr(op, "table_name", None) != table or getattr(op, "schema", "public") != schema:
            continue
        other = getattr(op, "column_name", None)
        if other is None or column is None or column in (other, getattr(op, "new_name", None)):
            return True
    return False


async def probe(connection: Any, query: str, *args: Any) -> Tuple[Any, Optional[str]]:
    """(the first value of `query`, None); (None, Postgres's error in words) when a row makes it
    fail (SQLSTATE classes 22, data exception, and 23, a domain's check); (None, None) when it
    fails for another reason (a lock timeout, a missing table): the rows then tell nothing.

    Runs in a savepoint (a transaction when there is none), so a failing
    cast leaves the caller's transaction usable.
    """
    import asyncpg

    try:
        async with connection.transaction():
            return await connection.fetchval(query, *args), None
    except asyncpg.PostgresError as exc:
        if str(getattr(exc, "sqlstate", ""))[:2] not in ("22", "23"):
            return None, None
        detail = getattr(exc, "detail", None)
        return None, f"{exc}" + (f" ({detail})" if detail else "")


class _RolledBack(Exception):
    """Ends `read_rolled_back`'s transaction, carrying what was read in it."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


async def read_rolled_back(connection: Any, statement: str, query: str, *args: Any) -> Any:
    """Run `statement`, then `query`, in a transaction (a savepoint inside one) that is always
    rolled back: what the server makes of a definition (pg_get_constraintdef, pg_get_expr) without
    keeping it. Returns the first value of `query`; None when the server refuses either."""
    import asyncpg

    try:
        async with connection.transaction():
            await connection.execute(statement)
            raise _RolledBack(await connection.fetchval(query, *args))
    except _RolledBack as done:
        return done.value
    except asyncpg.PostgresError:
        return None


async def countable(connection: Any, schema: str, table: str) -> bool:
    """Whether `schema.table` exists and is small enough (`COUNT_LIMIT_BYTES`) to count rows in it."""
    from pgmig.db.quoting import qualified

    size, error = await probe(
        connection, "SELECT pg_catalog.pg_total_relation_size(pg_catalog.to_regclass($1))", qualified(schema, table)
    )
    return error is None and size is not None and int(size) <= COUNT_LIMIT_BYTES


def _json_value(value: Any) -> Any:
    """A plain JSON value for an argument: parts of an operation (a `create_table`'s columns) as their dicts."""
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    to_json = getattr(value, "to_json", None)
    return to_json() if callable(to_json) else value


def register(cls: O) -> O:
    """Class decorator: make an operation callable as `actor.<cls.name>(...)`.

    Raises `PgmigError` when another module already registered the name.
    """
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} needs a `name`")
    existing = OPERATIONS.get(cls.name)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise PgmigError(f"operation {cls.name!r} is defined by both {existing.__module__} and {cls.__module__}")
    OPERATIONS[cls.name] = cls
    return cls


class UnknownOperationError(RevisionError, AttributeError):
    """A revision called `migrator.actor.<name>` and no registered operation has that name.

    An `AttributeError` too, so `getattr(actor, name, default)` and `hasattr` keep working.
    """


def lookup(name: str) -> Type[Operation]:
    """The operation class registered as `name`.

    Raises `UnknownOperationError` naming the closest registered names
    (`add_colum` -> "did you mean add_column?").
    """
    if name not in OPERATIONS:
        # Built-in operations live in pgmig.ops; import them on first need only.
        from pgmig import ops  # noqa: F401
    try:
        return OPERATIONS[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, OPERATIONS, n=1)
    hint = f"did you mean {close[0]}?" if close else "is the plugin that provides it installed and imported?"
    raise UnknownOperationError(f"the actor has no operation {name!r}: {hint}")


def build(operation_class: Type[Op], **arguments: Any) -> Op:
    """`operation_class(**arguments)`, with a TypeError naming the actor method that was called wrong."""
    try:
        return operation_class(**arguments)
    except TypeError as exc:
        raise TypeError(f"actor.{operation_class.name}(): {exc}") from None


def is_schema_field(name: str) -> bool:
    """Whether a field called `name` holds a schema name: `schema`, `schema_name`, `referred_schema`,
    `sequence_schema` and every other `*_schema` of built-in and plugin operations and their parts."""
    return name in ("schema", "schema_name") or name.endswith("_schema")


def is_type_field(name: str) -> bool:
    """Whether a field called `name` holds a type as SQL names it (`data_type`, `old_data_type`)."""
    return name == "data_type" or name.endswith("_data_type")


def is_expression_field(name: str) -> bool:
    """Whether a field called `name` holds an SQL expression that may name a type or a sequence:
    a column's or domain's `default`, a type change's `using`, a generated column's `generated`."""
    return name in ("default", "using", "generated") or name.endswith("_default")


# A name as SQL writes it: double-quoted (`""` inside is one `"`), or plain.
_NAME = re.compile(r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*')


def _unquoted(token: str) -> str:
    """The name an identifier token stands for: quoted kept as is, plain folded to lower case
    (PostgreSQL docs, "Identifiers and Key Words", sql-syntax-lexical)."""
    return token[1:-1].replace('""', '"') if token.startswith('"') else token.lower()


def translate_type(data_type: str, mapping: Mapping[str, str]) -> str:
    """`data_type` (`public.mood`, `"public"."mood"[]`, `integer`) with its schema renamed when
    `mapping` has it; a type without a schema, or of another schema, unchanged.

    Only a leading `schema.` is read: the rest (the name, modifiers, `[]`) is kept as written.
    """
    from pgmig.schema.types import server_quoted

    text = data_type.lstrip()
    found = _NAME.match(text)
    if found is None or not text[found.end() :].startswith("."):
        return data_type
    schema = _unquoted(found.group())
    if schema not in mapping:
        return data_type
    return data_type[: len(data_type) - len(text)] + server_quoted(mapping[schema]) + text[found.end() :]


# A sequence function's opening, whose first argument is a sequence's name as text (its regclass).
_SEQUENCE_CALL = re.compile(r"\b(?:nextval|currval|setval)\s*\(\s*\Z", re.IGNORECASE)


def translate_expression(sql: str, mapping: Mapping[str, str]) -> str:
    """`sql` with the type of each `::` cast (`'a'::public.mood`), each regclass literal
    (`'public.seq'::regclass`) and each sequence named to `nextval`/`currval`/`setval`
    (`nextval('public.seq')`) renamed by `mapping` (`translate_type`); string literals and quoted
    names are read as tokens, so a `::` or a schema name inside them is left alone.
    String literals are read as `pg_get_expr` prints them (standard-conforming: a quote doubled,
    never backslash-escaped). Functions called by schema (`public.make_id()`) are left alone: one
    may come from an extension installed in that schema, which the tenant does not have again."""
    parts: List[str] = []
    i = 0
    while i < len(sql):
        char = sql[i]
        if char == "'":
            end = i + 1
            while end < len(sql):
                if sql[end] == "'" and sql[end + 1 : end + 2] == "'":
                    end += 2
                elif sql[end] == "'":
                    break
                else:
                    end += 1
            literal = sql[i : end + 1]
            if _SEQUENCE_CALL.search("".join(parts)) or re.match(r"::\s*regclass\b", sql[end + 1 :], re.I):
                name = literal[1:-1].replace("''", "'")
                literal = "'" + translate_type(name, mapping).replace("'", "''") + "'"
            parts.append(literal)
            i = end + 1
        elif char == '"':
            found = _NAME.match(sql, i)
            end = found.end() if found else len(sql)
            parts.append(sql[i:end])
            i = end
        elif sql.startswith("::", i):
            j = i + 2
            while j < len(sql) and sql[j].isspace():
                j += 1
            found = _NAME.match(sql, j)
            end = found.end() if found else j
            while found is not None and sql.startswith(".", end):
                found = _NAME.match(sql, end + 1)
                end = found.end() if found else end
            parts.append(sql[i:j] + translate_type(sql[j:end], mapping))
            i = end
        else:
            parts.append(char)
            i += 1
    return "".join(parts)


T = TypeVar("T")


def translate_schemas(value: T, mapping: Mapping[str, str]) -> T:
    """`value` (an operation, a part of one, or a tuple of them) with every schema field naming a key of
    `mapping` (`is_schema_field`) renamed to its value, at any depth; the rest unchanged.

    The same revision then lands in another schema (schema-per-tenant fleets: the revision written for
    `public` creates `tenant_a.users`, its foreign keys point at `tenant_a`). Type references are
    renamed too: a type field (`is_type_field`: `data_type`, `old_data_type`) whose type is qualified by
    a mapped schema (`public.mood`, `"public"."mood"[]`), and inside expression fields
    (`is_expression_field`: defaults, `using`, `generated`) the types of `::` casts
    (`'happy'::public.mood`) and the sequences of regclass literals and sequence functions
    (`nextval('public.seq'::regclass)`, `nextval('public.seq')`), as `pg_get_expr` and models write
    them (`translate_type`, `translate_expression`). Other SQL text
    (`execute("...")`, check expressions) is not rewritten: a session running translated steps puts the
    target schema first on its search_path instead (`pgmig.revisions.runner.Runner`). An operation
    holding schema names in other shapes renames them in `schemas_translated(mapping)`, called last.
    """
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(translate_schemas(item, mapping) for item in value)  # type: ignore[return-value]
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    changes: Dict[str, Any] = {}
    for f in dataclasses.fields(value):
        if not f.init:
            continue
        current = getattr(value, f.name)
        if is_schema_field(f.name) and isinstance(current, str) and current in mapping:
            changes[f.name] = mapping[current]
        elif is_type_field(f.name) and isinstance(current, str):
            if translate_type(current, mapping) != current:
                changes[f.name] = translate_type(current, mapping)
        elif is_expression_field(f.name) and isinstance(current, str):
            if translate_expression(current, mapping) != current:
                changes[f.name] = translate_expression(current, mapping)
        elif isinstance(current, tuple) or dataclasses.is_dataclass(current):
            translated = translate_schemas(current, mapping)
            if translated != current:
                changes[f.name] = translated
    translated = dataclasses.replace(value, **changes) if changes else value
    # Fields that are not parts of their own (an enum swap's columns as tuples, a Citus group named
    # by "schema.table") are renamed by the operation itself.
    own = getattr(translated, "schemas_translated", None)
    return own(mapping) if callable(own) else translated
