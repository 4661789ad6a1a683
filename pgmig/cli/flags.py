"""`generate`'s spec flags parsed into the typed values of GenerateOptions.

`--rename old=new` / `table.old=table.new`, `--rename-enum-value enum.OLD=NEW`,
`--map-enum-value enum.OLD=NEW` and `--default table.column=SQL`: the shapes
and their errors (UsageError, exit 2) name the flags, so they live here.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from pgmig.errors import UsageError
from pgmig.plan.renames import Renames

RENAME, RENAME_ENUM_VALUE = "--rename", "--rename-enum-value"
MAP_ENUM_VALUE, DEFAULT = "--map-enum-value", "--default"


def parse_renames(table_or_column: Sequence[str], enum_values: Sequence[str]) -> Renames:
    """`--rename` and `--rename-enum-value` values as Renames; a column is renamed within its table."""
    renames = Renames()
    for spec in table_or_column:
        old, new = _split(spec, RENAME, "old_table=new_table or table.old_column=table.new_column")
        if "." in old or "." in new:
            if old.count(".") != 1 or new.count(".") != 1:
                raise UsageError(f"{RENAME} {spec!r}: use table.old_column=table.new_column")
            old_table, old_column = old.split(".")
            new_table, new_column = new.split(".")
            if old_table != new_table:
                raise UsageError(
                    f"{RENAME} {spec!r}: a column is renamed within its table; rename the table with "
                    f"a separate {RENAME} {old_table}={new_table}"
                )
            renames.columns.append((old_table, old_column, new_column))
        else:
            renames.tables.append((old, new))
    for enum, label, new in _pairs(enum_values, RENAME_ENUM_VALUE, "enum.OLD=NEW", dotted_right=False):
        renames.enum_values.append((enum, label, new))
    return renames


def parse_enum_maps(specs: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """`--map-enum-value color.BLUE=GREEN` values as `{enum: {old: new}}`."""
    mapping: Dict[str, Dict[str, str]] = {}
    for enum, old, new in _pairs(specs, MAP_ENUM_VALUE, "enum.OLD=NEW"):
        mapping.setdefault(enum, {})[old] = new
    return mapping


def parse_defaults(specs: Sequence[str]) -> Dict[Tuple[str, str], str]:
    """`--default article.published=false` values as `{(table, column): SQL}`."""
    return {(table, column): sql for table, column, sql in _pairs(specs, DEFAULT, "table.column=SQL_EXPRESSION")}


def _pairs(specs: Sequence[str], flag: str, shape: str, dotted_right: bool = True) -> List[Tuple[str, str, str]]:
    """`a.b=c` specs as (a, b, c); with `dotted_right` False, `c` must hold no dot."""
    pairs = []
    for spec in specs:
        left, right = _split(spec, flag, shape)
        if left.count(".") != 1 or (not dotted_right and "." in right):
            raise UsageError(f"{flag} {spec!r}: use {shape}")
        owner, name = left.split(".")
        pairs.append((owner, name, right))
    return pairs


def _split(spec: str, flag: str, shape: str) -> Tuple[str, str]:
    if spec.count("=") < 1:
        raise UsageError(f"{flag} {spec!r}: use {shape}")
    left, right = spec.split("=", 1)
    if not left.strip() or not right.strip():
        raise UsageError(f"{flag} {spec!r}: use {shape}")
    return left.strip(), right.strip()
