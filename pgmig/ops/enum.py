"""Operations on enum types."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from pgmig.db.quoting import qualified, quote_ident, quote_literal, standard_literal
from pgmig.errors import agree, plural
from pgmig.ops.base import (
    Hazard,
    Operation,
    RowProblem,
    countable,
    may_change,
    probe,
    register,
    translate_expression,
)
from pgmig.ops.table import TablePart

SwapColumn = Tuple[str, str, str, bool, Optional[str]]
"""(table schema, table, column, is an array of the type, default expression or None)."""

SWAP_SUFFIX = "__pgmig_new"


def _alter(schema: str, type_name: str) -> str:
    return f"ALTER TYPE {qualified(schema, type_name)}"


def _names_any_label(expression: str, labels: Tuple[str, ...]) -> bool:
    """Whether a default such as `'a'::mood`, `'a'` or `ARRAY['a'::mood]` holds one of `labels` as a literal."""
    return any(
        re.search(r"(?<!')" + re.escape(standard_literal(label)) + r"(?!')", expression) is not None for label in labels
    )


def _values(values: Tuple[str, ...]) -> str:
    return ", ".join(quote_literal(v) for v in values)


@dataclass(frozen=True)
class _EnumOperation(Operation):
    """Shared shape: label lists arrive as lists from revision files but must stay hashable."""

    def __post_init__(self) -> None:
        values = getattr(self, "values", None)
        if values is not None and not isinstance(values, tuple):
            if isinstance(values, str):
                raise TypeError("values must be a list of labels, not a single string")
            object.__setattr__(self, "values", tuple(values))


@register
@dataclass(frozen=True)
class AddType(_EnumOperation):
    """Create an enum type with its labels in declaration order."""

    name = "add_type"
    locks = 4
    type_name: str
    values: Tuple[str, ...]
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"CREATE TYPE {qualified(self.schema, self.type_name)} AS ENUM ({_values(self.values)})"]


@register
@dataclass(frozen=True)
class DropType(Operation):
    """Drop an enum type; Postgres refuses while a column still uses it."""

    name = "drop_type"
    locks = 4
    type_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"DROP TYPE {qualified(self.schema, self.type_name)}"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (Hazard.DELETES_DATA,)


@register
@dataclass(frozen=True)
class AddTypeValues(_EnumOperation):
    """Insert a run of consecutive new labels next to one existing label.

    The first label goes `BEFORE before` or `AFTER after` (or at the end when
    neither is given); each following one goes right after its predecessor,
    so the run keeps its declared order wherever it lands. Postgres accepts
    this inside a transaction (12+), but a label added in a transaction cannot
    be used until that transaction commits (SQLSTATE 55P04).
    """

    name = "add_type_values"
    locks = 2
    commit_before_use = True
    rerunnable = True  # ADD VALUE IF NOT EXISTS
    type_name: str
    values: Tuple[str, ...]
    before: Optional[str] = None
    after: Optional[str] = None
    schema: str = "public"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.before is not None and self.after is not None:
            raise TypeError("give either before= or after=, not both")

    def ahead_of(self, earlier: Sequence[Operation]) -> Optional[Operation]:
        """These labels added before the revision's transaction: anchors named by a label that an
        earlier step renames take the label's old name (RENAME VALUE keeps its place); None when
        an earlier step creates, swaps or drops the type (it is new in the transaction, where
        Postgres lets its new labels be used at once)."""
        before, after = self.before, self.after
        for op in reversed(earlier):
            if getattr(op, "schema", None) != self.schema or getattr(op, "type_name", None) != self.type_name:
                continue
            if isinstance(op, RenameTypeValue):
                if op.old_value in self.values:
                    return None  # the name is only free once the rename ran
                before = op.old_value if before == op.new_value else before
                after = op.old_value if after == op.new_value else after
            elif isinstance(op, (AddType, SwapTypeValues, DropType)):
                return None
        return replace(self, before=before, after=after)

    def statements(self) -> List[str]:
        alter = _alter(self.schema, self.type_name)
        statements = []
        previous: Optional[str] = None
        for value in self.values:
            # IF NOT EXISTS: the label is committed on its own (see the runner),
            # so a revision retried after a later failure must not trip on it.
            sql = f"{alter} ADD VALUE IF NOT EXISTS {quote_literal(value)}"
            if previous is not None:
                sql += f" AFTER {quote_literal(previous)}"
            elif self.before is not None:
                sql += f" BEFORE {quote_literal(self.before)}"
            elif self.after is not None:
                sql += f" AFTER {quote_literal(self.after)}"
            statements.append(sql)
            previous = value
        return statements


@register
@dataclass(frozen=True)
class RenameTypeValue(Operation):
    """Rename one label in place: rows holding it follow, since they store the label's OID."""

    name = "rename_type_value"
    locks = 2
    type_name: str
    old_value: str
    new_value: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"{_alter(self.schema, self.type_name)} RENAME VALUE "
            f"{quote_literal(self.old_value)} TO {quote_literal(self.new_value)}"
        ]


@dataclass(frozen=True, repr=False)
class EnumColumn(TablePart):
    """A column of an enum type that `swap_type_values` moves to the new type, or `remap_type_values`
    moves off old labels: `EnumColumn("person", "role", default="'guest'::role")`.

    `array=True`: the column is an array of the type. `default`: its default expression as
    Postgres prints it (`pg_get_expr`), which the swap drops before the cast and restores after;
    None when it has none (and always for `remap_type_values`, which does not touch defaults).
    """

    positional = 2
    part_kind = "enum_column"

    table: str
    column: str
    schema: str = "public"
    array: bool = False
    default: Optional[str] = None

    def __repr__(self) -> str:
        return self.call_text()

    def sql(self, schema: str) -> str:
        raise TypeError("an EnumColumn names a column of a swap or remap; it is no part of a CREATE TABLE")


EnumColumns = Sequence[Union[EnumColumn, Sequence[Optional[Union[str, bool]]]]]
"""What a revision file gives as `columns`: `EnumColumn(...)`s, or the lists earlier pgmig wrote."""


def _enum_column(schema: str, table: str, column: str, is_array: bool, default: Optional[str] = None) -> EnumColumn:
    return EnumColumn(table, column, schema=schema, array=is_array, default=default)


def _columns_translated(
    columns: Tuple[Tuple[Any, ...], ...], mapping: Mapping[str, str]
) -> Tuple[Tuple[Any, ...], ...]:
    """`columns` ((schema, table, column, is_array[, default]) tuples) with each table's schema, and the
    types and sequences its default names, renamed by `mapping` (`pgmig.ops.base.translate_schemas`)."""
    renamed = []
    for schema, *rest in columns:
        if len(rest) == 4 and isinstance(rest[3], str):
            rest[3] = translate_expression(rest[3], mapping)
        renamed.append((mapping.get(schema, schema), *rest))
    return tuple(renamed)


def _swap_column(item: Any) -> SwapColumn:
    """A revision file's `EnumColumn(...)`, or `[schema, table, column(, is_array(, default))]` as
    earlier pgmig wrote it, as a hashable tuple."""
    if isinstance(item, EnumColumn):
        return (item.schema, item.table, item.column, bool(item.array), item.default)
    if isinstance(item, str) or not 3 <= len(item) <= 5:
        raise TypeError(f"each column must be [table schema, table, column, is_array, default], not {item!r}")
    schema, table, column, *rest = item
    is_array = bool(rest[0]) if rest else False
    default = rest[1] if len(rest) > 1 else None
    return (str(schema), str(table), str(column), is_array, default)


@register
@dataclass(frozen=True)
class SwapTypeValues(_EnumOperation):
    """Give an enum exactly `values`, in that order, by moving every column to a fresh type.

    Postgres cannot drop or reorder labels in place. The new type is built
    beside the old one, each column is cast through text (which fails, and
    with it the transaction, if a row still holds a label that is gone), and
    the new type takes the old name, so columns, revision files and models
    keep referring to the same name. Each converted table is rewritten.

    Defaults are dropped first because Postgres cannot cast an enum default
    to another enum type, and restored from their old text after the rename,
    when `'a'::"mood"` means the (new) type again. A default whose label was
    removed cannot be restored: its SET DEFAULT fails and the swap with it;
    the models must change that default in the same revision (the column's
    own change then sets the new default, after this operation).

    Views using a column (ALTER COLUMN TYPE refuses), CHECK constraints and
    index predicates comparing the column with a label (rebuilt against the
    new type, where `'a'::"mood"` still names the old one) are dropped
    before this operation and created again after it by the planner
    (pgmig.plan.rebuilds); a revision written by hand must do the same.
    Not handled: domains, composite types and functions over the type (DROP
    TYPE refuses), which make the swap fail, inside its transaction.
    """

    name = "swap_type_values"
    argument_types = {"columns": EnumColumns}
    type_name: str
    values: Tuple[str, ...]
    columns: Tuple[SwapColumn, ...] = ()

    def lock_estimate(self) -> int:
        """Both types and their array types (6), and each column's table rewritten with its
        TOAST relations and indexes (16 a column)."""
        return 6 + 16 * len(self.columns)

    removed_values: Tuple[str, ...] = ()
    """Labels the swap drops: informative only (the summary and the hazard)."""
    schema: str = "public"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.removed_values, str):
            raise TypeError("removed_values must be a list of labels, not a single string")
        object.__setattr__(self, "removed_values", tuple(self.removed_values))
        object.__setattr__(self, "columns", tuple(_swap_column(c) for c in self.columns))

    def schemas_translated(self, mapping: Mapping[str, str]) -> "SwapTypeValues":
        """Its columns' schemas renamed too (a tenant's tables, not `public`'s): see `translate_schemas`."""
        return replace(self, columns=_columns_translated(self.columns, mapping))

    def arguments(self) -> Dict[str, Any]:
        args = super().arguments()
        if "columns" in args:
            args["columns"] = [_enum_column(*column) for column in self.columns]
        return args

    def statements(self) -> List[str]:
        old_type = qualified(self.schema, self.type_name)
        temp_name = self.type_name + SWAP_SUFFIX
        new_type = qualified(self.schema, temp_name)
        statements = [f"CREATE TYPE {new_type} AS ENUM ({_values(self.values)})"]
        for schema, table, column, is_array, default in self.columns:
            alter = f"ALTER TABLE {qualified(schema, table)} ALTER COLUMN {quote_ident(column)}"
            if default is not None:
                statements.append(f"{alter} DROP DEFAULT")
            brackets = "[]" if is_array else ""
            statements.append(
                f"{alter} TYPE {new_type}{brackets} USING {quote_ident(column)}::text{brackets}::{new_type}{brackets}"
            )
        statements.append(f"DROP TYPE {old_type}")
        statements.append(f"ALTER TYPE {new_type} RENAME TO {quote_ident(self.type_name)}")
        for schema, table, column, _is_array, default in self.columns:
            # A default naming a label that is gone cannot come back; the
            # column's own change sets the models' new default after this.
            if default is not None and not _names_any_label(default, self.removed_values):
                statements.append(
                    f"ALTER TABLE {qualified(schema, table)} ALTER COLUMN {quote_ident(column)} SET DEFAULT {default}"
                )
        return statements

    def hazards(self) -> Tuple[Hazard, ...]:
        hazards: Tuple[Hazard, ...] = (Hazard.REWRITES_TABLE,) if self.columns else ()
        return hazards + (Hazard.DELETES_DATA,) if self.removed_values else hazards

    async def preflight(self, connection: Any, earlier: Sequence[Operation]) -> List[RowProblem]:
        """Rows holding a label this swap removes, per column and label: the cast through text
        would refuse them (`invalid input value for enum`). Labels an earlier `remap_type_values`
        of this type moves are left out; so are columns other earlier steps change."""
        mapped = {
            old
            for op in earlier
            if isinstance(op, RemapTypeValues) and (op.schema, op.type_name) == (self.schema, self.type_name)
            for old, _new in op.mapping
        }
        others = [
            op
            for op in earlier
            if not (isinstance(op, RemapTypeValues) and (op.schema, op.type_name) == (self.schema, self.type_name))
        ]
        if any(
            isinstance(op, RenameTypeValue) and (op.schema, op.type_name) == (self.schema, self.type_name)
            for op in earlier
        ):
            return []  # the rows' labels are renamed before: what they hold now says nothing certain
        labels = [label for label in self.removed_values if label not in mapped]
        problems: List[RowProblem] = []
        for schema, table, column, is_array, _default in self.columns:
            if not labels or may_change(others, schema, table, column):
                continue
            if not await countable(connection, schema, table):
                continue
            for label in labels:
                count, _ = await probe(
                    connection,
                    f"SELECT count(*) FROM {qualified(schema, table)} WHERE {holds_label(column, is_array, label)}",
                )
                if not count:
                    continue
                remap = RemapTypeValues(
                    type_name=self.type_name,
                    mapping=((label, "OTHER"),),
                    columns=((schema, table, column, is_array),),
                    schema=self.schema,
                )
                call = ", ".join(f"{name}={value!r}" for name, value in remap.arguments().items())
                problems.append(
                    RowProblem(
                        f"{plural(count, 'row')} of {schema}.{table}.{column} {agree(count, 'holds', 'hold')} label {label!r} of enum {self.type_name}, "
                        f"which this step removes (Postgres would refuse them: invalid input value for enum); "
                        f"move them first with `await migrator.actor.remap_type_values({call})` "
                        f"before swap_type_values, OTHER a label it keeps",
                        fails=True,
                    )
                )
        return problems


def holds_label(column: str, is_array: bool, label: str) -> str:
    """A condition: `column` (of an enum type, or an array of it) holds `label`."""
    col = quote_ident(column)
    if is_array:
        return f"{quote_literal(label)} = ANY({col}::text[])"
    return f"{col}::text = {quote_literal(label)}"


@register
@dataclass(frozen=True)
class RemapTypeValues(Operation):
    """Move rows off labels that are going away: `mapping` is {old label: new label}.

    Runs before a `swap_type_values` that drops the old labels, in the same
    transaction, on every column using the type (arrays with array_replace).
    """

    name = "remap_type_values"
    argument_types = {"mapping": Union[Mapping[str, str], Sequence[Tuple[str, str]]], "columns": EnumColumns}
    type_name: str
    mapping: Tuple[Tuple[str, str], ...]
    columns: Tuple[Tuple[str, str, str, bool], ...] = ()

    def lock_estimate(self) -> int:
        """An UPDATE on each column's table and its indexes (8 a column)."""
        return 2 + 8 * len(self.columns)

    schema: str = "public"

    def __post_init__(self) -> None:
        mapping = self.mapping.items() if isinstance(self.mapping, dict) else self.mapping
        object.__setattr__(self, "mapping", tuple((str(a), str(b)) for a, b in mapping))
        object.__setattr__(self, "columns", tuple(_swap_column(c)[:4] for c in self.columns))

    def schemas_translated(self, mapping: Mapping[str, str]) -> "RemapTypeValues":
        """Its columns' schemas renamed too (a tenant's tables, not `public`'s): see `translate_schemas`."""
        return replace(self, columns=_columns_translated(self.columns, mapping))

    def arguments(self) -> Dict[str, Any]:
        args = super().arguments()
        args["mapping"] = dict(self.mapping)
        if "columns" in args:
            args["columns"] = [_enum_column(*column) for column in self.columns]
        return args

    def statements(self) -> List[str]:
        enum_type = qualified(self.schema, self.type_name)
        statements = []
        for schema, table, column, is_array in self.columns:
            target, col = qualified(schema, table), quote_ident(column)
            for old, new in self.mapping:
                old_value, new_value = f"{quote_literal(old)}::{enum_type}", f"{quote_literal(new)}::{enum_type}"
                if is_array:
                    statements.append(
                        f"UPDATE {target} SET {col} = array_replace({col}, {old_value}, {new_value}) "
                        f"WHERE {old_value} = ANY({col})"
                    )
                else:
                    statements.append(f"UPDATE {target} SET {col} = {new_value} WHERE {col} = {old_value}")
        return statements
