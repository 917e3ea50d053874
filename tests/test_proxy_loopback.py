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
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakecluster import FakeCluster
from ipfscluster.testing.fakeipfs import FakeIPFS
from ipfscluster.testing.harness import LocalCluster
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
    response = await treq.post(url, persistent=False, **kw)
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
    daemon_port = Multiaddr.parse(peer.kubo.api_multiaddr).port

    pool = ThreadPool(minthreads=1, maxthreads=1, name="ipfshttpclient")
    pool.start()

    def session():
        client = ipfshttpclient.Client(f"/ip4/127.0.0.1/tcp/{port}/http")
        direct = ipfshttpclient.Client(f"/ip4/127.0.0.1/tcp/{daemon_port}/http")
        try:
            seen = {"direct": direct.add(str(path), pin=False), "added": client.add(str(path))}
            seen["hello"] = client.add_bytes(b"hello world\n")
            seen["pinned"] = client.pin.add(seen["hello"])
            seen["ls"] = client.pin.ls(type="recursive")
            seen["cat"] = client.cat(seen["added"]["Hash"])
            return seen
        finally:
            client.close()
            direct.close()

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
        assert added == seen["direct"]["Hash"] and seen["added"]["Size"] == seen["direct"]["Size"]
        assert seen["hello"] == HELLO
        assert seen["cat"] == data
        assert seen["pinned"]["Pins"] == [HELLO]
        assert set(seen["ls"]["Keys"]) == {added, HELLO}
        await wait_state(lc, {added, HELLO}, "both pins on every peer")
        # the daemon itself was told pin=false: only the cluster pins
        adds = [c for c in peer.kubo.requests if c.endpoint == "add"]
        assert len(adds) == 3 and all([v.lower() for v in c.options.get("pin")] == ["false"] for c in adds)
        removed, listed = await threads.deferToThreadPool(reactor, pool, unpin, added)
        assert removed["Pins"] == [added]
        assert set(listed["Keys"]) == {HELLO}
        await wait_state(lc, {HELLO}, "the unpin on every peer")
    finally:
        pool.stop()


async def run_js(npm_cache, *args) -> dict:  # noqa: F811
    import shutil

    name = "test_proxy_kubo_rpc_client.mjs"
    target = os.path.join(npm_cache.folder, name)
    shutil.copyfile(os.path.join(HERE, name), target)
    stdout, stderr, code = await getProcessOutputAndValue(
        npm_cache.node, [target, *args], env=dict(os.environ), path=npm_cache.folder
    )
    assert code == 0, stderr.decode()
    return json.loads(stdout)


@pytest_twisted.ensureDeferred
async def test_kubo_rpc_client_steps(clusters, npm_cache):  # noqa: F811
    lc = await started(clusters)
    url = proxy_url(lc.peers[0])
    seen = await run_js(npm_cache, url, "add")
    added = seen["added"]
    # the same CID as a direct add to a daemon
    direct = FakeIPFS(reactor=reactor).add_bytes(b"through the proxy from JavaScript\n", pin=False)
    assert added == str(direct.cid)
    assert seen["pinned"] == added and seen["listed"] == [added]
    await wait_state(lc, {added}, "the JS client's add on every peer")
    seen = await run_js(npm_cache, proxy_url(lc.peers[2]), "rm", added)
    assert seen == {"removed": added, "listed": []}
    await wait_state(lc, set(), "the JS client's unpin on every peer")


@pytest_twisted.ensureDeferred
async def test_kubo_rpc_client_session(clusters, npm_cache):  # noqa: F811
    """The fake daemon's own kubo-rpc-client session, through the proxy: the same
    answers as from the daemon, and the wrapped directory becomes one cluster pin."""
    lc = await started(clusters)
    node, script = npm_cache.script("kubo_rpc_client_session.mjs")
    stdout, stderr, code = await getProcessOutputAndValue(
        node, [script, proxy_url(lc.peers[0])], env=dict(os.environ), path=npm_cache.folder
    )
    assert code == 0, stderr.decode()
    seen = json.loads(stdout)
    assert seen["added"]["cid"] == HELLO and seen["added"]["size"] == 20
    assert [e["path"] for e in seen["dir"]] == ["d/a.txt", "d/sub/b.txt", "d/sub", "d", ""]
    wrapper = seen["dir"][-1]["cid"]
    assert str(FakeIPFS(reactor=reactor).add_bytes(b"hello world\n", pin=False).cid) == HELLO
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


# --- the intercepted commands on the wire --------------------------------------------


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, dict]:
    """A multipart body like kubo clients send (one part per file, paths as names)."""
    boundary = "proxytestboundary"
    out = b""
    for name, data in files:
        out += (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name.replace('/', '%2F')}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def ndjson(body: bytes) -> list:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


@pytest_twisted.ensureDeferred
async def test_intercepted_commands(clusters):
    lc = await started(clusters)
    base = proxy_url(lc.peers[0]) + "/api/v0/"
    a = lc.peers[1].kubo.add_bytes(b"content a", pin=False).cid
    b = lc.peers[1].kubo.add_bytes(b"content b", pin=False).cid
    c = lc.peers[1].kubo.add_bytes(b"content c", pin=False).cid

    # pin/add: path form, several args, direct mode, cluster options
    response, body = await post(base + f"pin/add/{a}?arg={b}&name=two&replication=2")
    assert response.code == 200 and json.loads(body) == {"Pins": [str(a), str(b)]}
    response, body = await post(base + f"pin/add?arg=/ipfs/{c}&recursive=false")
    assert json.loads(body) == {"Pins": [str(c)]}
    await wait_state(lc, {str(a), str(b), str(c)}, "three pins on every peer")
    pin_a = lc.peers[2].cluster.c.state.get(a)
    assert pin_a.name == "two" and pin_a.replication_factor_max == 2 and len(pin_a.allocations) == 2
    assert lc.peers[2].cluster.c.state.get(c).max_depth == 0

    # pin/ls: the shared state, kubo's shapes and filters
    response, body = await post(base + "pin/ls")
    assert json.loads(body) == {
        "Keys": {str(a): {"Type": "recursive"}, str(b): {"Type": "recursive"}, str(c): {"Type": "direct"}}
    }
    response, body = await post(base + "pin/ls?stream=true&type=recursive&names=true")
    assert response.headers.getRawHeaders("x-chunked-output") == ["1"]
    assert sorted(ndjson(body), key=lambda e: e["Cid"]) == sorted(
        [{"Cid": str(a), "Type": "recursive", "Name": "two"}, {"Cid": str(b), "Type": "recursive", "Name": "two"}],
        key=lambda e: e["Cid"],
    )
    response, body = await post(base + "pin/ls?type=indirect")
    assert json.loads(body) == {"Keys": {}}
    response, body = await post(base + f"pin/ls/{c}?arg={a}")
    assert json.loads(body) == {"Keys": {str(c): {"Type": "direct"}, str(a): {"Type": "recursive"}}}
    response, body = await post(base + f"pin/ls?arg={HELLO}")
    assert response.code == 500
    assert json.loads(body) == {"Message": f"path '{HELLO}' is not pinned", "Code": 0, "Type": "error"}
    response, body = await post(base + "pin/ls?type=bogus")
    assert response.code == 400 and json.loads(body)["Code"] == 1

    # argument errors are 400 with code 1
    response, body = await post(base + "pin/add")
    assert response.code == 400
    assert json.loads(body) == {"Message": 'argument "ipfs-path" is required', "Code": 1, "Type": "error"}
    response, body = await post(base + "pin/add?arg=notacid")
    assert response.code == 400 and json.loads(body)["Message"].startswith('invalid path "notacid"')
    response, body = await post(base + f"pin/add?arg={a}&recursive=maybe")
    assert response.code == 400

    # pin/update: the new pin takes the old one's options; the old one goes (unpin=true)
    response, body = await post(base + f"pin/update?arg={a}&arg={HELLO}")
    assert json.loads(body) == {"Pins": [str(a), HELLO]}
    await wait_state(lc, {str(b), str(c), HELLO}, "the updated pin on every peer")
    assert lc.peers[1].cluster.c.state.get(CID.parse(HELLO)).name == "two"

    # pin/rm: several, then not pinned
    response, body = await post(base + f"pin/rm/{b}?arg={c}")
    assert json.loads(body) == {"Pins": [str(b), str(c)]}
    response, body = await post(base + f"pin/rm?arg={b}")
    assert response.code == 500
    assert json.loads(body) == {"Message": "not pinned or pinned indirectly", "Code": 0, "Type": "error"}
    await wait_state(lc, {HELLO}, "the unpins on every peer")

    # repo/stat: summed over the three daemons
    response, body = await post(base + "repo/stat?size-only=true")
    stat = json.loads(body)
    assert stat["RepoSize"] == sum(p.kubo.blockstore.size for p in lc.peers)
    assert stat["StorageMax"] == sum(p.kubo.storage_max for p in lc.peers)

    # other methods are the daemon's business (kubo refuses them)
    response = await treq.get(base + "pin/ls", persistent=False)
    assert response.code == 405
    await response.content()


@pytest_twisted.ensureDeferred
async def test_daemon_headers_mirrored_and_cached(clusters):
    lc = await started(clusters, n=1)
    base = proxy_url(lc.peers[0]) + "/api/v0/"
    kubo = lc.peers[0].kubo
    for _ in range(3):
        response, body = await post(base + "pin/ls", headers={"Origin": "http://webui.example"})
        assert response.code == 200
        assert response.headers.getRawHeaders("server") == [f"kubo/{kubo.version}"]
        assert response.headers.getRawHeaders("access-control-expose-headers")
        assert response.headers.getRawHeaders("vary") == ["Origin"]
        assert response.headers.getRawHeaders("content-type") == ["application/json"]
    # fetched from the daemon's version answer once, then cached
    assert [c.endpoint for c in kubo.requests].count("version") == 1


@pytest_twisted.ensureDeferred
async def test_add_roots_wrap_and_pin_false(clusters):
    lc = await started(clusters)
    base = proxy_url(lc.peers[0]) + "/api/v0/"
    kubo = lc.peers[0].kubo
    files = [("d/a.txt", b"a"), ("d/sub/b.txt", b"b"), ("top.txt", b"top")]

    # a directory and a file: both top-level entries are roots, nothing inside them
    body, headers = multipart(files)
    response, answer = await post(base + "add?stream-channels=true", data=body, headers=headers)
    assert response.code == 200
    out = ndjson(answer)
    by_name = {e["Name"]: e["Hash"] for e in out}
    assert set(by_name) == {"d/a.txt", "d/sub/b.txt", "d/sub", "d", "top.txt"}
    await wait_state(lc, {by_name["d"], by_name["top.txt"]}, "the two roots on every peer")

    # wrap-with-directory: only the wrapper (the same CID as a direct add)
    response, answer = await post(base + "add?wrap-with-directory=true&replication-min=1&replication-max=1",
                                  data=body, headers=headers)
    wrapper = ndjson(answer)[-1]
    assert wrapper["Name"] == ""
    direct_response, direct_answer = await post(kubo.api_url + "/api/v0/add?wrap-with-directory=true&pin=false",
                                                data=body, headers=headers)
    assert ndjson(direct_answer) == ndjson(answer)
    await wait_state(lc, {by_name["d"], by_name["top.txt"], wrapper["Hash"]}, "the wrapper pin on every peer")
    assert len(lc.peers[1].cluster.c.state.get(CID.parse(wrapper["Hash"])).allocations) == 1

    # pin=false from the client: relayed, nothing cluster-pinned
    body2, headers2 = multipart([("lonely.txt", b"lonely")])
    response, answer = await post(base + "add?pin=false", data=body2, headers=headers2)
    lonely = ndjson(answer)[0]["Hash"]
    assert lonely not in state_cids(lc)[0]
    assert all(c.options.get("pin") == ["false"] for c in kubo.requests if c.endpoint == "add")
    # only-hash would pin what is not stored: refused unless pin=false
    response, answer = await post(base + "add?only-hash=true", data=body2, headers=headers2)
    assert response.code == 400 and json.loads(answer)["Type"] == "error"


@pytest_twisted.ensureDeferred
async def test_add_with_failing_cluster_pin(clusters):
    lc = await started(clusters)
    base = proxy_url(lc.peers[0]) + "/api/v0/"
    # three peers cannot hold five copies: the add works, the cluster pin fails
    body, headers = multipart([("one.txt", b"just one file")])
    response, answer = await post(base + "add?replication-min=5&replication-max=5", data=body, headers=headers)
    assert response.code == 500
    error = json.loads(answer)
    assert error["Type"] == "error" and error["Code"] == 0
    assert error["Message"].startswith(
        "add operation was successful but an error occurred performing the cluster pin operation: "
    )
    # with more than one line the answer is already streaming: the error is the last line
    body, headers = multipart([("x/1.txt", b"1"), ("x/2.txt", b"2")])
    response, answer = await post(base + "add?replication-min=5&replication-max=5", data=body, headers=headers)
    assert response.code == 200
    lines = ndjson(answer)
    assert [e.get("Name") for e in lines[:-1]] == ["x/1.txt", "x/2.txt", "x"]
    assert lines[-1]["Type"] == "error" and lines[-1]["Message"].startswith("add operation was successful")
    assert state_cids(lc)[0] == set()


@pytest_twisted.ensureDeferred
async def test_daemon_down(clusters):
    lc = await started(clusters, n=1)
    base = proxy_url(lc.peers[0]) + "/api/v0/"
    await lc.peers[0].kubo.go_down()
    response, body = await post(base + "id")
    assert response.code == 500
    error = json.loads(body)
    assert error["Message"].startswith("error forwarding request to the IPFS daemon at http://127.0.0.1:")
    await lc.peers[0].kubo.come_up()
    response, body = await post(base + "id")
    assert response.code == 200 and json.loads(body)["ID"] == lc.peers[0].kubo.peer_id


@pytest_twisted.ensureDeferred
async def test_client_gone_mid_upload(clusters):
    """A client that disconnects half-way through an upload: the proxy drops the
    daemon request too, and nothing is left open or logged."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    from twisted.internet.protocol import Protocol

    lc = await started(clusters, n=1)
    proxy = proxy_of(lc.peers[0])
    body, headers = multipart([("half.bin", b"x" * 200_000)])
    head = (
        b"POST /api/v0/add HTTP/1.1\r\nHost: proxy\r\nContent-Type: " + headers["Content-Type"].encode()
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    client = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", proxy.addresses()[0].port), Protocol())
    client.transport.write(head + body[: len(body) // 2])
    await lc.poll(lambda: len(proxy._connections) == 1, what="the proxy connection")
    channel = next(iter(proxy._connections))
    await lc.poll(lambda: channel.requests and channel.requests[0].forwarding.pipe.sent > 0,
                  what="the upload reaching the daemon")
    client.transport.abortConnection()
    await lc.poll(lambda: not proxy._connections, what="the proxy connection closed")
    assert "add" not in [c.endpoint for c in lc.peers[0].kubo.requests]
    assert state_cids(lc) == [set()]


@pytest.fixture
def fake_proxy():
    """A proxy over an in-memory cluster (``FakeCluster``) and a fake daemon on loopback."""
    from ipfscluster.config.ipfshttp import IPFSHTTPConfig
    from ipfscluster.multiaddr import Multiaddr

    daemon = FakeIPFS(reactor=reactor)
    daemon.listen("/ip4/127.0.0.1/tcp/0")
    cluster = FakeCluster(clock=reactor)
    cluster.ipfs_api_url = lambda: daemon.api_url
    config = IPFSHTTPConfig(proxy_listen_multiaddress=Multiaddr.parse("/ip4/127.0.0.1/tcp/0"))
    proxy = IPFSProxy(config, cluster, reactor)
    pytest_twisted.blockon(defer.maybeDeferred(proxy.startService))
    yield proxy, cluster, daemon
    pytest_twisted.blockon(defer.maybeDeferred(proxy.stopService))
    pytest_twisted.blockon(daemon.stop())


async def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection; everything read until the server closes."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    from twisted.internet.protocol import Protocol

    class Collect(Protocol):
        def __init__(self):
            self.data, self.closed = [], defer.Deferred()

        def dataReceived(self, data):
            self.data.append(data)

        def connectionLost(self, reason):
            self.closed.callback(b"".join(self.data))

    proto = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), Collect())
    proto.transport.write(request)
    return await proto.closed


@pytest_twisted.ensureDeferred
async def test_listing_error_after_the_start_ends_with_the_trailer(fake_proxy):
    from ipfscluster.errors import ClusterError

    proxy, cluster, daemon = fake_proxy
    cluster.synthetic = 2000
    cluster.fail_after = {"pins": (1000, ClusterError("state went away"))}
    raw = await raw_exchange(
        proxy.addresses()[0].port,
        b"POST /api/v0/pin/ls?stream=true HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n",
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\nX-Stream-Error: state went away\r\n\r\n")
    assert body.count(b'"Cid"') >= 512  # what was listed before the error arrived


@pytest_twisted.ensureDeferred
async def test_paths_are_resolved_by_the_daemon(fake_proxy):
    proxy, cluster, daemon = fake_proxy
    base = f"http://127.0.0.1:{proxy.addresses()[0].port}/api/v0/"
    body, headers = multipart([("d/a.txt", b"a"), ("d/b.txt", b"b")])
    response, answer = await post(base + "add?wrap-with-directory=true", data=body, headers=headers)
    names = {e["Name"]: e["Hash"] for e in ndjson(answer)}
    wrapper = CID.parse(names[""])
    assert set(cluster.state) == {wrapper}
    # a path inside the pinned tree: the daemon resolves it, the shared state answers
    response, answer = await post(base + f"pin/ls?arg=/ipfs/{wrapper}/d/a.txt")
    assert response.code == 500
    assert json.loads(answer)["Message"] == f"path '/ipfs/{wrapper}/d/a.txt' is not pinned"
    # pin/update from the wrapper to a path inside it: both resolved to CIDs
    response, answer = await post(base + f"pin/update?arg={wrapper}&arg=/ipfs/{wrapper}/d&unpin=false")
    assert json.loads(answer) == {"Pins": [str(wrapper), names["d"]]}
    assert set(cluster.state) == {wrapper, CID.parse(names["d"])}
    response, answer = await post(base + f"pin/ls?arg=/ipfs/{wrapper}/d")
    assert json.loads(answer) == {"Keys": {names["d"]: {"Type": "recursive"}}}
