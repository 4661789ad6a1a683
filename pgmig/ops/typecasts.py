"""Which column type changes keep every value: the one table pgmig proves a type change lossless by.

A change of a column's type is lossless only when it is proven here: every
value of the old type becomes a value of the new type that casts back to
the original (`(v::new)::old = v`). Everything else can round (19.99 as
`integer` is 20), truncate (a `timestamp` as `date` loses its time of day)
or be refused by a row, and carries `deletes_data` (see
`pgmig.ops.column.type_change_hazards`).

Types are spelled as `format_type()` prints them (`numeric(10,2)`,
`character varying(20)[]`, `timestamp(3) with time zone`). Proven:

- the same type with a modifier that admits every old value: `varchar(n)` ->
  `varchar(m >= n)` or unbounded, `char(n)` -> `char(m >= n)`,
  `numeric(p,s)` -> `numeric(p',s')` with `s' >= s` and `p'-s' >= p-s`, or
  unbounded `numeric`; `bit varying(n)` -> `bit varying(m >= n)`; more
  fractional-second precision of `time`, `timetz`, `timestamp`,
  `timestamptz` and `interval` (none is the maximum, 6);
- the string family: `text`, `varchar` and `char(n)` to `text`, unbounded
  `varchar` or `varchar(m >= n)` (Postgres's binary-coercible text <->
  varchar casts, pg_cast castmethod `b`; `char` only drops trailing blanks,
  which its comparisons ignore);
- integers and numbers: `smallint` -> `integer` -> `bigint`; `smallint` and
  `integer` -> `double precision` (53 bits hold them exactly), `smallint`
  -> `real` (24 bits); an integer -> `numeric(p,s)` with room for its
  digits (5, 10, 19 for `smallint`, `integer`, `bigint`) or unbounded
  `numeric`; `real` -> `double precision`;
- time: `date` -> `timestamp` and `timestamptz`; `timestamp` ->
  `timestamptz`. These read values in the session's `TimeZone` and assume
  the revision runs in the same one as the values were written in; under a
  zone with daylight-saving changes, a local time inside the hour that is
  skipped moves by that hour. `date` -> `timestamp` also refuses (an
  error, no silent change) dates after 294276 AD, where `timestamp` ends;
- to `text` or unbounded `varchar`: integers, `numeric`, `boolean`,
  `uuid`, `json`, `jsonb`, and an enum (its labels are text);
- `bit(n)` -> `bit varying(m >= n)` or unbounded; `json` <- `jsonb`.

Arrays follow the rule of their element type; an array and a non-array
type are never proven. A domain, or any other type than these, is proven
only unchanged. The test `tests/test_typecasts.py` checks every entry on
the server: values at the extremes of the old type round-trip through the
new one, and for a sample of pairs left out a value changes.
"""

from __future__ import annotations

import re
from typing import Callable, Dict, FrozenSet, Optional, Tuple

Mods = Tuple[int, ...]

_MODIFIERS = re.compile(r"\s*\(([0-9, ]+)\)")

VARCHAR, CHAR, TEXT, NUMERIC = "character varying", "character", "text", "numeric"
SMALLINT, INTEGER, BIGINT = "smallint", "integer", "bigint"
REAL, DOUBLE = "real", "double precision"
DATE, TIMESTAMP, TIMESTAMPTZ = "date", "timestamp without time zone", "timestamp with time zone"
TIME, TIMETZ, INTERVAL = "time without time zone", "time with time zone", "interval"
BIT, VARBIT, JSON, JSONB = "bit", "bit varying", "json", "jsonb"

# Types with a fractional-second precision (0-6, none meaning 6).
PRECISION_TYPES = frozenset({TIMESTAMP, TIMESTAMPTZ, TIME, TIMETZ, INTERVAL})
# Integer digits each integer type needs in a numeric(p,s): p - s.
_DIGITS = {SMALLINT: 5, INTEGER: 10, BIGINT: 19}
_TIME_ZONE_ASSUMED = frozenset({(DATE, TIMESTAMPTZ), (TIMESTAMP, TIMESTAMPTZ)})


def parse_type(data_type: str) -> Tuple[str, Mods, bool]:
    """(base name, modifiers, is array) of a type as format_type prints it.

    `timestamp(3) with time zone` -> ("timestamp with time zone", (3,), False);
    `character varying(20)[]` -> ("character varying", (20,), True).
    """
    text = data_type.strip().lower()
    array = text.endswith("[]")
    text = text.rstrip("[]").strip()
    found = _MODIFIERS.search(text)
    mods = tuple(int(m) for m in found.group(1).split(",")) if found else ()
    return _MODIFIERS.sub("", text, count=1), mods, array


def _length_fits(old: Mods, new: Mods) -> bool:
    """A length limit (`varchar(n)`): none is unbounded."""
    return not new or (bool(old) and new[0] >= old[0])


def numeric_fits(old: Mods, new: Mods) -> bool:
    """Whether numeric(`new`) holds every numeric(`old`) value unchanged: as many integer digits
    (p - s) and at least the scale. No modifier is unbounded; `numeric(p)` is `numeric(p,0)`."""
    if not new:
        return True
    if not old:
        return False
    old_p, old_s = (old + (0,))[:2]
    new_p, new_s = (new + (0,))[:2]
    return new_s >= old_s and new_p - new_s >= old_p - old_s


def _precision_fits(old: Mods, new: Mods) -> bool:
    return (new[0] if new else 6) >= (old[0] if old else 6)


def _integer_into(digits: int) -> Callable[[Mods, Mods], bool]:
    return lambda old, new: not new or (new + (0,))[0] - (new + (0,))[1] >= digits


def _always(old: Mods, new: Mods) -> bool:
    return True


def _unbounded(old: Mods, new: Mods) -> bool:
    return not new


def _char_fits(old: Mods, new: Mods) -> bool:
    # `character` alone is character(1).
    return _length_fits(old or (1,), new)


_SAME_TYPE: Dict[str, Callable[[Mods, Mods], bool]] = {
    VARCHAR: _length_fits,
    CHAR: _char_fits,
    VARBIT: _length_fits,
    NUMERIC: numeric_fits,
    **{name: _precision_fits for name in PRECISION_TYPES},
}

_TEXTUAL = (TEXT, VARCHAR)
# (old base, new base): whether the new modifiers hold every old value.
_WIDENING: Dict[Tuple[str, str], Callable[[Mods, Mods], bool]] = {
    (VARCHAR, TEXT): _always,
    (TEXT, VARCHAR): _unbounded,
    (CHAR, TEXT): _always,
    (CHAR, VARCHAR): _char_fits,
    (SMALLINT, INTEGER): _always,
    (SMALLINT, BIGINT): _always,
    (INTEGER, BIGINT): _always,
    (SMALLINT, REAL): _always,
    (SMALLINT, DOUBLE): _always,
    (INTEGER, DOUBLE): _always,
    (REAL, DOUBLE): _always,
    (DATE, TIMESTAMP): _always,
    (DATE, TIMESTAMPTZ): _always,
    (TIMESTAMP, TIMESTAMPTZ): _precision_fits,
    (BIT, VARBIT): _length_fits,
    (JSONB, JSON): _always,
    **{(name, NUMERIC): _integer_into(digits) for name, digits in _DIGITS.items()},
    **{
        (name, textual): _unbounded if textual == VARCHAR else _always
        for name in (SMALLINT, INTEGER, BIGINT, NUMERIC, "boolean", "uuid", JSON, JSONB)
        for textual in _TEXTUAL
    },
}

WIDENING_PAIRS: FrozenSet[Tuple[str, str]] = frozenset(_WIDENING)
"""Every (old base, new base) pair of different types the table can prove lossless."""


def is_lossless(old_type: str, new_type: str, old_is_enum: bool = False) -> bool:
    """Whether changing a column of `old_type` to `new_type` keeps every value (see the module docs).

    `old_is_enum`: `old_type` names an enum, whose labels `text` and
    unbounded `varchar` hold as they are.
    """
    if old_type == new_type:
        return True
    (old_base, old_mods, old_array), (new_base, new_mods, new_array) = parse_type(old_type), parse_type(new_type)
    if old_array != new_array:
        return False
    if old_is_enum:
        return new_base in _TEXTUAL and not new_mods
    if old_base == new_base:
        fits = _SAME_TYPE.get(old_base)
        return old_mods == new_mods if fits is None else fits(old_mods, new_mods)
    fits = _WIDENING.get((old_base, new_base))
    return fits is not None and fits(old_mods, new_mods)


def time_zone_assumption(old_type: str, new_type: str) -> Optional[str]:
    """What a lossless change of `old_type` to `new_type` assumes of the session, in words, or None."""
    (old_base, _, _), (new_base, _, _) = parse_type(old_type), parse_type(new_type)
    if (old_base, new_base) not in _TIME_ZONE_ASSUMED:
        return None
    return (
        f"{old_type} -> {new_type} reads the existing values as local times of the session's TimeZone: "
        "run the revision with the TimeZone the values were written in"
    )


__all__ = ["PRECISION_TYPES", "WIDENING_PAIRS", "is_lossless", "numeric_fits", "parse_type", "time_zone_assumption"]
