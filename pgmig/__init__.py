"""pgmig: a PostgreSQL schema migrator for SQLModel and SQLAlchemy.

Importing pgmig is cheap: the public names below load their modules on first
use. Type checkers see them imported directly (and no module `__getattr__`,
which would make any misspelt name `Any`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Migrator": "pgmig.migrator",
    "MigrationRevisionBase": "pgmig.revisions",
    "PgmigError": "pgmig.errors",
    "DatabaseActions": "pgmig.actions",
    "ObjectHandler": "pgmig.handler",
    "SchemaObject": "pgmig.objects",
    "Operation": "pgmig.operations",
    "Hazard": "pgmig.operations",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .actions import DatabaseActions as DatabaseActions
    from .errors import PgmigError as PgmigError
    from .handler import ObjectHandler as ObjectHandler
    from .migrator import Migrator as Migrator
    from .objects import SchemaObject as SchemaObject
    from .operations import Hazard as Hazard
    from .operations import Operation as Operation
    from .revisions import MigrationRevisionBase as MigrationRevisionBase
else:

    def __getattr__(name: str) -> Any:
        if name in _LAZY:
            import importlib

            return getattr(importlib.import_module(_LAZY[name]), name)
        raise AttributeError(f"module 'pgmig' has no attribute {name!r}")
