"""``ipfscluster.stateops``: execution lock, backups, offline state on disk (no sockets)."""

from __future__ import annotations

import io
import json
import os

import pytest

from ipfscluster import stateops
from ipfscluster.cid import CID, sha256_multihash
from ipfscluster.consensus.raft.consensus import PIN_OP, encode_op
from ipfscluster.consensus.raft.messages import ENTRY_NORMAL, Entry
from ipfscluster.consensus.raft.storage import RaftStorage
from ipfscluster.errors import ExecutionLockError, NotFound, StateVersionError, StorageLocked
from ipfscluster.state import MapState
from ipfscluster.state.snapshot import VERSION
from ipfscluster.types import Pin, PinOptions


def pin(n: int) -> Pin:
    return Pin.new(CID.v0(sha256_multihash(b"stateops %d" % n)[2:]), PinOptions())


def test_execution_lock_is_exclusive_and_released(tmp_path):
    folder = str(tmp_path)
    first = stateops.ExecutionLock(folder).acquire()
    with pytest.raises(ExecutionLockError) as err:
        stateops.ExecutionLock(folder).acquire()
    assert "could not obtain execution lock" in str(err.value) and folder in str(err.value)
    first.release()
    first.release()  # idempotent
    with stateops.ExecutionLock(folder) as again:
        assert again.held
        with open(os.path.join(folder, "cluster.lock")) as f:
            assert f.read().strip() == str(os.getpid())
    assert not again.held


def test_backup_names_are_utc_and_never_overwrite(tmp_path):
    assert stateops.backup_name(0) == "19700101_00:00:00"
    assert stateops.backup_name(86400 * 365 + 3723) == "19710101_01:02:03"
    state = MapState()
    state.add(pin(1))
    first = stateops.write_backup(str(tmp_path), state, 60.0)
    second = stateops.write_backup(str(tmp_path), state, 60.0)
    assert os.path.basename(first) == "19700101_00:01:00"
    assert second == first + ".1"
    with open(second) as f:
        assert [p["cid"] for p in json.load(f)] == [str(pin(1).cid)]


def test_no_state_without_raft_data(tmp_path):
    with pytest.raises(NotFound) as err:
        stateops.load_state(str(tmp_path / "data"))
    assert str(err.value).startswith("no snapshot found")
    assert stateops.stored_version(str(tmp_path / "data")) is None
    assert stateops.cleanup(str(tmp_path / "data")) is False


def test_load_state_replays_committed_entries_after_the_snapshot(tmp_path):
    data = str(tmp_path / "data")
    state = MapState()
    state.add(pin(1))
    stateops.write_state(data, state, ["peerA"])
    storage = RaftStorage.open(data, entry_factory=Entry)
    entries = [Entry(index=3, term=1, kind=ENTRY_NORMAL, data=encode_op(PIN_OP, pin(2))),
               Entry(index=4, term=1, kind=ENTRY_NORMAL, data=encode_op(PIN_OP, pin(3)))]
    storage.save(entries=entries, commit=3)  # entry 4 is not committed
    storage.close()
    loaded, info = stateops.load_state(data)
    assert sorted(str(p.cid) for p in loaded.list()) == sorted(str(pin(i).cid) for i in (1, 2))
    assert info["voters"] == ("peerA",) and info["index"] == 3


def test_load_state_refuses_while_a_peer_holds_the_data(tmp_path):
    data = str(tmp_path / "data")
    stateops.write_state(data, MapState(), ["peerA"])
    held = RaftStorage.open(data, entry_factory=Entry)
    try:
        with pytest.raises(StorageLocked):
            stateops.load_state(data)
    finally:
        held.close()


def test_import_keeps_the_old_membership_and_rotates(tmp_path):
    data = str(tmp_path / "data")
    stateops.write_state(data, MapState(), ["peerA", "peerB"])
    count = stateops.import_state(data, io.StringIO(json.dumps([{"cid": str(pin(5).cid)}])), ["other"])
    assert count == 1
    state, info = stateops.load_state(data)
    assert info["voters"] == ("peerA", "peerB")
    assert (info["term"], info["index"]) == (stateops.IMPORT_TERM, stateops.IMPORT_INDEX)
    assert [p.cid for p in state.list()] == [pin(5).cid]
    assert os.path.isdir(data + ".old.0")


def test_out_of_date_state_is_refused_and_upgraded(tmp_path):
    data = str(tmp_path / "data")
    backup = {"PinMap": {str(pin(1).cid): {"cid": str(pin(1).cid), "replication_factor": -1,
                                            "allocations": []}}, "Version": 2}
    stateops.write_snapshot_payload(data, json.dumps(backup).encode(), ["peerA"], term=3, index=9)
    assert stateops.stored_version(data) == 2
    with pytest.raises(StateVersionError) as err:
        stateops.check_state_current(data, str(tmp_path))
    assert "state upgrade" in str(err.value) and "format 2" in str(err.value)
    old, written = stateops.upgrade_state(data, str(tmp_path), 0.0)
    assert old == 2 and written.endswith("19700101_00:00:00")
    assert stateops.stored_version(data) == VERSION
    stateops.check_state_current(data, str(tmp_path))
    state, info = stateops.load_state(data)
    assert (info["term"], info["index"]) == (3, 9) and info["voters"] == ("peerA",)
    assert [p.cid for p in state.list()] == [pin(1).cid]
    assert stateops.upgrade_state(data, str(tmp_path), 0.0) == (VERSION, None)


def test_cleanup_rotation_keeps_five_old_folders(tmp_path):
    """Upstream TestDataBackupHelper: .old.0 is the newest, .old.4 the oldest kept."""
    data = str(tmp_path / "ipfs-cluster-data")
    for generation in range(7):
        os.makedirs(data)
        with open(os.path.join(data, "generation"), "w") as f:
            f.write(str(generation))
        assert stateops.cleanup(data) is True
        assert not os.path.exists(data)
    kept = sorted(n for n in os.listdir(tmp_path) if n.startswith("ipfs-cluster-data"))
    assert kept == [f"ipfs-cluster-data.old.{i}" for i in range(5)]
    for i in range(5):
        with open(os.path.join(data + f".old.{i}", "generation")) as f:
            assert f.read() == str(6 - i)
