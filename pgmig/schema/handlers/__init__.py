"""pgmig's built-in object kinds. Each registers under `pgmig.object_types` like any plugin."""
