"""Behaviour of the shared state (IState), for MapState and FakeState alike."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zope.interface.verify import verifyObject

from ipfscluster.cid import CID
from ipfscluster.errors import InvalidInput, NotFound, StateCorrupted, StateVersionError
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.interfaces import IState
from ipfscluster.state import MapState
from ipfscluster.testing import strategies
from ipfscluster.testing.fakes import FakeState
from ipfscluster.types import Pin, PinMode, PinType

STATES = [pytest.param(MapState, id="real"), pytest.param(FakeState, id="fake")]
PEERS = [peer_id_from_public_key(bytes([i]) * 32) for i in range(5)]


def cid(i: int) -> CID:
    return CID.v0(i.to_bytes(32, "big"))


def pin(i: int, **kw) -> Pin:
    kw.setdefault("replication_factor_min", -1)
    kw.setdefault("replication_factor_max", -1)
    return Pin(cid(i), **kw)


@pytest.fixture(params=STATES)
def make(request):
    return request.param


def test_provides_interface(make):
    state = make()
    assert verifyObject(IState, state)
    assert state.version == 5


def test_add_get_has_count(make):
    state = make()
    p = pin(1, name="one", allocations=tuple(PEERS[:2]), replication_factor_min=2, replication_factor_max=2)
    assert not state.has(p.cid)
    state.add(p)
    assert state.has(p.cid) and state.count() == 1
    assert state.get(p.cid) == p


def test_add_replaces(make):
    state = make()
    state.add(pin(1))
    state.add(pin(1, name="renamed"))
    assert state.count() == 1
    assert state.get(cid(1)).name == "renamed"


def test_add_rejects_non_pins(make):
    with pytest.raises(InvalidInput):
        make().add({"cid": str(cid(1))})


def test_rm_and_not_found(make):
    state = make()
    state.add(pin(1))
    state.rm(cid(1))
    assert not state.has(cid(1)) and state.count() == 0
    with pytest.raises(NotFound) as info:
        state.rm(cid(1))
    assert info.value.http_status == 404
    with pytest.raises(NotFound, match="Cid is not part of the global state"):
        state.get(cid(1))


def test_list_is_in_binary_cid_order(make):
    state = make()
    cids = [cid(i) for i in (5, 3, 9, 1)] + [CID.v1(0x55, b"\x12\x20" + bytes(32))]
    for c in cids:
        state.add(Pin(c, replication_factor_min=-1, replication_factor_max=-1))
    listed = [p.cid for p in state.list()]
    assert listed == sorted(cids, key=CID.to_bytes)
    assert listed[0].version == 1  # CIDv1 bytes start with 0x01, before CIDv0's 0x12


def test_list_is_a_snapshot_of_the_call_time(make):
    state = make()
    for i in range(10):
        state.add(pin(i))
    listing = state.list()
    first = next(listing)
    state.rm(cid(5))
    state.add(pin(7, name="changed"))
    state.add(pin(100))
    rest = list(listing)
    assert [p.cid for p in [first, *rest]] == [cid(i) for i in range(10)]
    assert rest[6].name == ""  # the value as it was
    assert [p.cid for p in state.list()] == [cid(i) for i in range(10) if i != 5] + [cid(100)]
    assert state.get(cid(7)).name == "changed"


def test_list_filters_by_pin_type(make):
    state = make()
    state.add(pin(1))
    state.add(pin(2, type=PinType.META))
    state.add(pin(3, type=PinType.SHARD, max_depth=1))
    assert [p.cid for p in state.list(PinType.META | PinType.SHARD)] == [cid(2), cid(3)]
    assert [p.cid for p in state.list(PinType.DATA)] == [cid(1)]
    assert len(list(state.list(PinType.ALL))) == 3


def test_snapshot_restore_round_trip(make):
    state = make()
    pins = [
        pin(1),
        pin(2, name="two", mode=PinMode.DIRECT, max_depth=0, timestamp=10**18),
        pin(3, allocations=tuple(PEERS[:3]), replication_factor_min=2, replication_factor_max=3,
            metadata={"k": "v"}, expire_at=2 * 10**18),
    ]
    for p in pins:
        state.add(p)
    out = io.BytesIO()
    assert state.snapshot(out) == 3
    other = make()
    other.add(pin(99))
    assert other.restore(io.BytesIO(out.getvalue())) == 3
    assert list(other.list()) == pins
    assert not other.has(cid(99))


def test_restore_refuses_damaged_snapshot_and_keeps_state(make):
    state = make()
    for i in range(50):
        state.add(pin(i, name=f"pin {i}"))
    out = io.BytesIO()
    state.snapshot(out)
    data = bytearray(out.getvalue())
    data[len(data) // 2] ^= 0x01
    other = make()
    other.add(pin(1000))
    with pytest.raises(StateCorrupted):
        other.restore(io.BytesIO(bytes(data)))
    with pytest.raises(StateCorrupted):
        other.restore(io.BytesIO(out.getvalue()[:-10]))
    assert [p.cid for p in other.list()] == [cid(1000)]


def test_restore_refuses_empty_input(make):
    state = make()
    state.add(pin(1))
    with pytest.raises(StateCorrupted, match="empty"):
        state.restore(io.BytesIO(b""))
    assert state.count() == 1


def test_restore_refuses_unknown_version(make):
    state = make()
    out = io.BytesIO()
    state.snapshot(out)
    data = out.getvalue().replace(b" 5\n", b" 99\n", 1)
    with pytest.raises(StateVersionError) as info:
        make().restore(io.BytesIO(data))
    assert info.value.version == 99


def test_restore_reads_json_export(make):
    state = make()
    doc = '[{"cid": "%s", "name": "x", "replication_factor_min": 1, "replication_factor_max": 1,' \
          ' "allocations": ["%s"]}]' % (cid(4), PEERS[0])
    assert state.restore(io.StringIO(doc)) == 1
    assert state.get(cid(4)).allocations == (PEERS[0],)


@settings(max_examples=40, deadline=None)
@given(pins=st.lists(strategies.pins(), max_size=6, unique_by=lambda p: p.cid))
def test_any_pins_survive_snapshot(pins):
    for make in (MapState, FakeState):
        state = make()
        for p in pins:
            state.add(p)
        out = io.BytesIO()
        state.snapshot(out)
        other = make()
        other.restore(io.BytesIO(out.getvalue()))
        assert list(other.list()) == sorted(pins, key=lambda p: p.cid.to_bytes())
        for p in pins:
            assert other.get(p.cid) == p


def test_state_memory_benchmark_quick():
    """B5's script runs (quick mode) and its figure meets the target."""
    import json
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "state_memory.py")
    out = subprocess.run([sys.executable, script, "--quick"], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["scenario"] == "B5" and result["ok"] is True
    assert {r["shape"] for r in result["results"]} == {"allocated", "everywhere"}
    assert all(0 < r["bytes_per_pin"] <= 500 for r in result["results"])


# --- model-based: MapState against a dict, with listings open across changes ---------------

from hypothesis.stateful import RuleBasedStateMachine, invariant, rule  # noqa: E402

_SMALL_PINS = st.builds(
    lambda i, name, alloc: pin(i, name=name, allocations=tuple(PEERS[:alloc]),
                               replication_factor_min=alloc or -1, replication_factor_max=alloc or -1),
    st.integers(0, 15),
    st.sampled_from(["", "a", "é"]),
    st.integers(0, 3),
)


class StateMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.state = MapState()
        self.model: dict[bytes, Pin] = {}
        self.listings = []  # (iterator, expected remaining pins)

    @rule(p=_SMALL_PINS)
    def add(self, p):
        self.state.add(p)
        self.model[p.cid.to_bytes()] = p

    @rule(i=st.integers(0, 15))
    def rm(self, i):
        key = cid(i).to_bytes()
        if key in self.model:
            self.state.rm(cid(i))
            del self.model[key]
        else:
            with pytest.raises(NotFound):
                self.state.rm(cid(i))

    @rule()
    def open_listing(self):
        expected = [self.model[k] for k in sorted(self.model)]
        self.listings.append((self.state.list(), expected))

    @rule(steps=st.integers(1, 4))
    def advance_listings(self, steps):
        for iterator, expected in self.listings:
            for _ in range(steps):
                if expected:
                    assert next(iterator) == expected.pop(0)

    @rule()
    def snapshot_and_restore(self):
        out = io.BytesIO()
        assert self.state.snapshot(out) == len(self.model)
        self.state = MapState() if len(self.model) % 2 else self.state
        self.state.restore(io.BytesIO(out.getvalue()))

    @invariant()
    def matches_model(self):
        assert self.state.count() == len(self.model)
        assert list(self.state.list()) == [self.model[k] for k in sorted(self.model)]

    def teardown(self):
        for iterator, expected in self.listings:
            assert list(iterator) == expected


TestStateMachine = StateMachine.TestCase
TestStateMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
