"""Operations on columns."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from pgmig.db.quoting import clip_bytes, object_name, qualified, quote_ident, quote_literal
from pgmig.errors import RevisionError, agree, plural
from pgmig.ops.base import Hazard, Operation, RowProblem, countable, may_change, probe, read_rolled_back, register
from pgmig.ops.typecasts import is_lossless, parse_type

# The serial pseudo-type of each integer type (docs: 8.1.4, "Serial Types").
SERIAL_OF = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}
_IDENTITY = {"always": "ALWAYS", "by default": "BY DEFAULT"}

REWRITES, DELETES, LOCKS = Hazard.REWRITES_TABLE, Hazard.DELETES_DATA, Hazard.ACCESS_EXCLUSIVE_LOCK
FULL_SCAN = Hazard.FULL_SCAN


def _alter(schema: str, table: str) -> str:
    return f"ALTER TABLE {qualified(schema, table)}"


def _alter_column(schema: str, table: str, column: str) -> str:
    return f"{_alter(schema, table)} ALTER COLUMN {quote_ident(column)}"


def serial_sequence_name(table: str, column: str) -> str:
    """The name Postgres gives a serial (or identity) column's sequence.

    Mirrors makeObjectName: `<table>_<column>_seq`, with the longer of the two
    names shortened first so the whole fits in 63 bytes. The numbered variant
    Postgres picks when that name is taken is not reproduced.
    """
    return object_name(table, column, "seq")


def _restart_past_max(sequence_sql: str, schema: str, table: str, column: str) -> str:
    """setval so the next value is one past the column's largest (1 on an empty table).

    A plain SELECT works inside a transaction, unlike a computed RESTART.
    """
    return (
        f"SELECT pg_catalog.setval({sequence_sql}, "
        f"GREATEST(COALESCE(max({quote_ident(column)}), 0), 0) + 1, false) "
        f"FROM {qualified(schema, table)}"
    )


# -- hazards -----------------------------------------------------------------------

_VARCHAR, _TEXT, _NUMERIC = "character varying", "text", "numeric"
_TIMESTAMPS = ("timestamp without time zone", "timestamp with time zone")


def _relabels(old_type: str, new_type: str) -> bool:
    """Whether Postgres changes only the catalog: a binary-coercible cast (pg_cast castmethod `b`:
    varchar <-> text) or the same type, with a modifier check that cannot fail (a wider varchar,
    numeric of the same scale, more timestamp precision). Arrays are always rewritten."""
    (old_base, old_mods, array), (new_base, new_mods, new_array) = parse_type(old_type), parse_type(new_type)
    if array or new_array:
        return False
    strings = {_VARCHAR, _TEXT}
    if old_base in strings and new_base in strings:
        return is_lossless(old_type, new_type)
    if old_base == new_base == _NUMERIC:
        # A new scale rewrites every value, even where it keeps them.
        same_scale = not new_mods or (old_mods and (old_mods + (0,))[1] == (new_mods + (0,))[1])
        return bool(same_scale) and is_lossless(old_type, new_type)
    if old_base == new_base and old_base in _TIMESTAMPS:
        return is_lossless(old_type, new_type)
    return False


def type_change_hazards(old_type: Optional[str], new_type: str, old_is_enum: bool = False) -> Tuple[Hazard, ...]:
    """What `ALTER COLUMN ... TYPE new_type` costs on a column of `old_type`.

    `deletes_data` unless pgmig.ops.typecasts proves every value kept (a
    change of type family, narrowing, rounding, truncating a time of day
    all carry it): such a change needs the same consent as a drop.
    `rewrites_table` unless Postgres only relabels (see `_relabels`).
    `timestamp`/`date` -> `timestamptz` counts as lossless on the assumption
    that the revision runs in the TimeZone the values were written in.
    An unknown old type (a hand-written revision) is assumed to rewrite.
    """
    if old_type is None:
        return (REWRITES, LOCKS)
    if old_type == new_type:
        return (LOCKS,)
    if not is_lossless(old_type, new_type, old_is_enum):
        return (REWRITES, DELETES, LOCKS)
    if _relabels(old_type, new_type):
        return (LOCKS,)
    return (REWRITES, LOCKS)


# Functions a column default may call and still be evaluated once when the
# column is added (stable or immutable). Anything else is assumed volatile.
_STABLE_FUNCTIONS = frozenset(
    {
        "now",
        "transaction_timestamp",
        "statement_timestamp",
        "current_timestamp",
        "current_date",
        "current_time",
        "localtimestamp",
        "localtime",
        "current_user",
        "current_role",
        "session_user",
        "current_schema",
        "current_database",
        "lower",
        "upper",
        "coalesce",
        "nullif",
        "greatest",
        "least",
    }
)
_STRING_OR_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
# `::character varying(20)[]`: a cast's type, whose modifiers look like a call.
_CAST = re.compile(
    r"::\s*[A-Za-z_][\w$.]*(?:\s+(?:varying|precision|with|without|time|zone)\b)*"
    r"(?:\s*\(\s*\d[\d,\s]*\))?(?:\[\])*"
)
_CALL = re.compile(r"([A-Za-z_][\w$.]*)\s*\(")


def volatile_default(expression: Optional[str]) -> bool:
    """Whether adding a column with this default fills every existing row one by one.

    Since PostgreSQL 11 a non-volatile default is evaluated once and stored in
    the catalog. Without the server at hand this errs on the side of
    "volatile": any call of a function not known to be stable counts.
    """
    if expression is None:
        return False
    text = _CAST.sub("", _STRING_OR_QUOTED.sub("''", expression))
    return any(name.lower().rsplit(".", 1)[-1] not in _STABLE_FUNCTIONS for name in _CALL.findall(text))


def column_definition(
    name: str,
    data_type: str,
    nullable: bool = True,
    default: Optional[str] = None,
    autoincrement: bool = False,
    identity: Optional[str] = None,
    generated: Optional[str] = None,
    virtual: bool = False,
    collation: Optional[str] = None,
    identity_options: Optional[str] = None,
) -> str:
    """`"name" type [COLLATE c] [DEFAULT ...] [GENERATED ...] [NOT NULL]`: a column as
    ALTER TABLE ... ADD COLUMN and CREATE TABLE both spell it (`serial` for an autoincrement integer).

    `generated` is the expression of a generated column (STORED, or VIRTUAL on PostgreSQL 18+);
    `identity_options` the sequence options of an identity column (`START WITH 1000 INCREMENT BY 5`).
    """
    data_type = SERIAL_OF.get(data_type, data_type) if autoincrement else data_type
    sql = f"{quote_ident(name)} {data_type}"
    if collation is not None:
        sql += f" COLLATE {quote_ident(collation)}"
    if default is not None:
        sql += f" DEFAULT {default}"
    if identity is not None:
        sql += f" GENERATED {_IDENTITY[identity]} AS IDENTITY"
        if identity_options:
            sql += f" ({identity_options})"
    if generated is not None:
        sql += f" GENERATED ALWAYS AS ({generated}) {'VIRTUAL' if virtual else 'STORED'}"
    if not nullable:
        sql += " NOT NULL"
    return sql


async def _column_type(connection: Any, schema: str, table: str, column: str) -> Optional[str]:
    """The type of `schema.table.column` as format_type() spells it; None when there is no such column."""
    found: Optional[str] = await connection.fetchval(
        "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
        "WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
        qualified(schema, table),
        column,
    )
    return found


@register
@dataclass(frozen=True)
class AddColumn(Operation):
    """Add a column. `data_type` and `default` are SQL as Postgres prints them."""

    name = "add_column"
    locks = 8
    table_name: str
    column_name: str
    data_type: str
    nullable: bool = True
    default: Optional[str] = None
    autoincrement: bool = False
    identity: Optional[str] = None
    schema: str = "public"
    new_table: bool = False
    generated: Optional[str] = None
    virtual: bool = False
    collation: Optional[str] = None
    identity_options: Optional[str] = None

    def statements(self) -> List[str]:
        definition = column_definition(
            self.column_name,
            self.data_type,
            self.nullable,
            self.default,
            self.autoincrement,
            self.identity,
            self.generated,
            self.virtual,
            self.collation,
            self.identity_options,
        )
        return [f"{_alter(self.schema, self.table_name)} ADD COLUMN {definition}"]

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the table has the column as this step adds it (an earlier run added it); a
        column of this name and another type is a RevisionError naming both. Unless a `later`
        step of the revision may have changed it since (`may_change`), a column that allows NULL
        where the step adds NOT NULL, or has another default, is one too: defaults are compared
        as the server prints them (the step's rendered on a temporary table, rolled back)."""
        found = await _column_type(connection, self.schema, self.table_name, self.column_name)
        if found is None:
            return False
        wanted = self.data_type
        where = f"column {self.column_name} of {qualified(self.schema, self.table_name)}"
        if not (
            found.replace(" ", "").lower() == wanted.replace(" ", "").replace('"', "").lower()
            or (self.autoincrement and found in ("integer", "bigint", "smallint"))
        ):
            raise RevisionError(
                f"{where} exists as {found}, while the step adds {wanted}: rename or drop it, or change the step"
            )
        if may_change(later, self.schema, self.table_name, self.column_name):
            return True
        row = await connection.fetchrow(
            "SELECT a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default FROM pg_catalog.pg_attribute a "
            "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2",
            qualified(self.schema, self.table_name),
            self.column_name,
        )
        if not self.nullable and not row["attnotnull"]:
            raise RevisionError(
                f"{where} exists allowing NULL, while the step adds it NOT NULL: drop it, or change the step"
            )
        if self.autoincrement or self.identity is not None or self.generated is not None:
            return True
        default = self.default
        if default is not None:
            temporary = f"pgmig_probe_{secrets.token_hex(4)}"
            default = await read_rolled_back(
                connection,
                f"CREATE TEMPORARY TABLE {quote_ident(temporary)} (c {self.data_type} DEFAULT {self.default})",
                "SELECT pg_catalog.pg_get_expr(adbin, adrelid) FROM pg_catalog.pg_attrdef "
                "WHERE adrelid = pg_catalog.to_regclass($1)",
                f"pg_temp.{quote_ident(temporary)}",
            )
            if default is None:  # the server would not render it here (no TEMP privilege): not compared
                return True
        if default != row["default"]:
            raise RevisionError(
                f"{where} exists with default {row['default'] or 'none'}, while the step adds "
                f"{self.default or 'none'}: drop it, or change the step"
            )
        return True

    def hazards(self) -> Tuple[Hazard, ...]:
        if self.new_table:
            return ()
        # Serial and identity columns number every existing row; so does a volatile default, and a
        # stored generated column computes every row (a virtual one is computed when read).
        stored = self.generated is not None and not self.virtual
        if self.autoincrement or self.identity is not None or stored or volatile_default(self.default):
            return (REWRITES,)
        return ()

    async def preflight(self, connection: Any, earlier: Sequence[Operation]) -> List[RowProblem]:
        """A NOT NULL column without a value for existing rows (no default, identity, serial or
        expression) cannot be added to a table with rows: how many it has."""
        fills = self.default is not None or self.identity is not None or self.autoincrement
        table, schema = self.table_name, self.schema
        if self.nullable or fills or self.generated is not None or self.new_table:
            return []
        if may_change(earlier, schema, table, self.column_name) or not await countable(connection, schema, table):
            return []
        count, _ = await probe(connection, f"SELECT count(*) FROM {qualified(schema, table)}")
        if not count:
            return []
        return [
            RowProblem(
                f"table {schema}.{table} has {plural(count, 'row')}, and this step adds NOT NULL column {self.column_name} "
                "without a default (give it one, or add it nullable and fill it before making it NOT NULL)",
                fails=True,
            )
        ]


@register
@dataclass(frozen=True)
class DropColumn(Operation):
    """Drop a column and the data in it; indexes and constraints on it go too.

    `derived=True` for a generated column: its values are computed from other
    columns, so nothing is lost that adding it again does not give back.
    """

    name = "drop_column"
    locks = 12
    table_name: str
    column_name: str
    schema: str = "public"
    derived: bool = False

    async def already_done(self, connection: Any, later: Sequence[Operation] = ()) -> bool:
        """True when the column is gone (an earlier run dropped it)."""
        return await _column_type(connection, self.schema, self.table_name, self.column_name) is None

    def statements(self) -> List[str]:
        return [f"{_alter(self.schema, self.table_name)} DROP COLUMN {quote_ident(self.column_name)}"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return () if self.derived else (DELETES,)


@register
@dataclass(frozen=True)
class ModifyColumnType(Operation):
    """Change a column's type (and collation: None is the new type's default); `using` is the
    cast expression Postgres needs, if any.

    `old_data_type`, `old_is_enum` (the old type is an enum) and `old_collation`
    are only read to tell what the change costs (see `type_change_hazards`).
    """

    name = "modify_column_type"
    locks = 16
    table_name: str
    column_name: str
    data_type: str
    using: Optional[str] = None
    schema: str = "public"
    old_data_type: Optional[str] = None
    collation: Optional[str] = None
    old_collation: Optional[str] = None
    old_is_enum: bool = False

    def statements(self) -> List[str]:
        sql = f"{_alter_column(self.schema, self.table_name, self.column_name)} TYPE {self.data_type}"
        if self.collation is not None:
            # Without COLLATE the column takes the new type's default collation.
            sql += f" COLLATE {quote_ident(self.collation)}"
        if self.using:
            sql += f" USING {self.using}"
        return [sql]

    def hazards(self) -> Tuple[Hazard, ...]:
        hazards = type_change_hazards(self.old_data_type, self.data_type, self.old_is_enum)
        if self.collation != self.old_collation and REWRITES not in hazards:
            # A new collation keeps the values (no rewrite), but the indexes on the column cannot
            # be kept: Postgres builds them again (ALTER TABLE, SET DATA TYPE).
            hazards += (Hazard.INDEX_BUILD,)
        return hazards

    async def preflight(self, connection: Any, earlier: Sequence[Operation]) -> List[RowProblem]:
        """For a change not proven lossless: the rows Postgres would refuse (the cast fails, or a
        string is too long for the new length), else the rows whose value does not come back
        from the new type (`col::text IS DISTINCT FROM ((new value)::old)::text`).

        Without a `using`, Postgres casts by assignment, which refuses a string
        longer than a `varchar(n)` or `char(n)` unless the excess is blanks
        (Character Types), where an explicit cast truncates.
        """
        old = self.old_data_type
        table, schema, column = self.table_name, self.schema, self.column_name
        if old is None or DELETES not in self.hazards() or may_change(earlier, schema, table, column):
            return []
        if not await countable(connection, schema, table):
            return []
        col, target = quote_ident(column), qualified(schema, table)
        new_value = self.using or f"{col}::{self.data_type}"
        change = f"{old} -> {self.data_type} of {schema}.{table}.{column}"
        _, error = await probe(connection, f"SELECT count({new_value}) FROM {target}")
        if error is not None:
            return [RowProblem(f"{change} fails on existing rows: {error}", fails=True)]
        base, mods, is_array = parse_type(self.data_type)
        if self.using is None and base in _LENGTH_CHECKED and mods and not is_array:
            refused = await _rows_where(connection, target, f"length(rtrim({col}::text)) > {mods[0]}", col, None)
            if refused is not None:
                rows, sample = refused
                return [
                    RowProblem(f"{rows} hold strings too long for {change}{sample}: Postgres would refuse them", True)
                ]
        changed = await _rows_where(
            connection, target, f"{col}::text IS DISTINCT FROM (({new_value})::{old})::text", col, new_value
        )
        return [RowProblem(f"{changed[0]} change under {change}{changed[1]}")] if changed is not None else []


# Types whose length an assignment checks (a cast without USING), refusing longer strings.
_LENGTH_CHECKED = frozenset({"character varying", "character"})


async def _rows_where(
    connection: Any, target: str, condition: str, column: str, new_value: Optional[str]
) -> Optional[Tuple[str, str]]:
    """(`2 of 4 rows`, ` (e.g. '19.99' becomes '20')`): how many rows of `target` meet
    `condition`, and one of their values with what `new_value` makes of it (the value alone
    when `new_value` is None: rows the change refuses become nothing); None when none does
    (or the server cannot tell)."""
    count, error = await probe(connection, f"SELECT count(*) FROM {target} WHERE {condition}")
    if error is not None or not count:
        return None
    total, _ = await probe(connection, f"SELECT count(*) FROM {target}")
    # Clipped, and shown as Python literals: a value is the user's data, not terminal output.
    result = "NULL" if new_value is None else f"left(({new_value})::text, 40)"
    example, _ = await probe(
        connection,
        f"SELECT ARRAY[left({column}::text, 40), {result}] FROM {target} WHERE {condition} LIMIT 1",
    )
    if not example:
        sample = ""
    elif new_value is None:
        sample = f" (e.g. {example[0]!r})"
    else:
        sample = f" (e.g. {example[0]!r} becomes {example[1]!r})"
    return f"{count} of {plural(total, 'row')}", sample


def not_null_check_name(column: str) -> str:
    """The temporary CHECK (column IS NOT NULL) `add_not_null(via_check=True)` adds and drops.

    Unique per column of a table (the digest tells apart columns whose
    clipped names agree) and marked as pgmig's, within 63 bytes.
    """
    import hashlib

    digest = hashlib.sha256(column.encode("utf-8")).hexdigest()[:8]
    return f"{clip_bytes(column, 36)}_pgmig_not_null_{digest}"


@register
@dataclass(frozen=True)
class AddNotNull(Operation):
    """Make a column NOT NULL.

    Plain: one SET NOT NULL, which checks every row under ACCESS EXCLUSIVE.
    `via_check=True` (a table with rows): add a temporary `CHECK (col IS NOT
    NULL) NOT VALID` (ACCESS EXCLUSIVE for a moment, no scan; any leftover
    of an interrupted earlier attempt is dropped in the same statement),
    VALIDATE it (SHARE UPDATE EXCLUSIVE: reads and writes go on during the
    scan), SET NOT NULL (ACCESS EXCLUSIVE for a moment: PostgreSQL 12+ sees
    the valid check and skips the scan), then drop the check (ACCESS
    EXCLUSIVE, catalog only). The catalog ends as with the plain form. Locks
    last until the transaction ends, so the scan leaves writes alone only in a
    revision marked `transactional = False`, where each statement commits.
    """

    name = "add_not_null"
    locks = 4
    keeps_rows = True
    rerunnable = True
    table_name: str
    column_name: str
    schema: str = "public"
    via_check: bool = False

    def statements(self) -> List[str]:
        set_not_null = f"{_alter_column(self.schema, self.table_name, self.column_name)} SET NOT NULL"
        if not self.via_check:
            return [set_not_null]
        alter = _alter(self.schema, self.table_name)
        check = quote_ident(not_null_check_name(self.column_name))
        return [
            f"{alter} DROP CONSTRAINT IF EXISTS {check}, "
            f"ADD CONSTRAINT {check} CHECK ({quote_ident(self.column_name)} IS NOT NULL) NOT VALID",
            f"{alter} VALIDATE CONSTRAINT {check}",
            set_not_null,
            f"{alter} DROP CONSTRAINT {check}",
        ]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (LOCKS,) if self.via_check else (FULL_SCAN, LOCKS)

    async def preflight(self, connection: Any, earlier: Sequence[Operation]) -> List[RowProblem]:
        """SET NOT NULL fails while rows hold NULL: how many do (unless an earlier step fills them)."""
        table, schema, column = self.table_name, self.schema, self.column_name
        if may_change(earlier, schema, table, column) or not await countable(connection, schema, table):
            return []
        count, _ = await probe(
            connection, f"SELECT count(*) FROM {qualified(schema, table)} WHERE {quote_ident(column)} IS NULL"
        )
        if not count:
            return []
        return [
            RowProblem(
                f"{plural(count, 'row')} of {schema}.{table} {agree(count, 'holds', 'hold')} NULL in {column}, which this step makes NOT NULL "
                "(give them a value first: a backfill_column step before it)",
                fails=True,
            )
        ]


@register
@dataclass(frozen=True)
class DropNotNull(Operation):
    """Let a column hold NULL again (a catalog change, no scan)."""

    name = "drop_not_null"
    locks = 2
    keeps_rows = True
    rerunnable = True
    table_name: str
    column_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"{_alter_column(self.schema, self.table_name, self.column_name)} DROP NOT NULL"]


@register
@dataclass(frozen=True)
class SetColumnDefault(Operation):
    """Set (or, with `default=None`, drop) a column's server default."""

    name = "set_column_default"
    locks = 4
    keeps_rows = True
    rerunnable = True
    table_name: str
    column_name: str
    default: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        action = "DROP DEFAULT" if self.default is None else f"SET DEFAULT {self.default}"
        return [f"{_alter_column(self.schema, self.table_name, self.column_name)} {action}"]


@register
@dataclass(frozen=True)
class SetColumnComment(Operation):
    """Set (or, with `comment=None`, remove) a column's comment."""

    name = "set_column_comment"
    locks = 2
    keeps_rows = True
    rerunnable = True
    table_name: str
    column_name: str
    comment: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        value = "NULL" if self.comment is None else quote_literal(self.comment)
        return [
            f"COMMENT ON COLUMN {qualified(self.schema, self.table_name)}.{quote_ident(self.column_name)} IS {value}"
        ]


@register
@dataclass(frozen=True)
class AddColumnSequence(Operation):
    """Make an existing integer column serial, keeping its values.

    Creates the sequence a serial column would have (owned by the column,
    named as Postgres names it unless `sequence_name` says otherwise), makes
    it the default and moves it past the largest value already stored.
    """

    name = "add_column_sequence"
    locks = 6
    keeps_rows = True
    table_name: str
    column_name: str
    data_type: str = "integer"
    sequence_name: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        if self.data_type not in SERIAL_OF:
            raise ValueError(f"a serial column is smallint, integer or bigint, not {self.data_type}")
        sequence = qualified(self.schema, self.sequence_name or serial_sequence_name(self.table_name, self.column_name))
        owner = f"{qualified(self.schema, self.table_name)}.{quote_ident(self.column_name)}"
        regclass = f"{quote_literal(sequence)}::regclass"
        return [
            f"CREATE SEQUENCE {sequence} AS {self.data_type} OWNED BY {owner}",
            f"{_alter_column(self.schema, self.table_name, self.column_name)} SET DEFAULT nextval({regclass})",
            _restart_past_max(regclass, self.schema, self.table_name, self.column_name),
        ]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (FULL_SCAN, LOCKS)


@register
@dataclass(frozen=True)
class DropColumnSequence(Operation):
    """Make a serial column plain: drop its default and the sequence it owns, keep its values.

    Without `sequence_name` the sequence is assumed to have the name Postgres
    gives it (a renamed table's sequence keeps its old name: pass it then).
    """

    name = "drop_column_sequence"
    locks = 6
    keeps_rows = True
    table_name: str
    column_name: str
    sequence_name: Optional[str] = None
    sequence_schema: Optional[str] = None
    schema: str = "public"

    def statements(self) -> List[str]:
        sequence = qualified(
            self.sequence_schema or self.schema,
            self.sequence_name or serial_sequence_name(self.table_name, self.column_name),
        )
        return [
            f"{_alter_column(self.schema, self.table_name, self.column_name)} DROP DEFAULT",
            f"DROP SEQUENCE {sequence}",
        ]


@register
@dataclass(frozen=True)
class AddColumnIdentity(Operation):
    """Make an existing NOT NULL column an identity column, numbering on past its largest value.

    `identity_options` are its sequence options (`START WITH 1000 INCREMENT BY 5`).
    """

    name = "add_column_identity"
    locks = 6
    keeps_rows = True
    table_name: str
    column_name: str
    identity: str = "by default"
    schema: str = "public"
    identity_options: Optional[str] = None

    def statements(self) -> List[str]:
        sequence = (
            f"pg_catalog.pg_get_serial_sequence({quote_literal(qualified(self.schema, self.table_name))}, "
            f"{quote_literal(self.column_name)})"
        )
        add = f"ADD GENERATED {_IDENTITY[self.identity]} AS IDENTITY"
        if self.identity_options:
            add += f" ({self.identity_options})"
            # Not below its START WITH (nor its MINVALUE, which setval would refuse).
            start = f"(SELECT s.seqstart FROM pg_catalog.pg_sequence s WHERE s.seqrelid = {sequence}::regclass)"
            table = qualified(self.schema, self.table_name)
            restart = (
                f"SELECT pg_catalog.setval({sequence}, GREATEST(COALESCE(max({quote_ident(self.column_name)}) + 1, "
                f"{start}), {start}), false) FROM {table}"
            )
        else:
            restart = _restart_past_max(sequence, self.schema, self.table_name, self.column_name)
        return [f"{_alter_column(self.schema, self.table_name, self.column_name)} {add}", restart]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (FULL_SCAN, LOCKS)


@register
@dataclass(frozen=True)
class DropColumnIdentity(Operation):
    """Make an identity column plain; its values stay, its sequence goes."""

    name = "drop_column_identity"
    locks = 6
    keeps_rows = True
    table_name: str
    column_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"{_alter_column(self.schema, self.table_name, self.column_name)} DROP IDENTITY"]


@register
@dataclass(frozen=True)
class SetColumnIdentityOptions(Operation):
    """Set every sequence option of an identity column (`ALTER COLUMN ... SET START WITH ...`).

    All six are written, so the result does not depend on what the options were
    before (`down` restores the old ones the same way). The sequence's current
    value stays where it is; START WITH only says where RESTART goes.
    """

    name = "set_column_identity_options"
    locks = 4
    keeps_rows = True
    table_name: str
    column_name: str
    start: int
    increment: int
    minvalue: int
    maxvalue: int
    cache: int = 1
    cycle: bool = False
    schema: str = "public"

    def statements(self) -> List[str]:
        options = (
            f"SET INCREMENT BY {self.increment} SET MINVALUE {self.minvalue} SET MAXVALUE {self.maxvalue} "
            f"SET START WITH {self.start} SET CACHE {self.cache} SET {'' if self.cycle else 'NO '}CYCLE"
        )
        # Postgres refuses new bounds that leave the sequence's current value outside: it is moved to
        # the nearest value inside both the old bounds and the new first (unchanged when inside).
        sequence = (
            f"pg_catalog.pg_get_serial_sequence({quote_literal(qualified(self.schema, self.table_name))}, "
            f"{quote_literal(self.column_name)})::regclass"
        )
        last = "pg_catalog.pg_sequence_last_value(q.seq)"
        clamp = (
            f"SELECT pg_catalog.setval(q.seq, GREATEST(LEAST(COALESCE({last}, p.seqstart), {self.maxvalue}, "
            f"p.seqmax), {self.minvalue}, p.seqmin), {last} IS NOT NULL) "
            f"FROM (SELECT {sequence} AS seq) q JOIN pg_catalog.pg_sequence p ON p.seqrelid = q.seq"
        )
        return [clamp, f"{_alter_column(self.schema, self.table_name, self.column_name)} {options}"]


@register
@dataclass(frozen=True)
class SetColumnExpression(Operation):
    """Change the expression of a generated column (PostgreSQL 17+: `SET EXPRESSION AS`).

    A stored column is computed again for every row: the table is rewritten.
    Before PostgreSQL 17 the column is dropped and added instead (its values
    are derived, so none are lost; it moves to the end of the table).
    """

    name = "set_column_expression"
    locks = 16
    table_name: str
    column_name: str
    expression: str
    virtual: bool = False
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"{_alter_column(self.schema, self.table_name, self.column_name)} SET EXPRESSION AS ({self.expression})"
        ]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (LOCKS,) if self.virtual else (REWRITES, LOCKS)


@register
@dataclass(frozen=True)
class DropColumnExpression(Operation):
    """Make a stored generated column plain (`DROP EXPRESSION`): its values stay, no longer computed."""

    name = "drop_column_expression"
    locks = 4
    table_name: str
    column_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [f"{_alter_column(self.schema, self.table_name, self.column_name)} DROP EXPRESSION"]

    def hazards(self) -> Tuple[Hazard, ...]:
        return (LOCKS,)


@register
@dataclass(frozen=True)
class SetColumnIdentity(Operation):
    """Switch an identity column between GENERATED ALWAYS and BY DEFAULT."""

    name = "set_column_identity"
    locks = 4
    keeps_rows = True
    table_name: str
    column_name: str
    identity: str
    schema: str = "public"

    def statements(self) -> List[str]:
        return [
            f"{_alter_column(self.schema, self.table_name, self.column_name)} SET GENERATED {_IDENTITY[self.identity]}"
        ]


@register
@dataclass(frozen=True)
class RenameColumn(Operation):
    """Rename a column in place; its data, indexes and constraints follow."""

    name = "rename_column"
    locks = 2
    table_name: str
    column_name: str
    new_name: str
    schema: str = "public"

    def statements(self) -> List[str]:
        names = f"{quote_ident(self.column_name)} TO {quote_ident(self.new_name)}"
        return [f"{_alter(self.schema, self.table_name)} RENAME COLUMN {names}"]
