from pgmig.testing import database_url, pgmig_server  # noqa: F401  (fixtures)
