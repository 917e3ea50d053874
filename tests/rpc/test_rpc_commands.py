"""The AMP command table and its argument types (pure: boxes, no connections)."""

from __future__ import annotations

import gc
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.protocols import amp

from ipfscluster import errors
from ipfscluster.rpc import commands
from ipfscluster.types import Version


def round_trip(argument, value):
    """Encode ``value`` into a box with ``argument``, serialise, parse, decode it."""
    strings = amp.AmpBox()
    argument.toBox(b"value", strings, {"value": value}, None)
    wire = strings.serialize()  # raises TooLong if any AMP value exceeded 65,535 bytes
    parsed = amp.AmpBox()
    parsed.update(_parse_box(wire))
    objects = {}
    argument.fromBox(b"value", parsed, objects, None)
    return objects["value"], strings


def _parse_box(wire: bytes) -> dict:
    out, pos = {}, 0
    while True:
        klen = int.from_bytes(wire[pos : pos + 2], "big")
        pos += 2
        if klen == 0:
            return out
        key = wire[pos : pos + klen]
        pos += klen
        vlen = int.from_bytes(wire[pos : pos + 2], "big")
        pos += 2
        out[key] = wire[pos : pos + vlen]
        pos += vlen


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 3 * 65535 + 7, 1_000_000])
def test_chunked_bytes_round_trip_in_values_of_at_most_64k(size):
    data = bytes(i % 251 for i in range(size))
    back, box = round_trip(commands.Chunked(), data)
    assert back == data
    assert all(len(v) <= commands.MAX_VALUE for v in box.values())
    assert len(box) == max(1, -(-size // commands.MAX_VALUE))


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=200_000))
def test_chunked_bytes_round_trip_any_content(data):
    assert round_trip(commands.Chunked(), data)[0] == data


def test_optional_chunked_absent_is_none():
    strings = amp.AmpBox()
    commands.Chunked(optional=True).toBox(b"value", strings, {}, None)
    assert strings == {}
    objects = {}
    commands.Chunked(optional=True).fromBox(b"value", strings, objects, None)
    assert objects == {"value": None}


def test_chunked_refuses_non_bytes():
    with pytest.raises(TypeError):
        round_trip(commands.Chunked(), "text")


def test_json_value_and_list_use_to_json_from_json():
    value = Version("1.2.3")
    assert round_trip(commands.JSONValue("ipfscluster.types:Version"), value)[0] == value
    many = [Version(str(i) * 5000) for i in range(40)]  # ~1 MB of JSON
    back, box = round_trip(commands.JSONList("ipfscluster.types:Version"), many)
    assert back == many and len(box) > 1
    assert round_trip(commands.JSONList(Version), [])[0] == []


def test_plain_json_keeps_unicode():
    value = {"QmX": "recursive", "clé": ["ü", 1, None, True]}
    assert round_trip(commands.PlainJSON(), value)[0] == value


def test_every_command_is_named_service_dot_method_and_unique():
    table = commands.all_commands()
    assert len(table) == len(set(table))
    for name, command in table.items():
        assert re.fullmatch(rb"[A-Z][A-Za-z]*\.[A-Z][A-Za-z]*", name), name
        assert command.commandName == name
        assert issubclass(command, commands.ClusterCommand)


def test_the_reference_methods_are_all_there():
    names = {n.decode() for n in commands.all_commands()}
    expected = {
        "Cluster.ID", "Cluster.Pin", "Cluster.Unpin", "Cluster.Pins", "Cluster.PinGet",
        "Cluster.Version", "Cluster.Peers", "Cluster.PeerAdd", "Cluster.PeerRemove",
        "Cluster.Join", "Cluster.StatusAll", "Cluster.Status", "Cluster.StatusAllLocal",
        "Cluster.StatusLocal", "Cluster.SyncAllLocal", "Cluster.SyncLocal", "Cluster.SyncAll",
        "Cluster.Sync", "Cluster.StateSync", "Cluster.Recover", "Cluster.RecoverAllLocal",
        "Cluster.RecoverLocal", "Cluster.RemoteMultiaddrForPeer", "Cluster.ConnectGraph",
        "PinTracker.Track", "PinTracker.Untrack", "PinTracker.StatusAll", "PinTracker.Status",
        "PinTracker.Recover", "PinTracker.RecoverAll",
        "IPFSConnector.Pin", "IPFSConnector.Unpin", "IPFSConnector.PinLsCid",
        "IPFSConnector.PinLs", "IPFSConnector.ConnectSwarms", "IPFSConnector.ConfigKey",
        "IPFSConnector.FreeSpace", "IPFSConnector.RepoSize", "IPFSConnector.SwarmPeers",
        "IPFSConnector.ID",
        "Consensus.LogPin", "Consensus.LogUnpin", "Consensus.AddPeer", "Consensus.RmPeer",
        "Consensus.Peers", "PeerManager.AddPeer", "PeerManager.ImportAddresses",
        "PeerMonitor.LogMetric", "PeerMonitor.LatestMetrics",
        "Raft.Message", "Raft.InstallSnapshotChunk", "RPC.Hello", "RPC.Goodbye",
    }  # fmt: skip
    assert expected <= names, expected - names


def test_paged_listings_take_a_cursor_and_return_the_next_one():
    for command in (commands.ClusterPins, commands.ClusterStatusAll, commands.PinTrackerStatusAll):
        assert [n for n, _ in command.arguments] == [b"cursor", b"limit"]
        assert [n for n, _ in command.response] == [b"items", b"next_cursor"]


def test_error_table_is_live():
    class LateError(errors.ClusterError):
        """Defined after the commands module was imported."""

    assert commands.error_class(b"LateError") is LateError
    rebuilt = commands.ClusterPin.reverseErrors.get(b"LateError")("it failed")
    assert type(rebuilt) is LateError and str(rebuilt) == "it failed"
    assert commands.error_class(b"NoSuchError") is None
    assert commands.error_class(errors.NotFound.amp_tag()) is errors.NotFound
    del LateError, rebuilt  # leave errors.all_error_classes() as other tests expect it
    gc.collect()
    assert commands.error_class(b"LateError") is None


def test_declared_errors_are_cluster_errors():
    for command in commands.all_commands().values():
        for cls, tag in command.errors.items():
            assert issubclass(cls, errors.ClusterError) and tag == cls.amp_tag()


def test_errors_with_demanding_constructors_are_rebuilt_with_their_message():
    class Picky(errors.ClusterError):
        """Needs more than a message."""

        def __init__(self, code: int, message: str):
            super().__init__(message, code=code)

    rebuilt = commands.rebuild_error(Picky, "remote text")
    assert type(rebuilt) is Picky and str(rebuilt) == "remote text"
    del Picky
    gc.collect()
