"""``MapState.list_ndjson`` (``pin ls`` lines made from the stored values) writes
byte for byte what the REST API wrote for each ``Pin`` (``encode_json(pin.to_json())``)."""

from __future__ import annotations

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipfscluster.api.rest.streaming import encode_json
from ipfscluster.cid import CID
from ipfscluster.state import MapState
from ipfscluster.state.pinjson import PinLines, ndjson_chunks
from ipfscluster.testing import strategies
from ipfscluster.testing.fakecluster import fake_peer_id, synthetic_cid
from ipfscluster.types import Pin, PinOptions, PinType


def expected(state: MapState, pin_type=None) -> bytes:
    return b"".join(encode_json(p.to_json()) for p in state.list(pin_type))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(pins=st.lists(strategies.pins(), max_size=8, unique_by=lambda p: p.cid),
       pin_type=st.none() | strategies.pin_types(), lines=st.integers(1, 4))
def test_lines_equal_the_pins_json(pins, pin_type, lines):
    state = MapState()
    for pin in pins:
        state.add(pin)
    chunks = list(state.list_ndjson(pin_type, lines=lines))
    assert b"".join(chunks) == expected(state, pin_type)
    assert all(chunks) and all(c.endswith(b"\n") for c in chunks)
    assert all(c.count(b"\n") <= lines for c in chunks)
    assert b"".join(ndjson_chunks(state.list(pin_type), lines=lines)) == expected(state, pin_type)


def test_shared_heads_and_timestamps_of_every_shape():
    """Many pins share a head (options, allocations) and differ in CID and
    timestamp: cache hits, whole seconds, fractions, zero, before 1970, CIDv0."""
    state = MapState()
    peers = [fake_peer_id(i) for i in range(4)]
    stamps = [0, 1, 999_999_999, 1_000_000_000, 1_500_000_000, -5_000_000_001,
              1_700_000_000_000_000_000, 1_700_000_000_100_000_000, 1_700_000_001_000_000_001]
    for i in range(300):
        cid = synthetic_cid(i) if i % 2 else CID.v0(synthetic_cid(i).multihash[2:])
        options = PinOptions(replication_factor_min=2, replication_factor_max=3, name="n\u00e9" if i % 7 == 0 else "")
        pin = attrs.evolve(Pin.new(cid, options, timestamp=stamps[i % len(stamps)]),
                           allocations=tuple(peers[i % 3:i % 3 + 2]))
        state.add(pin)
    assert b"".join(state.list_ndjson()) == expected(state)
    assert b"".join(state.list_ndjson(PinType.DATA)) == expected(state, PinType.DATA)
    assert list(state.list_ndjson(PinType.META)) == []


def test_a_full_head_cache_starts_again():
    state = MapState()
    for i in range(20):
        state.add(Pin.new(synthetic_cid(i), PinOptions(name=f"pin {i}"), timestamp=10**18 + i))
    lines = PinLines(state._store.peers.peers, cache_size=3)
    out = b"".join(lines.chunks(state._store.view().items()))
    assert out == expected(state)


def test_listing_sees_the_state_as_it_was():
    state = MapState()
    for i in range(10):
        state.add(Pin.new(synthetic_cid(i), timestamp=10**18))
    before = expected(state)
    chunks = state.list_ndjson(lines=3)
    first = next(chunks)
    for i in range(10, 20):
        state.add(Pin.new(synthetic_cid(i), timestamp=10**18))
    state.rm(synthetic_cid(0))
    assert first + b"".join(chunks) == before
