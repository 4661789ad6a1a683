"""Quoting. Every identifier pgmig writes is quoted; every value is a literal.

Identifiers are always double-quoted (even plain lower-case ones) so that a
reserved word, an upper-case letter or a quote in a user's name can never
change the meaning of a statement.
"""

from __future__ import annotations

from typing import Iterable, Optional


def quote_ident(name: str) -> str:
    if "\x00" in name:
        raise ValueError("an identifier cannot contain a NUL character")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: Optional[str], name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}" if schema else quote_ident(name)


def quote_literal(value: str) -> str:
    """A standard SQL string literal (standard_conforming_strings is on since 9.1)."""
    if "\x00" in value:
        raise ValueError("a string literal cannot contain a NUL character")
    return "'" + value.replace("'", "''") + "'"


def ident_list(names: Iterable[str]) -> str:
    return ", ".join(quote_ident(n) for n in names)
