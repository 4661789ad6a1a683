"""Object-type handlers: discovered from `pgmig.object_types`, loaded on demand.

A handler that fails to import is reported with its package and skipped; two
handlers that claim one kind are an error naming both packages, because
silently picking one would diff the schema with the wrong rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Type

from pgmig.config.entrypoints import OBJECT_TYPES_GROUP, Found, find
from pgmig.errors import PluginError
from pgmig.schema.protocol import ObjectHandler


@dataclass
class LoadedHandler:
    handler: ObjectHandler
    source: Optional[Found] = None

    @property
    def provider(self) -> str:
        return self.source.provider if self.source else "(given directly)"


@dataclass
class HandlerSet:
    """The handlers of one run, in a stable order, with the plugins that failed to load."""

    loaded: List[LoadedHandler] = field(default_factory=list)
    failures: List[str] = field(default_factory=list)

    @property
    def handlers(self) -> List[ObjectHandler]:
        return [item.handler for item in self.loaded]

    def by_kind(self, kind: str) -> ObjectHandler:
        for handler in self.handlers:
            if handler.kind == kind:
                return handler
        raise KeyError(kind)


def load_handlers(found: Optional[Sequence[Found]] = None) -> HandlerSet:
    """Import every discovered handler; failures are collected, duplicates rejected."""
    result = HandlerSet()
    for entry in find(OBJECT_TYPES_GROUP) if found is None else found:
        try:
            obj = entry.load()
            handler = _instantiate(obj, entry.name)
        except Exception as exc:  # any import-time failure of a plugin
            result.failures.append(
                f"plugin {entry.package} could not load object type {entry.name!r} "
                f"({entry.value}): {exc.__class__.__name__}: {exc}"
            )
            continue
        result.loaded.append(LoadedHandler(handler, entry))
    _reject_duplicates(result.loaded)
    return result


def handler_set(handlers: Iterable[ObjectHandler | Type[ObjectHandler]]) -> HandlerSet:
    """A HandlerSet from a plain list (tests, embedding), with the same duplicate check."""
    loaded = [LoadedHandler(_instantiate(h, getattr(h, "kind", "?"))) for h in handlers]
    _reject_duplicates(loaded)
    return HandlerSet(loaded)


def _instantiate(obj: object, name: str) -> ObjectHandler:
    handler = obj() if isinstance(obj, type) else obj
    if not isinstance(handler, ObjectHandler) or not getattr(handler, "kind", ""):
        raise TypeError(f"{name!r} is not a pgmig ObjectHandler with a `kind`")
    return handler


def _reject_duplicates(loaded: Sequence[LoadedHandler]) -> None:
    seen: Dict[str, LoadedHandler] = {}
    for item in loaded:
        kind = item.handler.kind
        if kind in seen:
            raise PluginError(
                f"object type {kind!r} is provided twice: by {seen[kind].provider} "
                f"and by {item.provider}; uninstall one of them"
            )
        seen[kind] = item
