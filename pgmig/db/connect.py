"""Connecting: the configured URL or the embedded server, errors made readable."""

from __future__ import annotations

import asyncio
import os
import re
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator, Callable, Dict, Optional
from urllib.parse import parse_qs, urlsplit

from pgmig.db.urls import normalize_url, redact, scrub
from pgmig.errors import ConfigError, DatabaseError

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg

    from pgmig.config.settings import Settings


def resolve_url(settings: "Settings", notice: Optional[Callable[[str], None]] = None) -> str:
    """The URL to use: the configured one, or the embedded server's (announced through `notice`)."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    from pgmig.db.embedded import embedded_url

    url = embedded_url(settings.embedded_data_dir)
    if notice is not None:
        notice(
            f"Using the embedded PostgreSQL in {settings.embedded_data_dir} "
            "(set database_url, e.g. PGMIG_DATABASE_URL, to use another server)"
        )
    return url


APPLICATION_NAME = "pgmig"


def server_settings(url: str) -> Optional[Dict[str, str]]:
    """`application_name = pgmig`, so operators can tell pgmig's sessions in
    pg_stat_activity; the URL's `application_name` or PGAPPNAME (which libpq
    reads and asyncpg does not) win."""
    if "application_name" in parse_qs(urlsplit(url).query):
        return None
    return {"application_name": os.environ.get("PGAPPNAME") or APPLICATION_NAME}


async def connect(url: str, timeout: float = 10.0) -> "asyncpg.Connection":
    import asyncpg

    url = normalize_url(url)
    try:
        return await asyncpg.connect(url, timeout=timeout, server_settings=server_settings(url))
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


_DURATION = re.compile(r"\s*(\d+)\s*(us|ms|s|min|h|d)?\s*\Z")


def check_duration(value: object) -> str:
    """A timeout as Postgres reads it: an integer of milliseconds or `<n><unit>` ("500ms", "5s",
    "1min"); "0" means no limit. Returns it tidied ("5 s" -> "5s"); raises ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a duration such as 500ms, 5s or 1min, not {value!r}")
    found = _DURATION.match(str(value))
    if found is None:
        raise ValueError(
            f"{value!r} is not a duration: use milliseconds (500) or a number with a unit "
            "(us, ms, s, min, h, d), such as 500ms, 5s or 1min; 0 means no limit"
        )
    return found.group(1) + (found.group(2) or "")


async def set_timeouts(conn: "asyncpg.Connection", *, lock_timeout: str, statement_timeout: str) -> None:
    """Limit, for the rest of the session, how long one statement waits for a lock and runs.

    A migration queued behind a long transaction for an ACCESS EXCLUSIVE lock
    queues every later query on that table behind itself: failing after
    `lock_timeout` instead keeps the application running.
    """
    from pgmig.db.quoting import quote_literal

    await conn.execute(
        f"SET lock_timeout = {quote_literal(check_duration(lock_timeout))}; "
        f"SET statement_timeout = {quote_literal(check_duration(statement_timeout))}"
    )


@asynccontextmanager
async def connection(url: str) -> AsyncIterator["asyncpg.Connection"]:
    conn = await connect(url)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def rolled_back(conn: "asyncpg.Connection") -> AsyncIterator[None]:
    """A transaction (a savepoint inside one) that is always rolled back, whatever happens inside:
    for looking at the database as a change would leave it (normalizing, renames) without keeping it."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield
    finally:
        await transaction.rollback()
