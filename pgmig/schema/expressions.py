"""Expressions as Postgres prints them, made to read back the same and to compare as what they mean.

`pg_get_expr` does not always print a text that parses back into the same
tree. The case that matters in practice is an IN list on a `varchar` column
(`kind IN ('bug', 'task')`): the parser builds the list as a `varchar[]`
array and coerces the array to `text[]` (an ArrayCoerceExpr), printed as

    ((kind)::text = ANY ((ARRAY['bug'::character varying, 'task'::character varying])::text[]))

Parsing that text again pushes the cast into the elements
(transformTypeCast hands a cast ARRAY[...] constructor its target type,
parse_expr.c), so Postgres then prints

    ((kind)::text = ANY (ARRAY[('bug'::character varying)::text, ('task'::character varying)::text]))

which is also what a CHECK becomes when Postgres re-parses it after an
`ALTER COLUMN ... TYPE` (it rebuilds constraints and indexes from their
printed text). Both mean the same. `canonical` maps the second form to the
first, for comparing; `reparsable` spells the first so that it parses back
to itself (an intermediate cast to the elements' own array type keeps the
cast off the constructor): what re-creating an object from the catalog
sends.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import FrozenSet, List, Sequence, Tuple

# A literal with its type: 'it''s'::character varying, 'x'::character varying(20), 'a'::"char".
_TYPE = r'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_]*(?: [a-z_][a-z0-9_]*)*)(?:\(\d+(?:,\d+)?\))?'
_LITERAL = r"'(?:[^']|'')*'::" + _TYPE

# (ARRAY['a'::T, 'b'::T])::U[]  - the printed array coercion.
_COERCED_ARRAY = re.compile(r"\(ARRAY\[(" + _LITERAL + r"(?:, " + _LITERAL + r")*)\]\)::(" + _TYPE + r")\[\]")
# ARRAY[('a'::T)::U, ('b'::T)::U]  - the same after one more parse.
_CAST_ELEMENTS = re.compile(
    r"ARRAY\[(\(" + _LITERAL + r"\)::" + _TYPE + r"(?:, \(" + _LITERAL + r"\)::" + _TYPE + r")*)\]"
)
_ELEMENT = re.compile(r"\((" + _LITERAL + r")\)::(" + _TYPE + r")")
_LITERAL_TYPE = re.compile(r"'(?:[^']|'')*'::(" + _TYPE + r")")


def _literal_type(literal: str) -> str:
    match = _LITERAL_TYPE.fullmatch(literal)
    assert match is not None
    return match.group(1)


def _split_literals(items: str) -> List[str]:
    return [m.group(0) for m in re.finditer(_LITERAL, items)]


def canonical(expression: str) -> str:
    """`expression` with every `ARRAY[('a'::T)::U, ...]` written `(ARRAY['a'::T, ...])::U[]`
    (see the module's docstring), when every element is a literal of one type cast to one type."""
    if "ARRAY[(" not in expression:
        return expression

    def rewrite(match: "re.Match[str]") -> str:
        elements = [_ELEMENT.fullmatch(item) for item in _split_elements(match.group(1))]
        if any(e is None for e in elements):
            return match.group(0)
        targets = {e.group(2) for e in elements if e is not None}
        sources = {_literal_type(e.group(1)) for e in elements if e is not None}
        if len(targets) != 1 or len(sources) != 1:
            return match.group(0)
        literals = ", ".join(e.group(1) for e in elements if e is not None)
        return f"(ARRAY[{literals}])::{targets.pop()}[]"

    return _CAST_ELEMENTS.sub(rewrite, expression)


def _split_elements(items: str) -> List[str]:
    """`('a'::T)::U, ('b'::T)::U` -> its elements (a literal may hold `, `)."""
    return [m.group(0) for m in re.finditer(r"\(" + _LITERAL + r"\)::" + _TYPE, items)]


def reparsable(expression: str) -> str:
    """`expression` (as `pg_get_expr` printed it) spelled so that Postgres parses it back into
    what it printed: each `(ARRAY['a'::T, ...])::U[]` becomes `((ARRAY['a'::T, ...])::T[])::U[]`."""
    if "(ARRAY[" not in expression:
        return expression

    def rewrite(match: "re.Match[str]") -> str:
        literals = _split_literals(match.group(1))
        types = {_literal_type(literal) for literal in literals}
        if len(types) != 1:
            return match.group(0)
        element = types.pop()
        if element == match.group(2):
            return match.group(0)
        return f"((ARRAY[{match.group(1)}])::{element}[])::{match.group(2)}[]"

    return _COERCED_ARRAY.sub(rewrite, expression)


__all__ = ["canonical", "columns_read", "reparsable"]


_WORD = re.compile(r'"((?:[^"]|"")*)"|([^\W\d][\w$]*)')


_TYPMOD = re.compile(r"\(\d+(?:,\d+)?\)")


def columns_read(expression: str, table_columns: Sequence[Tuple[str, str]]) -> Tuple[Tuple[str, str], ...]:
    """The (name, type without modifiers) pairs of `table_columns` that `expression` may read.

    A column counts when its name appears as a quoted identifier or, folded
    to lower case, as a bare word anywhere in the text (string literals
    included): a word too many only adds a column to a scratch table, and a
    column missed makes the server refuse the check, which falls back to
    all of the table's columns.

    Type modifiers are left out (`numeric(10,2)` reads as `numeric`): the
    server prints a check the same whatever the lengths and precisions of
    the columns it reads (operators take unmodified types; a cast written in
    the check keeps its own), which tests/test_constraint.py checks on every
    server the suite runs on. Checks on `price numeric(8,2)` and `price
    numeric(12,4)` then share one rendering.
    """
    words = _words(expression)
    return tuple((name, _unmodified(data_type)) for name, data_type in table_columns if name in words)


@lru_cache(maxsize=4096)  # a check text often repeats across tables
def _words(expression: str) -> FrozenSet[str]:
    words = set()
    for quoted, bare in _WORD.findall(expression):
        words.add(quoted.replace('""', '"') if quoted else bare.lower())
        if quoted:
            words.add(quoted)
    return frozenset(words)


@lru_cache(maxsize=4096)
def _unmodified(data_type: str) -> str:
    return data_type if '"' in data_type else _TYPMOD.sub("", data_type)


# A function call in an expression as Postgres prints it: a name (perhaps schema-qualified,
# perhaps quoted) right before "(". Casts to a type with a modifier (numeric(10,2)) match too;
# their keys name nothing that provides them and order nothing.
_CALL = re.compile(r'(?:(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\.)?("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\(')
_STRING = re.compile(r"'(?:[^']|'')*'")

FUNCTION_CALL = "function_call"
"""The kind of a dependency on a function by its name, ("function_call", name): what an expression
calls. An object that creates such a function (an extension, a function) `provides` the key, so a
column whose default calls it is created after it and dropped before it; a key nothing provides (a
built-in function) orders nothing."""


def functions_called(*expressions: "str | None") -> Tuple[Tuple[str, str], ...]:
    """("function_call", name) for each function the expressions call, names as Postgres keeps them
    (unquoted folded to lower case); string literals are skipped. () for None or empty texts."""
    names: List[str] = []
    for text in expressions:
        if not text or "(" not in text:
            continue
        for match in _CALL.finditer(_STRING.sub("''", text)):
            name = match.group(1)
            names.append(name[1:-1].replace('""', '"') if name.startswith('"') else name.lower())
    return tuple((FUNCTION_CALL, name) for name in dict.fromkeys(names))
