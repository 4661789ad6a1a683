"""The public API for plugin authors: everything a new kind of schema object needs.

A plugin adds one kind of object (a view, an extension, a function...) by
shipping three things, all importable from this module only:

- a frozen dataclass deriving from `SchemaObject`: its `key` identifies it,
  its compared fields decide when it changed, its `dependencies` order it
  against every other object, built-in or from another plugin;
- `Operation` subclasses registered with `@register`: the statements and
  their `Hazard`s, with plain arguments so generated revision files can
  spell them, as `await migrator.actor.run(YourOperation(...))` importing
  the class from your package (so the file type-checks);
- an `ObjectHandler` subclass: reads the objects from the models
  (`from_models`) and from the catalog (`from_database`), optionally lets
  Postgres normalize the model side (`normalize`: declare a `Renderer` and
  call `render`; see pgmig.normalize), and returns the operations
  (instances of its `Operation` classes) that `create`, `migrate` and
  `destroy` one; the same objects run, print as `--sql` and are written
  into revision files.

Users declare a plugin's objects next to their models by attaching them to a
SQLAlchemy `MetaData` (`SQLModel.metadata` for SQLModel): a plugin offers a
small function that calls `declare()`, and its handler reads them back with
`declared()`. That is the one way for every plugin, because the MetaData is
the one thing pgmig already finds through `--models` and registries.

Anything not exported here is internal and may change without notice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Tuple, Type, TypeVar

from pgmig.db.quoting import NulCharacterError, ident_list, qualified, quote_ident, quote_literal
from pgmig.errors import PgmigError
from pgmig.ops.actor import DatabaseActions
from pgmig.ops.base import Hazard, Operation, register, translate_type
from pgmig.plan.normalize import Reads, Renderer, Scratch, normal_types, render
from pgmig.schema.expressions import FUNCTION_CALL, functions_called
from pgmig.schema.objects import Key, SchemaObject, key_kind, key_name, key_schema, key_scope, key_text
from pgmig.schema.protocol import DatabaseContext, ModelContext, ObjectHandler
from pgmig.schema.types import TYPE_JOINS, TYPE_SQL

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy import MetaData

__all__ = [
    "DatabaseActions",
    "DatabaseContext",
    "DeclarationError",
    "FUNCTION_CALL",
    "Hazard",
    "Key",
    "ModelContext",
    "NulCharacterError",
    "ObjectHandler",
    "Operation",
    "PgmigError",
    "Reads",
    "Renderer",
    "SchemaObject",
    "Scratch",
    "TYPE_JOINS",
    "TYPE_SQL",
    "declare",
    "declared",
    "dollar_quote",
    "functions_called",
    "ident_list",
    "key_kind",
    "key_name",
    "key_schema",
    "key_scope",
    "key_text",
    "metadata_of",
    "model_column_type",
    "normal_types",
    "qualified",
    "quote_ident",
    "quote_literal",
    "register",
    "render",
    "translate_type",
]

INFO_KEY = "pgmig"
"""`MetaData.info[INFO_KEY]` is the list of declared plugin objects."""

D = TypeVar("D")


class DeclarationError(PgmigError):
    """A plugin object was declared in a way pgmig cannot use (no MetaData, a clashing name)."""

    exit_code = 2


def metadata_of(target: Any) -> "MetaData":
    """The MetaData behind `target`: a MetaData, or anything with `.metadata` (SQLModel, a declarative base).

    Accepting the model class too means users of SQLModel write
    `view(SQLModel, ...)` without knowing where SQLModel keeps its MetaData.
    """
    from sqlalchemy import MetaData

    if isinstance(target, MetaData):
        return target
    metadata = getattr(target, "metadata", None)
    if isinstance(metadata, MetaData):
        return metadata
    raise DeclarationError(f"cannot declare on {target!r}: pass a sqlalchemy MetaData, SQLModel, or a declarative base")


def declare(target: Any, declaration: D) -> D:
    """Attach a plugin's declaration to the models' MetaData and return it.

    The declaration is any object the plugin defines (usually a frozen
    dataclass); it lives in `metadata.info["pgmig"]`, which SQLAlchemy keeps
    for exactly this kind of user data and never interprets. Declaring the
    same value twice is harmless, so a models module imported twice does not
    produce duplicates.
    """
    metadata = metadata_of(target)
    items: List[Any] = metadata.info.setdefault(INFO_KEY, [])
    if declaration not in items:
        items.append(declaration)
    return declaration


def declared(models: ModelContext, of_type: Type[D]) -> Iterator[D]:
    """Every declaration of `of_type` attached to any of the models' MetaData, in declaration order.

    Filtering by type (not by a kind string) keeps two plugins that share a
    MetaData from ever reading each other's declarations.
    """
    for metadata in models.metadata:
        for item in metadata.info.get(INFO_KEY, ()):
            if isinstance(item, of_type):
                yield item


def model_column_type(models: ModelContext, table: Any, column: str) -> Tuple[str, Optional[str]]:
    """(type as `format_type()` prints it, collation name or None for the type's default) of the
    column named `column` of the model table `table` (a SQLAlchemy Table of `models`), as the
    column handler compares it. Raises KeyError for a column the table lacks."""
    from pgmig.schema.handlers.column import model_columns, split_collation

    return split_collation(dict(model_columns(models).table_types(table))[column])


def dollar_quote(body: str, tag: str = "pgmig") -> str:
    """`body` as a dollar-quoted string literal whose tag does not occur in it.

    Function bodies are full of quotes; dollar quoting keeps them readable in
    revision files and in `--sql` output, and a tag chosen to be absent from
    the body means no content can end the literal early.
    """
    if "\x00" in body:
        raise NulCharacterError("a dollar-quoted string cannot contain a NUL character")
    candidate, n = tag, 0
    while f"${candidate}$" in body:
        n += 1
        candidate = f"{tag}{n}"
    return f"${candidate}${body}${candidate}$"
