"""Operations on tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from pgmig.db.quoting import qualified, quote_ident, quote_literal
from pgmig.ops.base import Hazard, Operation, register


@register
@dataclass(frozen=True)
class AddTable(Operation):
    """Create an empty table; columns and constraints follow as their own operations."""

    name = "add_table"
    table_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"CREATE TABLE {qualified(self.schema, self.table_name)} ()"]


@register
@dataclass(frozen=True)
class DropTable(Operation):
    """Drop a table with its rows, indexes and constraints."""

    name = "drop_table"
    table_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"DROP TABLE {qualified(self.schema, self.table_name)}"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (Hazard.DELETES_DATA,)


@register
@dataclass(frozen=True)
class SetTableComment(Operation):
    """Set (or, with `comment=None`, remove) a table's comment."""

    name = "set_table_comment"
    table_name: str
    comment: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        value = "NULL" if self.comment is None else quote_literal(self.comment)
        return [f"COMMENT ON TABLE {qualified(self.schema, self.table_name)} IS {value}"]


@register
@dataclass(frozen=True)
class RenameTable(Operation):
    """Rename a table in place; its rows, columns, indexes and sequences stay (under their old names)."""

    name = "rename_table"
    table_name: str
    new_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"ALTER TABLE {qualified(self.schema, self.table_name)} RENAME TO {quote_ident(self.new_name)}"]
