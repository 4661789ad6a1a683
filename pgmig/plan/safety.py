"""Checks and rewrites that keep a generated revision from failing half-way on real data.

- A NOT NULL column added without a default, or a column made NOT NULL,
  fails on a table with rows (or NULLs): such steps get the default or the
  backfill the user gives, or a TODO that stops the revision before it runs.
- Enum labels that go away while rows still hold them: the rows are counted
  (when the database has real data) and moved with the mapping given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, List, Sequence, Tuple

from pgmig.db.quoting import qualified, quote_ident, quote_literal
from pgmig.ops.base import Operation, lookup


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
    needs = []
    for op in ops:
        args: Any = op
        if op.name == "add_column" and not args.nullable and args.default is None and not args.new_table:
            if args.identity is None and not args.autoincrement:
                needs.append(NotNullNeed(args.schema, args.table_name, args.column_name, True))
        elif op.name == "add_not_null" and not getattr(args, "new_table", False):
            needs.append(NotNullNeed(args.schema, args.table_name, args.column_name, False))
    return needs


def apply_defaults(ops: Sequence[Operation], answers: Dict[Tuple[str, str], str]) -> List[Operation]:
    """Give each NOT NULL step its answer: a default while adding, or a backfill before SET NOT NULL.

    A column added with a constant default is metadata-only on PostgreSQL
    11+; the default is then dropped again when the models have none.
    """
    result: List[Operation] = []
    for op in ops:
        args: Any = op
        key = (getattr(args, "table_name", ""), getattr(args, "column_name", ""))
        expression = answers.get(key)
        if expression is not None and op.name == "add_column" and args.default is None and not args.nullable:
            result.append(replace(op, default=expression))  # type: ignore[type-var]
            result.append(
                lookup("set_column_default")(table_name=key[0], column_name=key[1], default=None, schema=args.schema)
            )
            continue
        if expression is not None and op.name == "add_not_null":
            result.append(
                lookup("backfill_column")(
                    table_name=key[0], column_name=key[1], expression=expression, schema=args.schema
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


async def unmet_not_null(connection: Any, needs: Sequence[NotNullNeed]) -> List[str]:
    """The needs that this database's rows would actually trip over, in words."""
    problems = []
    for need in needs:
        if need.adds_column:
            if await has_rows(connection, need.schema, need.table):
                problems.append(f"table {need.table} has rows: {need.describe()}")
        else:
            count = await null_count(connection, need.schema, need.table, need.column)
            if count:
                problems.append(f"{count} row(s) of {need.table} hold NULL in {need.column}: {need.describe()}")
    return problems


async def removed_label_rows(connection: Any, op: Operation) -> Dict[str, int]:
    """For a swap that drops labels: how many rows hold each removed label."""
    args: Any = op
    counts: Dict[str, int] = {}
    for label in args.removed_values:
        total = 0
        for schema, table, column, is_array, _default in args.columns:
            col = quote_ident(column)
            condition = (
                f"{quote_literal(label)} = ANY({col}::text[])" if is_array else f"{col}::text = {quote_literal(label)}"
            )
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
        args: Any = op
        if op.name == "swap_type_values" and args.type_name in mapping:
            columns = [[s, t, c, a] for s, t, c, a, _d in args.columns]
            result.append(
                lookup("remap_type_values")(
                    type_name=args.type_name, mapping=mapping[args.type_name], columns=columns, schema=args.schema
                )
            )
        result.append(op)
    return result


def todo_lines(problems: Sequence[str], hint: str) -> List[str]:
    """Lines that open `up` and stop it before it changes anything."""
    text = "; ".join(problems)
    return [
        f"# TODO: {text}.",
        f"# {hint}",
        f"raise NotImplementedError({text!r} + ' (edit this revision: {hint})')",
    ]


async def preflight(connection: Any, ops: Sequence[Operation]) -> List[str]:
    """What would fail on this database's data, said before any revision is written (pgmig diff)."""
    warnings = [
        f"{problem}; give a value with pgmig generate --default {need_name}=EXPR"
        for problem, need_name in await _with_names(connection, not_null_needs(ops))
    ]
    for op in ops:
        if op.name == "swap_type_values" and getattr(op, "removed_values", ()):
            for label, count in (await removed_label_rows(connection, op)).items():
                enum = op.type_name
                warnings.append(
                    f"{count} row(s) hold label {label!r} of enum {enum}, which the models remove; "
                    f"move them with pgmig generate --map-enum-value {enum}.{label}=OTHER"
                )
    return warnings


async def _with_names(connection: Any, needs: Sequence[NotNullNeed]) -> List[Tuple[str, str]]:
    out = []
    for need in needs:
        problems = await unmet_not_null(connection, [need])
        out.extend((problem, need.name) for problem in problems)
    return out


def parse_defaults(pairs: Sequence[Tuple[str, str, str]]) -> Dict[Tuple[str, str], str]:
    return {(table, column): expression for table, column, expression in pairs}


def parse_maps(pairs: Sequence[Tuple[str, str, str]]) -> Dict[str, Dict[str, str]]:
    mapping: Dict[str, Dict[str, str]] = {}
    for enum, old, new in pairs:
        mapping.setdefault(enum, {})[old] = new
    return mapping


__all__ = [
    "NotNullNeed",
    "add_remaps",
    "apply_defaults",
    "not_null_needs",
    "parse_defaults",
    "parse_maps",
    "preflight",
    "removed_label_rows",
    "todo_lines",
    "unmet_not_null",
]
