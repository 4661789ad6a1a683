"""Checks and rewrites that keep a generated revision from failing half-way on real data.

- A NOT NULL column added without a default, or a column made NOT NULL,
  fails on a table with rows (or NULLs): such steps get the default or the
  backfill the user gives, or a TODO that stops the revision before it runs.
- Enum labels that go away while rows still hold them: the rows are counted
  (when the database has real data) and moved with the mapping given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from pgmig.db.quoting import qualified, quote_ident
from pgmig.errors import Hint, WordHint, agree, plural
from pgmig.ops.base import Operation
from pgmig.ops.column import AddColumn, AddNotNull, ModifyColumnType, SetColumnDefault
from pgmig.ops.data import BackfillColumn
from pgmig.ops.enum import RemapTypeValues, SwapTypeValues, holds_label
from pgmig.ops.typecasts import time_zone_assumption


@dataclass(frozen=True)
class NotNullNeed:
    """A step that makes a column NOT NULL on a table that may already have rows."""

    schema: str
    table: str
    column: str
    adds_column: bool

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    def describe(self) -> str:
        if self.adds_column:
            return f"adding NOT NULL column {self.name} without a default fails on a table with rows"
        return f"making {self.name} NOT NULL fails while rows hold NULL"


def not_null_needs(ops: Sequence[Operation]) -> List[NotNullNeed]:
    """The steps of `ops` that make a column NOT NULL on a table that may have rows.

    A column that numbers its rows (serial, identity) or comes with a default
    fills them; a table the same plan creates has none.
    """
    needs = []
    for op in ops:
        if isinstance(op, AddColumn):
            fills_itself = op.nullable or op.default is not None or op.identity is not None or op.autoincrement
            if not fills_itself and not op.new_table:
                needs.append(NotNullNeed(op.schema, op.table_name, op.column_name, True))
        elif isinstance(op, AddNotNull):
            needs.append(NotNullNeed(op.schema, op.table_name, op.column_name, False))
    return needs


def apply_defaults(ops: Sequence[Operation], answers: Dict[Tuple[str, str], str]) -> List[Operation]:
    """Give each NOT NULL step its answer: a default while adding, or a backfill before SET NOT NULL.

    `answers` maps (table, column) to a SQL expression. A column added with a
    constant default is metadata-only on PostgreSQL 11+; the default is then
    dropped again when the models have none.
    """
    result: List[Operation] = []
    for op in ops:
        if isinstance(op, AddColumn) and op.default is None and not op.nullable:
            expression = answers.get((op.table_name, op.column_name))
            if expression is not None:
                result.append(replace(op, default=expression))
                result.append(
                    SetColumnDefault(
                        table_name=op.table_name, column_name=op.column_name, default=None, schema=op.schema
                    )
                )
                continue
        elif isinstance(op, AddNotNull):
            expression = answers.get((op.table_name, op.column_name))
            if expression is not None:
                result.append(
                    BackfillColumn(
                        table_name=op.table_name, column_name=op.column_name, expression=expression, schema=op.schema
                    )
                )
        result.append(op)
    return result


async def has_rows(connection: Any, schema: str, table: str) -> bool:
    return bool(await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {qualified(schema, table)})"))


async def null_count(connection: Any, schema: str, table: str, column: str) -> int:
    return int(
        await connection.fetchval(
            f"SELECT count(*) FROM {qualified(schema, table)} WHERE {quote_ident(column)} IS NULL"
        )
    )


async def unmet_not_null(
    connection: Any, needs: Sequence[NotNullNeed], located: Optional[Callable[[NotNullNeed], NotNullNeed]] = None
) -> List[str]:
    """The needs that this database's rows would actually trip over, in words (named as in `needs`).

    `located` gives where the database holds a need's rows now, when the
    revision renames its table or column first (the rows are read under
    their current names: renaming on the database to read them would lock it).
    """
    problems = []
    for need in needs:
        where = located(need) if located else need
        if need.adds_column:
            if await has_rows(connection, where.schema, where.table):
                problems.append(f"table {need.table} has rows: {need.describe()}")
        else:
            count = await null_count(connection, where.schema, where.table, where.column)
            if count:
                problems.append(
                    f"{plural(count, 'row')} of {need.table} {agree(count, 'holds', 'hold')} NULL in {need.column}: {need.describe()}"
                )
    return problems


def _column_type(ops: Sequence[Operation], need: NotNullNeed) -> Optional[str]:
    """The type the revision gives `need`'s column (its AddColumn, or a type change), None when unchanged."""
    found: Optional[str] = None
    for op in ops:
        if isinstance(op, (AddColumn, ModifyColumnType)) and (op.schema, op.table_name, op.column_name) == (
            need.schema,
            need.table,
            need.column,
        ):
            found = op.data_type
    return found


UNDEFINED_OBJECT = "42704"


async def refused_value(
    connection: Any, ops: Sequence[Operation], need: NotNullNeed, expression: str, where: Optional[NotNullNeed] = None
) -> Optional[str]:
    """What the server says of `expression` (SQL typed by a person) as the value of `need`'s existing
    rows: None when it takes it, else its error (`UTC` without quotes: column "utc" does not exist).

    Cast to the column's type (the one `ops` give it, else the one the database holds at `where`,
    where the rows are now), once without a table for a column added (a default refers to no
    column), else over one of the table's rows (a backfill may read the row), in a transaction
    rolled back, as one prepared statement (the extended protocol takes no second statement).
    A type the revision creates is not on the server yet (42704): not checked.
    """
    import asyncpg

    where = where or need
    table = qualified(where.schema, where.table)
    data_type = _column_type(ops, need)
    if data_type is None:
        data_type = await connection.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2",
            table,
            where.column,
        )
    if data_type is None:
        return None
    query = f"SELECT CAST(({expression}\n) AS {data_type})"
    if not need.adds_column:
        query += f" FROM {table} LIMIT 1"
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.fetch(query)
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) == UNDEFINED_OBJECT and "type" in str(exc):
            return None
        return f"{exc.__class__.__name__}: {exc}"
    finally:
        await transaction.rollback()
    return None


async def removed_label_rows(connection: Any, op: SwapTypeValues) -> Dict[str, int]:
    """For a swap that drops labels: how many rows hold each removed label."""
    counts: Dict[str, int] = {}
    for label in op.removed_values:
        total = 0
        for schema, table, column, is_array, _default in op.columns:
            condition = holds_label(column, is_array, label)
            total += int(
                await connection.fetchval(f"SELECT count(*) FROM {qualified(schema, table)} WHERE {condition}")
            )
        if total:
            counts[label] = total
    return counts


def add_remaps(ops: Sequence[Operation], mapping: Dict[str, Dict[str, str]]) -> List[Operation]:
    """Put a remap of rows before each swap whose enum has a mapping: {enum: {old: new}}."""
    result: List[Operation] = []
    for op in ops:
        if isinstance(op, SwapTypeValues) and op.type_name in mapping:
            result.append(
                RemapTypeValues(
                    type_name=op.type_name,
                    mapping=tuple(mapping[op.type_name].items()),
                    columns=tuple((s, t, c, a) for s, t, c, a, _d in op.columns),
                    schema=op.schema,
                )
            )
        result.append(op)
    return result


TODO_EDIT = (
    "edit this revision: delete these TODO lines and give the existing rows a value in up(), "
    "a backfill_column(table_name=..., column_name=..., expression=...) call before add_not_null, "
    "or default=... on add_column (then set_column_default without a default after it); "
    "or delete the file and regenerate it"
)


def todo_lines(problems: Sequence[str], hint: str) -> List[str]:
    """Lines that open `up` and stop it before it changes anything: what the rows trip over, how to
    edit the file, and `hint` (what regenerates it, worded by the caller: the CLI names the flag)."""
    from pgmig.revisions.writer import comment_text  # a name with a newline must not end the comment

    text = "; ".join(problems)
    return [
        f"# TODO: {comment_text(text)}.",
        f"# To fix: {comment_text(TODO_EDIT)}: {comment_text(hint)}.",
        # One Python literal for the whole message: a name with a quote must not end the string.
        f"raise NotImplementedError({f'{text} ({TODO_EDIT}: {hint})'!r})",
    ]


async def preflight(connection: Any, ops: Sequence[Operation], word: WordHint = str) -> List[str]:
    """What would fail on this database's data, said before any revision is written (pgmig diff).

    Each warning ends with what to give `generate` to get past it, worded by
    `word` (the CLI words a `Hint` with its flags).
    """
    warnings = [
        f"{problem}; {word(Hint('give a value', 'defaults', (f'{need_name}=EXPR',)))}"
        for problem, need_name in await _with_names(connection, not_null_needs(ops))
    ]
    for op in ops:
        if isinstance(op, SwapTypeValues) and op.removed_values:
            for label, count in (await removed_label_rows(connection, op)).items():
                enum = op.type_name
                hint = Hint("move them", "enum_maps", (f"{enum}.{label}=OTHER",))
                warnings.append(
                    f"{plural(count, 'row')} {agree(count, 'holds', 'hold')} label {label!r} of enum {enum}, which the models remove; {word(hint)}"
                )
    destructive = word(Hint("agree to it", "allow_destructive"))
    warnings += [
        f"{problem} (generate asks before writing it; {destructive})" for problem in await row_problems(connection, ops)
    ]
    warnings += time_zone_notes(ops)
    return warnings


def time_zone_notes(ops: Sequence[Operation]) -> List[str]:
    """What the type changes among `ops` that count as lossless assume of the session's TimeZone
    (`timestamp` -> `timestamptz`, see pgmig.ops.typecasts)."""
    notes = []
    for op in ops:
        if isinstance(op, ModifyColumnType) and op.old_data_type is not None:
            said = time_zone_assumption(op.old_data_type, op.data_type)
            if said is not None:
                notes.append(f"{op.schema}.{op.table_name}.{op.column_name}: {said}")
    return notes


async def row_problems(connection: Any, ops: Sequence[Operation]) -> List[str]:
    """What the steps other than NOT NULL and enum swaps (which `preflight` words with their own
    hints) would do to this database's rows: type changes that change or refuse values."""
    problems = []
    for index, op in enumerate(ops):
        if not isinstance(op, (AddNotNull, SwapTypeValues)):
            problems += [problem.message for problem in await op.preflight(connection, ops[:index])]
    return problems


async def _with_names(connection: Any, needs: Sequence[NotNullNeed]) -> List[Tuple[str, str]]:
    out: List[Tuple[str, str]] = []
    for need in needs:
        problems = await unmet_not_null(connection, [need])
        out.extend((problem, need.name) for problem in problems)
    return out


__all__ = [
    "NotNullNeed",
    "add_remaps",
    "apply_defaults",
    "not_null_needs",
    "preflight",
    "refused_value",
    "removed_label_rows",
    "row_problems",
    "time_zone_notes",
    "todo_lines",
    "unmet_not_null",
]
