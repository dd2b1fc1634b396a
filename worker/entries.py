"""Stream entries: decoding one into an intent, or telling why it is not one.

An entry that does not decode, is too large, has a contract version this worker does not
know, or answers to a stream that is not a reply stream is ``Malformed``: whatever can be
read of it (its request ID, its reply stream, its kind) is kept so its producer can still
be answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec

from ow_core.keys import Keys
from producer.contract import (
    DATA_FIELD,
    INTENT_DECODER,
    VERSION_BYTES,
    VERSION_FIELD,
    CancelOrder,
    Intent,
    ModifyOrder,
)

MAX_INTENT_BYTES: Final = 64 * 1024
_KINDS: Final = ("place", "modify", "cancel")


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry as the consumer hands it over."""

    entry_id: str
    fields: dict[bytes, bytes]
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class Malformed:
    """An entry that is not a valid intent, with whatever could be read of it."""

    reason: str
    request_id: str | None
    reply_to: str | None
    kind: str


class _Loose(msgspec.Struct):
    """The few fields worth reading from an entry that failed to decode."""

    request_id: str | None = None
    reply_to: str | None = None
    kind: str | None = None


def decode_entry(fields: dict[bytes, bytes], keys: Keys) -> Intent | Malformed:
    """An entry's intent, or what can be told of why it is not one."""
    data = fields.get(DATA_FIELD, b"")
    version = fields.get(VERSION_FIELD)
    if version != VERSION_BYTES:
        return _malformed(data, keys, f"unsupported contract version {version!r}")
    if len(data) > MAX_INTENT_BYTES:
        return _malformed(data, keys, f"intent too large ({len(data)} bytes > {MAX_INTENT_BYTES})")
    try:
        intent = INTENT_DECODER.decode(data)
    except msgspec.DecodeError as error:
        return _malformed(data, keys, f"not a valid intent: {error}")
    if not keys.is_reply(intent.reply_to):
        return _malformed(data, keys, f"reply_to must be a reply stream under {keys.prefix}:reply:")
    return intent


def readable_fields(fields: dict[bytes, bytes]) -> dict[str, str]:
    """A stream entry's fields as text, for the dead-letter record."""
    return {
        key.decode(errors="replace"): value.decode(errors="replace")[:MAX_INTENT_BYTES]
        for key, value in fields.items()
    }


def _malformed(data: bytes, keys: Keys, reason: str) -> Malformed:
    """What can be read of a bad entry: enough to answer its producer, if anything."""
    loose = _read_loose(data)
    reply_to = loose.reply_to if loose.reply_to and keys.is_reply(loose.reply_to) else None
    kind = loose.kind if loose.kind in _KINDS else "unknown"
    return Malformed(reason, loose.request_id, reply_to, kind)


def _read_loose(data: bytes) -> _Loose:
    try:
        loose = msgspec.json.decode(data[:MAX_INTENT_BYTES], type=_Loose, strict=False)
    except msgspec.DecodeError:
        return _Loose()
    # Only trust a request ID that could have been a valid one.
    if loose.request_id is not None and not 0 < len(loose.request_id) <= 128:
        loose.request_id = None
    return loose


def order_queue(intent: Intent, keys: Keys) -> str | None:
    """Follow-ups of one order run in submission order; other intents have no queue."""
    if isinstance(intent, ModifyOrder | CancelOrder):
        return keys.order_queue(intent.account_id, intent.order_id)
    return None
