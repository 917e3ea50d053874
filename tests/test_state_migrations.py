"""State versions: every historical format upgrades to the current one (reference §10.5).

``tests/fixtures/state/`` holds one file per version: upstream's JSON backups of
versions 1-4 (``{"PinMap": …, "Version": N}``), a 0.3.5 ``state export`` (v4 array),
and this project's version 5 (binary snapshot and JSON export).  Each is restored
into a fresh state and compared with the pins it must become.
"""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest

from ipfscluster.cid import CID
from ipfscluster.errors import InvalidInput, InvalidStateImport, StateCorrupted, StateVersionError
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.state import VERSION, MapState, export, import_, migrate, read_pins
from ipfscluster.state.migrations import MIGRATIONS, entry_version
from ipfscluster.testing.fakes import FakeState
from ipfscluster.types import Pin, PinMode, PinType

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "state")


def c(i: int) -> CID:
    return CID.v0(hashlib.sha256(b"cid%d" % i).digest())


def p(i: int) -> str:
    return str(CID.v0(hashlib.sha256(b"peer%d" % i).digest()))


def everywhere(i: int, **kw) -> Pin:
    return Pin(c(i), replication_factor_min=-1, replication_factor_max=-1, **kw)


def v5_pins() -> list[Pin]:
    """The pins of the version-5 fixtures (one of each feature)."""
    return sorted(
        [
            everywhere(1),
            Pin(c(2), replication_factor_min=2, replication_factor_max=3, allocations=(p(0), p(1)),
                name="two of three", timestamp=1_700_000_000_123_456_789),
            everywhere(3, mode=PinMode.DIRECT, max_depth=0, metadata={"a": "1", "b": "ü"}),
            Pin(c(4), replication_factor_min=1, replication_factor_max=1, allocations=(p(2),),
                user_allocations=(p(2), p(0)), expire_at=1_800_000_000_000_000_000, shard_size=1024,
                type=PinType.SHARD, max_depth=1, reference=c(5), pin_update=c(6),
                origins=(Multiaddr.parse("/ip4/127.0.0.1/tcp/4001/p2p/" + p(1)),)),
        ],
        key=lambda pin: pin.cid.to_bytes(),
    )


EXPECTED = {
    "v1.json": [everywhere(1), everywhere(2)],
    "v2.json": [
        Pin(c(1), replication_factor_min=2, replication_factor_max=2, allocations=(p(0), p(1))),
        everywhere(2),
        everywhere(3),
        Pin(c(4), name="named in 0.3.1", replication_factor_min=1, replication_factor_max=1,
            allocations=(p(2),)),
    ],
    "v3.json": [
        Pin(c(1), replication_factor_min=2, replication_factor_max=3, allocations=(p(0), p(1))),
        everywhere(2, name="everywhere"),
    ],
    "v4.json": [
        Pin(c(1), name="tree", replication_factor_min=1, replication_factor_max=2, allocations=(p(0),)),
        everywhere(2, name="block", mode=PinMode.DIRECT, max_depth=0),
    ],
    "v5.snapshot": v5_pins(),
    "v5-export.json": v5_pins(),
}
EXPECTED["v4-export.json"] = EXPECTED["v4.json"]


def by_cid(pins):
    return sorted(pins, key=lambda pin: pin.cid.to_bytes())


# the fake keeps its own snapshot format, so it only reads the JSON fixtures
@pytest.mark.parametrize(
    "fixture, make",
    [(name, MapState) for name in sorted(EXPECTED)]
    + [(name, FakeState) for name in sorted(EXPECTED) if name.endswith(".json")],
)
def test_fixture_upgrades_to_current_version(fixture, make):
    state = make()
    with open(os.path.join(FIXTURES, fixture), "rb") as f:
        assert state.restore(f) == len(EXPECTED[fixture])
    assert list(state.list()) == by_cid(EXPECTED[fixture])
    # ... and is written back in the current version, which reads back the same
    out = io.BytesIO()
    state.snapshot(out)
    again = make()
    again.restore(io.BytesIO(out.getvalue()))
    assert list(again.list()) == by_cid(EXPECTED[fixture])


def test_current_snapshot_header_names_the_version():
    out = io.BytesIO()
    MapState().snapshot(out)
    assert out.getvalue().startswith(b"ipfscluster-state %d\n" % VERSION)
    with open(os.path.join(FIXTURES, "v%d.snapshot" % VERSION), "rb") as f:
        assert f.readline() == b"ipfscluster-state 5\n"


def test_every_version_has_a_fixture_and_a_migration():
    names = os.listdir(FIXTURES)
    for version in range(1, VERSION + 1):
        assert any(n.startswith("v%d." % version) for n in names), version
    assert sorted(MIGRATIONS) == list(range(1, VERSION))


@pytest.mark.parametrize(
    "version, entry, expected",
    [
        (1, {"cid": "X"}, {"cid": "X", "allocations": [], "replication_factor_min": -1,
                           "replication_factor_max": -1, "mode": "recursive", "max_depth": -1,
                           "type": "pin"}),
        (2, {"cid": "X", "allocations": ["P"], "replication_factor": 2, "name": "n"},
         {"cid": "X", "allocations": ["P"], "name": "n", "replication_factor_min": 2,
          "replication_factor_max": 2, "mode": "recursive", "max_depth": -1, "type": "pin"}),
        (2, {"cid": "X", "replication_factor": 0, "everywhere": True},
         {"cid": "X", "replication_factor_min": -1, "replication_factor_max": -1,
          "mode": "recursive", "max_depth": -1, "type": "pin"}),
        (3, {"cid": "X", "replication_factor_min": 1, "replication_factor_max": 4},
         {"cid": "X", "replication_factor_min": 1, "replication_factor_max": 4,
          "mode": "recursive", "max_depth": -1, "type": "pin"}),
        (4, {"cid": "X", "recursive": False},
         {"cid": "X", "mode": "direct", "max_depth": 0, "type": "pin"}),
        (5, {"cid": "X", "anything": 1}, {"cid": "X", "anything": 1}),
    ],
)
def test_migrate_steps(version, entry, expected):
    assert list(migrate(version, iter([entry]))) == [expected]


@pytest.mark.parametrize("version", [0, 6, 99])
def test_migrate_unknown_version(version):
    with pytest.raises(StateVersionError) as info:
        list(migrate(version, []))
    assert info.value.version == version


def test_migrate_is_lazy():
    def entries():
        yield {"cid": "A"}
        raise AssertionError("read too far")

    assert next(migrate(1, entries()))["cid"] == "A"


@pytest.mark.parametrize(
    "entry, version",
    [
        ({"cid": "X"}, 1),
        ({"cid": "X", "replication_factor": 1}, 2),
        ({"cid": "X", "everywhere": True}, 2),
        ({"cid": "X", "replication_factor_min": 1, "replication_factor_max": 1}, 3),
        ({"cid": "X", "recursive": True}, 4),
        ({"cid": "X", "replication_factor_min": 1, "mode": "direct"}, 5),
        ({"cid": "X", "type": "pin"}, 5),
    ],
)
def test_export_entry_version(entry, version):
    assert entry_version(entry) == version


def test_export_import_round_trip_text_and_binary():
    state = MapState()
    for pin in v5_pins():
        state.add(pin)
    text = io.StringIO()
    assert export(state, text) == 4
    doc = json.loads(text.getvalue())
    assert [e["cid"] for e in doc] == [str(pin.cid) for pin in v5_pins()]
    assert doc[0] == v5_pins()[0].to_json()
    binary = io.BytesIO()
    export(state, binary)
    assert binary.getvalue().decode() == text.getvalue()
    assert list(import_(io.BytesIO(binary.getvalue())).list()) == v5_pins()


def test_export_of_empty_state():
    out = io.StringIO()
    assert export(MapState(), out) == 0
    assert json.loads(out.getvalue()) == []
    assert import_(io.StringIO(out.getvalue())).count() == 0


def test_import_ndjson():
    lines = "".join(json.dumps(pin.to_json()) + "\n" for pin in v5_pins())
    assert list(import_(io.StringIO(lines)).list()) == v5_pins()


def test_import_replication_zero_means_everywhere():
    doc = json.dumps([{"cid": str(c(1))}, {"cid": str(c(2)), "replication_factor_min": 0,
                                            "replication_factor_max": 0, "type": "pin"}])
    assert list(import_(io.StringIO(doc)).list()) == by_cid([everywhere(1), everywhere(2)])


def test_backup_with_version_last_from_unseekable_stream():
    class Pipe(io.RawIOBase):
        def __init__(self, data):
            self._data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self._data.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    with open(os.path.join(FIXTURES, "v1.json"), "rb") as f:
        data = f.read()
    with pytest.raises(InvalidStateImport, match="Version after the PinMap"):
        import_(Pipe(data))
    # with the version first, a pipe is fine
    with open(os.path.join(FIXTURES, "v4.json"), "rb") as f:
        assert import_(Pipe(f.read())).count() == 2


@pytest.mark.parametrize(
    "doc, error",
    [
        ("not json", InvalidStateImport),
        ('{"PinMap": {}}', InvalidStateImport),
        ('{"PinMap": {"x": 3}, "Version": 2}', InvalidStateImport),
        ('[{"cid": "Qmnot-a-cid"}]', InvalidInput),
        ("[1, 2]", InvalidStateImport),
        ('[{"cid": "%s"}' % c(1), InvalidStateImport),
        ('{"PinMap": {}, "Version": 7}', StateVersionError),
    ],
)
def test_import_errors(doc, error):
    state = MapState()
    state.add(everywhere(9))
    with pytest.raises(error):
        state.restore(io.StringIO(doc))
    assert list(state.list()) == [everywhere(9)]


def test_import_empty_file():
    with pytest.raises(StateCorrupted, match="empty"):
        import_(io.BytesIO(b""))
    assert import_(io.StringIO("[]")).count() == 0


def test_read_pins_streams_big_backup_in_small_chunks():
    pinmap = {str(c(i)): {"cid": str(c(i)), "allocations": [], "replication_factor": -1}
              for i in range(3000)}
    doc = json.dumps({"Version": 2, "PinMap": pinmap})
    pins = read_pins(io.StringIO(doc))
    assert next(pins) == everywhere(0)
    assert sum(1 for _ in pins) == 2999
