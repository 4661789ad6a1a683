"""Renames: a table, column or enum label that the models call by a new name.

A diff alone cannot tell a rename from a drop and an add, so renames are
given (`--rename`, `--rename-enum-value`) or confirmed at a prompt. They are
applied to the database inside a transaction that is rolled back, before the
schema is read: Postgres itself then carries the new name into indexes,
constraints and views, and the rest of the diff is computed as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from pgmig.errors import Hint
from pgmig.ops.base import Operation
from pgmig.ops.column import RenameColumn
from pgmig.ops.enum import RenameTypeValue
from pgmig.ops.table import RenameTable
from pgmig.plan.diff import CREATE, DESTROY, Change, Plan
from pgmig.schema.handlers.column import Column
from pgmig.schema.handlers.enum import Enum
from pgmig.schema.handlers.table import Table


@dataclass
class Renames:
    tables: List[Tuple[str, str]] = field(default_factory=list)
    columns: List[Tuple[str, str, str]] = field(default_factory=list)  # (table, old, new)
    enum_values: List[Tuple[str, str, str]] = field(default_factory=list)  # (enum, old, new)

    def __bool__(self) -> bool:
        return bool(self.tables or self.columns or self.enum_values)

    def operations(self, schema: str) -> List[Operation]:
        """The renames in the order they run: labels, then columns (by their table's old name), then tables."""
        ops: List[Operation] = []
        for enum, old, new in self.enum_values:
            ops.append(RenameTypeValue(type_name=enum, old_value=old, new_value=new, schema=schema))
        for table, old, new in self.columns:
            ops.append(RenameColumn(table_name=table, column_name=old, new_name=new, schema=schema))
        for old, new in self.tables:
            ops.append(RenameTable(table_name=old, new_name=new, schema=schema))
        return ops

    def table_before(self, table: str) -> str:
        """The name the database gives now to the table the renames call `table`."""
        for old, new in reversed(self.tables):
            if new == table:
                table = old
        return table

    def column_before(self, table: str, column: str) -> Tuple[str, str]:
        """(table, column) as the database names them now, for `column` of `table` named after the renames.

        Column renames run before table renames, so they name the table by its old name.
        """
        table = self.table_before(table)
        for owner, old, new in reversed(self.columns):
            if owner == table and new == column:
                column = old
        return table, column

    def label_before(self, enum: str, label: str) -> str:
        """The label the rows hold now for `label` of `enum` named after the renames."""
        for owner, old, new in reversed(self.enum_values):
            if owner == enum and new == label:
                label = old
        return label

    def inverse_operations(self, schema: str) -> List[Operation]:
        """What undoes `operations`, in reverse: tables back first, so column renames name the old table."""
        tables = Renames(tables=[(new, old) for old, new in reversed(self.tables)])
        columns = Renames(columns=[(table, new, old) for table, old, new in reversed(self.columns)])
        labels = Renames(enum_values=[(enum, new, old) for enum, old, new in reversed(self.enum_values)])
        return tables.operations(schema) + columns.operations(schema) + labels.operations(schema)


RENAME_ACTION = "if it was renamed, keep its data: rerun"


@dataclass(frozen=True)
class Candidate:
    kind: str  # "table", "column", "enum_value"
    owner: Optional[str]
    old: str
    new: str

    def question(self) -> str:
        if self.kind == "table":
            return f"Was table {self.old} renamed to {self.new}?"
        if self.kind == "column":
            return f"Was column {self.owner}.{self.old} renamed to {self.owner}.{self.new}?"
        return f"Was label {self.old!r} of enum {self.owner} renamed to {self.new!r}?"

    def hint(self) -> Hint:
        """How to say, without a terminal, that this rename happened (the `renames` option of
        `GenerateOptions`; its enum labels' part for a label): what keeps the data."""
        if self.kind == "table":
            return Hint(RENAME_ACTION, "renames", (f"{self.old}={self.new}",))
        if self.kind == "column":
            return Hint(RENAME_ACTION, "renames", (f"{self.owner}.{self.old}={self.owner}.{self.new}",))
        return Hint(RENAME_ACTION, "renames.enum_values", (f"{self.owner}.{self.old}={self.new}",))

    def add_to(self, renames: Renames) -> None:
        if self.kind == "table":
            renames.tables.append((self.old, self.new))
        elif self.kind == "column":
            renames.columns.append((self.owner or "", self.old, self.new))
        else:
            renames.enum_values.append((self.owner or "", self.old, self.new))


def rename_candidates(plan: Plan) -> List[Candidate]:
    """Drop + create pairs that may be renames: tables sharing most column names, same-typed columns, labels."""
    dropped_tables = _tables(plan.changes, DESTROY)
    created_tables = _tables(plan.changes, CREATE)
    columns_of: Dict[Tuple[str, str], List[Column]] = {}  # (action, table) -> its columns created or dropped
    for change in plan.changes:
        if isinstance(change.obj, Column):
            columns_of.setdefault((change.action, change.obj.table), []).append(change.obj)
    candidates: List[Candidate] = []
    for new in created_tables:
        new_cols = {c.name for c in columns_of.get((CREATE, new), [])}
        for old in dropped_tables:
            old_cols = {c.name for c in columns_of.get((DESTROY, old), [])}
            union = new_cols | old_cols
            if union and len(new_cols & old_cols) / len(union) >= 0.5:
                candidates.append(Candidate("table", None, old, new))
    for change in plan.changes:
        column = change.new
        if isinstance(column, Column) and change.action == CREATE and column.table not in created_tables:
            for gone in columns_of.get((DESTROY, column.table), []):
                if gone.data_type == column.data_type:
                    candidates.append(Candidate("column", column.table, gone.name, column.name))
        if isinstance(change.old, Enum) and isinstance(change.new, Enum):
            old_labels, new_labels = change.old.labels, change.new.labels
            removed = [label for label in old_labels if label not in new_labels]
            added = [label for label in new_labels if label not in old_labels]
            for old, new in zip(removed, added):
                candidates.append(Candidate("enum_value", change.new.name, old, new))
    return candidates


def _tables(changes: Sequence[Change], action: str) -> Dict[str, Change]:
    """Table name -> the change that does `action` to that table."""
    return {c.obj.name: c for c in changes if isinstance(c.obj, Table) and c.action == action}


def without_conflicts(candidates: Iterable[Candidate], chosen: Renames) -> List[Candidate]:
    """Candidates whose old or new name is not already taken by a confirmed rename."""
    taken: Set[Tuple[Optional[str], ...]] = {("table", o) for o, _ in chosen.tables}
    taken |= {("table", n) for _, n in chosen.tables}
    taken |= {("column", t, o) for t, o, _ in chosen.columns} | {("column", t, n) for t, _, n in chosen.columns}
    taken |= {("enum", e, o) for e, o, _ in chosen.enum_values} | {("enum", e, n) for e, _, n in chosen.enum_values}
    result = []
    for c in candidates:
        keys = (
            {("table", c.old), ("table", c.new)}
            if c.kind == "table"
            else {
                (c.kind if c.kind == "column" else "enum", c.owner, c.old),
                (c.kind if c.kind == "column" else "enum", c.owner, c.new),
            }
        )
        if not keys & taken:
            result.append(c)
    return result
