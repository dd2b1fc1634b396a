"""The broker-side idempotency key: the order's ``customTag``, derived from the request ID.

The gateway keeps a tag unique per account (docs/gateway.md §5.8), so the same intent
sent twice cannot make two orders there, and a worker that does not know whether a place
went through finds the order by its tag. A strategy's own tag stays readable at the front.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

DEFAULT_TAG_MAX_LEN: Final = 50
"""The longest ``customTag`` the worker sends by default (``PROJECTX_TAG_MAX_LEN``)."""
_PLAIN_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_SEPARATOR: Final = "."
_DIGEST_LEN: Final = 16


def request_key(request_id: str) -> str:
    """The request ID itself when it is short and plain, else a 16-character digest of it."""
    if _PLAIN_ID.match(request_id):
        return request_id
    digest = hashlib.blake2b(request_id.encode(), digest_size=10).digest()
    return base64.b32encode(digest).decode().lower()[:_DIGEST_LEN]


def tag_room(request_id: str, max_len: int = DEFAULT_TAG_MAX_LEN) -> int:
    """How many characters of a strategy's tag fit beside this request's key."""
    return max(0, max_len - len(_fitting_key(request_id, max_len)) - len(_SEPARATOR))


def _fitting_key(request_id: str, max_len: int) -> str:
    key = request_key(request_id)
    return key if len(key) <= max_len else request_key(f"#{request_id}")


def broker_tag(custom_tag: str | None, request_id: str, max_len: int) -> str:
    """``<strategy tag>.<request key>``, the strategy tag shortened to fit ``max_len``."""
    key = _fitting_key(request_id, max_len)  # a digest always fits: max_len >= 20
    if not custom_tag:
        return key
    room = max_len - len(key) - len(_SEPARATOR)
    if room <= 0:
        return key
    return f"{custom_tag[:room]}{_SEPARATOR}{key}"


def plain_key_of(tag: str | None) -> str | None:
    """The request key at the end of a broker tag, which is the request ID itself when
    that was plain. A digest looks the same, so a caller checks such a request exists."""
    key = (tag or "").rpartition(_SEPARATOR)[2]
    return key if _PLAIN_ID.match(key) else None
