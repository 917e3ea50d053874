"""Values and their JSON: round trips, upstream wire examples, parsing errors."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfscluster import errors
from ipfscluster import types as t
from ipfscluster.cid import CID
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing import strategies as s

CID0 = "QmbrCtydGyPeHiLURSPMqrvE5mCgMCwFYq3UD4XLCeAYw6"
CID1 = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
# peer IDs as they appear in upstream's own tests (legacy sha2-256 and Ed25519 forms)
P1 = "QmXZrtE5jQwXNqCJMfHUTQkvhQ4ZAnqMnmzFMJfLewuabc"
P2 = "QmUZ13osndQ5uL4tPWHXe3iBgBgq9gfewcBMSCAuMBsDJ6"
P3 = "12D3KooWKewdAMAU3WjYHm8qkAJc5eW6KHbHWNigWraXXtE1UCng"
MA = f"/ip4/1.2.3.4/tcp/1234/p2p/{P3}"
NOW = 1_714_557_600 * 10**9  # 2024-05-01T10:00:00Z

# every value type and the strategy drawing it
ROUND_TRIPS = [
    (getattr(t, cls), getattr(s, strategy))
    for cls, strategy in (
        pair.split(":")
        for pair in """Pin:pins PinOptions:pin_options PinInfoShort:pin_info_shorts
        PinInfo:pin_infos GlobalPinInfo:global_pin_infos IPFSID:ipfs_ids ID:ids
        Version:versions Metric:metrics Alert:alerts ConnectGraph:connect_graphs
        AddedOutput:added_outputs RepoStat:repo_stats""".split()
    )
]


def _wire(doc):
    """What a client receives: the JSON text decoded again."""
    return json.loads(json.dumps(doc))


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("cls,strategy", ROUND_TRIPS, ids=lambda x: getattr(x, "__name__", ""))
def test_json_round_trip(cls, strategy):
    @settings(max_examples=40, deadline=None)
    @given(strategy())
    def check(value):
        doc = value.to_json()
        assert type(doc) is dict
        back = cls.from_json(_wire(doc))
        assert back == value
        assert hash(back) == hash(value)
        assert back.to_json() == doc

    check()


@settings(max_examples=60, deadline=None)
@given(s.pin_options())
def test_pin_options_query_round_trip(options):
    query = options.to_query()
    assert all(type(k) is str and type(v) is str for k, v in query.items())
    assert t.PinOptions.from_query(query, now_ns=0) == options


@settings(max_examples=200, deadline=None)
@given(s.times())
def test_time_text_round_trip(ns):
    text = t.format_time(ns)
    assert t.parse_time(text) == ns
    assert text.endswith("Z")


@settings(max_examples=60, deadline=None)
@given(s.tracker_filters())
def test_tracker_status_names_round_trip(status):
    assert t.TrackerStatus.from_json(status.to_json()) == status
    assert t.TrackerStatus.parse_filter(status.to_json()) == status


@given(s.ipfs_pin_statuses())
def test_ipfs_pin_status_round_trip(status):
    assert t.IPFSPinStatus.from_json(status.to_json()) is status


# --- upstream wire examples (shapes from upstream api/types.go struct tags) ------------


def _golden(cls, doc):
    value = cls.from_json(doc)
    out = value.to_json()
    assert out == doc
    assert list(out) == list(doc), "keys in upstream's order"
    assert json.loads(json.dumps(out)) == doc
    return value


def test_golden_pin_as_listed_from_the_state():
    doc = {
        "replication_factor_min": -1,
        "replication_factor_max": -1,
        "name": "",
        "mode": "recursive",
        "shard_size": 0,
        "user_allocations": None,
        "expire_at": "0001-01-01T00:00:00Z",
        "metadata": None,
        "pin_update": None,
        "origins": [],
        "cid": CID0,
        "type": "pin",
        "allocations": [],
        "max_depth": -1,
        "reference": None,
        "timestamp": "2024-05-01T10:00:00Z",
    }
    pin = _golden(t.Pin, doc)
    assert pin.cid == CID.parse(CID0)
    assert pin.timestamp == NOW
    assert pin.expire_at == 0 and pin.is_everywhere
    assert pin.mode is t.PinMode.RECURSIVE and pin.type is t.PinType.DATA


def test_golden_pin_with_every_option():
    doc = {
        "replication_factor_min": 2,
        "replication_factor_max": 3,
        "name": "abc",
        "mode": "direct",
        "shard_size": 33,
        "user_allocations": [P1, P2],
        "expire_at": "2024-05-01T22:00:00.123456789Z",
        "metadata": {"hello": "bye", "hello2": "bye2"},
        "pin_update": CID1,
        "origins": [MA],
        "cid": CID1,
        "type": "shard-pin",
        "allocations": [P1, P3],
        "max_depth": 0,
        "reference": CID0,
        "timestamp": "2024-05-01T10:00:00.5Z",
    }
    pin = _golden(t.Pin, doc)
    assert pin.expire_at == NOW + 12 * 3600 * 10**9 + 123456789
    assert pin.timestamp == NOW + 500_000_000
    assert pin.origins == (Multiaddr.parse(MA),)
    assert pin.metadata == {"hello": "bye", "hello2": "bye2"}
    assert pin.options.user_allocations == (P1, P2)


def test_pin_from_older_export_forms():
    """``state export`` files of older upstream versions: ``{"/": cid}`` and numeric type."""
    doc = {
        "replication_factor_min": -1,
        "replication_factor_max": -1,
        "name": "",
        "mode": "direct",
        "cid": {"/": "QmUaFyXjZUNaUwYF8rBtbJc7fEJ46aJXvgV8z2HHs6jvmJ"},
        "type": 2,
        "allocations": [],
        "max_depth": 0,
        "reference": None,
    }
    pin = t.Pin.from_json(doc)
    assert str(pin.cid) == "QmUaFyXjZUNaUwYF8rBtbJc7fEJ46aJXvgV8z2HHs6jvmJ"
    assert pin.type is t.PinType.DATA and pin.mode is t.PinMode.DIRECT
    assert pin.timestamp == 0


def test_minimal_pin_json_takes_upstream_defaults():
    pin = t.Pin.from_json({"cid": CID0})
    assert pin == t.Pin(CID.parse(CID0))
    assert (pin.replication_factor_min, pin.mode, pin.max_depth, pin.type) == (
        0,
        t.PinMode.RECURSIVE,
        -1,
        t.PinType.DATA,
    )
    # max_depth follows the mode when absent
    assert t.Pin.from_json({"cid": CID0, "mode": "direct"}).max_depth == 0


def test_golden_global_pin_info():
    doc = {
        "cid": CID0,
        "name": "backup",
        "allocations": [P1],
        "origins": [],
        "created": "2024-05-01T10:00:00Z",
        "metadata": None,
        "peer_map": {
            P1: {
                "peername": "peer1",
                "ipfs_peer_id": P3,
                "ipfs_peer_addresses": [MA],
                "status": "pinned",
                "timestamp": "2024-05-01T10:00:01Z",
                "error": "",
                "attempt_count": 0,
                "priority_pin": False,
            },
            P2: {
                "peername": "",
                "status": "cluster_error",
                "timestamp": "2024-05-01T10:00:02Z",
                "error": "dial backoff",
                "attempt_count": 2,
                "priority_pin": True,
            },
        },
    }
    gpi = _golden(t.GlobalPinInfo, doc)
    assert gpi.peer_map[P1].status is t.TrackerStatus.PINNED
    assert gpi.peer_map[P2].ipfs_peer_id == ""
    assert gpi.match(t.TrackerStatus.ERROR) and not gpi.match(t.TrackerStatus.QUEUED)


def test_golden_pin_info_is_flat():
    doc = {
        "cid": CID0,
        "name": "",
        "peer": P1,
        "allocations": [],
        "origins": [],
        "created": "0001-01-01T00:00:00Z",
        "metadata": None,
        "peername": "peer1",
        "status": "pin_queued",
        "timestamp": "2024-05-01T10:00:00Z",
        "error": "",
        "attempt_count": 1,
        "priority_pin": False,
    }
    info = _golden(t.PinInfo, doc)
    short = info.to_short().to_json()
    assert "cid" not in short and "peer" not in short
    assert short["status"] == "pin_queued"


def test_golden_id():
    doc = {
        "id": P1,
        "addresses": [f"/ip4/127.0.0.1/tcp/9096/p2p/{P3}"],
        "cluster_peers": [P1, P2],
        "cluster_peers_addresses": [MA],
        "version": "1.1.6",
        "commit": "",
        "rpc_protocol_version": "/ipfscluster/1.1/rpc",
        "error": "",
        "ipfs": {"id": P3, "addresses": ["/ip4/127.0.0.1/tcp/4001"], "error": ""},
        "peername": "hi",
    }
    ident = _golden(t.ID, doc)
    assert ident.ipfs.id == P3
    # an unreachable daemon: no id key at all, as upstream (omitempty)
    down = t.ID(P1, ipfs=t.IPFSID(error="connection refused")).to_json()
    assert down["ipfs"] == {"addresses": [], "error": "connection refused"}


def test_golden_version_metric_alert_graph_added():
    _golden(t.Version, {"version": "1.1.6"})
    assert t.Version.from_json({"Version": "0.3.0"}) == t.Version("0.3.0")
    metric = {
        "name": "freespace",
        "peer": P1,
        "value": "1000",
        "expire": 1714557630000000000,
        "valid": True,
        "weight": 1000,
        "partitionable": False,
        "received_at": 1714557600000000000,
    }
    _golden(t.Metric, metric)
    alert = _golden(t.Alert, {**metric, "triggered_at": "2024-05-01T10:00:45Z"})
    assert (alert.peer, alert.name) == (P1, "freespace")
    _golden(
        t.ConnectGraph,
        {
            "cluster_id": P1,
            "id_to_peername": {P1: "one", P2: "two"},
            "ipfs_links": {P3: []},
            "cluster_links": {P1: [P2], P2: [P1]},
            "cluster_trust_links": {P1: True, P2: False},
            "cluster_to_ipfs": {P1: P3},
        },
    )
    _golden(t.AddedOutput, {"name": "a.txt", "cid": CID0, "size": 12})
    _golden(t.AddedOutput, {"name": "a.txt", "cid": None, "bytes": 1024})
    _golden(t.AddedOutput, {"name": "d", "cid": CID1, "size": 99, "allocations": [P1]})
    stat = _golden(t.RepoStat, {"RepoSize": 100, "StorageMax": 1000})
    assert stat.free_space == 900
    assert t.RepoStat(2000, 1000).free_space == 0


# --- times ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,ns",
    [
        ("0001-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00Z", 0),
        ("2024-05-01T10:00:00Z", NOW),
        ("2024-05-01T12:00:00+02:00", NOW),
        ("2024-05-01T05:30:00-04:30", NOW),
        ("2024-05-01t10:00:00.25z", NOW + 250_000_000),
        ("2024-05-01T10:00:00.1234567891234Z", NOW + 123_456_789),
        ("1969-12-31T23:59:59.999999999Z", -1),
    ],
)
def test_parse_time(text, ns):
    assert t.parse_time(text) == ns


@pytest.mark.parametrize(
    "ns,text",
    [
        (0, "0001-01-01T00:00:00Z"),
        (NOW, "2024-05-01T10:00:00Z"),
        (NOW + 500_000_000, "2024-05-01T10:00:00.5Z"),
        (NOW + 1000, "2024-05-01T10:00:00.000001Z"),
        (NOW + 1, "2024-05-01T10:00:00.000000001Z"),
        (253402300799 * 10**9, "9999-12-31T23:59:59Z"),
    ],
)
def test_format_time_like_go(ns, text):
    assert t.format_time(ns) == text


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2024-02-30T10:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T10:00:00",
     "2024-05-01 10:00:00Z", "2024-05-01T10:00:00+25:00", "2024-05-01T10:00:60Z"],
)
def test_parse_time_rejects(text):
    with pytest.raises(errors.InvalidField) as e:
        t.parse_time(text, "expire_at")
    assert e.value.field == "expire_at"
    assert "expire_at" in str(e.value)


def test_ns_from_seconds_and_range():
    assert t.ns_from_seconds(1.5) == 1_500_000_000
    with pytest.raises(errors.InvalidInput):
        t.format_time(253402300800 * 10**9)


# --- statuses, modes, types -----------------------------------------------------------


def test_tracker_status_names_and_bits():
    names = {
        "undefined", "cluster_error", "pin_error", "unpin_error", "error", "pinned",
        "pinning", "unpinning", "unpinned", "remote", "pin_queued", "unpin_queued",
        "queued", "sharded", "unexpectedly_unpinned",
    }
    assert {m.to_json() for m in t.TrackerStatus.__members__.values()} == names
    assert t.TrackerStatus.ERROR == (
        t.TrackerStatus.CLUSTER_ERROR | t.TrackerStatus.PIN_ERROR | t.TrackerStatus.UNPIN_ERROR
    )
    assert t.TrackerStatus.QUEUED == t.TrackerStatus.PIN_QUEUED | t.TrackerStatus.UNPIN_QUEUED
    # upstream's bit values
    assert (t.TrackerStatus.CLUSTER_ERROR, t.TrackerStatus.UNEXPECTEDLY_UNPINNED) == (2, 4096)
    assert t.TrackerStatus.from_json("bug") is t.TrackerStatus.UNDEFINED
    combo = t.TrackerStatus.PINNED | t.TrackerStatus.PIN_ERROR
    assert combo.to_json() == "pin_error,pinned"


def test_tracker_status_error_and_match():
    assert t.TrackerStatus.PIN_ERROR.is_error and t.TrackerStatus.CLUSTER_ERROR.is_error
    assert not t.TrackerStatus.PINNED.is_error and not t.TrackerStatus.PIN_QUEUED.is_error
    assert t.TrackerStatus.UNPIN_ERROR.match(t.TrackerStatus.ERROR)
    assert not t.TrackerStatus.PINNED.match(t.TrackerStatus.ERROR)
    assert t.TrackerStatus.PINNED.match(t.TrackerStatus.UNDEFINED)
    assert t.TrackerStatus.PIN_QUEUED.match(t.TrackerStatus.parse_filter("queued"))


def test_parse_filter():
    assert t.TrackerStatus.parse_filter("") is t.TrackerStatus.UNDEFINED
    assert t.TrackerStatus.parse_filter("pinned, error") == (
        t.TrackerStatus.PINNED | t.TrackerStatus.ERROR
    )
    with pytest.raises(errors.InvalidFilter) as e:
        t.TrackerStatus.parse_filter("pinned,pinnned")
    message = str(e.value)
    assert '"pinnned"' in message and "pin_error" in message and "unexpectedly_unpinned" in message
    assert e.value.parameter == "filter" and e.value.http_status == 400


def test_tracker_status_from_json_rejects():
    with pytest.raises(errors.InvalidField) as e:
        t.TrackerStatus.from_json("pinnedd", "peer_map.x.status")
    assert e.value.field == "peer_map.x.status"
    with pytest.raises(errors.InvalidField):
        t.TrackerStatus.from_json(16)


def test_pin_mode_and_type():
    assert t.PinMode.parse("") is t.PinMode.RECURSIVE
    assert t.PinMode.DIRECT.max_depth == 0 and t.PinMode.RECURSIVE.max_depth == -1
    assert t.PinMode.from_max_depth(0) is t.PinMode.DIRECT
    assert t.PinMode.from_max_depth(3) is t.PinMode.RECURSIVE
    with pytest.raises(errors.InvalidField):
        t.PinMode.parse("deep")
    assert [p.to_json() for p in (t.PinType.DATA, t.PinType.META, t.PinType.CLUSTER_DAG,
                                  t.PinType.SHARD)] == [
        "pin", "meta-pin", "clusterdag-pin", "shard-pin"]
    assert t.PinType.parse_filter("") is t.PinType.ALL
    assert t.PinType.parse_filter("all") is t.PinType.ALL
    assert t.PinType.parse_filter("pin,shard-pin") == t.PinType.DATA | t.PinType.SHARD
    with pytest.raises(errors.InvalidFilter) as e:
        t.PinType.parse_filter("pin,bogus")
    assert '"bogus"' in str(e.value)
    with pytest.raises(errors.InvalidField):
        t.PinType.from_json("bad-type")


def test_ipfs_pin_status():
    assert t.IPFSPinStatus.from_ipfs("indirect through " + CID0) is t.IPFSPinStatus.INDIRECT
    assert t.IPFSPinStatus.from_ipfs("recursive") is t.IPFSPinStatus.RECURSIVE
    assert t.IPFSPinStatus.from_ipfs("direct") is t.IPFSPinStatus.DIRECT
    assert t.IPFSPinStatus.from_ipfs("weird") is t.IPFSPinStatus.BUG
    assert t.IPFSPinStatus.RECURSIVE.is_pinned() and not t.IPFSPinStatus.DIRECT.is_pinned()
    assert t.IPFSPinStatus.DIRECT.is_pinned(0) and not t.IPFSPinStatus.RECURSIVE.is_pinned(0)
    assert not t.IPFSPinStatus.INDIRECT.is_pinned()
    assert t.IPFSPinStatus.INDIRECT.to_tracker_status() is t.TrackerStatus.UNPINNED
    assert t.IPFSPinStatus.DIRECT.to_tracker_status() is t.TrackerStatus.PINNED
    with pytest.raises(errors.InvalidField):
        t.IPFSPinStatus.from_json("pinned")


# --- pins -----------------------------------------------------------------------------


def _pin(**kw):
    return t.Pin(CID.parse(CID0), **kw)


def test_pin_helpers():
    everywhere = _pin(replication_factor_min=-1, replication_factor_max=-1)
    assert everywhere.is_everywhere and not everywhere.is_remote_for(P1)
    placed = _pin(replication_factor_min=1, replication_factor_max=2, allocations=[P1])
    assert not placed.is_everywhere
    assert not placed.is_remote_for(P1) and placed.is_remote_for(P2)
    assert not _pin().is_expired(NOW)
    expiring = _pin(expire_at=NOW)
    assert not expiring.is_expired(NOW) and expiring.is_expired(NOW + 1)


def test_pin_new_follows_options():
    options = t.PinOptions(name="x", mode=t.PinMode.DIRECT, replication_factor_min=2)
    pin = t.Pin.new(CID.parse(CID0), options, timestamp=NOW)
    assert (pin.max_depth, pin.name, pin.timestamp, pin.type) == (0, "x", NOW, t.PinType.DATA)
    assert pin.options == options
    assert t.Pin.new(CID.parse(CID0)).max_depth == -1


def test_values_are_frozen_and_hashable():
    pin = _pin(metadata={"a": "b"}, allocations=[P1])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        pin.name = "x"
    with pytest.raises(TypeError):
        pin.metadata["a"] = "c"
    assert isinstance(pin.allocations, tuple)
    assert hash(pin) == hash(_pin(metadata={"a": "b"}, allocations=[P1]))
    assert attrs.evolve(pin, name="n").name == "n"
    # the caller's dict is copied, not shared
    meta = {"a": "b"}
    other = _pin(metadata=meta)
    meta["a"] = "changed"
    assert other.metadata["a"] == "b"


def test_peer_ids_are_kept_canonical():
    ed = peer_id_from_public_key(bytes(32))
    as_cid = CID.v1(0x72, bytes([0, 36, 8, 1, 18, 32]) + bytes(32)).encode("base36")
    pin = _pin(allocations=[as_cid])
    assert pin.allocations == (ed,)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"allocations": ["nope"]}, "allocations"),
        ({"allocations": P1}, "allocations"),
        ({"replication_factor_min": "1"}, "replication_factor_min"),
        ({"replication_factor_min": True}, "replication_factor_min"),
        ({"shard_size": -1}, "shard_size"),
        ({"timestamp": 1.5}, "timestamp"),
        ({"mode": "direct"}, "mode"),
        ({"origins": [MA]}, "origins"),
        ({"metadata": {"": "x"}}, "metadata"),
        ({"reference": CID0}, "reference"),
        ({"metadata": ["a"]}, "metadata"),
        ({"origins": MA}, "origins"),
        ({"user_allocations": {P1: 1}}, "user_allocations"),
    ],
)
def test_pin_constructor_validates(kwargs, field):
    with pytest.raises(errors.InvalidField) as e:
        _pin(**kwargs)
    assert e.value.field == field
    assert field in str(e.value)


def test_pin_cid_must_be_a_cid_object():
    with pytest.raises(errors.InvalidField) as e:
        t.Pin(CID0)
    assert "CID.parse" in str(e.value)


@pytest.mark.parametrize(
    "doc,field",
    [
        ({}, "cid"),
        ({"cid": "Qmnope"}, "cid"),
        ({"cid": 5}, "cid"),
        ({"cid": CID0, "replication_factor_min": "2"}, "replication_factor_min"),
        ({"cid": CID0, "allocations": ["x"]}, "allocations"),
        ({"cid": CID0, "allocations": "x"}, "allocations"),
        ({"cid": CID0, "user_allocations": [P1, 3]}, "user_allocations"),
        ({"cid": CID0, "timestamp": "now"}, "timestamp"),
        ({"cid": CID0, "expire_at": 12}, "expire_at"),
        ({"cid": CID0, "mode": "sideways"}, "mode"),
        ({"cid": CID0, "type": "sharded"}, "type"),
        ({"cid": CID0, "metadata": {"a": 1}}, "metadata.a"),
        ({"cid": CID0, "metadata": []}, "metadata"),
        ({"cid": CID0, "origins": ["/ip4/1.2.3.4/tcp/x"]}, "origins"),
        ({"cid": CID0, "origins": "x"}, "origins"),
        ({"cid": CID0, "pin_update": "x"}, "pin_update"),
        ({"cid": CID0, "reference": 7}, "reference"),
        ({"cid": CID0, "shard_size": -5}, "shard_size"),
        ({"cid": CID0, "name": ["a"]}, "name"),
    ],
)
def test_pin_from_json_names_the_bad_field(doc, field):
    with pytest.raises(errors.InvalidField) as e:
        t.Pin.from_json(doc)
    assert e.value.field == field
    assert field in str(e.value)
    assert e.value.http_status == 400


def test_from_json_requires_an_object():
    for cls, _ in ROUND_TRIPS:
        with pytest.raises(errors.InvalidInput):
            cls.from_json(["not", "an", "object"])


def test_nested_errors_name_the_path():
    doc = {"cid": CID0, "peer_map": {P1: {"status": "sleeping"}}}
    with pytest.raises(errors.InvalidField) as e:
        t.GlobalPinInfo.from_json(doc)
    assert e.value.field == f"peer_map.{P1}.status"
    with pytest.raises(errors.InvalidField) as e:
        t.GlobalPinInfo.from_json({"cid": CID0, "peer_map": {"bad-peer": {}}})
    assert e.value.field == "peer_map"
    with pytest.raises(errors.InvalidField) as e:
        t.ID.from_json({"id": P1, "ipfs": {"id": "zzz"}})
    assert e.value.field == "ipfs.id"
    with pytest.raises(errors.InvalidField) as e:
        t.ConnectGraph.from_json({"cluster_id": P1, "cluster_links": {P1: "x"}})
    assert e.value.field == f"cluster_links.{P1}"
    with pytest.raises(errors.InvalidField) as e:
        t.Metric.from_json({"name": "ping", "valid": "yes"})
    assert e.value.field == "valid"


def test_metadata_under_an_empty_key_is_dropped_as_upstream_does():
    pin = t.Pin.from_json({"cid": CID0, "metadata": {"": "bye", "k": "v"}})
    assert pin.metadata == {"k": "v"}


# --- status values --------------------------------------------------------------------


def _info(peer, status, **kw):
    return t.PinInfo(CID.parse(CID0), peer, status=status, timestamp=NOW, **kw)


def test_global_pin_info_add_keeps_pin_description_from_reachable_peers():
    ok = _info(P1, t.TrackerStatus.PINNED, name="backup", allocations=[P1])
    gpi = ok.to_global()
    assert gpi.name == "backup" and set(gpi.peer_map) == {P1}
    down = _info(P2, t.TrackerStatus.CLUSTER_ERROR, error="unreachable")
    merged = gpi.add(down)
    assert merged.name == "backup" and merged.allocations == (P1,)
    assert merged.peer_map[P2].error == "unreachable"
    assert gpi.peer_map.keys() == {P1}, "add returns a copy"
    other = t.PinInfo(CID.parse(CID1), P1, status=t.TrackerStatus.PINNED)
    with pytest.raises(errors.InvalidInput):
        gpi.add(other)


def test_metric_times():
    m = t.Metric("ping", peer=P1, valid=True, expire=NOW)
    assert not m.expired(NOW) and m.expired(NOW + 1)
    assert not m.discard(NOW) and m.discard(NOW + 1)
    assert attrs.evolve(m, valid=False).discard(NOW - 10)
    assert m.ttl(NOW - 5) == 5 and m.ttl(NOW + 5) == 0


# --- REST query parameters ------------------------------------------------------------


def test_from_query_reads_every_parameter():
    query = {
        "replication-min": "2",
        "replication-max": ["3", "9"],
        "name": "my pin",
        "mode": "direct",
        "shard-size": "1048576",
        "user-allocations": f"{P1},{P2}",
        "expire-in": "1h30m",
        "meta-color": "blue",
        "meta-": "ignored",
        "pin-update": CID1,
        "origins": MA,
        "unrelated": "x",
    }
    opts = t.PinOptions.from_query(query, now_ns=NOW)
    assert opts == t.PinOptions(
        replication_factor_min=2,
        replication_factor_max=3,
        name="my pin",
        mode=t.PinMode.DIRECT,
        shard_size=1048576,
        user_allocations=(P1, P2),
        expire_at=NOW + 5400 * 10**9,
        metadata={"color": "blue"},
        pin_update=CID.parse(CID1),
        origins=(Multiaddr.parse(MA),),
    )


def test_from_query_replication_overrides_min_and_max_and_bytes_keys_work():
    opts = t.PinOptions.from_query(
        {b"replication": [b"-1"], b"replication-min": [b"4"], b"meta-k": [b"v"]}, now_ns=0
    )
    assert (opts.replication_factor_min, opts.replication_factor_max) == (-1, -1)
    assert opts.metadata == {"k": "v"}
    assert t.PinOptions.from_query({}, now_ns=0) == t.PinOptions()


def test_from_query_expire_at_wins_over_expire_in():
    opts = t.PinOptions.from_query(
        {"expire-at": "2024-05-02T10:00:00Z", "expire-in": "1h"}, now_ns=NOW
    )
    assert opts.expire_at == NOW + 86400 * 10**9


@pytest.mark.parametrize(
    "query,parameter,hint",
    [
        ({"replication": "two"}, "replication", "integer"),
        ({"replication-min": "1.5"}, "replication-min", "integer"),
        ({"replication-max": "-2"}, "replication-max", "-1"),
        ({"replication": " 2"}, "replication", "integer"),
        ({"replication": "1_0"}, "replication", "integer"),
        ({"shard-size": "\u00b2"}, "shard-size", "bytes"),
        ({"mode": "deep"}, "mode", "recursive"),
        ({"shard-size": "-1"}, "shard-size", "bytes"),
        ({"user-allocations": f"{P1},nope"}, "user-allocations", "peer"),
        ({"expire-at": "tomorrow"}, "expire-at", "RFC 3339"),
        ({"expire-in": "soon"}, "expire-in", "duration"),
        ({"expire-in": "999ms"}, "expire-in", "1s"),
        ({"pin-update": "Qmbad"}, "pin-update", "CID"),
        ({"origins": "/ip4/1.2.3.4/tcp/1"}, "origins", "/p2p/"),
        ({"origins": "/nope"}, "origins", "multiaddress"),
    ],
)
def test_from_query_errors_name_the_parameter(query, parameter, hint):
    with pytest.raises(errors.InvalidParameter) as e:
        t.PinOptions.from_query(query, now_ns=NOW)
    assert e.value.parameter == parameter
    assert e.value.http_status == 400
    assert parameter in str(e.value) and hint in str(e.value)


def test_to_query_shape():
    opts = t.PinOptions(
        replication_factor_min=1,
        replication_factor_max=2,
        metadata={"a": "b"},
        expire_at=NOW,
        user_allocations=[P1, P2],
    )
    assert opts.to_query() == {
        "replication-min": "1",
        "replication-max": "2",
        "name": "",
        "mode": "recursive",
        "shard-size": "0",
        "user-allocations": f"{P1},{P2}",
        "expire-at": "2024-05-01T10:00:00Z",
        "meta-a": "b",
    }


_PARAMETERS = (
    "replication replication-min replication-max name mode shard-size user-allocations "
    "expire-at expire-in meta-k pin-update origins"
).split()


@given(
    st.dictionaries(
        st.sampled_from(_PARAMETERS) | st.text(max_size=12),
        st.text(max_size=12) | st.sampled_from(["1", "-1", "direct", "2h", P1, CID0, MA]),
        max_size=6,
    )
)
@settings(max_examples=100, deadline=None)
def test_from_query_never_fails_with_an_untyped_error(query):
    try:
        t.PinOptions.from_query(query, now_ns=NOW)
    except errors.InvalidParameter:
        pass
