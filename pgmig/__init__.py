"""pgmig: a PostgreSQL schema migrator for SQLModel and SQLAlchemy.

Importing pgmig is cheap: the public names below load their modules on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Migrator": "pgmig.revisions.migrator",
    "MigrationRevisionBase": "pgmig.revisions.files",
    "PgmigError": "pgmig.errors",
    "DatabaseActions": "pgmig.ops.actor",
    "ObjectHandler": "pgmig.schema.protocol",
    "SchemaObject": "pgmig.schema.objects",
    "Operation": "pgmig.ops.base",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pgmig' has no attribute {name!r}")
