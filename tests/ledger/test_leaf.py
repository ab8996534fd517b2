"""Leaves are the RFC 8785 canonical JSON of exactly six fields, and nothing else parses as a leaf."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.leaf import Leaf
from ledger.merkle import leaf_hash
from ledger.verify import LeafError


def _leaf(**kw: object) -> Leaf:
    args: dict[str, object] = {
        "subject": "DECL-1",
        "event_type": "declaration.filed",
        "event_id": "e1",
        "payload": b'{"a":1}',
        "time": datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "prev_subject_hash": None,
    }
    args.update(kw)
    return Leaf.create(**args)  # type: ignore[arg-type]


def test_canonical_bytes() -> None:
    leaf = _leaf(subject="Tờ khai 1")
    digest = hashlib.sha256(b'{"a":1}').hexdigest()
    expected = (
        '{"event_id":"e1","event_type":"declaration.filed","payload_sha256":"' + digest + '",'
        '"prev_subject_hash":null,"subject":"Tờ khai 1","time":"2025-01-02T03:04:05.000006Z"}'
    ).encode()
    assert leaf.to_bytes() == expected
    assert leaf.hash() == leaf_hash(expected)
    assert Leaf.from_bytes(expected) == leaf


def test_time_is_normalised_to_utc() -> None:
    plus7 = timezone(timedelta(hours=7))
    assert _leaf(time=datetime(2025, 1, 2, 10, 4, 5, 6, tzinfo=plus7)) == _leaf()
    with pytest.raises(ValueError, match="timezone-aware"):
        _leaf(time=datetime(2025, 1, 2))


def test_prev_hash_is_hex() -> None:
    leaf = _leaf(prev_subject_hash=b"\xab" * 32)
    assert leaf.prev_subject_hash == "ab" * 32
    assert leaf.prev_hash_bytes == b"\xab" * 32


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"subject":"x"}',
        # not canonical: whitespace, key order
        _leaf().to_bytes().replace(b",", b", "),
        b'{"subject":"DECL-1",' + _leaf().to_bytes()[1:].replace(b',"subject":"DECL-1"', b""),
    ],
)
def test_non_leaves_are_rejected(data: bytes) -> None:
    with pytest.raises(LeafError):
        Leaf.from_bytes(data, index=3)


def test_extra_field_is_rejected() -> None:
    data = _leaf().to_bytes()[:-1] + b',"zz":1}'
    with pytest.raises(LeafError, match="wrong fields") as err:
        Leaf.from_bytes(data, index=9)
    assert err.value.index == 9


@settings(max_examples=500, deadline=None)
@given(
    subject=st.text(min_size=1),
    event_type=st.text(min_size=1),
    event_id=st.text(min_size=1),
    prev=st.none() | st.binary(min_size=32, max_size=32),
)
def test_fast_encoding_is_rfc8785(subject: str, event_type: str, event_id: str, prev: bytes | None) -> None:
    try:
        leaf = _leaf(subject=subject, event_type=event_type, event_id=event_id, prev_subject_hash=prev)
        fast = leaf.to_bytes()
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8: both encoders refuse them.
        with pytest.raises(rfc8785.CanonicalizationError):
            rfc8785.dumps({"s": subject + event_type + event_id})
        return
    assert fast == rfc8785.dumps(leaf.to_dict())
    assert Leaf.from_bytes(fast) == leaf
