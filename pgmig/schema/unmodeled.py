"""What the models declare that no handler carries yet: said as warnings, never dropped quietly.

`create_all` builds everything a model declares; pgmig compares and migrates
only what its kinds model. Each construct it does not is an entry of
`UNMODELED` below, the one list: a name and a finder that yields where the
models use it (table, column, what). When a kind comes to model one, its
entry goes (the corpus, tests/test_corpus.py, shows which).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Tuple

from pgmig.errors import UnmodeledWarning
from pgmig.schema.protocol import ModelContext

# (column name or None, what exactly) for one use of a construct on a table.
Use = Tuple[Optional[str], str]
Finder = Callable[[Any, ModelContext], Iterator[Use]]


@dataclass(frozen=True)
class Unmodeled:
    """A construct no handler models: `construct` names it in the warning; `find(table, models)` its uses."""

    construct: str
    find: Finder


def _table_option(option: str) -> Finder:
    def find(table: Any, models: ModelContext) -> Iterator[Use]:
        value = table.dialect_options["postgresql"].get(option)
        if value:
            yield None, f"postgresql_{option}={value!r}"

    return find


def _prefixes(table: Any, models: ModelContext) -> Iterator[Use]:
    if table._prefixes:
        yield None, f"prefixes={list(table._prefixes)!r}"


def _exclude_constraints(table: Any, models: ModelContext) -> Iterator[Use]:
    from sqlalchemy.dialects.postgresql import ExcludeConstraint

    for constraint in table.constraints:
        if isinstance(constraint, ExcludeConstraint):
            yield None, f"ExcludeConstraint {constraint.name or '(unnamed)'}"


def _index_tablespaces(table: Any, models: ModelContext) -> Iterator[Use]:
    for index in table.indexes:
        tablespace = index.dialect_options["postgresql"].get("tablespace")
        if tablespace:
            yield None, f"index {index.name}: postgresql_tablespace={tablespace!r}"


def _server_onupdate(table: Any, models: ModelContext) -> Iterator[Use]:
    for column in table.columns:
        # A Computed column sets its server_onupdate to itself: the generated column's own entry.
        if column.server_onupdate is not None and not _modeled_default(column.server_onupdate):
            yield column.name, "server_onupdate (the trigger that sets it is not in the models)"


def _fetched_defaults(table: Any, models: ModelContext) -> Iterator[Use]:
    from sqlalchemy.schema import DefaultClause

    for column in table.columns:
        default = column.server_default
        if default is not None and not isinstance(default, DefaultClause) and not _modeled_default(default):
            yield column.name, f"server_default={type(default).__name__}() (a value the database makes)"


def _modeled_default(default: Any) -> bool:
    """Server defaults some kind models itself: Identity, Computed and Sequence (their own entries)."""
    from sqlalchemy.schema import Computed, Identity, Sequence

    return isinstance(default, (Computed, Identity, Sequence))


def _ddl_listeners(target: Any, models: ModelContext) -> Iterator[Use]:
    """DDL() and functions listening to before_create/after_create (SQLAlchemy's own types' are not)."""
    for event in ("before_create", "after_create"):
        for listener in getattr(target.dispatch, event):
            if _sqlalchemys_own(listener) or not _runs_on_postgres(listener, models):
                continue
            statement = getattr(listener, "statement", None)
            what = (
                f"DDL({str(statement)[:60]!r})"
                if statement is not None
                else getattr(listener, "__name__", "a listener")
            )
            yield None, f"{event} {what}"


def _sqlalchemys_own(listener: Any) -> bool:
    """A listener a type of SQLAlchemy's (Enum, DOMAIN: SchemaType) added to create itself."""
    from sqlalchemy.types import SchemaType

    if isinstance(listener, functools.partial):
        listener = listener.func
    owner = getattr(listener, "__self__", None) or getattr(listener, "target", None)
    return isinstance(owner, SchemaType)


def _runs_on_postgres(listener: Any, models: ModelContext) -> bool:
    """False for DDL made conditional on another dialect (`.execute_if(dialect="sqlite")`)."""
    condition = getattr(listener, "_ddl_if", None)
    if condition is None:
        return True
    compiler = models.dialect.ddl_compiler(models.dialect, None)  # type: ignore[arg-type]
    return bool(condition._should_execute(listener, None, None, compiler=compiler))


# The one list: a construct leaves it when a kind models it.
UNMODELED: List[Unmodeled] = [
    Unmodeled("table partitioning", _table_option("partition_by")),
    Unmodeled("table inheritance", _table_option("inherits")),
    Unmodeled("table storage parameters", _table_option("with")),
    Unmodeled("table tablespace", _table_option("tablespace")),
    Unmodeled("table access method", _table_option("using")),
    Unmodeled("table ON COMMIT", _table_option("on_commit")),
    Unmodeled("table prefixes", _prefixes),
    Unmodeled("exclusion constraint", _exclude_constraints),
    Unmodeled("index tablespace", _index_tablespaces),
    Unmodeled("server_onupdate", _server_onupdate),
    Unmodeled("FetchedValue server default", _fetched_defaults),
    Unmodeled("DDL event listener", _ddl_listeners),
]


def unmodeled_warnings(models: ModelContext) -> List[UnmodeledWarning]:
    """One warning per use of an `UNMODELED` construct in the models' tables (and MetaData listeners).

    Built once per ModelContext (`models.derived(unmodeled_warnings)`).
    """
    found: List[UnmodeledWarning] = []
    for entry in UNMODELED:
        for table in models.tables:
            where = f"{models.table_schema(table)}.{table.name}"
            for column, what in entry.find(table, models):
                found.append(UnmodeledWarning(entry.construct, where, column, what))
    for md in models.metadata:
        for _, what in _ddl_listeners(md, models):
            found.append(UnmodeledWarning("DDL event listener", "the MetaData", None, what))
    return found
