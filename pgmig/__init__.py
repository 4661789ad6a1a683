"""pgmig: a PostgreSQL schema migrator for SQLModel and SQLAlchemy.

Importing pgmig is cheap: the public names below load their modules on first
use. Type checkers see them imported directly (and no module `__getattr__`,
which would make any misspelt name `Any`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Migrator": "pgmig.revisions.migrator",
    "MigrationRevisionBase": "pgmig.revisions.files",
    "PgmigError": "pgmig.errors",
    "DatabaseActions": "pgmig.ops.actor",
    "ObjectHandler": "pgmig.schema.protocol",
    "SchemaObject": "pgmig.schema.objects",
    "Operation": "pgmig.ops.base",
    "Hazard": "pgmig.ops.base",
    # The parts of `actor.create_table(...)`, as generated revisions import them.
    "Column": "pgmig.ops.table",
    "PrimaryKey": "pgmig.ops.table",
    "Unique": "pgmig.ops.table",
    "Check": "pgmig.ops.table",
    "ForeignKey": "pgmig.ops.table",
    "Index": "pgmig.ops.table",
    # The columns of `swap_type_values(...)` / `remap_type_values(...)`.
    "EnumColumn": "pgmig.ops.enum",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from pgmig.errors import PgmigError as PgmigError
    from pgmig.ops.actor import DatabaseActions as DatabaseActions
    from pgmig.ops.base import Hazard as Hazard
    from pgmig.ops.base import Operation as Operation
    from pgmig.ops.enum import EnumColumn as EnumColumn
    from pgmig.ops.table import Check as Check
    from pgmig.ops.table import Column as Column
    from pgmig.ops.table import ForeignKey as ForeignKey
    from pgmig.ops.table import Index as Index
    from pgmig.ops.table import PrimaryKey as PrimaryKey
    from pgmig.ops.table import Unique as Unique
    from pgmig.revisions.files import MigrationRevisionBase as MigrationRevisionBase
    from pgmig.revisions.migrator import Migrator as Migrator
    from pgmig.schema.objects import SchemaObject as SchemaObject
    from pgmig.schema.protocol import ObjectHandler as ObjectHandler
else:

    def __getattr__(name: str) -> Any:
        if name in _LAZY:
            import importlib

            return getattr(importlib.import_module(_LAZY[name]), name)
        raise AttributeError(f"module 'pgmig' has no attribute {name!r}")
