"""Quoting. Every identifier pgmig writes is quoted; every value is a literal.

Identifiers are always double-quoted (even plain lower-case ones) so that a
reserved word, an upper-case letter or a quote in a user's name can never
change the meaning of a statement.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Optional, Tuple

NAMEDATALEN = 64
"""Postgres's NAMEDATALEN: a name keeps at most NAMEDATALEN - 1 bytes (pg_config_manual.h)."""


def stored_name(name: str) -> str:
    """`name` as Postgres keeps it: cut to NAMEDATALEN - 1 = 63 bytes of UTF-8, never inside a character.

    Postgres truncates every identifier it is given (scansup.c truncate_identifier,
    which cuts with pg_mbcliplen); `create_all` sends a long table, column or enum name
    as written, so the catalog holds this prefix. Comparing in this form keeps a long
    model name from differing from itself.
    """
    if len(name) < 16:  # at most 4 bytes a character: nothing shorter is cut (the common case)
        return name
    return clip_bytes(name, NAMEDATALEN - 1)


def clip_bytes(text: str, size: int) -> str:
    """The longest prefix of `text` fitting in `size` bytes of UTF-8, never splitting a character
    (Postgres's pg_mbcliplen, which truncate_identifier and makeObjectName cut names with)."""
    encoded = text.encode("utf-8")
    if len(encoded) <= size:
        return text
    return encoded[:size].decode("utf-8", errors="ignore")


def object_name(name1: str, name2: Optional[str], label: str) -> str:
    """The name Postgres makes for an object it names itself (`<name1>_<name2>_<label>`: a serial's
    `t_id_seq`, a constraint's `t_a_key`): makeObjectName (src/backend/commands/indexcmds.c) shortens
    the longer of the two names, a byte at a time and never inside a character, until it fits in 63 bytes.
    """
    size1, size2 = len(name1.encode()), len(name2.encode()) if name2 else 0
    available = NAMEDATALEN - 1 - len(label) - 1 - (1 if name2 else 0)
    while size1 + size2 > available:
        if size1 > size2:
            size1 -= 1
        else:
            size2 -= 1
    parts = [clip_bytes(name1, size1)]
    if name2:
        parts.append(clip_bytes(name2, size2))
    return "_".join(parts + [label])


class NulCharacterError(ValueError):
    """A name or a value holds a NUL character (U+0000), which no PostgreSQL name or text can hold."""


def quote_ident(name: str) -> str:
    """`name` double-quoted, `"` doubled; raises NulCharacterError for a NUL character."""
    if "\x00" in name:
        raise NulCharacterError(f"the identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: Optional[str], name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}" if schema else quote_ident(name)


def quote_literal(value: str) -> str:
    """`value` as an SQL string literal that means the same whatever `standard_conforming_strings` is.

    Without a backslash: `'...'` with quotes doubled, which both settings read
    alike. With one: an escape string constant `E'...'` with backslashes and
    quotes doubled, which is read the same way under either setting (PostgreSQL
    docs, "String Constants with C-Style Escapes", sql-syntax-lexical). A plain
    `'C:\\new'` would be read as holding a newline by a session with the setting
    off, and in `'\\''` the backslash would take the first quote, the second ending
    the literal early: what follows would run as SQL (an injection).
    Raises NulCharacterError (a ValueError) for a NUL character, which no PostgreSQL text can hold.
    """
    if "\x00" in value:
        raise NulCharacterError(f"the string {value!r} contains a NUL character")
    if "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"


def standard_literal(value: str) -> str:
    """`value` as PostgreSQL prints a string constant with `standard_conforming_strings = on`
    (pg_get_expr, pg_get_constraintdef: ruleutils.c simple_quote_literal): `'...'` with quotes
    doubled and backslashes as they are. For finding a value in text the server printed (pgmig's
    sessions set the setting on, pgmig.db.connect.SESSION_SETTINGS); write literals with `quote_literal`."""
    return "'" + value.replace("'", "''") + "'"


def sql_comment(text: str) -> str:
    """`-- text` as one line of SQL: a CR or LF, which would end the comment and make the rest of
    `text` a statement (the scanner's `comment` is `--[^\\n\\r]*`, scan.l), is written as `\\r`, `\\n`."""
    return "-- " + text.replace("\r", "\\r").replace("\n", "\\n")


def ident_list(names: Iterable[str]) -> str:
    return ", ".join(quote_ident(n) for n in names)


# Where a lexeme that is not plain code starts (scan.l): a line comment, a block comment, an escape
# string E'...' (a backslash escapes a quote in it), a string, a quoted identifier, a dollar quote's
# opening delimiter, or a `$n` parameter. Neither of the last two continues an identifier (`a$1`).
_LEXEME = re.compile(
    r"(?P<line>--[^\n\r]*)"
    r"|(?P<block>/\*)"
    r"|(?P<escape>(?<![\w$])[Ee]'(?:[^'\\]|''|\\.)*'?)"
    r"|(?P<string>'(?:[^']|'')*'?)"
    r"|(?P<ident>\"(?:[^\"]|\"\")*\"?)"
    r"|(?P<dollar>(?<![\w$])\$(?:[^\W\d]\w*)?\$)"
    r"|(?P<param>(?<![\w$])\$(?P<number>\d+))",
    re.S,
)

SqlPart = Tuple[str, str]
"""A piece of SQL text: ("code" | "comment" | "quoted" | "param", its text)."""


def sql_parts(sql: str) -> List[SqlPart]:
    """`sql` cut into code, comments (`-- ...`, nested `/* ... */`), quoted text (strings, E'...',
    quoted identifiers, dollar-quoted bodies) and `$n` parameters, in order; their texts join back
    into `sql`. An unterminated quote or comment runs to the end (Postgres would refuse it).

    Follows the server's lexer (src/backend/parser/scan.l, "Lexical Structure" in the docs), with
    standard_conforming_strings on, as pgmig's sessions and scripts set it.
    """
    parts: List[SqlPart] = []
    position = 0
    while True:
        found = _LEXEME.search(sql, position)
        if found is None:
            break
        if found.start() > position:
            parts.append(("code", sql[position : found.start()]))
        kind = found.lastgroup
        end = found.end()
        if kind == "block":
            depth = 1
            while depth and end < len(sql):
                if sql.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif sql.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
        elif kind == "dollar":
            close = sql.find(found.group(0), end)
            end = len(sql) if close < 0 else close + len(found.group(0))
        label = {"line": "comment", "block": "comment", "param": "param"}.get(kind or "", "quoted")
        parts.append((label, sql[found.start() : end]))
        position = end
    if position < len(sql):
        parts.append(("code", sql[position:]))
    return parts


def highest_parameter(sql: str) -> int:
    """The highest `$n` in `sql`'s code (not in quotes or comments): how many values the server
    expects bound to it (a gap is an error of its own: "could not determine data type"); 0 for none."""
    return max((int(text[1:]) for kind, text in sql_parts(sql) if kind == "param"), default=0)


def terminated(statement: str) -> str:
    """`statement` ended by `;` for a script: on a line of its own when its last line ends in a
    `--` comment (which would swallow the `;` and run the statement into the next line's), kept
    as it is when it ends in a `;` already."""
    parts = sql_parts(statement)
    if parts and parts[-1][0] == "code" and parts[-1][1].rstrip().endswith(";"):
        return statement
    if parts and parts[-1][0] == "comment" and parts[-1][1].startswith("--"):
        return statement + "\n;"
    return statement + ";"
