"""Redis URLs: read once and refused with one clear line when they cannot work, and shown
with their password masked."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
_SCHEMES: Final = ("redis", "rediss", "unix")


def mask_url(url: str) -> str:
    """A URL with its password replaced by ``***`` (Redis URLs may carry one)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unreadable URL>"
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_redis_url(url: str) -> str:
    """The URL if Redis can be reached by it in principle; ``ValueError`` saying what is
    wrong otherwise (the message masks the password)."""
    shown = mask_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number or out of range
    except ValueError as error:
        raise ValueError(f"{shown} is not a usable Redis URL ({error})") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"{shown} must start with redis://, rediss:// or unix://")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"{shown}: a unix:// URL names the socket's path")
        return url
    if not parts.hostname:
        raise ValueError(f"{shown} names no host")
    if port == 0:
        raise ValueError(f"{shown}: port must be 1-65535")
    database = parts.path.strip("/")
    if database and not (database.isdigit() and int(database) < 2**31):
        raise ValueError(f"{shown}: the database must be a number, got {database!r}")
    return url
