"""Data operations that schema changes need: filling a column before it becomes NOT NULL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from pgmig.db.quoting import qualified, quote_ident
from pgmig.ops.base import Operation, register


@register
@dataclass(frozen=True)
class BackfillColumn(Operation):
    """Set `column` to `expression` (SQL) where it is NULL, so SET NOT NULL can succeed."""

    name = "backfill_column"
    table_name: str
    column_name: str
    expression: str
    schema: str = "public"

    def statements(self) -> List[str]:
        column = quote_ident(self.column_name)
        return [
            f"UPDATE {qualified(self.schema, self.table_name)} SET {column} = {self.expression} WHERE {column} IS NULL"
        ]

    def summary(self) -> str:
        return f"fill NULLs of {self.column_name} with {self.expression}"

    def hazards(self) -> Tuple[str, ...]:
        return ("full_scan", "blocks_writes")
