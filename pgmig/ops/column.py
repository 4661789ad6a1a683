"""Operations on columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..operations import Operation, register
from ..sql import qualified, quote_ident, quote_literal

_SERIAL_OF = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}
_IDENTITY = {"always": "ALWAYS", "by default": "BY DEFAULT"}


def _alter(schema: str, table: str) -> str:
    return f"ALTER TABLE {qualified(schema, table)}"


@register
@dataclass(frozen=True)
class AddColumn(Operation):
    """Add a column. `data_type` and `default` are SQL as Postgres prints them."""

    name = "add_column"
    table_name: str
    column_name: str
    data_type: str
    nullable: bool = True
    default: Optional[str] = None
    autoincrement: bool = False
    identity: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        data_type = _SERIAL_OF.get(self.data_type, self.data_type) if self.autoincrement else self.data_type
        sql = f"{_alter(self.schema, self.table_name)} ADD COLUMN {quote_ident(self.column_name)} {data_type}"
        if self.default is not None:
            sql += f" DEFAULT {self.default}"
        if self.identity is not None:
            sql += f" GENERATED {_IDENTITY[self.identity]} AS IDENTITY"
        if not self.nullable:
            sql += " NOT NULL"
        return [sql]

    def summary(self) -> str:
        return f"add column {self.column_name}"


@register
@dataclass(frozen=True)
class DropColumn(Operation):
    name = "drop_column"
    table_name: str
    column_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"{_alter(self.schema, self.table_name)} DROP COLUMN {quote_ident(self.column_name)}"]

    def summary(self) -> str:
        return f"drop column {self.column_name}"

    def hazards(self) -> Tuple[str, ...]:
        return ("deletes_data",)


@register
@dataclass(frozen=True)
class ModifyColumnType(Operation):
    """Change a column's type; `using` is the cast expression Postgres needs, if any."""

    name = "modify_column_type"
    table_name: str
    column_name: str
    data_type: str
    using: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        sql = (
            f"{_alter(self.schema, self.table_name)} ALTER COLUMN {quote_ident(self.column_name)} "
            f"TYPE {self.data_type}"
        )
        if self.using:
            sql += f" USING {self.using}"
        return [sql]

    def summary(self) -> str:
        return f"change type of {self.column_name} to {self.data_type}"


@register
@dataclass(frozen=True)
class AddNotNull(Operation):
    name = "add_not_null"
    table_name: str
    column_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"{_alter(self.schema, self.table_name)} ALTER COLUMN {quote_ident(self.column_name)} SET NOT NULL"
        ]

    def summary(self) -> str:
        return f"make {self.column_name} NOT NULL"


@register
@dataclass(frozen=True)
class DropNotNull(Operation):
    name = "drop_not_null"
    table_name: str
    column_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"{_alter(self.schema, self.table_name)} ALTER COLUMN {quote_ident(self.column_name)} DROP NOT NULL"
        ]

    def summary(self) -> str:
        return f"make {self.column_name} nullable"


@register
@dataclass(frozen=True)
class SetColumnDefault(Operation):
    """Set (or, with `default=None`, drop) a column's server default."""

    name = "set_column_default"
    table_name: str
    column_name: str
    default: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        action = "DROP DEFAULT" if self.default is None else f"SET DEFAULT {self.default}"
        return [f"{_alter(self.schema, self.table_name)} ALTER COLUMN {quote_ident(self.column_name)} {action}"]

    def summary(self) -> str:
        return f"drop default of {self.column_name}" if self.default is None else f"set default of {self.column_name}"


@register
@dataclass(frozen=True)
class SetColumnComment(Operation):
    name = "set_column_comment"
    table_name: str
    column_name: str
    comment: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        value = "NULL" if self.comment is None else quote_literal(self.comment)
        return [
            f"COMMENT ON COLUMN {qualified(self.schema, self.table_name)}.{quote_ident(self.column_name)} IS {value}"
        ]

    def summary(self) -> str:
        return f"comment on column {self.column_name}"
