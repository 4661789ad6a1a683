"""pgmig's built-in operations, one module per kind. Importing this package registers them."""

from pgmig.ops import column, constraint, data, domain, enum, index, schema, sequence, table  # noqa: F401
