"""RestClient against the real Klein resource of the REST API over FakeCluster.

Requests go through ``treq.testing.RequestTraversalAgent`` (the in-memory agent
behind ``StubTreq``) wrapped in a real ``treq.client.HTTPClient``, so streamed
bodies and upload producers work as on a socket; a pump flushes the in-memory
connections every reactor turn while a test runs.  One test uses ``StubTreq``
itself.  Timeouts run on a ``Clock``.
"""

from __future__ import annotations

import json
import os

import attrs
import pytest
import pytest_twisted
from treq.client import HTTPClient
from treq.testing import RequestTraversalAgent, StubTreq
from twisted.internet import defer, reactor, task
from twisted.internet.task import Clock

from ipfscluster.api.rest.client import RestClient, collect_upload, options_query, parse_host
from ipfscluster.api.rest.server import RestAPI
from ipfscluster.config.restapi import RestAPIConfig
from ipfscluster.errors import (
    APIBadResponse,
    APIError,
    APITimeout,
    InvalidInput,
    InvalidMultiaddr,
    NoLeader,
)
from ipfscluster.testing.fakecluster import FakeCluster, content_cid, fake_peer_id, synthetic_cid
from ipfscluster.types import Alert, Metric, PinMode, PinOptions, PinType, TrackerStatus

CID1 = synthetic_cid(1)
CID2 = synthetic_cid(2)
UNKNOWN = synthetic_cid(99)
URL = "http://127.0.0.1:9094"


class Stub:
    """An in-memory HTTP connection to a RestAPI resource, pumped every reactor turn."""

    def __init__(self, resource):
        self.agent = RequestTraversalAgent(resource)
        self.http = HTTPClient(self.agent)
        self._pump = task.LoopingCall(self.agent.flush)
        self._pump.clock = reactor
        self._pump.start(0.001)

    def stop(self):
        self._pump.stop()
        self.agent.flush()


@pytest.fixture
def cluster():
    fake = FakeCluster(Clock())
    fake._pin(CID1, None)
    return fake


@pytest.fixture
def make_client(cluster):
    stubs = []

    def make(api_config=None, **kw):
        api = RestAPI(RestAPIConfig(**(api_config or {})), cluster, cluster.clock, "/nonexistent")
        stub = Stub(api.resource())
        stubs.append(stub)
        kw.setdefault("reactor", reactor)
        return RestClient(URL, http_client=stub.http, **kw)

    yield make
    for stub in stubs:
        stub.stop()


@pytest.fixture
def client(make_client):
    return make_client()


async def collect(items):
    return [item async for item in items]


# --- addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("/ip4/127.0.0.1/tcp/9094", ("127.0.0.1", 9094)),
        ("/ip6/::1/tcp/80", ("::1", 80)),
        ("/dns4/example.org/tcp/443", ("example.org", 443)),
        ("127.0.0.1:9094", ("127.0.0.1", 9094)),
        ("[::1]:9094", ("::1", 9094)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parse_host(text, expected):
    assert parse_host(text) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("127.0.0.1", "host:port"),
        ("127.0.0.1:99999", "host:port"),
        ("/ip4/127.0.0.1/udp/9094", "/tcp/ port"),
        ("/ip4/1.2.3.4/tcp/x", "invalid multiaddress"),
        ("/p2p/" + fake_peer_id(1), "libp2p is not supported"),
    ],
)
def test_parse_host_errors(text, message):
    with pytest.raises(InvalidMultiaddr) as info:
        parse_host(text)
    assert message in str(info.value)


def test_base_url():
    assert RestClient("/ip6/::1/tcp/9094", https=True, reactor=Clock(), http_client=object()).base_url == (
        "https://[::1]:9094"
    )
    assert RestClient("example.org:80", reactor=Clock(), http_client=object()).base_url == "http://example.org:80"
    assert RestClient("http://h:1/", reactor=Clock(), http_client=object()).base_url == "http://h:1"


# --- peers -----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_id_version_peers(client, cluster):
    ident = await client.id()
    assert ident.id == cluster.peer_id and ident.peername == "peer0"
    assert (await client.version()).version == "1.1.6"
    peers = await collect(client.peers())
    assert [p.id for p in peers] == sorted(cluster.peer_ids)


@pytest_twisted.ensureDeferred
async def test_stub_treq_works_too(cluster):
    api = RestAPI(RestAPIConfig(), cluster, cluster.clock, "/x")
    stub = StubTreq(api.resource())
    client = RestClient(URL, http_client=stub, reactor=reactor)
    d = defer.ensureDeferred(client.id())
    stub.flush()
    assert (await d).id == cluster.peer_id


@pytest_twisted.ensureDeferred
async def test_peer_add_and_remove(client, cluster):
    new = fake_peer_id(30)
    ident = await client.peer_add(f"/ip4/10.0.0.1/tcp/9096/p2p/{new}")
    assert ident.id == new
    assert cluster.calls[-1] == ("peer_add", (f"/ip4/10.0.0.1/tcp/9096/p2p/{new}",))
    other = fake_peer_id(31)
    assert (await client.peer_add(other)).id == other
    assert cluster.calls[-1] == ("peer_add", (other,))
    await client.peer_remove(new)
    assert new not in cluster.peer_ids
    with pytest.raises(APIError) as info:
        await client.peer_remove(new)
    assert info.value.code == 404 and "not a member" in info.value.message


# --- pins ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_pin_with_options_round_trips(client, cluster):
    options = PinOptions(
        replication_factor_min=1,
        replication_factor_max=2,
        name="my pin",
        mode=PinMode.DIRECT,
        user_allocations=(cluster.peer_ids[2],),
        metadata={"owner": "bob"},
    )
    pin = await client.pin(CID2, options)
    assert pin.cid == CID2 and pin.name == "my pin" and pin.mode is PinMode.DIRECT
    assert pin.allocations[0] == cluster.peer_ids[2] and len(pin.allocations) == 2
    assert dict(pin.metadata) == {"owner": "bob"}
    assert cluster.state[CID2] == pin


@pytest_twisted.ensureDeferred
async def test_pin_path_unpin_and_update(client, cluster):
    pin = await client.pin_path(f"/ipfs/{CID2}")
    assert pin.cid == CID2
    cluster.paths[f"/ipfs/{CID1}/a b"] = UNKNOWN
    assert (await client.pin_path(f"/ipfs/{CID1}/a b")).cid == UNKNOWN
    assert cluster.calls[-1][1][0] == f"/ipfs/{CID1}/a b"
    assert (await client.unpin_path(f"/ipfs/{CID1}/a b")).cid == UNKNOWN
    removed = await client.unpin(CID2)
    assert removed.cid == CID2 and CID2 not in cluster.state
    with pytest.raises(APIError) as info:
        await client.unpin(CID2)
    assert info.value.code == 404
    updated = await client.pin_update(CID1, CID2, PinOptions(name="new"))
    assert updated.cid == CID2 and updated.pin_update == CID1 and updated.name == "new"
    with pytest.raises(InvalidInput):
        await client.pin_path("/nope/x")


@pytest_twisted.ensureDeferred
async def test_allocations(client, cluster):
    cluster._pin(CID2, None)
    pins = await collect(client.allocations())
    assert sorted(p.cid for p in pins) == sorted([CID1, CID2])
    assert await collect(client.allocations(PinType.META)) == []
    assert cluster.calls[-1] == ("pins", (PinType.META,))
    assert (await client.allocation(CID1)).cid == CID1
    with pytest.raises(APIError) as info:
        await client.allocation(UNKNOWN)
    assert info.value.code == 404 and "not pinned" in str(info.value)


# --- status, sync, recover ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_status(client, cluster):
    gpi = await client.status(CID1)
    assert set(gpi.peer_map) == set(cluster.peer_ids)
    assert {s.status for s in gpi.peer_map.values()} == {TrackerStatus.PINNED}
    local = await client.status(CID1, local=True)
    assert list(local.peer_map) == [cluster.peer_id]
    unknown = await client.status(UNKNOWN)
    assert {s.status for s in unknown.peer_map.values()} == {TrackerStatus.UNPINNED}


@pytest_twisted.ensureDeferred
async def test_status_all_filters(client, cluster):
    cluster._pin(CID2, None)
    cluster.set_status(CID2, cluster.peer_ids[1], TrackerStatus.PIN_ERROR, "boom")
    everything = await collect(client.status_all())
    assert sorted(g.cid for g in everything) == sorted([CID1, CID2])
    errors = await collect(client.status_all(TrackerStatus.ERROR))
    assert [g.cid for g in errors] == [CID2]
    assert errors[0].peer_map[cluster.peer_ids[1]].error == "boom"
    local = await collect(client.status_all(local=True))
    assert all(list(g.peer_map) == [cluster.peer_id] for g in local)
    picked = await collect(client.status_all(cids=[UNKNOWN, CID1]))
    assert [g.cid for g in picked] == [UNKNOWN, CID1]
    assert await collect(client.status_all(TrackerStatus.SHARDED)) == []


@pytest_twisted.ensureDeferred
async def test_sync_and_recover(client, cluster):
    cluster.set_status(CID1, cluster.peer_ids[2], TrackerStatus.PIN_ERROR, "oops")
    assert [g.cid for g in await collect(client.sync_all())] == [CID1]
    assert list((await client.sync(CID1, local=True)).peer_map) == [cluster.peer_id]
    assert cluster.calls[-1] == ("sync", (CID1, True))
    recovered = await collect(client.recover_all())
    assert recovered[0].peer_map[cluster.peer_ids[2]].status == TrackerStatus.PIN_QUEUED
    assert await collect(client.recover_all(local=True)) == []
    assert cluster.calls[-1] == ("recover_all", (True,))
    assert (await client.recover(CID1)).cid == CID1


# --- add -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_add_files_with_progress(client, cluster, tmp_path):
    a = tmp_path / "a.txt"
    a.write_bytes(b"hello")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(300_000))
    seen = []
    out = await collect(
        client.add([str(a), str(big)], options_query(PinOptions(name="up")), on_progress=lambda s, t: seen.append((s, t)))
    )
    assert [(o.name, o.cid) for o in out] == [
        ("a.txt", content_cid(b"hello")),
        ("big.bin", content_cid(big.read_bytes())),
    ]
    assert cluster.state[content_cid(b"hello")].name == "up"
    total = seen[-1][1]
    assert seen[-1][0] == total > 300_000
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)


@pytest_twisted.ensureDeferred
async def test_add_folder_sends_the_tree(client, cluster, tmp_path):
    root = tmp_path / "d"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "x y.txt").write_bytes(b"x")
    (root / ".hidden").write_bytes(b"h")
    os.symlink("sub/x y.txt", root / "link")
    with pytest.raises(InvalidInput, match="use -r/--recursive"):
        await collect(client.add([str(root)]))
    assert [c for c in cluster.calls if c[0] == "add"] == []
    out = await collect(client.add([str(root)], {"no-pin": "true"}, recursive=True))
    parts = cluster.calls[-1][1][0]
    assert [(p.filename, p.content_type) for p in parts] == [
        ("d", "application/x-directory"),
        ("d%2Flink", "application/symlink"),
        ("d%2Fsub", "application/x-directory"),
        ("d%2Fsub%2Fx%20y.txt", "application/octet-stream"),
    ]
    assert parts[1].body == b"sub/x y.txt" and parts[3].body == b"x"
    assert len(out) == 4 and not cluster.state.keys() - {CID1}
    entries = collect_upload([str(root)], recursive=True, hidden=True)
    assert "d/.hidden" in [e.name for e in entries]


@pytest_twisted.ensureDeferred
async def test_add_bad_paths_and_options(client, tmp_path):
    with pytest.raises(InvalidInput, match="cannot read"):
        await collect(client.add([str(tmp_path / "missing")]))
    with pytest.raises(InvalidInput, match="nothing to add"):
        await collect(client.add([]))
    f = tmp_path / "f"
    f.write_bytes(b"1")
    with pytest.raises(APIError) as info:
        await collect(client.add([str(f)], {"cid-version": "7"}))
    assert info.value.code == 400 and "cid-version" in info.value.message


# --- health and monitoring -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_health_graph_alerts_metrics(client, cluster):
    await client.health()
    graph = await client.connect_graph()
    assert graph.cluster_id == cluster.peer_id and len(graph.cluster_links) == 3
    assert await client.alerts() == []
    metric = Metric("ping", peer=cluster.peer_ids[1], value="", expire=5, valid=True)
    cluster.alert_list.append(Alert(metric, triggered_at=10**18))
    cluster.metrics["freespace"] = [Metric("freespace", peer=cluster.peer_id, value="100", valid=True)]
    assert await client.alerts() == [Alert(metric, triggered_at=10**18)]
    assert await client.metric_names() == ["freespace"]
    assert [m.value for m in await client.metrics("freespace")] == ["100"]
    assert await client.metrics("nothing") == []


# --- errors and streaming ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_api_errors_carry_code_and_message(client, cluster):
    cluster.failures["id"] = NoLeader()
    with pytest.raises(APIError) as info:
        await client.id()
    assert info.value.code == 503 and "No Raft leader" in info.value.message
    cluster.failures["status_all"] = NoLeader("no leader yet")
    with pytest.raises(APIError) as info:
        await collect(client.status_all())
    assert (info.value.code, info.value.message) == (503, "no leader yet")


@pytest_twisted.ensureDeferred
async def test_basic_auth(make_client):
    users = {"basic_auth_credentials": {"admin": "pw", "nopass": ""}}
    with pytest.raises(APIError) as info:
        await make_client(users).id()
    assert (info.value.code, info.value.message) == (401, "Unauthorized")
    with pytest.raises(APIError):
        await make_client(users, basic_auth=("admin", "wrong")).id()
    assert (await make_client(users, basic_auth=("admin", "pw")).version()).version == "1.1.6"
    assert (await make_client(users, basic_auth=("nopass", "")).version()).version == "1.1.6"


@pytest_twisted.ensureDeferred
async def test_stream_yields_items_as_they_come(client, cluster):
    """Items reach the caller while the server still has more to produce."""
    release = []

    def gate():
        d = defer.Deferred()
        release.append(d)
        return d

    cluster.state.clear()
    for i in range(50):
        cluster._pin(synthetic_cid(100 + i), None)
    cluster.gate = (10, gate)
    received = []
    items = client.status_all()
    for _ in range(5):
        pending = defer.ensureDeferred(items.__anext__())
        while not release:
            await task.deferLater(reactor, 0.001, lambda: None)
        # the server waits for us: all it made so far is in our hands already
        assert cluster.produced == len(received)
        release.pop().callback(None)
        received.append(await pending)
        for _ in range(9):
            received.append(await items.__anext__())
    with pytest.raises(StopAsyncIteration):
        await items.__anext__()
    assert [g.cid for g in received] == sorted(cluster.state)


@pytest_twisted.ensureDeferred
async def test_closing_a_stream_early_stops_it(client, cluster):
    cluster.synthetic = 100_000
    # the in-memory transport never pushes back, so the server makes 1000 items per turn
    cluster.gate = (1000, lambda: task.deferLater(reactor, 0, lambda: None))
    items = client.allocations()
    first = [await items.__anext__() for _ in range(3)]
    await items.aclose()
    assert len(first) == 3
    produced = cluster.produced
    for _ in range(5):
        await task.deferLater(reactor, 0.002, lambda: None)
    assert cluster.produced == produced < 100_000


@pytest_twisted.ensureDeferred
async def test_timeout_covers_a_hanging_stream(make_client, cluster):
    clock = Clock()
    client = make_client(timeout=5, reactor=clock)
    hang = defer.Deferred()
    cluster.gate = (1, lambda: hang)
    d = defer.ensureDeferred(collect(client.peers()))
    while not cluster.calls:
        await task.deferLater(reactor, 0.001, lambda: None)
    clock.advance(4.9)
    assert not d.called
    clock.advance(0.2)
    with pytest.raises(APITimeout) as info:
        await d
    assert "within 5s" in info.value.reason
    assert not clock.getDelayedCalls()


@pytest_twisted.ensureDeferred
async def test_bad_responses(cluster):
    from twisted.web.resource import Resource

    class Odd(Resource):
        isLeaf = True
        bodies = {
            b"/id": (200, b"<html>not json</html>"),
            b"/version": (200, b'{"version": 5}'),
            b"/peers": (200, b'[{"id": "%s"}]' % fake_peer_id(1).encode()),
        }

        def render(self, request):
            code, body = self.bodies.get(request.path, (404, b"No Such Resource here"))
            request.setResponseCode(code)
            return body

    root = Odd()
    stub = Stub(root)
    try:
        client = RestClient(URL, http_client=stub.http, reactor=reactor)
        with pytest.raises(APIBadResponse, match="not JSON"):
            await client.id()
        with pytest.raises(APIBadResponse, match="unexpected Version"):
            await client.version()
        assert [p.id for p in await collect(client.peers())] == [fake_peer_id(1)]  # a JSON array is read too
        with pytest.raises(APIError) as info:
            await client.allocation(CID1)  # twisted's plain 404 page: the body text is the message
        assert info.value.code == 404 and "No Such Resource" in info.value.message
    finally:
        stub.stop()


def test_error_classes():
    err = APIError(418, "teapot")
    assert (err.code, err.message, err.http_status, str(err)) == (418, "teapot", 418, "teapot")
    assert APIError("only text").code == 500
    assert attrs.has(PinOptions)  # sanity: the client sends PinOptions.to_query()
    assert json.loads(json.dumps(PinOptions().to_query()))["mode"] == "recursive"
