"""Importing a JSON export reuses the encoded value of pins of the same *shape*.

Every field but ``cid`` equal: the state value is the same, so only the CID is
parsed.  The result must be exactly what importing pin by pin gives, and errors
must be the same as without the reuse.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from ipfscluster.cid import CID
from ipfscluster.errors import InvalidField
from ipfscluster.state import MapState, export, import_
from ipfscluster.state import mapstate
from ipfscluster.types import Pin, PinMode


def c(i: int) -> CID:
    return CID.v0(hashlib.sha256(b"shape %d" % i).digest())


def peer(i: int) -> str:
    return str(CID.v0(hashlib.sha256(b"shape peer %d" % i).digest()))


def mixed_pins() -> list[Pin]:
    """Many pins in a few shapes, and some that differ in one field only."""
    pins = [Pin(c(i), replication_factor_min=-1, replication_factor_max=-1) for i in range(50)]
    pins += [Pin(c(100 + i), replication_factor_min=1, replication_factor_max=2, allocations=(peer(i % 3),),
                 name="n%d" % (i % 2), timestamp=1_700_000_000_000_000_000) for i in range(30)]
    pins += [Pin(c(200), replication_factor_min=-1, replication_factor_max=-1, mode=PinMode.DIRECT, max_depth=0,
                 metadata={"k": "v"})]
    pins += [Pin(c(201), replication_factor_min=-1, replication_factor_max=-1, metadata={"k": "w"})]
    return pins


def snapshot_bytes(state: MapState) -> bytes:
    out = io.BytesIO()
    state.snapshot(out)
    return out.getvalue()


def test_import_equals_adding_each_pin_and_importing_without_reuse(monkeypatch):
    pins = mixed_pins()
    by_hand = MapState()
    for pin in pins:
        by_hand.add(pin)
    document = io.StringIO()
    export(by_hand, document)
    imported = import_(io.StringIO(document.getvalue()))
    assert list(imported.list()) == list(by_hand.list())
    monkeypatch.setattr(mapstate, "SHAPE_CACHE_SIZE", 0)
    without_reuse = import_(io.StringIO(document.getvalue()))
    assert snapshot_bytes(imported) == snapshot_bytes(without_reuse)


def test_values_that_differ_only_in_type_are_different_shapes():
    # 1 and true (and 1.0) compare equal in Python: they must not share a value
    lines = [
        {"cid": str(c(1)), "replication_factor_min": 1, "replication_factor_max": 1, "allocations": [peer(1)]},
        {"cid": str(c(2)), "replication_factor_min": True, "replication_factor_max": 1, "allocations": [peer(1)]},
    ]
    with pytest.raises(InvalidField, match=str(c(2))):
        import_(io.StringIO("\n".join(json.dumps(x) for x in lines)))


def test_a_bad_cid_in_a_known_shape_fails_as_without_reuse():
    good = {"cid": str(c(1)), "replication_factor_min": -1, "replication_factor_max": -1}
    bad = dict(good, cid="Qmnot-a-cid")
    with pytest.raises(InvalidField, match="Qmnot-a-cid") as reused:
        import_(io.StringIO(json.dumps([good, bad])))
    with pytest.raises(InvalidField) as alone:
        import_(io.StringIO(json.dumps([bad])))
    assert str(reused.value) == str(alone.value)


def test_the_shape_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(mapstate, "SHAPE_CACHE_SIZE", 2)
    pins = [Pin(c(i), replication_factor_min=-1, replication_factor_max=-1, name="n%d" % (i % 5))
            for i in range(20)]
    document = io.StringIO()
    expected = MapState()
    for pin in pins:
        expected.add(pin)
    export(expected, document)
    assert list(import_(io.StringIO(document.getvalue())).list()) == list(expected.list())
