"""ow_core/tags.py: the broker-side idempotency key made from a request ID."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ow_core.tags import broker_tag, request_key

DIGEST = re.compile(r"^[a-z2-7]{16}$")  # 16 characters of lower-case base32


@pytest.mark.parametrize(
    "request_id", ["abc", "req_123-XYZ", "a" * 32, "0f1e2d3c4b5a69788796a5b4c3d2e1f0"]
)
def test_short_plain_request_ids_are_kept_as_they_are(request_id: str) -> None:
    assert request_key(request_id) == request_id


@pytest.mark.parametrize(
    "request_id",
    ["a" * 33, str(uuid.UUID(int=7)), "has space", "dot.ted", "ünïcode", "semi;colon", ""],
)
def test_other_request_ids_become_a_digest(request_id: str) -> None:
    key = request_key(request_id)
    assert DIGEST.match(key), key
    assert request_key(request_id) == key  # deterministic


def test_digests_of_different_ids_differ() -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(2000)]
    assert len({request_key(i) for i in ids}) == len(ids)


def test_strategy_tag_stays_readable_in_front() -> None:
    assert broker_tag("my_strategy", "req-1", 50) == "my_strategy.req-1"


def test_without_a_strategy_tag_the_key_alone() -> None:
    assert broker_tag(None, "req-1", 50) == "req-1"
    assert broker_tag("", "req-1", 50) == "req-1"


def test_a_long_strategy_tag_is_shortened_to_fit() -> None:
    tag = broker_tag("a-very-long-strategy-name-" * 3, "req-1", 30)
    assert tag == "a-very-long-strategy-nam.req-1"  # 30 characters, the key whole
    assert len(tag) == 30


def test_a_plain_id_longer_than_max_len_is_hashed() -> None:
    request_id = "r" * 32
    tag = broker_tag(None, request_id, 20)
    assert DIGEST.match(tag), tag
    # A distinct digest from the one of the ID itself, and stable.
    assert tag == broker_tag(None, request_id, 20)
    assert broker_tag("strat", request_id, 22) == f"strat.{tag}"


def test_no_room_for_the_strategy_tag_keeps_the_key() -> None:
    request_id = "k" * 20
    assert broker_tag("strategy", request_id, 21) == request_id  # "s." would not fit
    assert broker_tag("strategy", request_id, 22) == f"s.{request_id}"


def test_same_inputs_same_tag_different_requests_different_tags() -> None:
    first = broker_tag("strat", str(uuid.UUID(int=1)), 50)
    assert broker_tag("strat", str(uuid.UUID(int=1)), 50) == first
    assert broker_tag("strat", str(uuid.UUID(int=2)), 50) != first


@given(
    custom_tag=st.one_of(st.none(), st.text(min_size=0, max_size=64)),
    request_id=st.text(min_size=1, max_size=128),
    max_len=st.integers(min_value=20, max_value=128),
)
def test_tag_always_fits_and_ends_with_a_key_of_the_request(
    custom_tag: str | None, request_id: str, max_len: int
) -> None:
    tag = broker_tag(custom_tag, request_id, max_len)
    assert 0 < len(tag) <= max_len
    assert tag == broker_tag(custom_tag, request_id, max_len)
    key = request_key(request_id)
    if len(key) > max_len:
        key = request_key(f"#{request_id}")
    assert tag.endswith(key)
    if custom_tag and tag != key:
        prefix = tag[: -len(key) - 1]
        assert custom_tag.startswith(prefix)
        assert prefix
        assert tag[len(prefix)] == "."
