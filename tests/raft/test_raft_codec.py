"""The binary codec of Raft messages (messages.encode / decode)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfscluster.consensus.raft import messages as m
from ipfscluster.errors import RaftCodecError

ids = st.text(min_size=0, max_size=60)
u64 = st.integers(min_value=0, max_value=2**64 - 1)
entries = st.lists(st.builds(m.Entry, u64, u64, st.integers(0, 2), st.binary(max_size=64)),
                   max_size=5).map(tuple)

any_message = st.one_of(
    st.builds(m.VoteRequest, ids, ids, u64, u64, u64, st.booleans(), st.booleans()),
    st.builds(m.VoteResponse, ids, ids, u64, st.booleans(), st.booleans()),
    st.builds(m.AppendEntries, ids, ids, u64, u64, u64, u64, entries),
    st.builds(m.AppendResponse, ids, ids, u64, st.booleans(), u64, u64, u64),
    st.builds(m.Heartbeat, ids, ids, u64, u64, u64),
    st.builds(m.HeartbeatResponse, ids, ids, u64, u64),
    st.builds(m.InstallSnapshot, ids, ids, u64, u64, u64,
              st.lists(ids, max_size=4).map(tuple), u64, u64, u64, st.binary(max_size=100),
              st.booleans()),
    st.builds(m.SnapshotResponse, ids, ids, u64, u64, u64, st.booleans()),
    st.builds(m.TimeoutNow, ids, ids, u64),
)


@given(any_message)
def test_every_message_round_trips(msg):
    assert m.decode(m.encode(msg)) == msg


@given(any_message, st.data())
def test_truncated_or_extended_bytes_are_rejected(msg, data):
    raw = m.encode(msg)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(RaftCodecError):
        m.decode(raw[:cut])
    with pytest.raises(RaftCodecError):
        m.decode(raw + b"\x00")


def test_unknown_version_and_type_are_named():
    raw = m.encode(m.TimeoutNow("a", "b", 3))
    with pytest.raises(RaftCodecError, match="version 9"):
        m.decode(b"\x09" + raw[1:])
    with pytest.raises(RaftCodecError, match="type 77"):
        m.decode(raw[:1] + b"\x4d" + raw[2:])


def test_full_append_entries_fits_one_amp_value():
    # max_msg_bytes (60,000) of payload plus 64 entry headers stays below 65,535
    ents = tuple(m.Entry(i, 7, 0, b"x" * (60_000 // 64)) for i in range(1, 65))
    raw = m.encode(m.AppendEntries("12D3KooW" + "a" * 44, "12D3KooW" + "b" * 44, 7, 0, 0, 0, ents))
    assert len(raw) < 65_535


def test_config_payload_round_trips_and_rejects_garbage():
    change = m.ConfigChange("add", "n4", ("n1", "n2", "n3", "n4"))
    assert m.decode_config(m.encode_config(change)) == change
    with pytest.raises(RaftCodecError):
        m.decode_config(m.encode_config(m.ConfigChange("swap", "n4", ())))


def test_default_snapshot_chunk_fits_one_amp_value():
    from ipfscluster.consensus.raft.core import RaftCore

    chunk = RaftCore("a", rng=random.Random(0)).snapshot_chunk_size
    peer = "12D3KooW" + "x" * 44
    voters = tuple(peer[:-1] + str(i) for i in range(7))
    raw = m.encode(m.InstallSnapshot(peer, peer, 2**40, 2**40, 2**40, voters, 2**40,
                                     2**40, 2**40, b"s" * chunk, False))
    assert len(raw) < 65_535
