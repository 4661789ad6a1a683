"""The one exception root of pgmig.

Every failure a user can act on is a `PgmigError`; the CLI turns it into one
line on stderr and the exit code of its class, so library callers and the CLI
see the same errors and the CLI stays a thin edge.
"""

from __future__ import annotations


class PgmigError(Exception):
    """Root of every error pgmig reports to a user."""

    exit_code: int = 1


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


class SchemaError(PgmigError):
    """The schema objects cannot be put in order (a dependency cycle) or are inconsistent."""

    exit_code = 3


class RevisionError(PgmigError):
    """The revision files or the version table are inconsistent."""

    exit_code = 3
