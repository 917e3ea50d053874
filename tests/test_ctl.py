"""ipfs-cluster-ctl commands in-process against a real loopback REST API.

Each test starts :class:`RestAPI` over :class:`FakeCluster` on 127.0.0.1 (port 0)
and runs ``run([...])`` with the running reactor, in text and json modes, checking
outputs and exit codes (0 / 1 local or network error / 2 API error).
"""

from __future__ import annotations

import io
import json

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import Clock

from ipfscluster.api.rest.server import RestAPI
from ipfscluster.config.restapi import RestAPIConfig
from ipfscluster.ctl.main import build_parser, command_paths, run
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakecluster import FakeCluster, content_cid, fake_peer_id, synthetic_cid
from ipfscluster.types import Alert, Metric, PinMode, TrackerStatus

CID1 = str(synthetic_cid(1))
CID2 = str(synthetic_cid(2))
UNKNOWN = str(synthetic_cid(99))


@pytest.fixture
def cluster():
    fake = FakeCluster(Clock())
    fake._pin(CID1, None)
    return fake


async def start_api(cluster, **config):
    config["listen_multiaddress"] = Multiaddr.parse("/ip4/127.0.0.1/tcp/0")
    api = RestAPI(RestAPIConfig(**config), cluster, reactor, "/nonexistent")
    await defer.maybeDeferred(api.startService)
    return api


@pytest.fixture
def api(cluster):
    api = pytest_twisted.blockon(defer.ensureDeferred(start_api(cluster)))
    yield api
    pytest_twisted.blockon(api.stopService())


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    @property
    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"Result({self.code}, out={self.out!r}, err={self.err!r})"


async def ctl(api, *argv, env=None, host=None):
    out, err = io.StringIO(), io.StringIO()
    host = host or str(api.addresses()[0])
    code = await run(["--host", host, *argv], reactor, out, err, env=env or {})
    return Result(code, out.getvalue(), err.getvalue())


# --- id, peers, version ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_id(api, cluster):
    r = await ctl(api, "id")
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0] == f"{cluster.peer_id} | peer0 | Sees 2 other peers"
    assert lines[1:3] == ["  > Addresses:", f"    - /ip4/127.0.0.1/tcp/9096/p2p/{cluster.peer_id}"]
    assert lines[3] == f"  > IPFS: {fake_peer_id(100)}"
    r = await ctl(api, "--enc", "json", "id")
    assert r.code == 0 and r.json["id"] == cluster.peer_id and r.json["peername"] == "peer0"


@pytest_twisted.ensureDeferred
async def test_peers(api, cluster):
    r = await ctl(api, "peers", "ls")
    assert r.code == 0
    assert [line.split(" | ")[0] for line in r.out.splitlines() if not line.startswith(" ")] == sorted(
        cluster.peer_ids
    )
    r = await ctl(api, "--enc=json", "peers", "ls")
    assert [d["id"] for d in r.json] == sorted(cluster.peer_ids)
    new = fake_peer_id(40)
    r = await ctl(api, "peers", "add", f"/ip4/10.0.0.9/tcp/9096/p2p/{new}")
    assert r.code == 0 and r.out.startswith(new)
    r = await ctl(api, "--enc", "json", "peers", "add", fake_peer_id(41))
    assert r.json["id"] == fake_peer_id(41)
    r = await ctl(api, "peers", "rm", new)
    assert (r.code, r.out) == (0, "") and new not in cluster.peer_ids
    r = await ctl(api, "peers", "rm", new)
    assert r.code == 2 and r.err.startswith("An error occurred:\n  Code: 404\n  Message: ")
    r = await ctl(api, "--enc", "json", "peers", "rm", fake_peer_id(41))
    assert (r.code, r.out) == (0, "") and fake_peer_id(41) not in cluster.peer_ids


@pytest_twisted.ensureDeferred
async def test_peers_argument_errors(api, cluster):
    r = await ctl(api, "peers", "add")
    assert r.code == 1 and "the following arguments are required: MULTIADDR|PEER_ID" in r.err
    r = await ctl(api, "peers", "add", "/ip4/1.2.3.4/tcp/x")
    assert r.code == 1 and r.err.startswith("error parsing multiaddress: ")
    r = await ctl(api, "peers", "add", "/ip4/1.2.3.4/tcp/1")
    assert r.code == 1 and "no /p2p/<peer ID> part" in r.err
    r = await ctl(api, "peers", "rm", "notapeer")
    assert r.code == 1 and r.err.startswith("error parsing peer ID: ")
    r = await ctl(api, "peers", "rm")
    assert r.code == 1
    r = await ctl(api, "peers")
    assert r.code == 1 and "a command is needed" in r.err
    assert not [c for c in cluster.calls if c[0] in ("peer_add", "peer_remove")]


@pytest_twisted.ensureDeferred
async def test_version(api):
    r = await ctl(api, "version")
    assert (r.code, r.out) == (0, "1.1.6\n")
    r = await ctl(api, "--enc", "json", "version")
    assert r.json == {"version": "1.1.6"}


# --- pins ----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_pin_add_shows_status(api, cluster):
    r = await ctl(api, "pin", "add", CID2)
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0] == f"{CID2}:"
    first = sorted(cluster.peer_ids)[0]
    assert lines[1] == f"    > {first} : PINNED | 0001-01-01T00:00:00Z | Attempts: 0 | Priority: false"
    assert len(lines) == 4
    r = await ctl(api, "pin", "add", "--replication", "2", "-n", "two", CID2)
    assert r.out.splitlines()[0] == f"{CID2} | two:"
    assert sorted(line.split(" : ")[1].split(" |")[0] for line in r.out.splitlines()[1:]) == [
        "PINNED", "PINNED", "REMOTE"
    ]  # fmt: skip
    r = await ctl(api, "--enc", "json", "pin", "add", "-r", "1", CID2)
    assert r.code == 0 and r.json["cid"] == CID2 and len(r.json["peer_map"]) == 3


@pytest_twisted.ensureDeferred
async def test_pin_add_options_and_no_status(api, cluster):
    peer = cluster.peer_ids[2]
    r = await ctl(
        api, "pin", "add", CID2, "--no-status", "--rmin", "1", "--rmax", "2", "--allocations", peer,
        "--name", "n1", "--mode", "direct", "--metadata", "a=b", "--metadata", "c=", "--expire-in", "1h",
    )  # fmt: skip
    assert r.code == 0, r
    pin = cluster.state[synthetic_cid(2)]
    assert (pin.replication_factor_min, pin.replication_factor_max, pin.name) == (1, 2, "n1")
    assert pin.mode is PinMode.DIRECT and pin.allocations[0] == peer
    assert dict(pin.metadata) == {"a": "b", "c": ""} and pin.expire_at > 0
    assert r.out.startswith(f"{CID2} | n1 | PIN-DIRECT | Repl. Factor: 1--2 | Allocations: [")
    assert " | Direct | Metadata: yes | Exp: " in r.out
    r = await ctl(api, "--enc", "json", "pin", "add", "--ns", CID2)
    assert r.json["cid"] == CID2 and r.json["type"] == "pin"


@pytest_twisted.ensureDeferred
async def test_pin_add_by_path(api, cluster):
    cluster.paths[f"/ipfs/{CID1}/sub"] = synthetic_cid(3)
    r = await ctl(api, "pin", "add", "--ns", f"/ipfs/{CID1}/sub")
    assert r.code == 0 and r.out.startswith(str(synthetic_cid(3)))
    r = await ctl(api, "pin", "rm", "--ns", f"/ipfs/{CID1}/sub")
    assert r.code == 0 and synthetic_cid(3) not in cluster.state
    r = await ctl(api, "pin", "add", "/nope/x")
    assert r.code == 1 and r.err.startswith("error parsing path: ")


@pytest_twisted.ensureDeferred
async def test_pin_add_bad_arguments(api, cluster):
    r = await ctl(api, "pin", "add", "QmNotACid")
    assert r.code == 1 and r.err.startswith('error parsing cid: invalid CID "QmNotACid"')
    r = await ctl(api, "pin", "add", CID2, "--allocations", "nope")
    assert r.code == 1 and r.err.startswith("error parsing peer ID: ")
    r = await ctl(api, "pin", "add", CID2, "--metadata", "novalue")
    assert r.code == 1 and r.err.startswith("error parsing metadata: ")
    r = await ctl(api, "pin", "add", CID2, "--expire-in", "soon")
    assert r.code == 1 and r.err.startswith("error parsing --expire-in: ")
    r = await ctl(api, "pin", "add", CID2, "--replication", "x")
    assert r.code == 1 and "invalid int value" in r.err
    assert not [c for c in cluster.calls if c[0] == "pin"]
    r = await ctl(api, "pin", "add", CID2, "--replication", "-5")
    assert r.code == 2 and "replication" in r.err  # the server names the parameter


@pytest_twisted.ensureDeferred
async def test_pin_wait(api, cluster):
    r = await ctl(api, "pin", "add", "--wait", CID2)
    assert r.code == 0 and r.out.count("PINNED") == 3
    cluster.set_status(CID2, cluster.peer_ids[1], TrackerStatus.PIN_ERROR, "disk full")
    r = await ctl(api, "pin", "add", "-w", CID2)
    assert r.code == 1 and "PIN_ERROR: disk full" in r.out
    peer = cluster.peer_ids[1]
    assert r.err == f"error waiting for {CID2}: {peer} reports PIN_ERROR for {CID2}: disk full\n"
    cluster.set_status(CID2, cluster.peer_ids[1], TrackerStatus.PINNING)
    r = await ctl(api, "pin", "add", "--wait", "--wait-timeout", "0.3", CID2)
    assert r.code == 1 and "did not become PINNED within 0.3s" in r.err and "PINNING" in r.out
    r = await ctl(api, "pin", "add", "--wait", "--wait-limit", "2", CID2)
    assert r.code == 0


@pytest_twisted.ensureDeferred
async def test_pin_rm(api, cluster):
    r = await ctl(api, "pin", "rm", CID1)
    assert r.code == 0 and r.out.count("UNPINNED") == 3
    r = await ctl(api, "pin", "rm", CID1)
    assert r.code == 2
    assert r.err.startswith("An error occurred:\n  Code: 404\n  Message: ") and "not pinned" in r.err
    r = await ctl(api, "--enc", "json", "pin", "rm", CID1)
    assert r.code == 2 and r.json["code"] == 404 and "not pinned" in r.json["message"]
    cluster._pin(CID1, None)
    r = await ctl(api, "--enc", "json", "pin", "rm", "--wait", CID1)
    assert r.code == 0 and {s["status"] for s in r.json["peer_map"].values()} == {"unpinned"}


@pytest_twisted.ensureDeferred
async def test_pin_update(api, cluster):
    cluster._pin(CID1, None)
    r = await ctl(api, "pin", "update", "--ns", "-n", "newname", CID1, CID2)
    assert r.code == 0, r
    pin = cluster.state[synthetic_cid(2)]
    assert pin.pin_update == synthetic_cid(1) and pin.name == "newname"
    r = await ctl(api, "--enc", "json", "pin", "update", "--wait", CID1, CID2)
    assert r.code == 0 and r.json["cid"] == CID2 and len(r.json["peer_map"]) == 3
    r = await ctl(api, "pin", "update", "--expire-in", "1h", CID1, CID2)
    assert r.code == 0 and r.out.startswith(f"{CID2}:")  # FROM has no name: the new pin neither
    assert cluster.state[synthetic_cid(2)].expire_at > 0 and cluster.state[synthetic_cid(2)].name == ""
    r = await ctl(api, "--enc", "json", "pin", "update", UNKNOWN, CID2)
    assert r.code == 2 and r.json["code"] == 404
    r = await ctl(api, "pin", "update", CID1, "bad")
    assert r.code == 1 and r.err.startswith("error parsing cid")


@pytest_twisted.ensureDeferred
async def test_pin_ls(api, cluster):
    cluster._pin(CID2, None)
    r = await ctl(api, "pin", "ls")
    assert r.code == 0 and len(r.out.splitlines()) == 2
    assert all(" | PIN | Repl. Factor: 0--0 | Allocations: [] | Recursive" in line for line in r.out.splitlines())
    r = await ctl(api, "--enc", "json", "pin", "ls")
    assert sorted(d["cid"] for d in r.json) == sorted([CID1, CID2])
    r = await ctl(api, "pin", "ls", CID1)
    assert r.out.startswith(CID1 + " | ")
    r = await ctl(api, "pin", "ls", "--filter", "meta-pin")
    assert (r.code, r.out) == (0, "")
    r = await ctl(api, "--enc", "json", "pin", "ls", "--filter", "meta-pin")
    assert r.json == []
    r = await ctl(api, "pin", "ls", "--filter", "nope")
    assert r.code == 1 and r.err.startswith("error parsing --filter: ")
    r = await ctl(api, "pin", "ls", UNKNOWN)
    assert r.code == 2 and "Code: 404" in r.err
    r = await ctl(api, "pin", "ls", "zzz")
    assert r.code == 1 and r.err.startswith("error parsing cid: ")


# --- status, sync, recover -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_status(api, cluster):
    cluster._pin(CID2, None)
    cluster.set_status(CID2, cluster.peer_ids[2], TrackerStatus.PIN_ERROR, "oops")
    r = await ctl(api, "status")
    assert r.code == 0 and r.out.count(":\n") == 2 and "PIN_ERROR: oops | " in r.out
    r = await ctl(api, "status", CID1)
    assert r.out.splitlines()[0] == f"{CID1}:" and len(r.out.splitlines()) == 4
    r = await ctl(api, "status", "--local", CID1)
    assert len(r.out.splitlines()) == 2
    r = await ctl(api, "status", "--filter", "error")
    assert r.out.splitlines()[0] == f"{CID2}:"
    r = await ctl(api, "--enc", "json", "status", CID1, UNKNOWN)
    assert [d["cid"] for d in r.json] == [CID1, UNKNOWN]
    r = await ctl(api, "--enc", "json", "status", CID1)
    assert r.json["cid"] == CID1
    r = await ctl(api, "--enc", "json", "status", "--filter", "sharded")
    assert r.json == []
    r = await ctl(api, "status", "--filter", "bogus")
    assert r.code == 1 and r.err.startswith("error parsing --filter: ")
    r = await ctl(api, "status", "QmBad")
    assert r.code == 1 and r.err.startswith("error parsing cid: ")


@pytest_twisted.ensureDeferred
async def test_sync_and_recover(api, cluster):
    r = await ctl(api, "sync")
    assert (r.code, r.out) == (0, "")
    cluster.set_status(CID1, cluster.peer_ids[1], TrackerStatus.PIN_ERROR, "x")
    r = await ctl(api, "--enc", "json", "sync")
    assert [d["cid"] for d in r.json] == [CID1]
    r = await ctl(api, "sync", "--local", CID1)
    assert r.code == 0 and len(r.out.splitlines()) == 2
    r = await ctl(api, "recover")
    assert r.code == 0 and "PIN_QUEUED" in r.out
    r = await ctl(api, "--enc", "json", "recover", "--local")
    assert r.json == []
    r = await ctl(api, "recover", CID1)
    assert r.code == 0 and r.out.startswith(CID1)
    r = await ctl(api, "--enc", "json", "recover", "--local", CID1)
    assert r.json["cid"] == CID1 and cluster.calls[-1] == ("recover", (synthetic_cid(1), True))
    r = await ctl(api, "recover", "bad")
    assert r.code == 1 and r.err.startswith("error parsing cid: ")


# --- add -----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_add(api, cluster, tmp_path):
    a = tmp_path / "a.txt"
    a.write_bytes(b"aaa")
    d = tmp_path / "dir"
    d.mkdir()
    (d / "b.txt").write_bytes(b"bbb")
    r = await ctl(api, "add", str(a))
    assert (r.code, r.out) == (0, f"added {content_cid(b'aaa')} a.txt\n")
    r = await ctl(api, "add", str(d))
    assert r.code == 1 and r.err.startswith("error adding: ") and "-r/--recursive" in r.err
    r = await ctl(api, "add", "-r", "-q", "--name", "up", "--rmin", "1", "--rmax", "1", str(d))
    assert r.code == 0 and r.out.splitlines()[-1] == str(content_cid(b"bbb"))
    assert cluster.state[content_cid(b"bbb")].name == "up"
    params = cluster.calls[-1][1][1]
    assert (params["replication-min"], params["name"]) == ("1", "up")
    r = await ctl(api, "add", "-Q", "--no-pin", "--cid-version", "1", "--raw-leaves", str(a), str(d / "b.txt"))
    assert r.out == f"{content_cid(b'bbb')}\n"
    assert {k: cluster.calls[-1][1][1][k] for k in ("no-pin", "cid-version", "raw-leaves")} == {
        "no-pin": "true", "cid-version": "1", "raw-leaves": "true"
    }  # fmt: skip
    r = await ctl(api, "--enc", "json", "add", "--no-stream", "--wait", str(a))
    assert r.code == 0 and [x["cid"] for x in r.json] == [str(content_cid(b"aaa"))]
    r = await ctl(api, "add", "--layout", "trickle", "--chunker", "size-10", str(tmp_path / "missing"))
    assert r.code == 1 and r.err.startswith("error adding: cannot read ")


# --- health ------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_health(api, cluster, tmp_path):
    r = await ctl(api, "health", "graph")
    assert r.code == 0 and r.out.startswith("digraph cluster {\n") and r.out.endswith("}\n")
    assert r.out.count("->") == 6 + 3 + 6  # cluster links, cluster->ipfs, ipfs links
    out = tmp_path / "g.dot"
    r = await ctl(api, "health", "graph", "-f", str(out), "--all-ipfs-peers")
    assert (r.code, r.out) == (0, "") and out.read_text().startswith("digraph")
    r = await ctl(api, "--enc", "json", "health", "graph")
    assert r.json["cluster_id"] == cluster.peer_id
    r = await ctl(api, "health", "metrics")
    assert (r.code, r.out) == (0, "")
    cluster.metrics["freespace"] = [Metric("freespace", peer=cluster.peer_id, value="77", expire=10**18, valid=True)]
    r = await ctl(api, "health", "metrics")
    assert r.out == "freespace\n"
    r = await ctl(api, "health", "metrics", "freespace")
    assert r.out == f"{cluster.peer_id} | freespace: 77 | Expires: 2001-09-09T01:46:40Z\n"
    r = await ctl(api, "--enc", "json", "health", "metrics", "freespace")
    assert r.json[0]["value"] == "77"
    r = await ctl(api, "--enc", "json", "health", "metrics")
    assert r.json == ["freespace"]
    cluster.alert_list.append(Alert(Metric("ping", peer=cluster.peer_ids[1], expire=10**18), triggered_at=2 * 10**18))
    r = await ctl(api, "health", "alerts")
    assert r.out == (
        f"{cluster.peer_ids[1]}: ping. Expired at: 2001-09-09T01:46:40Z. Triggered at: 2033-05-18T03:33:20Z\n"
    )
    r = await ctl(api, "--enc", "json", "health", "alerts")
    assert r.json[0]["name"] == "ping"


# --- global flags and errors ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_api_error_exit_code_in_both_modes(api, cluster):
    from ipfscluster.errors import NoLeader

    cluster.failures["status_all"] = NoLeader("no leader yet")
    r = await ctl(api, "status")
    assert (r.code, r.out, r.err) == (2, "", "An error occurred:\n  Code: 503\n  Message: no leader yet\n")
    r = await ctl(api, "--enc", "json", "status")
    assert r.code == 2 and r.json == {"code": 503, "message": "no leader yet"}


@pytest_twisted.ensureDeferred
async def test_network_errors(api):
    port = api.addresses()[0].port
    await api.stopService()
    r = await ctl(api, "id", host=f"127.0.0.1:{port}")
    assert r.code == 1
    assert r.err.startswith(f"error performing request to http://127.0.0.1:{port}/id: connection refused")
    r = await ctl(api, "id", host="nohost")
    assert r.code == 1 and r.err.startswith('error parsing host: invalid host "nohost"')


@pytest_twisted.ensureDeferred
async def test_timeout_is_applied(api, cluster):
    hang = defer.Deferred()
    cluster.gate = (1, lambda: hang)
    r = await ctl(api, "--timeout", "0.2", "peers", "ls")
    assert r.code == 1 and "no complete answer within 0.2s" in r.err


@pytest_twisted.ensureDeferred
async def test_debug_logs_requests(api):
    r = await ctl(api, "-d", "version")
    assert r.code == 0 and r.out == "1.1.6\n"
    assert f"GET http://127.0.0.1:{api.addresses()[0].port}/version" in r.err
    assert 'body: {"version":"1.1.6"}' in r.err


@pytest_twisted.ensureDeferred
async def test_basic_auth(cluster):
    api = await start_api(cluster, basic_auth_credentials={"testuser": "testpass", "userwithoutpass": ""})
    try:
        r = await ctl(api, "id")
        assert r.code == 2 and "Code: 401\n  Message: Unauthorized" in r.err
        for creds in ("testuser:wrong", "wrong:testpass", "testuser", "userwithoutpass:x"):
            r = await ctl(api, "--force-http", "--basic-auth", creds, "id")
            assert r.code == 2 and "401" in r.err, creds
        for creds in ("testuser:testpass", "userwithoutpass"):
            r = await ctl(api, "-f", "--basic-auth", creds, "version")
            assert (r.code, r.out) == (0, "1.1.6\n"), creds
        r = await ctl(api, "-f", "version", env={"CLUSTER_CREDENTIALS": "testuser:testpass"})
        assert r.code == 0
        # basic auth implies https: a plain HTTP server makes the TLS handshake fail
        r = await ctl(api, "--basic-auth", "testuser:testpass", "version")
        assert r.code == 1 and r.err.startswith("error performing request to https://") and "drop --https" in r.err
    finally:
        await api.stopService()


# --- local commands and help -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_commands_and_help(api):
    r = await ctl(api, "commands")
    paths = r.out.splitlines()
    for name in ("id", "peers ls", "peers add", "peers rm", "pin add", "pin rm", "pin ls", "pin update",
                 "status", "sync", "recover", "add", "version", "health graph", "health metrics",
                 "health alerts", "commands"):
        assert f"ipfs-cluster-ctl {name}" in paths
    for argv in (["--help"], ["-h"], ["help"], ["h"]):
        r = await ctl(api, *argv)
        assert r.code == 0 and "Usage:" in r.out and "Commands:" in r.out and "Global options:" in r.out
    r = await ctl(api, "help", "pin", "add")
    assert r.out.startswith("Usage: ipfs-cluster-ctl pin add")
    r = await ctl(api, "help", "nope")
    assert r.code == 1 and 'unknown command "nope"' in r.err
    r = await ctl(api, "--version")
    assert (r.code, r.out) == (0, "ipfs-cluster-ctl version 0.1.0\n")
    r = await ctl(api, "nosuchcommand")
    assert r.code == 1 and "invalid choice" in r.err


@pytest_twisted.ensureDeferred
async def test_every_help_fits_120_columns(api):
    parser = build_parser(io.StringIO())
    for path in ["ipfs-cluster-ctl"] + command_paths(parser):
        r = await ctl(api, *path.split()[1:], "--help")
        assert r.code == 0, path
        assert max(len(line) for line in r.out.splitlines()) <= 120, path


def _self_signed(folder):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.mark.allow_logged_errors  # twisted logs the failed certificate check itself
@pytest_twisted.ensureDeferred
async def test_https(cluster, tmp_path):
    _self_signed(tmp_path)
    config = RestAPIConfig(
        listen_multiaddress=Multiaddr.parse("/ip4/127.0.0.1/tcp/0"), ssl_cert_file="cert.pem", ssl_key_file="key.pem"
    )
    api = RestAPI(config, cluster, reactor, str(tmp_path))
    await defer.maybeDeferred(api.startService)
    try:
        r = await ctl(api, "--https", "--no-check-certificate", "version")
        assert (r.code, r.out) == (0, "1.1.6\n"), r
        r = await ctl(api, "--https", "version")  # self-signed: verification fails
        assert r.code == 1 and "TLS failed" in r.err and "--no-check-certificate" in r.err
        r = await ctl(api, "version")  # plain HTTP against the TLS listener
        assert r.code == 1 and r.err.startswith("error performing request to http://")
    finally:
        await api.stopService()


@pytest_twisted.ensureDeferred
async def test_add_progress_bar_on_a_terminal(api, tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    f = tmp_path / "big"
    # under 64 KiB: server.py's _LimitedRequest.gotLength reads request.path before twisted sets it,
    # so a bigger /add body over a real socket is dropped (reported to the REST API owner)
    f.write_bytes(b"x" * 60_000)
    out, err = io.StringIO(), Terminal()
    code = await run(["--host", str(api.addresses()[0]), "add", str(f)], reactor, out, err, env={})
    assert code == 0 and out.getvalue().startswith("added "), err.getvalue()
    frames = err.getvalue().split("\r")
    assert any(frame.startswith("[" + "#" * 30 + "] 100%") for frame in frames)
    assert frames[-1] == ""  # the bar is erased before the result is printed
