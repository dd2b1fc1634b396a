"""SignalR's JSON hub protocol, server side: framing, handshake and messages. No I/O.

Sources: the ASP.NET Core SignalR hub protocol spec (HubProtocol.md, TransportProtocols.md)
and what ASP.NET Core's `HubConnectionHandler` answers. A connection is a byte stream of
JSON records, each ended by the record separator 0x1E. The client's first record is the
handshake, `{"protocol":"json","version":1}`, answered `{}` (or `{"error": "..."}`, then
the server closes). After it every record is a message whose `type` says what it is.

`ServerProtocol` is the state of one connection: it is fed the bytes of each WebSocket
frame (a record may span frames, a frame may hold many records) and returns what happened.
Bad input never raises: it becomes a `HandshakeRejected` or a `Violation`, after which the
connection must be closed and the protocol ignores anything more.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

RECORD_SEPARATOR = b"\x1e"
PROTOCOL = "json"
VERSION = 1
# ASP.NET Core's HubOptions.MaximumReceiveMessageSize default.
MAX_MESSAGE_BYTES = 32 * 1024


class MessageType(IntEnum):
    """The hub protocol's message types."""

    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7


class _Message(msgspec.Struct, frozen=True, kw_only=True, rename="camel", tag_field="type"):
    pass


class Invocation(_Message, frozen=True, tag=MessageType.INVOCATION.value):
    """Call `target` with `arguments`; with an `invocation_id` the caller wants a Completion."""

    target: str
    arguments: list[Any]
    invocation_id: str | UnsetType | None = UNSET
    stream_ids: list[str] | UnsetType = UNSET


class StreamItem(_Message, frozen=True, tag=MessageType.STREAM_ITEM.value):
    """One item of a stream (the hubs here have no streaming methods)."""

    invocation_id: str
    item: Any = None


class Completion(_Message, frozen=True, tag=MessageType.COMPLETION.value):
    """The end of an invocation: a `result` (null for a void method) or an `error`."""

    invocation_id: str
    result: Any | UnsetType = UNSET
    error: str | UnsetType = UNSET


class StreamInvocation(_Message, frozen=True, tag=MessageType.STREAM_INVOCATION.value):
    """Call a streaming method."""

    invocation_id: str
    target: str
    arguments: list[Any]
    stream_ids: list[str] | UnsetType = UNSET


class CancelInvocation(_Message, frozen=True, tag=MessageType.CANCEL_INVOCATION.value):
    """Stop a stream."""

    invocation_id: str


class Ping(_Message, frozen=True, tag=MessageType.PING.value):
    """Keep-alive, sent both ways; never answered."""


class Close(_Message, frozen=True, tag=MessageType.CLOSE.value):
    """The sender is closing; `error` says why, `allow_reconnect` whether to come back."""

    error: str | UnsetType | None = UNSET
    allow_reconnect: bool | UnsetType = UNSET


Message = Invocation | StreamItem | Completion | StreamInvocation | CancelInvocation | Ping | Close


class HandshakeRequest(msgspec.Struct, frozen=True):
    """The client's first record."""

    protocol: str
    version: int


class _HandshakeResponse(msgspec.Struct, frozen=True):
    error: str | UnsetType = UNSET


# Prices are Decimals in the venue's payloads: JSON numbers, as the gateway sends them.
_ENCODER = msgspec.json.Encoder(decimal_format="number")
_MESSAGE_DECODER = msgspec.json.Decoder(Message)
_HANDSHAKE_DECODER = msgspec.json.Decoder(HandshakeRequest)


def encode(message: Message) -> bytes:
    """One record: the message's JSON and the separator.

    JSON escapes control characters inside strings, so 0x1E never appears inside a record.
    """
    return _ENCODER.encode(message) + RECORD_SEPARATOR


def handshake_response(error: str | None = None) -> bytes:
    """The server's handshake record: `{}` on success, `{"error": ...}` on failure."""
    response = _HandshakeResponse(UNSET if error is None else error)
    return _ENCODER.encode(response) + RECORD_SEPARATOR


class ProtocolError(Exception):
    """Input that breaks the protocol; its text is what the peer is told."""


class RecordReader:
    """Splits a byte stream into records, however it was cut into frames."""

    def __init__(self, max_record_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._max = max_record_bytes
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The records completed by `data`; raises ProtocolError past the size limit.

        The unfinished tail counts against the limit too, so a peer that never sends a
        separator cannot grow the buffer without bound.
        """
        *records, self._pending = (self._pending + data).split(RECORD_SEPARATOR)
        if len(self._pending) > self._max or any(len(r) > self._max for r in records):
            # ASP.NET Core's text for the same limit.
            raise ProtocolError(
                f"The maximum message size of {self._max}B was exceeded. "
                "The message size can be configured in AddHubOptions."
            )
        return [r for r in records if r]


@dataclass(frozen=True, slots=True)
class Handshaken:
    """The handshake succeeded; send `reply` before anything else."""

    reply: bytes


@dataclass(frozen=True, slots=True)
class HandshakeRejected:
    """The handshake failed; send `reply`, then close the connection."""

    reply: bytes


@dataclass(frozen=True, slots=True)
class Violation:
    """The client broke the protocol; send `Close(error=error)`, then close."""

    error: str


Event = Handshaken | HandshakeRejected | Violation | Message


def _handshake(record: bytes) -> Handshaken | HandshakeRejected:
    try:
        request = _HANDSHAKE_DECODER.decode(record)
    except msgspec.MsgspecError:
        return HandshakeRejected(
            handshake_response("An unexpected error occurred during connection handshake.")
        )
    if request.protocol != PROTOCOL:
        return HandshakeRejected(
            handshake_response(f"The protocol '{request.protocol}' is not supported.")
        )
    if request.version != VERSION:
        return HandshakeRejected(
            handshake_response(
                f"The server does not support version {request.version} "
                f"of the '{request.protocol}' protocol."
            )
        )
    return Handshaken(handshake_response())


def _violation(detail: str) -> Violation:
    # ASP.NET Core's close text, with the detail it adds when detailed errors are on.
    return Violation(f"Connection closed with an error. InvalidDataException: {detail}")


class ServerProtocol:
    """The hub protocol state of one server connection."""

    def __init__(self, max_record_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._reader = RecordReader(max_record_bytes)
        self.handshaken = False
        self.failed = False

    def receive(self, data: bytes) -> list[Event]:
        """What the bytes of one frame amount to, in order; nothing once the protocol failed."""
        if self.failed:
            return []
        try:
            records = self._reader.feed(data)
        except ProtocolError as exc:
            self.failed = True
            return [_violation(str(exc))]
        events: list[Event] = []
        for record in records:
            event = self._record(record)
            events.append(event)
            if isinstance(event, HandshakeRejected | Violation):
                self.failed = True
                break
        return events

    def _record(self, record: bytes) -> Event:
        if not self.handshaken:
            answer = _handshake(record)
            self.handshaken = isinstance(answer, Handshaken)
            return answer
        try:
            return _MESSAGE_DECODER.decode(record)
        except msgspec.MsgspecError as exc:
            return _violation(str(exc))
