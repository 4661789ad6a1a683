"""Operations on standalone sequences (`sa.Sequence`), as opposed to a serial or identity column's own.

Options follow CREATE SEQUENCE (PostgreSQL docs, "CREATE SEQUENCE"): an
option left out (None) takes Postgres's default for the data type and the
sign of the increment, so a revision file names only what the model sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from pgmig.db.quoting import qualified
from pgmig.ops.base import Hazard, Operation, register

SEQUENCE_TYPES = ("smallint", "integer", "bigint")
"""The data types a sequence may have (`AS ...`)."""


def _options(
    data_type: Optional[str],
    increment: Optional[int],
    minvalue: Optional[int],
    maxvalue: Optional[int],
    start: Optional[int],
    cache: Optional[int],
    cycle: Optional[bool],
) -> str:
    """The option clauses shared by CREATE and ALTER SEQUENCE, in the order the docs list them."""
    if data_type is not None and data_type not in SEQUENCE_TYPES:
        raise ValueError(f"a sequence is smallint, integer or bigint, not {data_type!r}")
    parts = [f"AS {data_type}"] if data_type is not None else []
    # int() so that only numbers ever reach the statement.
    for clause, value in (
        ("INCREMENT BY", increment),
        ("MINVALUE", minvalue),
        ("MAXVALUE", maxvalue),
        ("START WITH", start),
        ("CACHE", cache),
    ):
        if value is not None:
            parts.append(f"{clause} {int(value)}")
    if cycle is not None:
        parts.append("CYCLE" if cycle else "NO CYCLE")
    return "".join(" " + part for part in parts)


@register
@dataclass(frozen=True)
class AddSequence(Operation):
    """Create a sequence; options left out take Postgres's defaults (bigint, from 1 by 1, no cycle)."""

    name = "add_sequence"
    locks = 4
    sequence_name: str
    data_type: Optional[str] = None
    increment: Optional[int] = None
    minvalue: Optional[int] = None
    maxvalue: Optional[int] = None
    start: Optional[int] = None
    cache: Optional[int] = None
    cycle: bool = False
    schema: str = "public"

    def statements(self) -> List[str]:
        options = _options(
            self.data_type,
            self.increment,
            self.minvalue,
            self.maxvalue,
            self.start,
            self.cache,
            True if self.cycle else None,
        )
        return [f"CREATE SEQUENCE {qualified(self.schema, self.sequence_name)}{options}"]


@register
@dataclass(frozen=True)
class DropSequence(Operation):
    """Drop a sequence: its counter is lost (a sequence created again starts over).

    Postgres refuses while a column default still calls nextval() on it.
    """

    name = "drop_sequence"
    locks = 4
    sequence_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"DROP SEQUENCE {qualified(self.schema, self.sequence_name)}"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (Hazard.DELETES_DATA,)


@register
@dataclass(frozen=True)
class AlterSequence(Operation):
    """Change a sequence's options in place (None: unchanged); its current value is kept.

    `start` only changes the value a later `ALTER SEQUENCE ... RESTART` goes
    back to; nothing here restarts the counter. Changing the data type moves
    a bound that was the old type's limit to the new type's (ALTER SEQUENCE
    AS), so pass both bounds with a new type. Concurrent nextval() calls wait
    until the transaction ends.
    """

    name = "alter_sequence"
    locks = 2
    sequence_name: str
    data_type: Optional[str] = None
    increment: Optional[int] = None
    minvalue: Optional[int] = None
    maxvalue: Optional[int] = None
    start: Optional[int] = None
    cache: Optional[int] = None
    cycle: Optional[bool] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        options = _options(
            self.data_type, self.increment, self.minvalue, self.maxvalue, self.start, self.cache, self.cycle
        )
        if not options:
            return []
        return [f"ALTER SEQUENCE {qualified(self.schema, self.sequence_name)}{options}"]

    def hazards(self) -> Tuple[Hazard, ...]:
        # Docs, "ALTER SEQUENCE": it blocks concurrent nextval() (inserts drawing numbers) until commit.
        return (Hazard.BLOCKS_WRITES,)
