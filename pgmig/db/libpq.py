"""What a database URL means to psql (libpq), as the arguments asyncpg connects with.

asyncpg reads most of libpq's rules itself (asyncpg/connect_utils.py: PGHOST, PGPORT,
PGUSER, PGPASSWORD, PGDATABASE, PGPASSFILE and `.pgpass`, `sslmode` and the other
query parameters, `passfile`); where it differs from libpq, this module decides first
and hands asyncpg explicit arguments, which win over its own reading:

- a query parameter wins over the authority and the path (`postgresql://app@localhost/db?host=/run/postgresql`
  connects through that socket): libpq stores each in turn, the query last
  (libpq docs, 34.1.1.2 "Connection URIs"); asyncpg keeps the first;
- a `service` (the URL's, else PGSERVICE, which asyncpg 0.30 reads too late to use) is
  looked up in PGSERVICEFILE or `~/.pg_service.conf`, then in `$PGSYSCONFDIR/pg_service.conf`,
  PGSYSCONFDIR unset: in the folder libpq was built with, Debian's and Ubuntu's
  `/etc/postgresql-common` (`SYSTEM_SERVICE_FOLDER`; 34.17 "The Connection Service File"); its values fill what the URL leaves out, before
  the environment does; a service no file defines is an error, as in libpq;
- `.pgpass` (`passfile`, PGPASSFILE, `~/.pgpass`; 34.16 "The Password File") matches a
  Unix-socket connection by its folder, as libpq does, and also by `localhost`, as libpq
  does for its default socket folder and asyncpg for every one; `\\:` and `\\\\` are read
  as escapes. A file that others may read is skipped, as libpq skips it, with one
  `PasswordFileWarning` (libpq prints a WARNING; asyncpg's own UserWarning for the file it
  then reads again is silenced in pgmig.db.connect).

The URL is read with `urllib.parse` once `pgmig.db.urls.normalize_url` has made it
unambiguous (a raw `@` in a password percent-encoded).
"""

from __future__ import annotations

import configparser
import getpass
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from pgmig.errors import ConfigError, PgmigWarning

# The keywords pgmig resolves; every other query parameter is left to asyncpg.
_RESOLVED = ("host", "port", "user", "password", "dbname")
_ALIASES = {"database": "dbname"}


@dataclass
class ConnectArgs:
    """asyncpg.connect's arguments for one URL: `dsn` holds what asyncpg reads itself (sslmode,
    application_name, options, ...), the others are None where asyncpg's own defaults (the
    environment, then its built-in ones) apply."""

    dsn: str
    host: Optional[List[str]] = None
    port: Optional[List[int]] = None
    user: Optional[str] = None
    password: Optional[str] = None
    database: Optional[str] = None
    no_password: str = ""
    """When `password` is None: what the password file said, for the error a server asking for a
    password gets (`""`: no password file, or the password came from elsewhere)."""


class PasswordFileWarning(PgmigWarning):
    """The password file is ignored: others may read it, or it is not a plain file. libpq ignores
    it with a WARNING (34.16 "The Password File": "the permissions on .pgpass must disallow any
    access to world or group"), and so does asyncpg."""


def connect_args(url: str, environ: Optional[Dict[str, str]] = None) -> ConnectArgs:
    """The arguments that connect to what `url` (normalized: `normalize_url`) names for libpq.

    `environ` defaults to os.environ. Raises ConfigError for a service no service file defines
    and for a port that is not a number.
    """
    env = dict(os.environ if environ is None else environ)
    parts = urlsplit(url)
    values = _from_authority(parts.netloc, parts.path, env)
    rest: List[Tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        key = _ALIASES.get(key, key)
        if key in _RESOLVED or key in ("service", "passfile"):
            if value:
                values[key] = value
        else:
            rest.append((key, value))
    service = values.get("service") or env.get("PGSERVICE")
    if service:
        for key, value in _service(service, env).items():
            key = _ALIASES.get(key, key)
            if key in _RESOLVED or key == "passfile":
                values.setdefault(key, value)
            elif not any(name == key for name, _ in rest):
                rest.append((key, value))
    args = ConnectArgs(dsn="postgresql:" + (f"?{urlencode(rest)}" if rest else ""))
    if "host" in values:
        args.host = values["host"].split(",")
    if "port" in values:
        args.port = _ports(values["port"])
    args.user = values.get("user")
    args.database = values.get("dbname")
    args.password = values.get("password") or env.get("PGPASSWORD")
    if args.password is None:
        args.password, args.no_password = _pgpass(values, env)
    return args


def _from_authority(netloc: str, path: str, env: Dict[str, str]) -> Dict[str, str]:
    """user, password, host (comma-separated, decoded), port and dbname of the URL's authority and path."""
    values: Dict[str, str] = {}
    userinfo, at, hostlist = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            values["user"] = unquote(user)
        if colon:
            values["password"] = unquote(password)
    hosts: List[str] = []
    ports: List[str] = []
    for spec in hostlist.split(",") if hostlist else ():
        found = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::(\d*))?", spec)
        host, port = (found.group(1), found.group(2) or "") if found else (spec, "")
        hosts.append(unquote(host.strip("[]")))
        ports.append(port)
    if any(hosts):
        values["host"] = ",".join(hosts)
    if any(ports):
        # libpq: a host without a port takes the default one (PGPORT, else 5432).
        default = env.get("PGPORT") or "5432"
        values["port"] = ",".join(port or default for port in ports)
    database = unquote(path[1:]) if path.startswith("/") else ""
    if database:
        values["dbname"] = database
    return values


def _ports(spec: str) -> List[int]:
    try:
        return [int(port) for port in spec.split(",")]
    except ValueError:
        raise ConfigError(f"invalid port {spec!r} in the database URL or its service: give a number") from None


SYSTEM_SERVICE_FOLDER = Path("/etc/postgresql-common")
"""The system-wide service file's folder when PGSYSCONFDIR is unset. libpq uses the `sysconfdir`
it was compiled with (`pg_config --sysconfdir`); Debian's and Ubuntu's libpq (the psql of
`apt install postgresql-client`) is built with this one. Another build's folder is named with
PGSYSCONFDIR, as for psql."""


def service_files(env: Dict[str, str]) -> List[Path]:
    """Where libpq looks a service up, in order: the user's file (PGSERVICEFILE, else
    `~/.pg_service.conf`), then the system's (`pg_service.conf` in PGSYSCONFDIR, else in
    SYSTEM_SERVICE_FOLDER)."""
    files = [Path(env["PGSERVICEFILE"]) if env.get("PGSERVICEFILE") else Path.home() / ".pg_service.conf"]
    files.append(Path(env.get("PGSYSCONFDIR") or SYSTEM_SERVICE_FOLDER) / "pg_service.conf")
    return files


def _service(name: str, env: Dict[str, str]) -> Dict[str, str]:
    """The keywords of service `name`, from the first file that defines it; ConfigError when none does."""
    searched = service_files(env)
    for path in searched:
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise ConfigError(f"cannot read the service file {path}: {exc}") from None
        if parser.has_section(name):
            return {key.strip(): value.strip() for key, value in parser.items(name)}
    where = ", ".join(str(path) for path in searched)
    unset = [variable for variable in ("PGSERVICEFILE", "PGSYSCONFDIR") if not env.get(variable)]
    other = f"; set {' or '.join(unset)} to look elsewhere" if unset else ""
    raise ConfigError(f'definition of service "{name}" not found (searched {where}{other})')


_WARNED: Set[Path] = set()
"""Password files already said to be ignored: once a process, though every connection reads it."""


def _pgpass(values: Dict[str, str], env: Dict[str, str]) -> Tuple[Optional[str], str]:
    """The password `.pgpass` gives the connection `values` describes (the first host that has
    one: asyncpg takes one password for all), or None and why: which file was ignored, or which
    `host:port:database:user` no line of it matched (`""` when there is no file)."""
    path = Path(values.get("passfile") or env.get("PGPASSFILE") or Path.home() / ".pgpass")
    try:
        info = path.stat()
    except OSError:
        return None, ""
    problem = (
        "is not a plain file"
        if not stat.S_ISREG(info.st_mode)
        else "has group or world access"
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
        else None
    )
    if problem is not None:
        if path not in _WARNED:
            _WARNED.add(path)
            warnings.warn(
                PasswordFileWarning(
                    f"password file {path} {problem}, so it is ignored (as libpq ignores it); "
                    f"make it private: chmod 0600 {path}"
                ),
                stacklevel=2,
            )
        return None, f"the password file {path} is ignored: it {problem}"
    user = values.get("user") or env.get("PGUSER") or getpass.getuser()
    database = values.get("dbname") or env.get("PGDATABASE") or user
    hosts = (values.get("host") or env.get("PGHOST") or "localhost").split(",")
    ports = (values.get("port") or env.get("PGPORT") or "5432").split(",")
    ports = ports if len(ports) == len(hosts) else [ports[0]] * len(hosts)
    entries = _pgpass_entries(path)
    for host, port in zip(hosts, ports):
        names = {host, "localhost"} if host.startswith("/") else {host}
        for entry_host, entry_port, entry_database, entry_user, password in entries:
            if (
                (entry_host == "*" or entry_host in names)
                and entry_port in ("*", port)
                and entry_database in ("*", database)
                and entry_user in ("*", user)
            ):
                return password, ""
    wanted = ", ".join(f"{host}:{port}:{database}:{user}" for host, port in zip(hosts, ports))
    return None, (
        f"no line of the password file {path} matches {wanted} (host:port:database:user; the scratch "
        "databases pgmig makes on dev_url's server have names of their own: a line for them needs * "
        "as its database)"
    )


def _pgpass_entries(path: Path) -> List[Tuple[str, str, str, str, str]]:
    """The `host:port:database:user:password` lines of `path`, `\\:` and `\\\\` read as escapes;
    comments and lines of fewer fields skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    entries: List[Tuple[str, str, str, str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields: List[str] = []
        current, chars = "", iter(line)
        for char in chars:
            if char == "\\":
                current += next(chars, "")
            elif char == ":" and len(fields) < 4:
                fields.append(current)
                current = ""
            else:
                current += char
        fields.append(current)
        if len(fields) == 5:
            entries.append((fields[0], fields[1], fields[2], fields[3], fields[4]))
    return entries
