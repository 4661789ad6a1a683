"""Excluded objects: glob patterns of names pgmig never reads, diffs, drops or reports.

A pattern is matched (`fnmatch.fnmatchcase`: `*`, `?`, `[seq]`, case-sensitive as
Postgres names are) against the schema-level object an object is, or belongs to:

- a pattern without a dot matches the object's name in any managed schema
  (`spatial_ref_sys`, `legacy_*`);
- a pattern with a dot matches `schema.name` (`public.legacy_*`, `audit.*`).

An object that lives in another (its `parent`: a column, constraint, index
or trigger in its table) is matched by that owner's name only, never its
own: an excluded table takes its columns, indexes, constraints and triggers
with it, whatever handler (built-in or plugin) reads them, and an index that
happens to match a pattern stays with its managed table. Objects that stand
alone (tables, views, enums, sequences, functions, extensions) are matched
by their own name. A foreign key from a managed table to an excluded one
stays: it belongs to the managed table; the excluded table is only referenced.

The filter is applied where each side is read (`pgmig.schema.catalog.read_all`
for the database, `pgmig.plan.engine.desired_objects` for the models), so
nothing downstream (diff, generate, status, check, baseline) ever sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Dict, Iterable, Optional, Pattern, Tuple

from pgmig.schema.objects import Key, SchemaObject, key_scope

OTHER_TOOLS_VERSION_TABLES: Tuple[str, ...] = (
    "alembic_version",  # Alembic (and Flask-Migrate)
    "django_migrations",  # Django
    "flyway_schema_history",  # Flyway
    "_prisma_migrations",  # Prisma
    "schema_migrations",  # Rails, golang-migrate, dbmate
    "atlas_schema_revisions",  # Atlas
)
"""Excluded by default (DESIGN.md section 1): the version tables of other migration tools, which a
database adopted from them keeps and pgmig must neither drop nor report."""


def _compiled(patterns: Iterable[str]) -> Optional[Pattern[str]]:
    translated = [translate(pattern) for pattern in patterns]
    return re.compile("|".join(f"(?:{t})" for t in translated)) if translated else None


@dataclass(frozen=True)
class Exclusions:
    """The exclude patterns of one run (empty: nothing excluded); see the module for what they match."""

    patterns: Tuple[str, ...] = ()
    _names: Optional[Pattern[str]] = field(default=None, init=False, repr=False, compare=False)
    _qualified: Optional[Pattern[str]] = field(default=None, init=False, repr=False, compare=False)
    # (schema, name) -> excluded, for scopes already asked: a table's columns share one.
    _seen: Dict[Tuple[str, ...], bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", _compiled(p for p in self.patterns if "." not in p))
        object.__setattr__(self, "_qualified", _compiled(p for p in self.patterns if "." in p))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excludes(self, obj: SchemaObject) -> bool:
        """Whether `obj` is excluded: its owner (`parent`) matches a pattern, or it has none and matches one."""
        if not self.patterns:
            return False
        return self._scope(obj.parent or obj.key)

    def excludes_name(self, schema: str, name: str) -> bool:
        """Whether the schema-level object `schema`.`name` (a table, a view, an enum...) is excluded."""
        return self._scope(("", schema, name))

    def _scope(self, key: Key) -> bool:
        scope = key_scope(key)  # (schema, name) of the object, or of the table a column's key names
        hit = self._seen.get(scope)
        if hit is None:
            name = scope[-1]
            hit = bool(self._names is not None and self._names.match(name))
            if not hit and len(scope) == 2 and self._qualified is not None:
                hit = bool(self._qualified.match(f"{scope[0]}.{name}"))
            self._seen[scope] = hit
        return hit


NOTHING = Exclusions()


def exclusions(patterns: Iterable[str], defaults: bool = True) -> Exclusions:
    """The exclusions of `patterns`, after the other tools' version tables unless `defaults` is False."""
    given = tuple(OTHER_TOOLS_VERSION_TABLES if defaults else ()) + tuple(patterns)
    return Exclusions(tuple(dict.fromkeys(given)))
