"""Throwaway databases on the embedded server, for replaying history without touching a real one."""

from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Optional
from urllib.parse import urlsplit, urlunsplit

from pgmig.db.quoting import quote_ident
from pgmig.ops.actor import execute


@asynccontextmanager
async def scratch_database(data_dir: Path, server_url: Optional[str] = None) -> AsyncIterator[str]:
    """Create an empty database (on `server_url`'s server, else the embedded one) and drop it after."""
    from pgmig.db.connect import connect

    if server_url is None:
        from pgmig.db.embedded import embedded_url

        server_url = embedded_url(data_dir)
    name = f"pgmig_scratch_{secrets.token_hex(6)}"
    admin = await connect(server_url)
    try:
        await execute(admin, f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0")
    finally:
        await admin.close()
    parts = urlsplit(server_url)
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        admin = await connect(server_url)
        try:
            await execute(admin, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        finally:
            await admin.close()
