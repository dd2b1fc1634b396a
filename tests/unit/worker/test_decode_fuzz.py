"""Whatever lands on the stream, a worker reads an intent, a rule refusal or a reason why it
is malformed; nothing escapes as an exception (which would leave the entry to crash again)."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ow_core.keys import Keys
from producer import InvalidOrder
from producer.contract import PlaceOrder
from producer.validation import validate_intent
from worker.entries import Malformed, decode_entry

KEYS = Keys()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)


def outcome(entry: dict[bytes, bytes]) -> str:
    """What a worker makes of an entry before it would call the broker."""
    decoded = decode_entry(entry, KEYS)
    if isinstance(decoded, Malformed):
        assert decoded.reply_to is None or KEYS.is_reply(decoded.reply_to)
        return "malformed" if decoded.reason else "malformed without a reason"
    try:
        validate_intent(decoded)
    except InvalidOrder as error:
        return f"refused: {error.code}"
    return "valid"


@settings(max_examples=2000)
@given(
    st.dictionaries(st.binary(max_size=5) | st.sampled_from([b"v", b"d"]), st.binary(max_size=300))
)
def test_any_fields_are_read_as_an_intent_or_a_reason(entry: dict[bytes, bytes]) -> None:
    assert outcome(entry) != "malformed without a reason"


@settings(max_examples=1000)
@given(st.dictionaries(st.sampled_from([*PlaceOrder.__struct_fields__, "kind"]), json_values))
def test_intent_shaped_json_is_read_as_an_intent_or_a_reason(data: dict[str, object]) -> None:
    assert outcome({b"v": b"1", b"d": msgspec.json.encode(data)}) != "malformed without a reason"
