"""Connecting: the configured URL or the embedded server, errors made readable."""

from __future__ import annotations

import asyncio
import os
import re
import warnings
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator, Callable, Dict, Iterable, List, Optional
from urllib.parse import parse_qs, urlsplit

from pgmig.db.urls import normalize_url, redact_url, remember_password, scrub
from pgmig.errors import ConfigError, DatabaseError


def _quiet_password_file_warnings() -> None:
    """pgmig reads the password file first (pgmig.db.libpq) and says once, as one `warning:` line,
    that it ignores a file others may read; asyncpg, given no password, reads the file again and
    would warn in Python's words at every connection. Set at each connection, not once: a
    `warnings.catch_warnings` block (the CLI's) drops filters added inside it when it ends; adding
    the same filter again replaces it."""
    warnings.filterwarnings(
        "ignore", message=r"password file .* (has group or world access|is not a plain file)", module=r"asyncpg\."
    )


if TYPE_CHECKING:  # pragma: no cover
    import asyncpg

    from pgmig.config.settings import Settings


def resolve_url(settings: "Settings", notice: Optional[Callable[[str], None]] = None) -> str:
    """The URL to use: the configured one, or the embedded server's (announced through `notice`)."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    from pgmig.db.embedded import embedded_url, server_dir

    url = embedded_url(settings.embedded_data_dir)
    if notice is not None:
        notice(
            f"Using the embedded PostgreSQL in {server_dir(settings.embedded_data_dir)} "
            "(set database_url, e.g. PGMIG_DATABASE_URL, to use another server)"
        )
    return url


APPLICATION_NAME = "pgmig"

SESSION_SETTINGS: Dict[str, str] = {
    "standard_conforming_strings": "on",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}
"""What pgmig's SQL and its reading of the catalog rely on, set for every session it opens.

pg_get_expr and pg_get_constraintdef print constants with the session's
settings, and SQLAlchemy compiles for `standard_conforming_strings = on`:
with the setting off (`ALTER DATABASE ... SET`, a role's setting), `'C:\\new'`
in a default would hold a newline, and a database could print a default
otherwise than the scratch database the models were rendered on. So:
backslashes literal in '...' (sql-syntax-lexical); dates, intervals and bytea
printed in the forms every setting reads back alike (ISO, `postgres`, hex:
datatype-datetime, datatype-binary), the input order of dates fixed (MDY,
the built-in default) so that a revision means the same on every server; floats
printed exactly (extra_float_digits > 0, the default since PostgreSQL 12).
Those in `STARTUP_SETTINGS` are sent at connection (asyncpg's server_settings,
a client source, which wins over database and role settings); the others are
SET right after, as PgBouncer refuses startup parameters it does not track
(its default list: client_encoding, DateStyle, TimeZone,
standard_conforming_strings, application_name). `--sql` output starts with
all of them (`session_sql`).
"""

STARTUP_SETTINGS = ("standard_conforming_strings", "DateStyle")


def server_settings(url: str) -> Dict[str, str]:
    """`STARTUP_SETTINGS`, and `application_name = pgmig` so operators can tell pgmig's sessions in
    pg_stat_activity; the `application_name` of `url` (the DSN `pgmig.db.libpq.connect_args` gives
    asyncpg: the URL's or its service's) or PGAPPNAME (which libpq reads and asyncpg does not) win. asyncpg sends these after the URL's own settings: pgmig's win over the URL's."""
    settings = {name: SESSION_SETTINGS[name] for name in STARTUP_SETTINGS}
    if "application_name" not in parse_qs(urlsplit(url).query):
        settings["application_name"] = os.environ.get("PGAPPNAME") or APPLICATION_NAME
    return settings


def session_sql(names: Iterable[str] = SESSION_SETTINGS) -> List[str]:
    """`SET` statements for `SESSION_SETTINGS` (those of `names`): what SQL that pgmig prints (`--sql`)
    relies on, so that psql or any other client runs it with the meaning pgmig's own sessions give it."""
    # The names are pgmig's own constants, written as psql users write them (`SET name = value`);
    # a value other than one word is a string literal.
    return [f"SET {name} = {_setting_value(SESSION_SETTINGS[name])}" for name in names]


def _setting_value(value: str) -> str:
    from pgmig.db.quoting import quote_literal

    return value if re.fullmatch(r"[a-z0-9_]+", value) else quote_literal(value)


_AFTER_STARTUP = "; ".join(session_sql(name for name in SESSION_SETTINGS if name not in STARTUP_SETTINGS))


def no_password_message(where: str, password_file: str) -> str:
    """The error of a server at `where` (a redacted URL) asking for a password pgmig had none for:
    where pgmig looks (libpq's order: the URL, its service, PGPASSWORD, the password file), and
    `password_file`, what the file said (`ConnectArgs.no_password`)."""
    # Named in words: `password=` in a message is hidden as a secret (pgmig.db.urls.redact_text).
    looked = (
        "the URL (the password after its user name, or its password parameter), its service's password, "
        "PGPASSWORD, and the password file (the URL's passfile parameter, PGPASSFILE, else ~/.pgpass)"
    )
    found = f"; {password_file}" if password_file else ""
    return f"the server at {where} asks for a password and none was supplied: pgmig looks in {looked}{found}"


async def connect(url: str, timeout: float = 10.0) -> "asyncpg.Connection":
    """A session on what `url` names for libpq (`pgmig.db.libpq`: its query, service, PG* variables
    and .pgpass), with pgmig's session settings and timeouts (`timeout`: seconds to connect).

    Raises ConfigError (exit 2) for a URL or service that cannot be read, DatabaseError (exit 3)
    when the server cannot be reached or refuses the login; messages show the URL without secrets.
    """
    import asyncpg

    from pgmig.db.libpq import connect_args

    url = normalize_url(url)
    args = connect_args(url)
    remember_password(args.password)
    _quiet_password_file_warnings()
    try:
        conn = await asyncpg.connect(
            args.dsn,
            host=args.host,
            port=args.port,
            user=args.user,
            password=args.password,
            database=args.database,
            timeout=timeout,
            server_settings=server_settings(args.dsn),
        )
    except asyncpg.InvalidPasswordError as exc:
        if args.password is None:
            raise DatabaseError(no_password_message(redact_url(url), args.no_password)) from None
        raise DatabaseError(f"the server at {redact_url(url)} refused the password: {scrub(str(exc), url)}") from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise DatabaseError(f"the server at {redact_url(url)} refused the login: {scrub(str(exc), url)}") from None
    except asyncpg.InvalidCatalogNameError as exc:
        raise DatabaseError(
            f"database does not exist on {redact_url(url)}: {scrub(str(exc), url)} (create it, or fix the URL)"
        ) from None
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"cannot connect to {redact_url(url)}: {scrub(str(exc), url)}") from None
    except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
        reason = scrub(str(exc) or exc.__class__.__name__, url)
        raise DatabaseError(f"cannot reach the database at {redact_url(url)}: {reason}") from None
    except ValueError as exc:  # asyncpg's own URL parsing
        raise ConfigError(f"invalid database URL {redact_url(url)}: {scrub(str(exc), url)}") from None
    try:
        # One round trip: the settings pgmig's SQL relies on, and its own timeouts.
        await conn.execute(f"{_AFTER_STARTUP}; {own_timeouts_sql(conn.get_server_version().major)}")
    except BaseException:
        await conn.close()
        raise
    return conn


OWN_TIMEOUTS = (
    ("statement_timeout", 0),
    ("lock_timeout", 0),
    ("idle_in_transaction_session_timeout", 0),
    ("idle_session_timeout", 14),
    ("transaction_timeout", 17),
)
"""The timeouts pgmig resets to 0 (no limit) in every session it opens, with the major version
that has each: a database's or role's default (`ALTER DATABASE ... SET lock_timeout = '2s'`)
would otherwise apply to pgmig's own waits and bookkeeping: the advisory lock a second
`pgmig up` waits on for as long as the first runs, the catalog reads of a large schema,
a revision's transaction idle while its commit-first steps run on the side connection.
The configured `lock_timeout` and `statement_timeout` are set only around the user's
migration statements (`set_timeouts`, once the run holds its lock). SET once connected,
not sent at startup: an unknown name there is fatal on older servers, and PgBouncer
refuses startup parameters it does not track."""


def own_timeouts_sql(major: int) -> str:
    """`SET name = 0` for each of `OWN_TIMEOUTS` that a server of version `major` has."""
    return "; ".join(f"SET {name} = 0" for name, since in OWN_TIMEOUTS if major >= since)


async def own_timeouts(conn: "asyncpg.Connection") -> None:
    """Back to pgmig's own settings (`OWN_TIMEOUTS`): for its bookkeeping after a revision's
    statements ran with the configured ones. Inside a transaction that is rolled back, a SET is
    undone with it (the configured timeouts are back): only bookkeeping that commits needs it."""
    await conn.execute(own_timeouts_sql(conn.get_server_version().major))


_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|ms|s|min|h|d)?\s*\Z")
_MILLISECONDS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
# lock_timeout and statement_timeout are int settings in milliseconds: at most INT_MAX (guc_tables.c).
MAX_MILLISECONDS = 2**31 - 1


# SQLSTATEs of a session the server ends: class 08 (connection exception) and admin_shutdown,
# crash_shutdown (57P01, 57P02: pg_terminate_backend, a fast shutdown, a crashed backend).
# PostgreSQL docs, Appendix A "PostgreSQL Error Codes".
_SESSION_ENDED = ("57P01", "57P02")


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is a session gone: the server ended it
    (SQLSTATE class 08, 57P01, 57P02), asyncpg found the connection closed, or the socket failed.

    A connection already closed shows as asyncpg's InterfaceError ("the underlying connection is
    closed") or ConnectionDoesNotExistError; a reset socket as ConnectionError (OSError).
    """
    import asyncpg

    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 10:
        state = str(getattr(current, "sqlstate", "") or "")
        if state.startswith("08") or state in _SESSION_ENDED:
            return True
        if isinstance(current, (asyncpg.PostgresConnectionError, ConnectionError)):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "connection is closed" in str(current):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def lost_detail(exc: BaseException) -> str:
    """The first error of `exc`'s chain (what it was raised from, in turn): with a lost connection,
    what asyncpg or the socket said, as `Class: message`."""
    first = exc
    for _ in range(10):
        earlier = first.__cause__ or first.__context__
        if earlier is None:
            break
        first = earlier
    return f"{first.__class__.__name__}: {first}"


def check_duration(value: object) -> str:
    """A timeout as Postgres reads it: milliseconds, or a number with a unit ("500ms", "1.5s",
    "1min"), units as the server spells them (us, ms, s, min, h, d; config-setting "Numeric with
    Unit"); "0" means no limit. The server rounds to whole milliseconds and refuses more than
    2147483647 ms (about 24.8 days): "30d" is refused here as it would be at the first SET.
    Returns the value tidied ("5 s" -> "5s"); raises ValueError saying what is accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a duration such as 500ms, 5s or 1min, not {value!r}")
    found = _DURATION.match(str(value))
    if found is None:
        raise ValueError(
            f"{value!r} is not a duration: use milliseconds (500) or a number with a unit "
            "(us, ms, s, min, h, d), such as 500ms, 5s or 1min; 0 means no limit"
        )
    number, unit = found.group(1), found.group(2) or "ms"
    if round(float(number) * _MILLISECONDS[unit]) > MAX_MILLISECONDS:
        raise ValueError(
            f"{value!r} is longer than PostgreSQL allows for a timeout ({MAX_MILLISECONDS} ms, about 24 days); "
            "use 0 for no limit"
        )
    return number + (found.group(2) or "")


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
