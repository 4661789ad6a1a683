"""Database URLs: accept what users paste, hand asyncpg what it needs, never show a password.

Two functions hide secrets, and every place that shows a URL or a message uses one of them:

- `redact_url(url)` for a URL (or a libpq keyword/value string) on its own: it is cut into its
  parts, and the password of the user info and the value of every password-like parameter
  become `***`;
- `redact_text(text)` for free text that may hold URLs or secrets (error messages, server
  messages, tracebacks, JSON): each URL in it is redacted as above, `password=...` pairs too,
  and every secret pgmig has seen in a URL (`remember_secrets`, called by `normalize_url`) is
  replaced wherever it appears, in the forms a library may echo it (as typed, decoded,
  percent-encoded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Set, Tuple
from urllib.parse import quote, unquote, unquote_plus

from pgmig.errors import ConfigError

_SCHEMES = {"postgresql", "postgres"}
_DRIVER_SUFFIX = re.compile(r"^(postgresql|postgres)\+[a-z0-9_]+$")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")

MASK = "***"

SECRET_KEYWORDS = frozenset({"password", "sslpassword", "oauth_client_secret"})
"""libpq's connection keywords whose value is a secret (libpq docs, 34.1.2 "Parameter Key Words":
`password`, `sslpassword`, and PostgreSQL 18's `oauth_client_secret`)."""

_SECRET_NAME = re.compile(r"pass|pwd|secret|token|credential|api_?key|private", re.IGNORECASE)
"""Other names users and drivers give secrets (passwd, pass, pwd, secret, token, access_token,
api_key, ...): any parameter whose name contains one of these is hidden too."""

_MIN_SCRUB = 3
"""Secrets shorter than this are hidden where a URL or a `key=value` pair shows them, but not
searched for in free text: a one- or two-character string occurs inside ordinary words."""

# One host of a host list as libpq and asyncpg read it: a name, an IPv4 or a bracketed IPv6
# address, and an optional port.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.%A-Za-z]*\]|[^\[\]:,/?#@]*)(?::(\d*))?")

# A libpq keyword/value pair: `keyword = value`, the value single-quoted (backslash escapes
# \' and \\) or a run of non-blank characters (backslash escapes too).
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:[^\s'\\]|\\.)*)", re.DOTALL)

_known: Set[str] = set()


def is_secret_key(name: str) -> bool:
    """Whether a connection parameter named `name` (a query key or DSN keyword) holds a secret."""
    name = unquote_plus(name).strip().lower()
    return name in SECRET_KEYWORDS or _SECRET_NAME.search(name) is not None


@dataclass(frozen=True)
class UrlParts:
    """A URL cut into its parts as typed (nothing decoded): `scheme://userinfo@hosts/path?query`.

    `password` is None when the user info has no `:`; `userinfo` is None when there is no `@`.
    """

    scheme: str
    userinfo: Optional[str]
    hosts: str
    path: str
    query: Optional[str]

    @property
    def user(self) -> Optional[str]:
        return None if self.userinfo is None else self.userinfo.partition(":")[0]

    @property
    def password(self) -> Optional[str]:
        if self.userinfo is None or ":" not in self.userinfo:
            return None
        return self.userinfo.partition(":")[2]


def split_url(url: str, *, generous: bool = True) -> Optional[UrlParts]:
    """Cut `url` into its parts, or None when it has no `scheme://`.

    The user info ends at the last `@` of the authority, so a raw `@` in a password stays in
    the password (`postgresql://u:p@ss@h/db`: user `u`, password `p@ss`, host `h`), as Python's
    urllib reads it. With `generous` (for hiding, not for connecting), a password holding a
    raw `/`, `?` or `#` is found too: the user info then runs to the last `@` before the query,
    or into what would read as a query when no `key=` comes before its `@`. That may take a
    database name containing `@` for part of a password: shown as `***`, never the reverse.
    """
    found = _SCHEME.match(url)
    if found is None:
        return None
    rest = url[found.end() :]
    authority_end = _first_of(rest, "/?#")
    at = rest.rfind("@", 0, authority_end)
    if generous:
        query_start = _first_of(rest, "?")
        head_at = rest.rfind("@", 0, query_start)
        if head_at >= 0 and ":" in rest[:head_at]:
            at = max(at, head_at)
        elif at < 0 and query_start < len(rest) and ":" in rest[:query_start]:
            tail_at = rest.find("@", query_start)
            if tail_at >= 0 and "=" not in rest[query_start:tail_at]:
                at = tail_at
    userinfo = rest[:at] if at >= 0 else None
    after = rest[at + 1 :]
    hosts_end = _first_of(after, "/?#")
    hosts, remainder = after[:hosts_end], after[hosts_end:]
    path, mark, query = remainder.partition("?")
    return UrlParts(found.group(1), userinfo, hosts, path, query if mark else None)


def _first_of(text: str, characters: str) -> int:
    """The index of the first of `characters` in `text`, or len(text)."""
    indexes = [i for i in (text.find(c) for c in characters) if i >= 0]
    return min(indexes, default=len(text))


def _query_pairs(query: str) -> List[Tuple[str, Optional[str]]]:
    """`a=1&password=x&y` as [(piece, secret value or None)]: a piece without `=` that follows a
    secret belongs to it (a raw `&` in a password)."""
    pairs: List[Tuple[str, Optional[str]]] = []
    for piece in query.split("&"):
        key, eq, value = piece.partition("=")
        if not eq and pairs and pairs[-1][1] is not None:
            previous, secret = pairs[-1]
            pairs[-1] = (previous + "&" + piece, f"{secret}&{piece}")
        elif eq and is_secret_key(key):
            pairs.append((piece, value))
        else:
            pairs.append((piece, None))
    return pairs


def _redact_query(query: str) -> str:
    return "&".join(
        piece if secret is None else f"{piece.partition('=')[0]}={MASK}" for piece, secret in _query_pairs(query)
    )


def redact_url(url: str) -> str:
    """`url` with its secrets replaced by `***`: the user info's password and the value of every
    password-like query parameter (`is_secret_key`). A string that is not a URL is read as a
    libpq keyword/value string (`host=h password=x`), whose secret values are hidden the same
    way. Only secrets change; the rest is shown as typed."""
    parts = split_url(url)
    if parts is None:
        return _redact_pairs(url)
    shown = parts.scheme + "://"
    if parts.userinfo is not None:
        shown += parts.userinfo if parts.password is None else f"{parts.user}:{MASK}"
        shown += "@"
    shown += parts.hosts + parts.path
    if parts.query is not None:
        shown += "?" + _redact_query(parts.query)
    return shown


def _redact_pairs(text: str) -> str:
    """Every `secret_keyword = value` pair of `text` with its value hidden."""

    def hide(found: "re.Match[str]") -> str:
        # A value that starts with the mask was hidden by the URL pass: what follows it is the
        # rest of that URL's query (`password=***&host=/sock`), not part of the secret.
        if not is_secret_key(found.group(1)) or found.group(3) == "" or found.group(3).startswith(MASK):
            return found.group(0)
        return found.group(1) + found.group(2) + MASK

    return _PAIR.sub(hide, text)


def _dsn_value(raw: str) -> str:
    """A libpq keyword/value string's value, its quotes and backslash escapes removed."""
    if raw.startswith("'"):
        raw = raw[1:-1] if len(raw) > 1 and raw.endswith("'") else raw[1:]
    return re.sub(r"\\(.)", r"\1", raw, flags=re.DOTALL)


def secrets_of(url: str) -> Set[str]:
    """The secrets a URL (or keyword/value string) holds, in every form a library may echo them:
    as typed, percent-decoded (`+` as a space in a query too) and percent-encoded."""
    raw: Set[str] = set()
    found = _SCHEME.match(url)
    if found is None:
        raw.update(_dsn_value(pair.group(3)) for pair in _PAIR.finditer(url) if is_secret_key(pair.group(1)))
    else:
        for generous in (True, False):
            parts = split_url(url, generous=generous)
            assert parts is not None  # it has a scheme
            if parts.password:
                raw.add(parts.password)
            if parts.query:
                raw.update(secret for _, secret in _query_pairs(parts.query) if secret)
        # What asyncpg itself would take for the password: the netloc cut at its first `@`.
        netloc = url[found.end() :]
        auth, at, _ = netloc[: _first_of(netloc, "/?#")].partition("@")
        if at and ":" in auth:
            raw.add(auth.partition(":")[2])
    return _forms(raw)


def _forms(raw: Iterable[str]) -> Set[str]:
    """Each secret of `raw` as typed, percent-decoded (`+` as a space too) and percent-encoded."""
    forms: Set[str] = set()
    for secret in raw:
        forms.update({secret, unquote(secret), unquote_plus(secret), quote(unquote(secret), safe="")})
    forms.discard(MASK)
    return {form for form in forms if form}


def remember_secrets(url: Optional[str]) -> None:
    """Have `redact_text` hide the secrets of `url` wherever they appear from now on (in this process)."""
    if url:
        _known.update(secrets_of(url))


def remember_password(password: Optional[str]) -> None:
    """Have `redact_text` hide `password` (found outside a URL: a service file, .pgpass, PGPASSWORD)
    wherever it appears from now on, in the forms `secrets_of` lists."""
    if password:
        _known.update(_forms([password]))


_QUOTES = "'\"`"


def _redact_urls_in(text: str) -> str:
    """Each `scheme://...` in `text` through `redact_url`: a URL right after a quote runs to the
    closing quote (a quoted password may hold blanks), any other to the next blank."""
    pieces: List[str] = []
    done = 0
    for found in re.finditer(r"[A-Za-z][A-Za-z0-9+.\-]*://", text):
        start = found.start()
        if start < done or (start > 0 and (text[start - 1].isalnum() or text[start - 1] in "+.-")):
            continue  # inside a URL already redacted, or not the start of the scheme
        quote_char = text[start - 1] if start > 0 and text[start - 1] in _QUOTES else None
        if quote_char is not None and text.find(quote_char, found.end()) >= 0:
            end = text.find(quote_char, found.end())
        else:
            end = _blank_after(text, found.end())
            authority = text[found.end() : end]
            authority = authority[: _first_of(authority, "/?#")]
            if "@" not in authority and not _valid_hosts(authority):
                # `user:pass word@host`: the blank is in the password; the URL runs to the blank
                # after the next `@` of the line.
                at = text.find("@", end, _first_of(text[end:], "\n") + end)
                if at >= 0:
                    end = _blank_after(text, at)
        pieces.append(text[done:start])
        pieces.append(redact_url(text[start:end]))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _blank_after(text: str, start: int) -> int:
    blank = re.compile(r"\s").search(text, start)
    return blank.start() if blank else len(text)


def _valid_hosts(hosts: str) -> bool:
    """Whether `hosts` reads as libpq's host list: `host[:port]`, comma-separated, ports numbers
    up to 65535 (an IPv6 address in brackets)."""
    for host in hosts.split(",") if hosts else ():
        found = _HOST.fullmatch(host)
        if found is None or (found.group(1) and int(found.group(1)) > 65535):
            return False
    return True


def _scrub(text: str, secrets: Set[str]) -> str:
    """Each of `secrets` in `text` replaced by MASK, longest first, where it stands as a whole:
    not inside a longer word (the password `postgres` leaves `postgresql` alone) and not in a
    URL's scheme (`postgres://`), which `_redact_urls_in` reads next."""
    wanted = sorted((secret for secret in secrets if len(secret) >= _MIN_SCRUB), key=len, reverse=True)
    if not wanted:
        return text
    alternatives = "|".join(
        ("(?<![A-Za-z0-9])" if secret[0].isalnum() else "")
        + re.escape(secret)
        + ("(?![A-Za-z0-9])" if secret[-1].isalnum() else "")
        for secret in wanted
    )
    pattern = re.compile(f"(?P<scheme>{_SCHEME.pattern})|{alternatives}")
    return pattern.sub(lambda found: found.group("scheme") or MASK, text)


def redact_text(text: str, secrets: Iterable[str] = (), *, pairs: bool = True, remembered: bool = True) -> str:
    """`text` with its secrets hidden: with `remembered`, every remembered secret
    (`remember_secrets`) and every one of `secrets` (give them as `secrets_of` spells them)
    wherever it appears, every URL in it through `redact_url`, and, with `pairs`, every
    `password=value` pair (any `is_secret_key` name, as in a keyword/value string). Pass
    `pairs=False` for text holding SQL, where `password = ''` is a comparison, not a secret, and
    `remembered=False` for pgmig's own data (names, SQL), where a password that is also a word
    (`public`) must not change what the data says."""
    if remembered:
        text = _scrub(text, set(_known).union(secrets))
    text = _redact_urls_in(text)
    return _redact_pairs(text) if pairs else text


redact = redact_text
"""The name free-text redaction had before `redact_text` (kept for code that imports it)."""


def normalize_url(url: str) -> str:
    """Return a URL asyncpg accepts, and remember its secrets for `redact_text`.

    SQLAlchemy-style URLs (`postgresql+asyncpg://`, `postgresql+psycopg://`) are
    common in the projects pgmig serves, so the driver suffix is dropped rather
    than rejected. A raw `@` in the user info is percent-encoded: the last `@`
    separates the host (as urllib reads it), where asyncpg would cut at the first.
    Host lists (`h1:5432,h2:5433`) are kept, each port checked. Raises ConfigError
    for anything else, showing the URL only through `redact_url`.
    """
    url = url.strip()
    remember_secrets(url)
    parts = split_url(url, generous=False)
    if parts is None:
        # Not shown unless it reads as keyword/value pairs: a string that is not a URL at all may
        # be a password pasted into the wrong place.
        what = (
            f"{redact_url(url)!r} (a libpq keyword/value string, which pgmig does not read)"
            if _PAIR.search(url)
            else "(not shown: it is not a URL)"
        )
        raise ConfigError(
            f"database URL {what} must start with postgresql:// (for example postgresql://user@localhost:5432/dbname)"
        )
    scheme = parts.scheme.lower()
    if _DRIVER_SUFFIX.match(scheme):
        scheme = scheme.split("+", 1)[0]
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"database URL {redact_url(url)!r} must start with postgresql:// "
            "(for example postgresql://user@localhost:5432/dbname)"
        )
    if not _valid_hosts(parts.hosts):
        # Not the piece itself: with a raw `/` in a password, `user:pass` reads as `host:port`.
        raise ConfigError(
            f"database URL {redact_url(url)!r} has an invalid port or host "
            "(percent-encode @ : / ? # in a user name or password)"
        )
    authority = parts.hosts
    if parts.userinfo is not None:
        user, colon, password = parts.userinfo.partition(":")
        authority = user.replace("@", "%40") + colon + password.replace("@", "%40") + "@" + authority
    query = "" if parts.query is None else "?" + parts.query
    return f"postgresql://{authority}{parts.path}{query}"


def with_database(url: str, database: str) -> str:
    """`url` (normalized, see `normalize_url`) naming `database` instead of its own: only the path
    changes, so a URL without a host (`postgresql:///db?host=/tmp`) keeps its `//` and its query."""
    parts = split_url(normalize_url(url), generous=False)
    assert parts is not None  # normalize_url returns a URL
    userinfo = "" if parts.userinfo is None else parts.userinfo + "@"
    # A `dbname` in the query would win over the path (pgmig.db.libpq): it goes.
    kept = [piece for piece in (parts.query or "").split("&") if piece and piece.split("=", 1)[0] not in _DBNAME_KEYS]
    query = "?" + "&".join(kept) if kept else ""
    return f"postgresql://{userinfo}{parts.hosts}/{quote(database, safe='')}{query}"


_DBNAME_KEYS = ("dbname", "database")
"""The query parameters that name the database (libpq's `dbname`, and asyncpg's alias)."""


def password_of(url: str) -> Optional[str]:
    """The password of `url`'s user info as asyncpg will use it (decoded), or None."""
    parts = split_url(url, generous=False)
    return None if parts is None or parts.password is None else unquote(parts.password)


def scrub(message: str, url: Optional[str]) -> str:
    """`message` (what a library said about `url`) with every secret of `url` and every URL hidden."""
    return redact_text(message, secrets_of(url) if url else ())
