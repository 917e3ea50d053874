"""``ipfs-cluster-service state …`` (reference §2.3, sharness t0050-t0054 of 0.3.5).

The stored state comes from a real peer (one in-process peer on loopback pins a few
CIDs and stops: its Raft data then holds a final snapshot), or from an upstream state
file of ``tests/fixtures/state`` put in a Raft snapshot (an out-of-date state).
"""

from __future__ import annotations

import io
import json
import os

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from ipfscluster import stateops
from ipfscluster.cid import CID, sha256_multihash
from ipfscluster.config import ServiceConfig
from ipfscluster.errors import StateVersionError
from ipfscluster.service_cli import main
from ipfscluster.state.snapshot import VERSION
from ipfscluster.testing.harness import LocalCluster, collect

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "state")
UPSTREAM_CIDS = ["QmSVsVGMp8z59M7uRsPtHZv4573ow8PW958Cukmkq4ueZD",
                 "QmedwzeVd4XEqqcd77xMnjs88bESesjwrKCZ8BXUHPoXiB"]


def cid(n: int) -> CID:
    return CID.v0(sha256_multihash(b"state cli %d" % n)[2:])


def run(folder, *argv, stdin=""):
    return main(["-c", folder, *argv], environ={}, stdin=io.StringIO(stdin))


def export_cids(folder, capsys) -> list[str]:
    capsys.readouterr()
    assert run(folder, "state", "export") == 0
    out = capsys.readouterr().out
    return sorted(p["cid"] for p in json.loads(out))


async def run_peer(tmp_path, pins=(), lc=None):
    """Start (or restart) a one-peer cluster, pin ``pins``; return it stopped."""
    lc = lc or LocalCluster(reactor, str(tmp_path), 1)
    try:
        await lc.start_peer(lc.peers[0])
        for c in pins:
            await lc.peers[0].cluster.pin(c)
        listed = sorted(str(p.cid) for p in await collect(lc.peers[0].cluster.pins()))
    finally:
        await lc.stop()
    return lc, listed


@pytest.fixture
def peer_with_pins(tmp_path):
    """A stopped one-peer cluster whose shared state holds cid(1..3)."""
    lc, _ = pytest_twisted.blockon(defer.ensureDeferred(run_peer(tmp_path, [cid(1), cid(2), cid(3)])))
    return lc


def folder_of(lc) -> str:
    return lc.peers[0].config.folder


def put_upstream_state(folder: str, fixture: str) -> None:
    """An out-of-date state: an upstream JSON state as the payload of a Raft snapshot."""
    config = ServiceConfig.load(folder)
    with open(os.path.join(FIXTURES, fixture), "rb") as f:
        payload = f.read()
    stateops.write_snapshot_payload(config.raft_data_folder, payload, [config.cluster.peer_id])


# --- version / export ------------------------------------------------------------------


def test_state_version_prints_the_format(tmp_path, capsys):
    assert main(["state", "version"], environ={}) == 0
    assert capsys.readouterr().out.strip() == str(VERSION)


def test_export_fails_without_snapshot(tmp_path, capsys):  # t0052
    folder = str(tmp_path / "fresh")
    assert run(folder, "init") == 0
    capsys.readouterr()
    assert run(folder, "state", "export") == 1
    err = capsys.readouterr().err
    assert err.startswith("error : no snapshot found") and "ipfs-cluster-data" in err


def test_export_content(peer_with_pins, tmp_path, capsys):  # t0052
    folder = folder_of(peer_with_pins)
    assert export_cids(folder, capsys) == sorted(str(cid(i)) for i in (1, 2, 3))
    out_file = str(tmp_path / "exported.json")
    assert run(folder, "state", "export", "-f", out_file) == 0
    with open(out_file) as f:
        assert sorted(p["cid"] for p in json.load(f)) == sorted(str(cid(i)) for i in (1, 2, 3))


# --- import ----------------------------------------------------------------------------


def test_import_rejects_a_bad_format(peer_with_pins, tmp_path, capsys):  # t0053
    folder = folder_of(peer_with_pins)
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a state"')
    capsys.readouterr()
    assert run(folder, "-f", "state", "import", str(bad)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error : ") and "\n" == err[-1] and err.count("\n") == 1
    # nothing changed
    assert export_cids(folder, capsys) == sorted(str(cid(i)) for i in (1, 2, 3))


def test_import_asks_for_confirmation(peer_with_pins, tmp_path, capsys):
    folder = folder_of(peer_with_pins)
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"cid": str(cid(7))}]))
    capsys.readouterr()
    assert run(folder, "state", "import", str(other), stdin="n\n") == 0
    out = capsys.readouterr().out
    assert "The peer's state will be replaced.  Run with -h for details.  Continue? [y/n]:" in out
    assert export_cids(folder, capsys) == sorted(str(cid(i)) for i in (1, 2, 3))
    assert run(folder, "state", "import", str(other), stdin="y\n") == 0
    assert export_cids(folder, capsys) == [str(cid(7))]
    # stdin as the source needs -f
    assert run(folder, "state", "import", stdin="[]") == 1
    assert "needs -f" in capsys.readouterr().err


@pytest_twisted.ensureDeferred
async def test_import_works_and_the_peer_starts_from_it(tmp_path, capsys):  # t0053
    lc, _ = await run_peer(tmp_path, [cid(1)])
    folder = folder_of(lc)
    source = tmp_path / "import.json"
    source.write_text(json.dumps([{"cid": str(cid(5)), "name": "five"}, {"cid": str(cid(6))}]))
    assert run(folder, "-f", "state", "import", str(source)) == 0
    assert os.path.isdir(lc.peers[0].config.raft_data_folder + ".old.0")
    _, listed = await run_peer(tmp_path, lc=lc)
    assert listed == sorted([str(cid(5)), str(cid(6))])


# --- cleanup ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_cleanup_gives_an_empty_state_on_restart(tmp_path, capsys):  # t0054
    lc, listed = await run_peer(tmp_path, [cid(1), cid(2)])
    assert len(listed) == 2
    folder = folder_of(lc)
    assert run(folder, "state", "cleanup", stdin="n\n") == 0
    assert len(export_cids(folder, capsys)) == 2  # cancelled: unchanged
    assert run(folder, "-f", "state", "cleanup") == 0
    data = lc.peers[0].config.raft_data_folder
    assert not os.path.exists(data) and os.path.isdir(data + ".old.0")
    _, listed = await run_peer(tmp_path, lc=lc)
    assert listed == []


@pytest_twisted.ensureDeferred
async def test_export_cleanup_import_is_a_noop(tmp_path, capsys):  # t0054
    lc, before = await run_peer(tmp_path, [cid(1), cid(2), cid(3)])
    folder = folder_of(lc)
    exported = str(tmp_path / "exported.json")
    assert run(folder, "state", "export", "--file", exported) == 0
    assert run(folder, "-f", "state", "cleanup") == 0
    assert run(folder, "-f", "state", "import", exported) == 0
    capsys.readouterr()
    assert run(folder, "state", "export") == 0
    with open(exported) as f:
        assert json.loads(capsys.readouterr().out) == json.load(f)
    _, after = await run_peer(tmp_path, lc=lc)
    assert after == before


# --- upgrade ---------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["v1.json", "v2.json", "v4.json"])
def test_upgrade_works_and_keeps_the_state(tmp_path, capsys, fixture):  # t0050, t0051
    folder = str(tmp_path / "old")
    assert run(folder, "init") == 0
    put_upstream_state(folder, fixture)
    data = ServiceConfig.load(folder).raft_data_folder
    assert stateops.stored_version(data) < VERSION
    capsys.readouterr()
    assert run(folder, "state", "upgrade") == 0
    err = capsys.readouterr().err
    assert f"to {VERSION}" in err and "backup" in err
    assert stateops.stored_version(data) == VERSION
    with open(os.path.join(FIXTURES, fixture)) as f:
        expected = sorted(json.load(f)["PinMap"])
    assert export_cids(folder, capsys) == expected
    assert os.listdir(os.path.join(folder, "backups"))
    # a second upgrade has nothing to do
    assert run(folder, "state", "upgrade") == 0
    assert "up to date" in capsys.readouterr().err


@pytest_twisted.ensureDeferred
async def test_the_peer_refuses_an_out_of_date_state(tmp_path, capsys):
    lc = LocalCluster(reactor, str(tmp_path), 1)
    folder = folder_of(lc)
    lc.peers[0].config.save()
    put_upstream_state(folder, "v4.json")
    with pytest.raises(StateVersionError) as err:
        await run_peer(tmp_path, lc=lc)
    assert "Out of date ipfs-cluster state is saved" in str(err.value)
    assert "ipfs-cluster-service state upgrade" in str(err.value)
    # daemon --upgrade's first step, then the peer starts with the old pins
    from ipfscluster.state_cli import upgrade_before_daemon

    assert upgrade_before_daemon(folder) == 0
    _, listed = await run_peer(tmp_path, lc=lc)
    assert listed == sorted(UPSTREAM_CIDS)


# --- the execution lock ----------------------------------------------------------------------


def test_state_commands_wait_for_no_one_holding_the_lock(peer_with_pins, capsys):
    folder = folder_of(peer_with_pins)
    with stateops.ExecutionLock(folder):
        capsys.readouterr()
        assert run(folder, "state", "export") == 1
        err = capsys.readouterr().err
        assert err.startswith("error : could not obtain execution lock")
        assert "stop it first" in err
    assert run(folder, "state", "export") == 0


def test_daemon_upgrade_flag_is_parsed(tmp_path, capsys):
    from ipfscluster.service_cli import _command_parser

    args = _command_parser("daemon").parse_args(["--upgrade"])
    assert args.upgrade
    assert not _command_parser("daemon").parse_args([]).upgrade


@pytest_twisted.ensureDeferred
async def test_a_shutdown_backup_is_restored_with_state_import(tmp_path, capsys):
    lc, before = await run_peer(tmp_path, [cid(1), cid(2)])
    folder = folder_of(lc)
    (backup,) = os.listdir(os.path.join(folder, "backups"))
    assert run(folder, "-f", "state", "cleanup") == 0
    assert run(folder, "-f", "state", "import", os.path.join(folder, "backups", backup)) == 0
    assert export_cids(folder, capsys) == before
    _, after = await run_peer(tmp_path, lc=lc)
    assert after == before
