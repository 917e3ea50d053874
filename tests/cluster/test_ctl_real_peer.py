"""``ipfs-cluster-ctl`` against real peers: a 2-peer cluster with its REST APIs on
loopback (RPC over TLS, Raft on disk, fake kubo daemons), every command in text and
json modes, and the exit codes."""

from __future__ import annotations

import io
import json

import pytest
import pytest_twisted
from twisted.internet import reactor

from ipfscluster.ctl.main import run
from ipfscluster.tap import api_services
from ipfscluster.testing.harness import LocalCluster

pytestmark = pytest.mark.loopback

CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
OTHER = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
PORT0 = {"restapi": {"listen_multiaddress": "/ip4/127.0.0.1/tcp/0"},
         "ipfshttp": {"proxy_listen_multiaddress": "/ip4/127.0.0.1/tcp/0"}}


@pytest_twisted.async_yield_fixture
async def peers(tmp_path):
    lc = LocalCluster(reactor, str(tmp_path), 2, overrides=PORT0,
                      apis_factory=lambda cluster: api_services(cluster, reactor))
    await lc.start()
    yield lc
    await lc.stop()


def host(lc, i=0) -> str:
    rest = lc.peers[i].cluster.c.apis[0]
    return str(rest.addresses()[0])


async def ctl(lc, *argv, i=0):
    out, err = io.StringIO(), io.StringIO()
    code = await run(["--host", host(lc, i), *argv], reactor, out, err, env={})
    return code, out.getvalue(), err.getvalue()


async def both(lc, *argv, i=0):
    """Run in text and json modes; both must succeed; return (text, parsed json)."""
    code, text, err = await ctl(lc, *argv, i=i)
    assert code == 0, err
    code, out, err = await ctl(lc, "--enc", "json", *argv, i=i)
    assert code == 0, err
    return text, (json.loads(out) if out.strip() else None)


@pytest_twisted.ensureDeferred
async def test_every_command_against_real_peers(peers, tmp_path):
    lc = peers
    ids = sorted(p.peer_id for p in lc.peers)

    text, data = await both(lc, "id")
    assert text.startswith(lc.peers[0].peer_id) and "Sees 1 other peers" in text
    assert data["id"] == lc.peers[0].peer_id and data["ipfs"]["id"] == lc.peers[0].kubo.peer_id

    text, data = await both(lc, "peers", "ls")
    assert sorted(d["id"] for d in data) == ids

    text, data = await both(lc, "version")
    assert text.strip() and data["version"] == text.strip()

    code, text, err = await ctl(lc, "pin", "add", "--wait", "--wait-timeout", "30", CID)
    assert code == 0, err
    assert "PINNED" in text
    text, data = await both(lc, "pin", "ls")
    assert CID in text and [d["cid"] for d in data] == [CID]
    text, data = await both(lc, "pin", "ls", CID)
    assert data["cid"] == CID

    text, data = await both(lc, "status", CID, i=1)
    assert text.count("PINNED") == 2 and set(data["peer_map"]) == set(ids)
    text, data = await both(lc, "status")
    assert [d["cid"] for d in data] == [CID]
    text, data = await both(lc, "status", "--local", CID)
    assert list(data["peer_map"]) == [lc.peers[0].peer_id]

    text, data = await both(lc, "sync", CID)
    assert data["cid"] == CID
    text, data = await both(lc, "recover", CID)
    assert all(s["status"] == "pinned" for s in data["peer_map"].values())

    text, data = await both(lc, "health", "graph")
    assert "digraph" in text and data["cluster_id"] == lc.peers[0].peer_id
    await both(lc, "health", "alerts")
    text, data = await both(lc, "health", "metrics")
    assert "ping" in data

    upload = tmp_path / "hello.txt"
    upload.write_bytes(b"hello world\n")
    code, text, err = await ctl(lc, "add", str(upload))
    assert code == 0, err
    assert CID in text  # kubo's CID for "hello world\n", imported by the real daemon

    code, text, err = await ctl(lc, "pin", "rm", "--wait", "--wait-timeout", "30", CID)
    assert code == 0, err
    code, text, err = await ctl(lc, "--enc", "json", "pin", "ls")
    assert code == 0 and json.loads(text or "[]") == []


@pytest_twisted.ensureDeferred
async def test_exit_codes_against_a_real_peer(peers):
    lc = peers
    code, _, err = await ctl(lc, "pin", "rm", OTHER)  # not in the shared state: API error
    assert code == 2 and "404" in err
    code, out, _ = await ctl(lc, "--enc", "json", "pin", "rm", OTHER)
    assert code == 2 and json.loads(out)["code"] == 404
    code, _, err = await ctl(lc, "status", "not-a-cid")  # local argument error
    assert code == 1 and err.startswith("error parsing cid")
    out, err = io.StringIO(), io.StringIO()  # nothing listens there: network error
    code = await run(["--host", "/ip4/127.0.0.1/tcp/1", "id"], reactor, out, err, env={})
    assert code == 1 and err.getvalue().startswith("error ")
