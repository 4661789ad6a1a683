"""`pgmig plugins`: what is installed, without importing the models."""

from __future__ import annotations

import typer

from pgmig.cli.context import CliState
from pgmig.cli.output import out, plugins_table, warn


def plugins(ctx: typer.Context) -> None:
    """List discovered model registries and object-type handlers, with the package of each."""
    from pgmig.config.discovery import load_handlers
    from pgmig.config.entrypoints import REGISTRIES_GROUP, find
    from pgmig.config.settings import load_settings

    state: CliState = ctx.obj
    registries = find(REGISTRIES_GROUP)
    # The configured models (flag > PGMIG_MODELS > [tool.pgmig]), named by where they came from.
    given = state.overrides.get("models") or []
    models = given or load_settings(state.overrides).models
    source = "--models" if given else models_source()
    rows = [(r.name, r.value, r.provider) for r in registries] + [(m, m, source) for m in models]
    out.print(plugins_table("Model registries (pgmig.registries)", ("name", "loads", "package"), rows))
    if not rows:
        out.print("  none: pass --models or declare a pgmig.registries entry point", style="dim")
    handlers = load_handlers()
    handler_rows = [
        (
            item.handler.kind,
            f"{type(item.handler).__module__}:{type(item.handler).__qualname__}",
            item.provider,
        )
        for item in handlers.loaded
    ]
    out.print(plugins_table("Object types (pgmig.object_types)", ("kind", "handler", "package"), handler_rows))
    for failure in handlers.failures:
        warn(str(failure))


def models_source() -> str:
    """Where configured models not given with --models come from: PGMIG_MODELS, else [tool.pgmig]."""
    import os

    return "PGMIG_MODELS" if os.environ.get("PGMIG_MODELS") else "[tool.pgmig] models"
