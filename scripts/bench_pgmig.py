"""What scripts/bench.py calls in pgmig: one place, so the working tree and a baseline checkout run the same code.

`bench.py --baseline REF` runs this module (from the working tree) with an
interpreter whose `pgmig` is REF's, so everything here must work on every
pgmig the benchmark compares: it names only what a diff needs (a model
context, `diff_database`, the handler set, the phase timings, the handlers'
catalog queries), reached through `_api()`. When the package is reorganized,
`_api()` (and `FLOOR_QUERIES`) is what to update, keeping the old locations
as a fallback for baselines from before the change.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence, Tuple

Runner = Callable[[], Any]


@dataclass(frozen=True)
class PgmigApi:
    """The pieces of pgmig a diff is made of, wherever this version keeps them."""

    diff_database: Callable[..., Any]
    model_context: Callable[..., Any]
    timings: Callable[[], Any]
    load_handlers: Callable[[], Any]
    handler_set: Callable[[List[Any]], Any]
    # The CLI pauses the cyclic GC around a diff (earlier versions did it inside diff_database).
    paused_gc: Callable[[], Any]


def _first(candidates: Sequence[Tuple[str, str]]) -> Any:
    """The first `module:attribute` of `candidates` that imports; ImportError naming them all otherwise."""
    for module, name in candidates:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError("pgmig has none of " + ", ".join(f"{m}:{n}" for m, n in candidates))


def _api() -> PgmigApi:
    return PgmigApi(
        # The current layout first, then the flat one of earlier versions (a --baseline may be one).
        diff_database=_first([("pgmig.plan.engine", "diff_database"), ("pgmig.engine", "diff_database")]),
        model_context=_first([("pgmig.plan.engine", "model_context"), ("pgmig.engine", "model_context")]),
        timings=_first([("pgmig.timing", "Timings")]),
        load_handlers=_first([("pgmig.config.discovery", "load_handlers"), ("pgmig.plugins", "load_handlers")]),
        handler_set=_first([("pgmig.config.discovery", "HandlerSet"), ("pgmig.plugins", "HandlerSet")]),
        paused_gc=_first([("pgmig.cli.context", "paused_gc"), ("contextlib", "nullcontext")]),
    )


def _builtin(loaded: Any) -> bool:
    """pgmig's own kinds live in the pgmig package; plugins (pgmig_views, ...) in packages of their own."""
    return type(loaded.handler).__module__.split(".")[0] == "pgmig"


def handlers(with_plugins: bool) -> Any:
    """The HandlerSet of a run: pgmig's built-in kinds, or every installed one (plugins too)."""
    api = _api()
    loaded = api.load_handlers()
    if with_plugins:
        return loaded
    return api.handler_set([item for item in loaded.loaded if _builtin(item)])


def plugin_kinds() -> List[str]:
    """The object kinds installed plugins add to pgmig's own."""
    return [item.handler.kind for item in handlers(True).loaded if not _builtin(item)]


def where() -> str:
    """The folder of the pgmig this process imports (so a baseline run can prove it measured the baseline)."""
    import pgmig

    return str(pgmig.__path__[0])


async def connect(url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(url)


def describe(change: Any) -> str:
    """One line for a change pgmig found, from the fields every version has had."""
    return f"{getattr(change, 'action', '?')} {getattr(change, 'key', change)!r}"[:200]


def diff_runner(url: str, metadata: Any, with_plugins: bool = False) -> Tuple[Runner, List[int], List[str]]:
    """A call running `diff_database` as `pgmig diff` does, and what it fills: (the change count, the first changes).

    The CLI's way: a new connection, the models of the `public` schema, and
    `connect=` given so the catalog is read on two connections sharing a
    snapshot. The call returns pgmig's phase timings (seconds by phase).
    """
    api = _api()
    handler_set = handlers(with_plugins)
    normal_forms = os.path.join(tempfile.mkdtemp(prefix="pgmig-bench-"), "normal-forms.json")
    tables = [t for t in metadata.sorted_tables if (t.schema or "public") == "public"]
    count = [0]
    sample: List[str] = []

    async def once() -> Dict[str, float]:
        conn = await connect(url)
        try:
            timings = api.timings()
            models = api.model_context(tables, [metadata], "public")
            options: Dict[str, Any] = {"timings": timings, "connect": lambda: connect(url)}
            if "normal_forms" in inspect.signature(api.diff_database).parameters:
                # As the CLI does: what the server said of the models' expressions is kept between runs.
                options["normal_forms"] = normal_forms
            with api.paused_gc():
                plan = await api.diff_database(conn, models, handler_set, **options)
            count[0] = len(plan.changes)
            sample[:] = [describe(change) for change in plan.changes[:3]]
            return dict(timings.seconds)
        finally:
            await conn.close()

    return (lambda: asyncio.run(once())), count, sample


def changes(url: str, metadata: Any, with_plugins: bool = False) -> List[str]:
    """The changes pgmig finds between `metadata` and the database at `url` (the first three, described)."""
    run, count, sample = diff_runner(url, metadata, with_plugins)
    run()
    return sample if count[0] else []


# The catalog reads of each built-in kind: (label, the handler module's attribute, its arguments).
FLOOR_QUERIES: Dict[str, List[Tuple[str, str, Tuple[str, ...]]]] = {
    "table": [("tables", "TABLES_QUERY", ("schema", "version_table"))],
    "column": [("columns", "COLUMNS_QUERY", ("schema", "version_table"))],
    "constraint": [("constraints", "CONSTRAINTS_QUERY", ("schema", "version_table"))],
    "index": [("indexes", "INDEXES_QUERY", ("schema", "version_table"))],
    "enum": [("enums", "ENUMS_QUERY", ("schema",)), ("enum columns", "ENUM_COLUMNS_QUERY", ("schema",))],
}


def floor_queries() -> List[Tuple[str, str, Tuple[str, ...]]]:
    """(label, query, argument names) of the catalog reads pgmig's built-in handlers make, from their own modules.

    Raises LookupError when a handler's module no longer has the query it is expected to run.
    """
    found: List[Tuple[str, str, Tuple[str, ...]]] = []
    for item in handlers(False).loaded:
        module = sys.modules[type(item.handler).__module__]
        for label, attribute, names in FLOOR_QUERIES.get(item.handler.kind, []):
            query = getattr(module, attribute, None)
            if not isinstance(query, str):
                raise LookupError(f"{module.__name__}.{attribute} is gone: update FLOOR_QUERIES in {__file__}")
            found.append((label, query, names))
    return found


def floor_runner(url: str) -> Runner:
    """The catalog queries alone, one after the other on one connection: what reading can cost at least."""
    import time

    queries = floor_queries()

    def value(name: str, query: str) -> Any:
        if name == "version_table":
            return "pgmig_revisions"
        # Since several managed schemas, a query takes the schemas as an array (`= ANY($1::text[])`);
        # a baseline from before takes one name.
        return ["public"] if "$1::text[]" in query else "public"

    async def once() -> Dict[str, float]:
        conn = await connect(url)
        parts: Dict[str, float] = {}
        try:
            for name, query, names in queries:
                started = time.perf_counter()
                await conn.fetch(query, *[value(n, query) for n in names])
                parts[name] = time.perf_counter() - started
        finally:
            await conn.close()
        return parts

    return lambda: asyncio.run(once())
