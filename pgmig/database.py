"""Connecting: the configured URL or the embedded server, errors made readable."""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator, Callable, Optional

from .errors import ConfigError, DatabaseError
from .urls import normalize_url, redact, scrub

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg

    from .config import Settings


def resolve_url(settings: "Settings", notice: Optional[Callable[[str], None]] = None) -> str:
    """The URL to use: the configured one, or the embedded server's (announced through `notice`)."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    from .embedded import embedded_url

    url = embedded_url(settings.embedded_data_dir)
    if notice is not None:
        notice(
            f"Using the embedded PostgreSQL in {settings.embedded_data_dir} "
            "(set PGMIG_DATABASE_URL or --database-url to use another server)"
        )
    return url


async def connect(url: str, timeout: float = 10.0) -> "asyncpg.Connection":
    import asyncpg

    url = normalize_url(url)
    try:
        return await asyncpg.connect(url, timeout=timeout)
    except asyncpg.InvalidPasswordError as exc:
        raise DatabaseError(f"the server at {redact(url)} refused the password: {scrub(str(exc), url)}") from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise DatabaseError(f"the server at {redact(url)} refused the login: {scrub(str(exc), url)}") from None
    except asyncpg.InvalidCatalogNameError as exc:
        raise DatabaseError(
            f"database does not exist on {redact(url)}: {scrub(str(exc), url)} (create it, or fix the URL)"
        ) from None
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"cannot connect to {redact(url)}: {scrub(str(exc), url)}") from None
    except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
        reason = scrub(str(exc) or exc.__class__.__name__, url)
        raise DatabaseError(f"cannot reach the database at {redact(url)}: {reason}") from None
    except ValueError as exc:  # asyncpg's own URL parsing
        raise ConfigError(f"invalid database URL {redact(url)}: {scrub(str(exc), url)}") from None


@asynccontextmanager
async def connection(url: str) -> AsyncIterator["asyncpg.Connection"]:
    conn = await connect(url)
    try:
        yield conn
    finally:
        await conn.close()


def run(coro):  # type: ignore[no-untyped-def]
    """asyncio.run for the CLI's synchronous edge."""
    if sys.platform == "win32":  # pragma: no cover
        asyncio.set_event_loop_policy(asyncio.WindowsSelectorEventLoopPolicy())  # type: ignore[attr-defined]
    return asyncio.run(coro)
