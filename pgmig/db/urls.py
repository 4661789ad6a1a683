"""Database URLs: accept what users paste, hand asyncpg what it needs, never show a password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from pgmig.errors import ConfigError

_SCHEMES = {"postgresql", "postgres"}
_DRIVER_SUFFIX = re.compile(r"^(postgresql|postgres)\+[a-z0-9_]+$")


def normalize_url(url: str) -> str:
    """Return a URL asyncpg accepts.

    SQLAlchemy-style URLs (`postgresql+asyncpg://`, `postgresql+psycopg://`) are
    common in the projects pgmig serves, so the driver suffix is dropped rather
    than rejected.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"database URL {redact(url)!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if _DRIVER_SUFFIX.match(scheme):
        scheme = scheme.split("+", 1)[0]
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"database URL {redact(url)!r} must start with postgresql:// "
            "(for example postgresql://user:password@localhost:5432/dbname)"
        )
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigError(f"database URL {redact(url)!r} has an invalid port") from None
    return urlunsplit(("postgresql",) + tuple(parts[1:]))


def redact(text: str) -> str:
    """Replace the password of any URL inside `text` with `***`."""
    return re.sub(r"(://[^:/@\s]*:)([^@\s]+)@", r"\1***@", text)


def password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def scrub(message: str, url: str | None) -> str:
    """Remove the password of `url` from `message`, wherever a library echoed it."""
    message = redact(message)
    secret = password_of(url) if url else None
    if secret:
        message = message.replace(secret, "***")
    return message
