"""The one exception root of pgmig.

Every failure a user can act on is a `PgmigError`; the CLI turns it into one
line on stderr and the exit code of its class, so library callers and the CLI
see the same errors and the CLI stays a thin edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple


def plural(count: int, noun: str) -> str:
    """`1 revision`, `2 revisions`: a count with its noun, for messages (a regular English plural)."""
    return f"{count} {agree(count, noun, noun + 's')}"


def agree(count: int, one: str, many: str) -> str:
    """`one` when `count` is 1, else `many`: a noun or verb agreeing with a count (`holds`/`hold`)."""
    return one if count == 1 else many


@dataclass(frozen=True)
class Hint:
    """What a caller can give to get past a problem, named by the option that carries it.

    `option` is a field of the service's options (`allow_destructive`,
    `defaults`, `enum_maps` of `GenerateOptions`) and `values` are values of
    it that would do (`"article.published=EXPR"`). The library words a hint
    with the option's name (`str(hint)`); the CLI words it with its flags.
    """

    action: str
    option: str
    values: Tuple[str, ...] = ()

    def __str__(self) -> str:
        given = f": {', '.join(self.values)}" if self.values else ""
        return f"{self.action} with the option {self.option}{given}"


WordHint = Callable[[Hint], str]


class PgmigError(Exception):
    """Root of every error pgmig reports to a user.

    `hint`, when set, is what to do next as structured data; `str(error)` is
    the message followed by the hint in the library's words, and
    `describe(word)` words the hint the caller's way (the CLI: its flags).
    """

    exit_code: int = 1

    def __init__(self, *args: object, hint: Optional[Hint] = None) -> None:
        super().__init__(*args)
        self.hint = hint

    def describe(self, word: WordHint = str) -> str:
        """The message, then the hint as `word` puts it."""
        message = super().__str__()
        return message if self.hint is None else f"{message}; {word(self.hint)}"

    def __str__(self) -> str:
        return self.describe()


class PgmigWarning(UserWarning):
    """Root of pgmig's warnings: something the user should know that does not stop the command.

    The library issues them with `warnings.warn`; the CLI prints each as one
    `warning: ...` line on stderr.
    """


class UnmodeledWarning(PgmigWarning):
    """The models use a construct pgmig does not compare or migrate yet (pgmig.schema.unmodeled).

    pgmig's plans leave it out (whether `create_all` builds it, as a partition key, or only
    assumes it, as a `FetchedValue()` default some trigger sets): said for every
    diff and generate, named by `construct`, `table` (schema-qualified) and
    `column` (None for the table's), with `what` the models declare.
    """

    def __init__(self, construct: str, table: str, column: Optional[str], what: str) -> None:
        self.construct = construct
        self.table = table
        self.column = column
        self.what = what
        where = f"{table}.{column}" if column else table
        super().__init__(
            f"{construct} is not modeled by pgmig: {where} declares {what}; pgmig's plans leave it out and "
            "do not compare it (write what it needs in a revision by hand)"
        )


class UsageError(PgmigError):
    """Bad usage or configuration: the user must change a flag, env var or key."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration value is missing or invalid."""


class ModelsError(UsageError):
    """The models could not be found, imported or merged."""


class PluginError(UsageError):
    """Object-type handlers conflict (two handlers claim one kind)."""


class DatabaseError(PgmigError):
    """The database could not be reached or refused a statement."""

    exit_code = 3


class ConnectionLostError(DatabaseError):
    """A session ended under a running command (the server terminated it, a restart, the network
    dropped it): not an error of a revision or of the models. What was committed before stays;
    the message says what, and running the command again is safe."""


class SchemaError(PgmigError):
    """The schema objects cannot be put in order (a dependency cycle) or are inconsistent."""

    exit_code = 3


class RevisionError(PgmigError):
    """The revision files or the version table are inconsistent."""

    exit_code = 3
