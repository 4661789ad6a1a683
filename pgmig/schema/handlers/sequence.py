"""Standalone sequences: `sa.Sequence` on a column or bound to a MetaData.

What `create_all` creates: every `Sequence` that is a column's default
(`Column("id", Integer, Sequence("s"))`) and every one bound to the
MetaData (`Sequence("s", metadata=md)`), except `optional=True` ones, which
Postgres does not need (the column becomes SERIAL instead, see the column
kind). The column gets no server default unless the model says
`server_default=seq.next_value()`; SQLAlchemy calls nextval() itself on
INSERT.

Options are compared as Postgres stores them in pg_sequence (docs, "CREATE
SEQUENCE"): an option the model leaves out takes the default for the data
type (bigint unless `data_type=`) and the sign of the increment, so
`Sequence("s")` equals the sequence `create_all` made.

The database side reads pg_sequence for the managed schema, leaving out
sequences that belong to a column: those of serial columns and those
attached with `ALTER SEQUENCE ... OWNED BY` (pg_depend deptype 'a', the
column kind reads them as the column's serial), those of identity columns
(deptype 'i') and members of extensions ('e'). SQLAlchemy never declares
OWNED BY, so a model sequence is never owned, and a hand-made owned
sequence stays with the column it belongs to.

A renamed sequence is a drop and a create: the counter starts over, so a
drop is marked `deletes_data`, like a dropped table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, Iterator, List, Optional, Tuple

from pgmig.db.quoting import stored_name
from pgmig.errors import Hint, ModelsError, SchemaError
from pgmig.ops.base import Operation
from pgmig.ops.sequence import SEQUENCE_TYPES, AddSequence, AlterSequence, DropSequence
from pgmig.schema.objects import Key, SchemaObject
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler

# The range of each sequence type: what MINVALUE/MAXVALUE default to (the docs' "the minimum/maximum
# value of the data type" for a descending/ascending sequence).
_TYPE_RANGES: Dict[str, Tuple[int, int]] = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}


@dataclass(frozen=True)
class Sequence(SchemaObject):
    """A sequence with its options as pg_sequence stores them (every default filled in)."""

    kind = "sequence"
    schema: str
    name: str
    data_type: str = "bigint"
    increment: int = 1
    minvalue: int = 1
    maxvalue: int = 2**63 - 1
    start: int = 1
    cache: int = 1
    cycle: bool = False

    @property
    def key(self) -> Key:
        return ("sequence", self.schema, self.name)

    @property
    def names(self) -> Tuple[Key, ...]:
        # A sequence is a relation: it shares pg_class's namespace with tables and indexes.
        return (("relation", self.schema, self.name),)

    @property
    def label(self) -> str:
        return f"sequence {self.name}"

    def describe(self) -> str:
        """`sequence s AS integer START 1000 ...`: the options that differ from Postgres's defaults."""
        text = f"sequence {self.name}"
        if self.data_type != "bigint":
            text += f" AS {self.data_type}"
        for word, value in given_options(self).items():
            text += f" {word.upper()} {value}"
        return text + (" CYCLE" if self.cycle else "")


def _option_values(obj: Sequence) -> Tuple[Tuple[str, int], ...]:
    return (
        ("increment", obj.increment),
        ("minvalue", obj.minvalue),
        ("maxvalue", obj.maxvalue),
        ("start", obj.start),
        ("cache", obj.cache),
    )


def given_options(obj: Sequence) -> Dict[str, int]:
    """The options CREATE SEQUENCE must name to make `obj`: those that differ from what Postgres
    fills in (the start of a sequence is its first bound unless given)."""
    defaults = sequence_defaults(obj.data_type, obj.increment)
    given = {word: value for word, value in _option_values(obj) if word != "start" and value != defaults[word]}
    if obj.start != (obj.minvalue if obj.increment > 0 else obj.maxvalue):
        given["start"] = obj.start
    return given


def sequence_defaults(data_type: str, increment: int) -> Dict[str, int]:
    """What Postgres stores for options CREATE SEQUENCE leaves out (docs, "CREATE SEQUENCE"):
    an ascending sequence runs from 1 to the type's maximum and starts at its MINVALUE, a
    descending one from the type's minimum to -1 and starts at its MAXVALUE (`start` here:
    for these default bounds)."""
    low, high = _TYPE_RANGES[data_type]
    minvalue, maxvalue = (1, high) if increment > 0 else (low, -1)
    return {
        "increment": 1,
        "minvalue": minvalue,
        "maxvalue": maxvalue,
        "start": minvalue if increment > 0 else maxvalue,
        "cache": 1,
    }


def normalized(
    schema: str,
    name: str,
    data_type: str = "bigint",
    increment: Optional[int] = None,
    minvalue: Optional[int] = None,
    maxvalue: Optional[int] = None,
    start: Optional[int] = None,
    cache: Optional[int] = None,
    cycle: Optional[bool] = None,
) -> Sequence:
    """A sequence as Postgres stores the CREATE SEQUENCE with these options (None: left out).

    Raises SchemaError for a data type a sequence cannot have.
    """
    if data_type not in _TYPE_RANGES:
        raise SchemaError(
            f"sequence {schema}.{name}: data_type must be one of {', '.join(SEQUENCE_TYPES)}, not {data_type}"
        )
    step = 1 if increment is None else int(increment)
    defaults = sequence_defaults(data_type, step)
    low = defaults["minvalue"] if minvalue is None else int(minvalue)
    high = defaults["maxvalue"] if maxvalue is None else int(maxvalue)
    return Sequence.of(
        schema=schema,
        name=name,
        data_type=data_type,
        increment=step,
        minvalue=low,
        maxvalue=high,
        start=int(start) if start is not None else (low if step > 0 else high),
        cache=1 if cache is None else int(cache),
        cycle=bool(cycle),
    )


SEQUENCES_QUERY = """
SELECT n.nspname AS schema, c.relname AS name,
       pg_catalog.format_type(s.seqtypid, NULL) AS data_type,
       s.seqincrement AS increment, s.seqmin AS minvalue, s.seqmax AS maxvalue,
       s.seqstart AS start, s.seqcache AS cache, s.seqcycle AS cycle
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[]) AND c.relkind = 'S'
  AND NOT EXISTS (
      -- owned by a column (serial, OWNED BY: 'a'), an identity column's ('i'), an extension's ('e')
      SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i', 'e')
  )
ORDER BY n.nspname, c.relname
"""


class SequenceHandler(ObjectHandler):
    kind = "sequence"

    # -- reading -----------------------------------------------------------------

    def from_models(self, models: ModelContext) -> List[Sequence]:
        """The sequences `create_all` would create, once each; one without a schema goes to the
        first managed schema, as a table without one does.

        Raises SchemaError when one name is declared twice with different options, ModelsError
        when it is in a schema pgmig does not manage (left out, `up` would fail on the nextval()
        that calls it).
        """
        found: Dict[Key, Sequence] = {}
        for sa_sequence in model_sequences(models):
            schema = sa_sequence.schema or models.schema
            if schema not in models.schemas:
                raise ModelsError(
                    f"sequence {schema}.{sa_sequence.name} is in schema {schema!r}, which pgmig does not manage "
                    f"(schemas: {', '.join(models.schemas)})",
                    hint=Hint("manage that schema too", "schemas", (*models.schemas, schema)),
                )
            data_type = sa_sequence.data_type
            obj = normalized(
                schema,
                stored_name(sa_sequence.name),
                models.type_sql(data_type) if data_type is not None else "bigint",
                increment=sa_sequence.increment,
                minvalue=sa_sequence.minvalue,
                maxvalue=sa_sequence.maxvalue,
                start=sa_sequence.start,
                cache=sa_sequence.cache,
                cycle=sa_sequence.cycle,
            )
            existing = found.setdefault(obj.key, obj)
            if existing != obj:
                raise SchemaError(
                    f"sequence {obj.schema}.{obj.name} is declared twice with different options: "
                    f"{existing.describe()} and {obj.describe()}"
                )
        return list(found.values())

    async def from_database(self, db: DatabaseContext) -> List[Sequence]:
        rows = await db.fetch(SEQUENCES_QUERY, list(db.schemas))
        return [
            Sequence.of(
                schema=row["schema"],
                name=row["name"],
                data_type=row["data_type"],
                increment=row["increment"],
                minvalue=row["minvalue"],
                maxvalue=row["maxvalue"],
                start=row["start"],
                cache=row["cache"],
                cycle=row["cycle"],
            )
            for row in rows
        ]

    # -- changing ----------------------------------------------------------------

    def create(self, obj: Sequence) -> List[Operation]:
        """CREATE SEQUENCE naming only the options that differ from Postgres's defaults."""
        given = given_options(obj)
        return [
            AddSequence(
                sequence_name=obj.name,
                data_type=obj.data_type if obj.data_type != "bigint" else None,
                cycle=obj.cycle,
                schema=obj.schema,
                **given,
            )
        ]

    def migrate(self, old: Sequence, new: Sequence) -> List[Operation]:
        """ALTER SEQUENCE with the options that changed; the counter goes on where it was.

        A new data type names both bounds too: ALTER SEQUENCE AS moves a bound
        that was the old type's limit to the new type's by itself.
        """
        changed: Dict[str, Any] = {
            word: value
            for (word, value), (_, before) in zip(_option_values(new), _option_values(old))
            if value != before
        }
        if new.data_type != old.data_type:
            changed.update(data_type=new.data_type, minvalue=new.minvalue, maxvalue=new.maxvalue)
        if new.cycle != old.cycle:
            changed["cycle"] = new.cycle
        return [AlterSequence(sequence_name=new.name, schema=new.schema, **changed)]

    def destroy(self, obj: Sequence) -> List[Operation]:
        return [DropSequence(sequence_name=obj.name, schema=obj.schema)]


def model_sequences(models: ModelContext) -> Iterator[Any]:
    """The `sa.Sequence`s `create_all` creates: the tables' column defaults, then those bound
    to a MetaData with no column; `optional=True` ones are left out (SQLAlchemy's
    `_can_create_sequence` on a dialect with `sequences_optional`, as Postgres's is)."""
    from sqlalchemy import Sequence as SASequence

    for table in models.tables:
        for column in table.columns:
            default = column.default
            if isinstance(default, SASequence) and not default.optional:
                yield default
    for metadata in models.metadata:
        # MetaData keeps its sequences in `_sequences` (SQLAlchemy 1.4 to 2.1): what create_all reads too.
        for sa_sequence in getattr(metadata, "_sequences", {}).values():
            if sa_sequence.column is None and not sa_sequence.optional:
                yield sa_sequence


# nextval('name'), nextval('schema.name'::regclass), with quoted parts ('"Odd ""name"""').
_NEXTVAL = re.compile(r"\bnextval\('((?:[^']|'')+)'(?:::regclass)?\)")
_NAME_PART = re.compile(r'"((?:[^"]|"")*)"|([^".]+)')


@lru_cache(maxsize=4096)  # asked per column each time the plan orders; few distinct defaults
def sequences_called(default: Optional[str], schema: str) -> Tuple[Key, ...]:
    """Keys of the sequences a default expression calls nextval() on (`schema` when unqualified).

    Reads the text as Postgres reads a regclass name: parts separated by
    dots, unquoted parts folded to lower case, quoted ones as written.
    """
    if not default or "nextval(" not in default:
        return ()
    keys: List[Key] = []
    for match in _NEXTVAL.finditer(default):
        parts = [
            part.group(1).replace('""', '"') if part.group(1) is not None else part.group(2).strip().lower()
            for part in _NAME_PART.finditer(match.group(1).replace("''", "'"))
        ]
        parts = [stored_name(part) for part in parts]
        if len(parts) == 1:
            keys.append(("sequence", schema, parts[0]))
        elif len(parts) == 2:
            keys.append(("sequence", parts[0], parts[1]))
    return tuple(keys)


__all__ = ["Sequence", "SequenceHandler", "model_sequences", "normalized", "sequence_defaults", "sequences_called"]
