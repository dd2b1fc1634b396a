"""The SignalR JSON hub protocol without sockets: framing, handshake, messages, bad input."""

import itertools

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from simulator.signalr import (
    RECORD_SEPARATOR,
    CancelInvocation,
    Close,
    Completion,
    Handshaken,
    HandshakeRejected,
    Invocation,
    Ping,
    RecordReader,
    ServerProtocol,
    StreamInvocation,
    StreamItem,
    Violation,
    encode,
    handshake_response,
)

HANDSHAKE = b'{"protocol":"json","version":1}\x1e'


def ready() -> ServerProtocol:
    protocol = ServerProtocol()
    assert protocol.receive(HANDSHAKE) == [Handshaken(b"{}\x1e")]
    return protocol


def test_the_handshake_is_answered_with_an_empty_object() -> None:
    protocol = ServerProtocol()
    assert not protocol.handshaken
    assert protocol.receive(HANDSHAKE) == [Handshaken(b"{}\x1e")]
    assert protocol.handshaken


def test_messages_can_follow_the_handshake_in_the_same_frame() -> None:
    events = ServerProtocol().receive(HANDSHAKE + b'{"type":6}\x1e')
    assert events == [Handshaken(b"{}\x1e"), Ping()]


def test_bad_handshakes_are_rejected_with_the_aspnet_texts() -> None:
    cases = {
        b'{"protocol":"messagepack","version":1}': "The protocol 'messagepack' is not supported.",
        b'{"protocol":"json","version":2}': (
            "The server does not support version 2 of the 'json' protocol."
        ),
        b"not json": "An unexpected error occurred during connection handshake.",
        b'{"protocol":"json"}': "An unexpected error occurred during connection handshake.",
    }
    for record, error in cases.items():
        protocol = ServerProtocol()
        reply = handshake_response(error)
        assert protocol.receive(record + RECORD_SEPARATOR) == [HandshakeRejected(reply)]
        assert msgspec.json.decode(reply[:-1]) == {"error": error}
        # After a failure nothing more is read.
        assert protocol.receive(HANDSHAKE) == []
        assert not protocol.handshaken


def test_invocations_with_and_without_an_invocation_id() -> None:
    events = ready().receive(
        b'{"type":1,"target":"SubscribeOrders","arguments":[7]}\x1e'
        b'{"type":1,"invocationId":"1","target":"SubscribeAccounts","arguments":[]}\x1e'
    )
    assert events == [
        Invocation(target="SubscribeOrders", arguments=[7]),
        Invocation(target="SubscribeAccounts", arguments=[], invocation_id="1"),
    ]
    assert isinstance(events[0], Invocation)
    assert events[0].invocation_id is msgspec.UNSET


def test_every_client_message_type_decodes() -> None:
    events = ready().receive(
        b'{"type":2,"invocationId":"s","item":5}\x1e'
        b'{"type":3,"invocationId":"1","result":true}\x1e'
        b'{"type":4,"invocationId":"2","target":"T","arguments":[]}\x1e'
        b'{"type":5,"invocationId":"2"}\x1e'
        b'{"type":6}\x1e'
        b'{"type":7,"error":"bye","allowReconnect":false}\x1e'
    )
    assert events == [
        StreamItem(invocation_id="s", item=5),
        Completion(invocation_id="1", result=True),
        StreamInvocation(invocation_id="2", target="T", arguments=[]),
        CancelInvocation(invocation_id="2"),
        Ping(),
        Close(error="bye", allow_reconnect=False),
    ]


def test_a_record_split_across_frames_is_read_once_whole() -> None:
    protocol = ServerProtocol()
    assert protocol.receive(HANDSHAKE[:10]) == []
    assert protocol.receive(HANDSHAKE[10:-1]) == []
    assert protocol.receive(HANDSHAKE[-1:] + b'{"type"') == [Handshaken(b"{}\x1e")]
    assert protocol.receive(b":6}") == []
    assert protocol.receive(b"\x1e") == [Ping()]


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_cut_of_the_stream_gives_the_same_messages(cuts: list[int]) -> None:
    stream = HANDSHAKE + b"".join(
        encode(Invocation(target=f"T{i}", arguments=[i, "x\x1ey"], invocation_id=str(i)))
        for i in range(5)
    )
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    protocol = ServerProtocol()
    events = [e for a, b in itertools.pairwise(bounds) for e in protocol.receive(stream[a:b])]
    assert events[0] == Handshaken(b"{}\x1e")
    assert [e.target for e in events[1:] if isinstance(e, Invocation)] == [
        f"T{i}" for i in range(5)
    ]
    assert len(events) == 6


def test_malformed_messages_are_violations_and_end_the_protocol() -> None:
    bad = [
        b"{nope",
        b"[1,2]",
        b'{"target":"X","arguments":[]}',  # no type
        b'{"type":99}',
        b'{"type":1,"arguments":[]}',  # no target
        b'{"type":1,"target":"X"}',  # no arguments
        b'{"type":1,"target":"X","arguments":{}}',
        b'{"type":3}',  # completion without invocationId
    ]
    for record in bad:
        protocol = ready()
        events = protocol.receive(record + b'\x1e{"type":6}\x1e')
        assert len(events) == 1, record
        assert isinstance(events[0], Violation)
        assert events[0].error.startswith("Connection closed with an error. InvalidDataException: ")
        assert protocol.receive(b'{"type":6}\x1e') == []


def test_a_record_over_the_size_limit_is_a_violation_even_unfinished() -> None:
    protocol = ServerProtocol(max_record_bytes=64)
    protocol.receive(HANDSHAKE)
    events = protocol.receive(b"x" * 65)
    assert events == [
        Violation(
            "Connection closed with an error. InvalidDataException: The maximum message size "
            "of 64B was exceeded. The message size can be configured in AddHubOptions."
        )
    ]


def test_record_reader_skips_empty_records() -> None:
    reader = RecordReader()
    assert reader.feed(b"\x1e\x1ea\x1e\x1eb") == [b"a"]
    assert reader.feed(b"\x1e") == [b"b"]


def test_server_messages_encode_as_records() -> None:
    assert encode(Ping()) == b'{"type":6}\x1e'
    assert encode(Completion(invocation_id="1", result=None)) == (
        b'{"type":3,"invocationId":"1","result":null}\x1e'
    )
    assert encode(Completion(invocation_id="1", error="no")) == (
        b'{"type":3,"invocationId":"1","error":"no"}\x1e'
    )
    assert encode(Close()) == b'{"type":7}\x1e'
    assert encode(Close(error="e", allow_reconnect=True)) == (
        b'{"type":7,"error":"e","allowReconnect":true}\x1e'
    )
    # A separator inside a string is escaped, so a record never contains one.
    record = encode(Invocation(target="GatewayQuote", arguments=["C", {"s": "a\x1eb"}]))
    assert record.count(RECORD_SEPARATOR) == 1
    assert record == (b'{"type":1,"target":"GatewayQuote","arguments":["C",{"s":"a\\u001eb"}]}\x1e')
