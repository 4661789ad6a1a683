"""Throwaway databases on the embedded server, for replaying history without touching a real one.

A scratch database is dropped on every way out pgmig controls: an error, a
cancelled task, SIGINT, and SIGTERM (turned into an orderly stop while a
scratch database exists, then exit code 143). A run killed outright
(SIGKILL, a power cut) cannot drop its own, so its name says who made it,
`pgmig_scratch_<host>_<pid>_<start>_<random>` (a hash of the host name, the
process id, the start time in seconds since the epoch, base 36), and every
later run making a scratch database on the same server first reclaims the
abandoned ones (see `abandoned`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import signal
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, List, Optional

from pgmig.db.connect import connection_lost, lost_detail
from pgmig.db.quoting import quote_ident
from pgmig.db.urls import with_database
from pgmig.errors import ConfigError, ConnectionLostError, DatabaseError, Hint
from pgmig.ops.actor import execute

PREFIX = "pgmig_scratch_"
# Another host's scratch database with nobody connected is abandoned after this long (seconds): its maker's
# process cannot be looked at from here, and a live run stays connected to its scratch database but for moments.
GRACE = 3600
_NAME = re.compile(r"^pgmig_scratch_(?P<host>[0-9a-f]{8})_(?P<pid>[0-9]+)_(?P<start>[0-9a-z]+)_[0-9a-f]+$")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while a scratch database existed: it was dropped, and the run stops (exit 143)."""

    exit_code = 128 + signal.SIGTERM


def host_tag() -> str:
    """The first 8 hex digits of the SHA-256 of this host's name: which machine made a scratch database."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def scratch_name(now: Optional[float] = None) -> str:
    """A new scratch database's name: host, process and start time of this run, and a random part."""
    start = int(time.time() if now is None else now)
    return f"{PREFIX}{host_tag()}_{os.getpid()}_{_base36(start)}_{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Maker:
    """Who made a scratch database, read from its name."""

    host: str
    pid: int
    start: int


def maker_of(name: str) -> Optional[Maker]:
    """The run that made scratch database `name`; None for a name of another shape (an older pgmig's)."""
    found = _NAME.match(name)
    if found is None:
        return None
    return Maker(found["host"], int(found["pid"]), int(found["start"], 36))


def abandoned(name: str, sessions: int, now: Optional[float] = None) -> bool:
    """Whether scratch database `name`, with `sessions` connected, was left by a run that is gone.

    Made on this host: its process is no longer alive. Made elsewhere, or
    named by an older pgmig (no maker in the name): nobody is connected and,
    for a name with its start time, it is older than `GRACE`. The scratch
    database of a live run on this host is never abandoned.
    """
    maker = maker_of(name)
    if maker is not None and maker.host == host_tag():
        return not _alive(maker.pid)
    if sessions:
        return False
    if maker is None:
        return True
    return (time.time() if now is None else now) - maker.start > GRACE


SCRATCH_QUERY = """
SELECT d.datname, (SELECT count(*) FROM pg_catalog.pg_stat_activity a WHERE a.datid = d.oid) AS sessions
FROM pg_catalog.pg_database d
WHERE d.datname LIKE 'pgmig\\_scratch\\_%'
"""


async def reclaim(admin: Any) -> List[str]:
    """Drop the abandoned scratch databases of the server behind `admin` (see `abandoned`); their names.

    Best effort: a database that cannot be dropped (another run reclaims it
    at the same moment, a session connected since, no privilege) is left
    for a later run. WITH (FORCE) (PostgreSQL 13+) ends the sessions a
    killed maker left running (a statement it sent goes on until it ends).
    """
    dropped = []
    force = " WITH (FORCE)" if admin.get_server_version().major >= 13 else ""
    for row in await admin.fetch(SCRATCH_QUERY):
        name = row["datname"]
        if not abandoned(name, int(row["sessions"])):
            continue
        # A maker seen by its process gets FORCE; one judged by nobody being connected does not,
        # so a session that connected since makes the drop fail rather than be ended.
        mine = (maker_of(name) or Maker("", 0, 0)).host == host_tag()
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}{force if mine else ''}")
        except Exception:  # noqa: BLE001 - left for a later run, see above
            continue
        dropped.append(name)
    return dropped


@asynccontextmanager
async def scratch_database(data_dir: Path, server_url: Optional[str] = None) -> AsyncIterator[str]:
    """Create an empty database (on `server_url`'s server: dev_url's, else the embedded one) and drop it after.

    Abandoned scratch databases of the server are reclaimed first. The drop
    runs whatever ends the block, cancellation and signals included; raises
    `Terminated` after it when SIGTERM ended the block.
    """
    from pgmig.db.connect import connect

    name = scratch_name()
    if server_url is None:
        from pgmig.db.embedded import embedded_url

        server_url = embedded_url(data_dir)
        admin = await connect(server_url)
        try:
            await reclaim(admin)
            await execute(admin, f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0")
        finally:
            await admin.close()
    else:
        await _create_on_dev_server(server_url, name)
    url = with_database(server_url, name)
    drop = dropper(server_url, name)
    stop = _StopOnTerm()
    try:
        with stop:
            yield url
    except BaseException as exc:
        # The error that ended the block is the one to report: a failed drop is left to `reclaim`.
        await _finish(drop, quiet=True)
        if stop.received:
            raise Terminated() from None
        if isinstance(exc, Exception) and connection_lost(exc):
            raise ConnectionLostError(
                f"lost a database connection while working on scratch database {name} (the server ended "
                f"the session, restarted, or the network dropped it): {lost_detail(exc)}; the scratch "
                "database was dropped and nothing else was changed, so running the command again is safe"
            ) from exc
        raise
    await _finish(drop)
    if stop.received:
        raise Terminated()


async def _create_on_dev_server(server_url: str, name: str) -> None:
    """CREATE DATABASE `name` on `server_url` (dev_url's server), its abandoned scratch databases
    reclaimed first; a server pgmig cannot use is a configuration error naming dev_url.

    Raises DatabaseError (exit 3) when the server cannot be reached or refuses the login, and
    ConfigError (exit 2) when its role may not create databases: CREATE DATABASE needs the
    CREATEDB attribute or a superuser (PostgreSQL docs, "CREATE DATABASE", Notes).
    """
    import asyncpg

    from pgmig.db.connect import connect
    from pgmig.db.urls import redact_url

    advice = Hint("name a server pgmig can reach and create databases on", "dev_url")
    try:
        admin = await connect(server_url)
    except DatabaseError as exc:
        raise DatabaseError(f"the scratch server (dev_url) cannot be used: {exc}", hint=advice) from None
    try:
        await reclaim(admin)
        await admin.execute(f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0")
    except asyncpg.InsufficientPrivilegeError as exc:
        raise ConfigError(
            f"the role of dev_url ({redact_url(server_url)}) may not create databases ({exc}), and pgmig makes "
            "its scratch databases there: give it CREATEDB (ALTER ROLE ... CREATEDB)",
            hint=advice,
        ) from None
    except asyncpg.PostgresError as exc:
        raise DatabaseError(
            f"could not create a scratch database on dev_url's server ({redact_url(server_url)}): "
            f"{exc.__class__.__name__}: {exc}",
            hint=advice,
        ) from None
    finally:
        await admin.close()


def dropper(server_url: str, name: str) -> Callable[[], Awaitable[None]]:
    """What drops scratch database `name` of `server_url`'s server."""

    async def drop() -> None:
        from pgmig.db.connect import connect

        admin = await connect(server_url)
        try:
            force = " WITH (FORCE)" if admin.get_server_version().major >= 13 else ""
            await execute(admin, f"DROP DATABASE IF EXISTS {quote_ident(name)}{force}")
        finally:
            await admin.close()

    return drop


async def _finish(work: Callable[[], Awaitable[None]], quiet: bool = False) -> None:
    """Run `work` to its end even when this task is cancelled meanwhile (SIGINT cancels the main
    task, see asyncio.Runner); the cancellation is raised again after it. `quiet`: its error is dropped."""
    task = asyncio.ensure_future(work())
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})  # unlike awaiting the task, a cancellation here leaves it running
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    if not quiet:
        task.result()
    elif not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


class _StopOnTerm:
    """While inside (the outermost scratch database of the run): SIGTERM cancels the task that made
    it, so its block ends and the database is dropped, instead of the process dying on the spot.

    Only where asyncio can handle signals (a Unix event loop in the main thread); elsewhere nothing changes.
    """

    depth = 0  # scratch databases open in this process: the handler is installed once, by the outermost

    def __init__(self) -> None:
        self.received = False
        self.installed = False
        self.previous: Any = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None

    def __enter__(self) -> "_StopOnTerm":
        _StopOnTerm.depth += 1
        if _StopOnTerm.depth > 1:
            return self
        task = asyncio.current_task()
        if task is None:
            return self
        loop = asyncio.get_running_loop()

        def terminate() -> None:
            if not self.received:  # a second SIGTERM must not cancel the drop itself
                self.received = True
                task.cancel()

        try:
            self.previous = signal.getsignal(signal.SIGTERM)
            loop.add_signal_handler(signal.SIGTERM, terminate)
        except (NotImplementedError, RuntimeError, ValueError):  # not Unix, or not the main thread
            return self
        self.installed, self.loop = True, loop
        return self

    def __exit__(self, *exc: Any) -> None:
        _StopOnTerm.depth -= 1
        if not self.installed or self.loop is None:
            return
        self.loop.remove_signal_handler(signal.SIGTERM)
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def _alive(pid: int) -> bool:
    """Whether process `pid` of this host exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return True  # not a process id: never judged gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process, alive
        return True
    return True


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out
