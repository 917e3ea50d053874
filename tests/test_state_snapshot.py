"""The state's storage layers: codec, store views, snapshot format, JSON streaming."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfscluster.cid import CID
from ipfscluster.errors import StateCorrupted, StateVersionError
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.state import MapState
from ipfscluster.state.codec import decode_pin, encode_pin, pin_type_of
from ipfscluster.state.jsonstream import Scanner, iter_array
from ipfscluster.state.snapshot import iter_snapshot, read_snapshot, write_snapshot
from ipfscluster.state.store import PeerTable, PinStore
from ipfscluster.testing import strategies
from ipfscluster.types import Pin, PinType

PEERS = [peer_id_from_public_key(bytes([i]) * 32) for i in range(4)]


def cid(i: int) -> CID:
    return CID.v0(i.to_bytes(32, "big"))


# --- codec ------------------------------------------------------------------------------


def test_common_pin_encodes_to_nothing():
    table = PeerTable()
    pin = Pin(cid(1), replication_factor_min=-1, replication_factor_max=-1)
    assert encode_pin(pin, table) == b""
    assert decode_pin(pin.cid, b"", table.peers) == pin


def test_replicated_pin_is_small_and_interns_peers():
    table = PeerTable()
    pin = Pin(cid(1), replication_factor_min=2, replication_factor_max=2,
              allocations=(PEERS[0], PEERS[1]), timestamp=1_700_000_000_000_000_000)
    data = encode_pin(pin, table)
    assert len(data) <= 20
    assert table.peers == [PEERS[0], PEERS[1]]
    encode_pin(Pin(cid(2), allocations=(PEERS[1], PEERS[2])), table)
    assert table.peers == PEERS[:3]
    assert decode_pin(pin.cid, data, table.peers) == pin


@settings(max_examples=150, deadline=None)
@given(strategies.pins())
def test_codec_round_trip(pin):
    table = PeerTable()
    data = encode_pin(pin, table)
    decoded = decode_pin(pin.cid, data, list(table.peers))
    assert decoded == pin
    assert hash(decoded) == hash(pin)
    assert pin_type_of(data) == pin.type


def test_codec_extreme_times():
    pin = Pin(cid(1), timestamp=-62135596800 * 10**9, expire_at=253402300800 * 10**9 - 1)
    table = PeerTable()
    assert decode_pin(pin.cid, encode_pin(pin, table), table.peers) == pin


@pytest.mark.parametrize("big", [2**64, 10**40, -(2**70)])
def test_codec_integers_of_any_size(big):
    pin = Pin(cid(1), shard_size=abs(big), replication_factor_min=big, replication_factor_max=abs(big),
              max_depth=big)
    table = PeerTable()
    assert decode_pin(pin.cid, encode_pin(pin, table), table.peers) == pin


def test_malformed_value_raises():
    with pytest.raises((ValueError, IndexError, KeyError)):
        decode_pin(cid(1), b"\x63", [])
    with pytest.raises((ValueError, IndexError, KeyError)):
        decode_pin(cid(1), b"\x03\x05ab", [])
    with pytest.raises(ValueError, match="truncated"):
        decode_pin(cid(1), b"\x0f\x08\x01", [])


# --- store views --------------------------------------------------------------------------


def test_view_survives_puts_deletes_and_replace():
    store = PinStore()
    for i in range(5):
        store.put(bytes([i]), b"v%d" % i)
    view = store.view()
    items = view.items()
    assert next(items) == (b"\x00", b"v0")
    store.put(b"\x01", b"changed")
    store.delete(b"\x02")
    store.put(b"\x09", b"new")
    store.replace({b"\x03": b"other"}, PeerTable())
    assert list(items) == [(bytes([i]), b"v%d" % i) for i in range(1, 5)]
    assert not store._views  # a finished view stops tracking
    assert list(store.view().items()) == [(b"\x03", b"other")]


def test_views_are_released_when_dropped():
    store = PinStore()
    store.put(b"a", b"")
    view = store.view()
    assert len(store._views) == 1
    del view
    assert len(store._views) == 0


def test_delete_absent_key():
    store = PinStore()
    assert store.delete(b"x") is False


# --- snapshot format -------------------------------------------------------------------------


def _snapshot(items, peers=()):
    out = io.BytesIO()
    assert write_snapshot(items, list(peers), out) == len(items)
    return out.getvalue()


def test_snapshot_layout():
    data = _snapshot([(b"\x01a", b""), (b"\x01b", b"xy")], ["p"])
    body = b"\x01\x01p" + b"\x02\x01a\x00" + b"\x02\x01b\x02xy" + b"\x00\x02"
    assert data == b"ipfscluster-state 5\n" + body + hashlib.sha256(body).digest()


class Trickle(io.RawIOBase):
    """A stream that returns at most 7 bytes per read."""

    def __init__(self, data):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def read(self, n=-1):
        return self._data.read(7 if n is None or n < 0 else min(n, 7))


def test_snapshot_read_in_tiny_reads():
    items = [(i.to_bytes(3, "big"), b"x" * (i % 200)) for i in range(3000)]
    data = _snapshot(items, PEERS)
    values, peers = read_snapshot(Trickle(data))
    assert list(values.items()) == items and peers == PEERS


def test_state_restores_from_tiny_reads():
    state = MapState()
    for i in range(300):
        state.add(Pin(cid(i), replication_factor_min=1, replication_factor_max=1, allocations=(PEERS[i % 4],)))
    out = io.BytesIO()
    state.snapshot(out)
    other = MapState()
    assert other.restore(Trickle(out.getvalue())) == 300
    assert list(other.list()) == list(state.list())


def test_snapshot_chunks_are_bounded():
    items = [(i.to_bytes(4, "big"), b"y" * 40) for i in range(20000)]
    sizes = [len(chunk) for chunk in iter_snapshot(iter(items), [])]
    assert len(sizes) > 10 and max(sizes) <= (1 << 16) + 200


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:-1], "truncated"),
        (lambda d: d[:30], "truncated"),
        (lambda d: d + b"\x00", "after its checksum"),
        (lambda d: d[:-32] + bytes(32), "checksum"),
        (lambda d: b"ipfscluster-state x\n" + d[20:], "bad version"),
        (lambda d: b"something else", "header"),
        (lambda d: b"", "empty"),
    ],
)
def test_snapshot_damage_is_detected(mutate, message):
    data = _snapshot([(b"\x01a", b""), (b"\x01b", b"xy")], ["p"])
    with pytest.raises(StateCorrupted, match=message):
        read_snapshot(io.BytesIO(mutate(data)))


def test_snapshot_count_and_order_are_checked():
    def forged(body):
        return b"ipfscluster-state 5\n" + body + hashlib.sha256(body).digest()

    with pytest.raises(StateCorrupted, match="says 3 pins"):
        read_snapshot(io.BytesIO(forged(b"\x00\x01a\x00\x00\x03")))
    with pytest.raises(StateCorrupted, match="CID order"):
        read_snapshot(io.BytesIO(forged(b"\x00\x01b\x00\x01a\x00\x00\x02")))


def test_snapshot_newer_version_says_upgrade():
    data = _snapshot([]).replace(b" 5\n", b" 6\n")
    with pytest.raises(StateVersionError, match="upgrade ipfscluster"):
        read_snapshot(io.BytesIO(data))


def test_state_snapshot_chunks_ignore_later_changes():
    state = MapState()
    for i in range(100):
        state.add(Pin(cid(i), replication_factor_min=-1, replication_factor_max=-1))
    chunks = state.snapshot_chunks()
    first = next(chunks)
    state.rm(cid(0))
    state.add(Pin(cid(500), allocations=(PEERS[3],), replication_factor_min=1, replication_factor_max=1))
    data = first + b"".join(chunks)
    restored = MapState()
    assert restored.restore(io.BytesIO(data)) == 100
    assert [p.cid for p in restored.list()] == [cid(i) for i in range(100)]


# --- JSON streaming -------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                          max_leaves=8), max_size=20),
    st.integers(min_value=1, max_value=16),
)
def test_iter_array_matches_json_loads(values, chunk):
    import json

    doc = json.dumps(values, ensure_ascii=False)
    scanner = Scanner(io.BytesIO(doc.encode("utf-8")), chunk_size=chunk)
    assert list(scanner.elements()) == values


def test_iter_array_rejects_trailing_data():
    with pytest.raises(ValueError, match="after the array"):
        list(iter_array(io.StringIO("[1] 2")))


def test_scanner_numbers_split_across_chunks():
    scanner = Scanner(io.StringIO('{"Version": 12345, "x": [1.5e3]}'), chunk_size=1)
    assert [(key, scanner.value()) for key in scanner.members()] == [("Version", 12345), ("x", [1500.0])]
