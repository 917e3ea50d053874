"""Deterministic tests of the IPFS proxy's parts: kubo wire rules, root choice, the
body pipe's back-pressure, the add relay, the header cache and the timeouts
(no sockets: fake transports, ``Clock``, ``StringTransport``)."""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web import client
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH
from twisted.web.test.requesthelper import DummyRequest

from ipfscluster.api.proxy.add import AddRelay, choose_roots, cluster_options_query, daemon_add_uri
from ipfscluster.api.proxy.forward import PIPE_HIGH_WATER, BodyPipe, forward_headers
from ipfscluster.api.proxy.server import DaemonHeaders, IPFSProxy, _cid_or_path
from ipfscluster.api.proxy.wire import KuboQuery, ProxyArgumentError, error_body, resolve
from ipfscluster.cid import CID
from ipfscluster.config.durations import Duration
from ipfscluster.config.ipfshttp import IPFSHTTPConfig
from ipfscluster.errors import InvalidParameter, NotFound
from ipfscluster.testing.fakecluster import FakeCluster

HELLO = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


# --- wire ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, endpoint",
    [
        ("/api/v0/pin/add", "pin/add"),
        ("/api/v0/pin/add/", "pin/add"),
        (f"/api/v0/pin/add/{HELLO}", "pin/add"),
        (f"/api/v0/pin/rm/{HELLO}?x=1", "pin/rm"),
        ("/api/v0/pin/ls?stream=true", "pin/ls"),
        ("/api/v0/pin/update", "pin/update"),
        ("/api/v0/repo/stat", "repo/stat"),
        ("/api/v0/repo/stat/x", None),
        ("/api/v0/add", "add"),
        ("/api/v0/add/x", None),
        ("/api/v0/pin/verify", None),
        ("/api/v0/version", None),
        ("/api/v0/cat", None),
        ("/webui", None),
    ],
)
def test_resolve(path, endpoint):
    assert resolve(path) == endpoint
    assert resolve(path.encode()) == endpoint


def test_query_path_and_query_arguments_aliases_and_booleans():
    q = KuboQuery("pin/ls", f"/api/v0/pin/ls/{HELLO}?arg=b&arg=c&s=true&t=direct&x=".encode())
    assert q.args == [HELLO, "b", "c"]
    assert q.bool("stream", False) is True and q.str("type") == "direct"
    assert q.has("x") and q.bool("x", True) is True  # empty: the default
    for spelling, value in [("1", True), ("T", True), ("True", True), ("0", False), ("FALSE", False)]:
        assert KuboQuery("add", f"/api/v0/add?pin={spelling}").bool("pin", not value) is value
    with pytest.raises(ProxyArgumentError, match='invalid value "yes" for option "pin"'):
        KuboQuery("add", "/api/v0/add?pin=yes").bool("pin", True)
    with pytest.raises(ProxyArgumentError, match='argument "ipfs-path" is required'):
        KuboQuery("pin/add", "/api/v0/pin/add").require_args("ipfs-path")
    with pytest.raises(ProxyArgumentError, match="exactly 2"):
        KuboQuery("pin/update", "/api/v0/pin/update?arg=a").require_args("from, to", 2)


def test_error_bodies():
    assert json.loads(error_body(ProxyArgumentError("bad"))) == {"Message": "bad", "Code": 1, "Type": "error"}
    assert json.loads(error_body(NotFound("gone"))) == {"Message": "gone", "Code": 0, "Type": "error"}
    assert json.loads(error_body("<b>&", 500)) == {"Message": "<b>&", "Code": 0, "Type": "error"}
    assert b"\\u003cb\\u003e\\u0026" in error_body("<b>&", 500)  # Go escapes HTML characters


@pytest.mark.parametrize(
    "arg, cid, path",
    [
        (HELLO, HELLO, None),
        (f"/ipfs/{HELLO}", HELLO, None),
        (f"/ipfs/{HELLO}/", HELLO, None),
        (f"{HELLO}/sub/file", None, f"/ipfs/{HELLO}/sub/file"),
        (f"/ipfs/{HELLO}/sub", None, f"/ipfs/{HELLO}/sub"),
        ("/ipns/example.com", None, "/ipns/example.com"),
    ],
)
def test_cid_or_path(arg, cid, path):
    got_cid, got_path = _cid_or_path(arg)
    assert (str(got_cid) if got_cid else None, got_path) == (cid, path)


@pytest.mark.parametrize("arg", ["notacid", "/foo/bar", "/ipns/", "/ipfs/notacid"])
def test_cid_or_path_rejects(arg):
    with pytest.raises(ProxyArgumentError, match="invalid path"):
        _cid_or_path(arg)


# --- add: roots and the forwarded query ------------------------------------------------


def test_choose_roots():
    tree = [("d/a", "A"), ("d/sub/b", "B"), ("d/sub", "S"), ("d", "D"), ("top.txt", "T")]
    assert choose_roots(tree, wrap=False) == ["D", "T"]
    assert choose_roots(tree + [("", "W")], wrap=True) == ["W"]
    assert choose_roots([("f", "X"), ("g", "X")], wrap=False) == ["X"]  # same content twice
    assert choose_roots([], wrap=True) == []
    assert choose_roots([(HELLO, HELLO)], wrap=False) == [HELLO]  # stdin: named by its hash


def test_daemon_add_uri_forces_pin_false_and_drops_cluster_options():
    uri = b"/api/v0/add?pin=true&replication-min=2&name=n&meta-k=v&wrap-with-directory=true&cid-version=1"
    out = daemon_add_uri(uri).decode()
    path, _, query = out.partition("?")
    assert path == "/api/v0/add"
    assert query == "wrap-with-directory=true&cid-version=1&pin=false"
    assert cluster_options_query(uri.decode().partition("?")[2]) == {
        "replication-min": ["2"], "name": ["n"], "meta-k": ["v"],
    }  # fmt: skip


# --- the body pipe -----------------------------------------------------------------------


class FakeTransport:
    def __init__(self):
        self.paused = False
        self.events = []

    def pauseProducing(self):
        self.paused = True
        self.events.append("pause")

    def resumeProducing(self):
        self.paused = False
        self.events.append("resume")


class FakeConsumer:
    def __init__(self):
        self.data = []

    def write(self, data):
        self.data.append(data)


def test_body_pipe_buffers_until_connected_then_follows_back_pressure():
    transport = FakeTransport()
    pipe = BodyPipe(transport, None)
    assert pipe.length is UNKNOWN_LENGTH
    chunk = b"x" * (PIPE_HIGH_WATER // 2)
    pipe.write(chunk)
    assert not transport.paused
    pipe.write(chunk)  # high water reached before the upstream connection exists
    assert transport.paused
    consumer = FakeConsumer()
    done = pipe.startProducing(consumer)
    assert consumer.data == [chunk, chunk] and not transport.paused
    pipe.pauseProducing()  # the upstream socket is full: stop reading the client
    assert transport.paused
    pipe.write(b"late")
    assert consumer.data == [chunk, chunk]
    pipe.resumeProducing()
    assert consumer.data[-1] == b"late" and not transport.paused
    pipe.end()
    assert done.called and pipe.sent == 2 * len(chunk) + 4


def test_body_pipe_end_waits_for_the_buffer_and_abort_fails_the_upload():
    pipe = BodyPipe(FakeTransport(), 10)
    assert pipe.length == 10
    consumer = FakeConsumer()
    done = pipe.startProducing(consumer)
    pipe.pauseProducing()
    pipe.write(b"0123456789")
    pipe.end()
    assert not done.called
    pipe.resumeProducing()
    assert done.called and consumer.data == [b"0123456789"]

    pipe = BodyPipe(FakeTransport(), 10)
    done = pipe.startProducing(FakeConsumer())
    pipe.abort(Failure(ConnectionError("client went away")))
    with pytest.raises(ConnectionError):
        done.result.raiseException()
    done.addErrback(lambda _: None)


def test_body_pipe_stop_discards_and_keeps_reading():
    transport = FakeTransport()
    pipe = BodyPipe(transport, None)
    consumer = FakeConsumer()
    done = pipe.startProducing(consumer)
    pipe.pauseProducing()
    pipe.stopProducing()  # the daemon answered early and closed: drain the client
    assert not transport.paused
    pipe.write(b"ignored")
    pipe.end()
    assert consumer.data == [] and not done.called


def test_forward_headers_drop_hop_by_hop():
    incoming = Headers(
        {
            b"host": [b"proxy:9095"],
            b"connection": [b"keep-alive, x-private"],
            b"x-private": [b"1"],
            b"content-length": [b"5"],
            b"transfer-encoding": [b"chunked"],
            b"origin": [b"http://webui"],
            b"content-type": [b"multipart/form-data; boundary=b"],
        }
    )
    out = dict(forward_headers(incoming, "10.0.0.1").getAllRawHeaders())
    assert out == {
        b"Origin": [b"http://webui"],
        b"Content-Type": [b"multipart/form-data; boundary=b"],
        b"X-Forwarded-For": [b"10.0.0.1"],
    }


# --- the add relay ------------------------------------------------------------------------


class RelayTransport:
    def __init__(self):
        self.paused = 0

    def pauseProducing(self):
        self.paused += 1

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


def add_relay(pin_roots, wrap=False):
    relay = AddRelay(pin_roots, wrap)
    relay.makeConnection(RelayTransport())
    request = DummyRequest([b""])
    request.startedWriting = 0
    real_write = request.write

    def write(data):
        request.startedWriting = 1
        real_write(data)

    request.write = write
    request.producer = None
    request.registerProducer = lambda producer, streaming: setattr(request, "producer", producer)
    request.unregisterProducer = lambda: setattr(request, "producer", None)
    return relay, request


def test_add_relay_holds_the_last_line_until_the_roots_are_pinned():
    pinned = []
    gate = defer.Deferred()

    def pin_roots(roots):
        pinned.extend(roots)
        return gate

    relay, request = add_relay(pin_roots)
    lines = [
        {"Name": "d/a", "Bytes": 3},
        {"Name": "d/a", "Hash": "A", "Size": "11"},
        {"Name": "d", "Hash": "D", "Size": "60"},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    relay.dataReceived(body[:10])  # before the request is rendered: held
    done = relay.attach(request)
    relay.dataReceived(body[10:37])
    relay.dataReceived(body[37:])
    written = b"".join(request.written)
    assert [json.loads(x) for x in written.splitlines()] == lines[:2]
    relay.connectionLost(Failure(client.ResponseDone()))
    assert pinned == ["D"] and not done.called
    gate.callback(None)
    assert done.called
    assert [json.loads(x) for x in b"".join(request.written).splitlines()] == lines


def test_add_relay_reports_a_failed_pin_as_an_error_when_nothing_was_sent():
    relay, request = add_relay(lambda roots: defer.fail(NotFound("no peers")))
    relay.attach(request)
    relay.dataReceived(b'{"Name":"f","Hash":"F","Size":"3"}\n')
    relay.connectionLost(Failure(client.ResponseDone()))
    assert request.responseCode == 500
    assert json.loads(b"".join(request.written)) == {
        "Message": "add operation was successful but an error occurred performing the cluster pin operation: "
        "no peers",
        "Code": 0,
        "Type": "error",
    }


def test_add_relay_does_not_pin_an_undecodable_answer():
    calls = []
    relay, request = add_relay(lambda roots: calls.append(roots))
    relay.attach(request)
    relay.dataReceived(b"not json\n")
    relay.connectionLost(Failure(client.ResponseDone()))
    assert calls == [] and request.responseCode == 500
    assert json.loads(b"".join(request.written))["Message"].startswith("error decoding response")


# --- the daemon's headers --------------------------------------------------------------


def test_daemon_headers_cached_per_origin_with_a_ttl():
    clock = Clock()
    fetched = []
    failing = []

    def fetch(origin):
        fetched.append(origin)
        if failing:
            return defer.fail(ConnectionError("daemon down"))
        headers = Headers({b"server": [b"kubo/0.32.1"], b"content-type": [b"application/json"], b"date": [b"x"]})
        if origin:
            headers.setRawHeaders(b"access-control-allow-origin", [origin])
        return defer.succeed(headers)

    cache = DaemonHeaders(fetch, clock, ttl=300)

    def get(origin):
        return defer.Deferred.fromCoroutine(cache.get(origin)).result

    assert get(None) == [(b"Server", [b"kubo/0.32.1"])]
    assert get(b"http://ui") == [(b"Server", [b"kubo/0.32.1"]), (b"Access-Control-Allow-Origin", [b"http://ui"])]
    get(None)
    assert fetched == [None, b"http://ui"]
    clock.advance(301)
    failing.append(True)
    assert get(None) == [(b"Server", [b"kubo/0.32.1"])]  # stale copy while the daemon is down
    assert fetched == [None, b"http://ui", None]


# --- the service: timeouts, options ------------------------------------------------------


def proxy_on_clock(**timeouts):
    config = IPFSHTTPConfig(**{k: Duration.parse(v) for k, v in timeouts.items()})
    clock = Clock()
    proxy = IPFSProxy(config, FakeCluster(clock=clock), clock)
    site = proxy.site()
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 9095))
    transport = StringTransport()
    channel.makeConnection(transport)
    return proxy, clock, channel, transport


def test_read_header_timeout_closes_a_slow_client():
    proxy, clock, channel, transport = proxy_on_clock(proxy_read_header_timeout="5s", proxy_idle_timeout="0s")
    channel.dataReceived(b"POST /api/v0/pin/ls HTTP/1.1\r\nHost: x\r\n")
    clock.advance(4.9)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting
    channel.connectionLost(Failure(ConnectionError("aborted")))
    assert not clock.getDelayedCalls()
    assert not proxy._connections


def test_read_timeout_covers_the_body():
    proxy, clock, channel, transport = proxy_on_clock(
        proxy_read_header_timeout="5s", proxy_read_timeout="10s", proxy_idle_timeout="0s"
    )
    channel.dataReceived(b"POST /api/v0/pin/ls HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
    clock.advance(9)
    assert not transport.disconnecting  # the headers came in time; the body may still
    clock.advance(2)
    assert transport.disconnecting
    channel.connectionLost(Failure(ConnectionError("aborted")))
    assert not clock.getDelayedCalls()


def test_the_proxy_is_an_api_component():
    from zope.interface.verify import verifyObject

    from ipfscluster.interfaces import IAPI

    proxy, clock, channel, transport = proxy_on_clock()
    channel.connectionLost(Failure(ConnectionError("done")))
    assert verifyObject(IAPI, proxy)
    assert proxy.name == "ipfsproxy" and proxy.addresses() == []


def test_pin_options_from_the_query():
    proxy, clock, channel, transport = proxy_on_clock()
    channel.connectionLost(Failure(ConnectionError("done")))
    q = KuboQuery("pin/add", f"/api/v0/pin/add?arg={HELLO}&recursive=false&name=n&replication-min=1&replication-max=2")
    options = proxy._pin_options(q)
    assert (options.mode.value, options.name, options.replication_factor_min, options.replication_factor_max) == (
        "direct", "n", 1, 2,
    )  # fmt: skip
    assert proxy._pin_options(KuboQuery("pin/add", "/api/v0/pin/add?type=direct")).mode.value == "direct"
    with pytest.raises(ProxyArgumentError):
        proxy._pin_options(KuboQuery("pin/add", "/api/v0/pin/add?type=indirect"))
    with pytest.raises(InvalidParameter):
        proxy._pin_options(KuboQuery("pin/add", "/api/v0/pin/add?replication-min=x"))
    assert CID.parse(HELLO)


# --- the resource in memory (StubTreq over the proxy, an in-memory daemon) ---------------


def in_memory_proxy():
    from treq.testing import RequestTraversalAgent, StubTreq

    from ipfscluster.testing.fakeipfs import FakeIPFS

    clock = Clock()
    daemon = FakeIPFS(clock=clock)
    upstream = RequestTraversalAgent(daemon.resource)
    cluster = FakeCluster(clock=clock)
    proxy = IPFSProxy(IPFSHTTPConfig(), cluster, clock, agent=upstream)
    stub = StubTreq(proxy.resource())

    def settle(d):
        got = []
        d.addBoth(got.append)
        for _ in range(50):  # pump both in-memory exchanges until the answer is in
            if got:
                break
            upstream.flush()
            stub.flush()
        [result] = got
        if isinstance(result, Failure):
            result.raiseException()
        return result

    def call(method, path, **kw):
        response = settle(stub.request(method, "http://proxy" + path, **kw))
        return response, settle(stub.content(response))

    return call, cluster, daemon


def test_resource_without_the_streaming_request():
    """The resource also works under any twisted.web site (bodies buffered)."""
    call, cluster, daemon = in_memory_proxy()
    response, body = call("POST", f"/api/v0/pin/add/{HELLO}?name=mem")
    assert response.code == 200 and json.loads(body) == {"Pins": [HELLO]}
    assert cluster.state[CID.parse(HELLO)].name == "mem"
    assert response.headers.getRawHeaders("server") == [f"kubo/{daemon.version}"]
    response, body = call("POST", "/api/v0/version")
    assert json.loads(body)["Version"] == daemon.version
    upload = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="m.txt"\r\n\r\n'
        b"in memory\n\r\n--b--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    response, body = call("POST", "/api/v0/add?replication=1", data=upload, headers=headers)
    added = json.loads(body.splitlines()[-1])["Hash"]
    assert response.code == 200 and str(daemon.add_bytes(b"in memory\n", pin=False).cid) == added
    assert cluster.state[CID.parse(added)].replication_factor_max == 1
    assert daemon.pin_mode(CID.parse(added)) is None  # pin=false went to the daemon
    response, body = call("POST", "/api/v0/pin/rm?arg=" + added)
    assert json.loads(body) == {"Pins": [added]}
    response, body = call("POST", "/api/v0/repo/stat")
    assert json.loads(body)["RepoSize"] == 1000  # FakeCluster's aggregate
