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
from typing import Any, Callable, List, Optional, Tuple

from pgmig.errors import UnmodeledWarning
from pgmig.schema.protocol import ModelContext

# (column name or None, what exactly) for one use of a construct on a table.
Use = Tuple[Optional[str], str]
# Each finder runs once per model table (or column) of every diff, and finds nothing in nearly
# all of them: finders return a list (empty most often) rather than a generator, and the column
# ones look at one column, so that every table's columns are walked once for all of them.
TableFinder = Callable[[Any, ModelContext], List[Use]]
ColumnFinder = Callable[[Any], Optional[str]]


@dataclass(frozen=True)
class Unmodeled:
    """A construct no handler models: `construct` names it in the warning; its uses are found
    by `in_table(table, models)` or, one column at a time, by `in_column(column)` (what of it)."""

    construct: str
    in_table: Optional[TableFinder] = None
    in_column: Optional[ColumnFinder] = None


def _table_option(option: str) -> TableFinder:
    def find(table: Any, models: ModelContext) -> List[Use]:
        value = table.dialect_options["postgresql"].get(option)
        return [(None, f"postgresql_{option}={value!r}")] if value else []

    return find


def _prefixes(table: Any, models: ModelContext) -> List[Use]:
    return [(None, f"prefixes={list(table._prefixes)!r}")] if table._prefixes else []


@functools.lru_cache(maxsize=None)
def _classes() -> Tuple[Any, Any, Any]:
    """(ExcludeConstraint, DefaultClause, SchemaType), imported once: the finders run per table
    and column, where an import statement costs more than the rest of the check."""
    from sqlalchemy.dialects.postgresql import ExcludeConstraint
    from sqlalchemy.schema import DefaultClause
    from sqlalchemy.types import SchemaType

    return ExcludeConstraint, DefaultClause, SchemaType


def _exclude_constraints(table: Any, models: ModelContext) -> List[Use]:
    exclude = _classes()[0]
    return [
        (None, f"ExcludeConstraint {constraint.name or '(unnamed)'}")
        for constraint in table.constraints
        if isinstance(constraint, exclude)
    ]


def _index_tablespaces(table: Any, models: ModelContext) -> List[Use]:
    found: List[Use] = []
    for index in table.indexes:
        tablespace = index.dialect_options["postgresql"].get("tablespace")
        if tablespace:
            found.append((None, f"index {index.name}: postgresql_tablespace={tablespace!r}"))
    return found


def _server_onupdate(column: Any) -> Optional[str]:
    # A Computed column sets its server_onupdate to itself: the generated column's own entry.
    if column.server_onupdate is not None and not _modeled_default(column.server_onupdate):
        return "server_onupdate (the trigger that sets it is not in the models)"
    return None


def _fetched_default(column: Any) -> Optional[str]:
    default = column.server_default
    if default is not None and not isinstance(default, _classes()[1]) and not _modeled_default(default):
        return f"server_default={type(default).__name__}() (a value the database makes)"
    return None


def _modeled_default(default: Any) -> bool:
    """Server defaults some kind models itself: Identity, Computed and Sequence (their own entries)."""
    from sqlalchemy.schema import Computed, Identity, Sequence

    return isinstance(default, (Computed, Identity, Sequence))


def _ddl_listeners(target: Any, models: ModelContext) -> List[Use]:
    """DDL() and functions listening to before_create/after_create (SQLAlchemy's own types' are not)."""
    found: List[Use] = []
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
            found.append((None, f"{event} {what}"))
    return found


def _sqlalchemys_own(listener: Any) -> bool:
    """A listener a type of SQLAlchemy's (Enum, DOMAIN: SchemaType) added to create itself."""
    if isinstance(listener, functools.partial):
        listener = listener.func
    owner = getattr(listener, "__self__", None) or getattr(listener, "target", None)
    return isinstance(owner, _classes()[2])


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
    Unmodeled("server_onupdate", in_column=_server_onupdate),
    Unmodeled("FetchedValue server default", in_column=_fetched_default),
    Unmodeled("DDL event listener", _ddl_listeners),
]


def unmodeled_warnings(models: ModelContext) -> List[UnmodeledWarning]:
    """One warning per use of an `UNMODELED` construct in the models' tables (and MetaData
    listeners), in the list's order.

    Built once per ModelContext (`models.derived(unmodeled_warnings)`).
    """
    by_table = [(entry.construct, entry.in_table) for entry in UNMODELED if entry.in_table is not None]
    by_column = [(entry.construct, entry.in_column) for entry in UNMODELED if entry.in_column is not None]
    order = {entry.construct: index for index, entry in enumerate(UNMODELED)}
    found: List[Tuple[int, int, UnmodeledWarning]] = []
    for position, table in enumerate(models.tables):
        uses = [(construct, use) for construct, find in by_table for use in find(table, models)]
        for column in table.columns:
            for construct, find in by_column:
                what = find(column)
                if what:
                    uses.append((construct, (column.name, what)))
        if uses:
            where = f"{models.table_schema(table)}.{table.name}"
            found.extend(
                (order[construct], position, UnmodeledWarning(construct, where, column_name, what))
                for construct, (column_name, what) in uses
            )
    found.sort(key=lambda item: item[:2])  # stable: a table's uses of one construct keep their order
    warnings = [warning for _, _, warning in found]
    for md in models.metadata:
        for _, what in _ddl_listeners(md, models):
            warnings.append(UnmodeledWarning("DDL event listener", "the MetaData", None, what))
    return warnings
