"""NDJSON streaming: trailer bytes, back-pressure, laziness, memory, timeouts.

These drive the service's own ``Site`` (:meth:`RestAPI.site`: the channel with
the timeouts, the request with the body limits) over
``twisted.internet.testing.StringTransport``, so the exact bytes on the wire can
be checked and time is a ``Clock``; and ``StubTreq`` for the 100k-item stream
read by a client that keeps nothing.
"""

from __future__ import annotations

import tracemalloc

import pytest
import treq
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from ipfscluster.api.rest.server import RestAPI
from ipfscluster.api.rest.streaming import FLUSH_BYTES, finish_with_trailers
from ipfscluster.config.durations import Duration
from ipfscluster.config.restapi import RestAPIConfig
from ipfscluster.errors import ClusterError
from ipfscluster.testing.fakecluster import FakeCluster, synthetic_cid

from tests.restapi_wire import parse_response


class Gate:
    """The fake cluster's ``gate``: every batch waits for the test to open it."""

    def __init__(self):
        self.waiting: list[defer.Deferred] = []

    def __call__(self):
        d = defer.Deferred()
        self.waiting.append(d)
        return d

    def open_all(self) -> int:
        """Open the gates waiting now (not those asked for meanwhile)."""
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(None)
        return len(waiting)


class Connection:
    """One HTTP connection to the service's Site over a StringTransport."""

    def __init__(self, api):
        self.site = api.site()
        self.channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def get(self, path: str) -> None:
        self.send(b"GET %s HTTP/1.1\r\nHost: api\r\n\r\n" % path.encode())

    def close(self) -> None:
        self.channel.connectionLost(Failure(ConnectionDone()))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cluster(clock):
    fake = FakeCluster(clock)
    for i in range(3):
        fake._pin(synthetic_cid(i), None)
    return fake


@pytest.fixture
def connection(cluster, clock):
    conn = Connection(RestAPI(RestAPIConfig(), cluster, clock))
    yield conn
    conn.close()


def test_trailer_bytes_on_success_and_on_error(connection, cluster):
    connection.get("/allocations")
    status, headers, body, trailers = parse_response(connection.transport.value())
    assert status == 200 and headers[b"trailer"] == b"X-Stream-Error"
    assert headers[b"transfer-encoding"] == b"chunked"
    assert len(body.splitlines()) == 3
    assert connection.transport.value().endswith(b"0\r\nX-Stream-Error: \r\n\r\n")
    assert trailers == {b"x-stream-error": b""}

    connection.transport.clear()
    cluster.fail_after["pins"] = (2, ClusterError("peer lost\nwhile listing"))
    connection.get("/allocations")
    status, headers, body, trailers = parse_response(connection.transport.value())
    assert status == 200 and len(body.splitlines()) == 2
    assert connection.transport.value().endswith(b"0\r\nX-Stream-Error: peer lost while listing\r\n\r\n")
    assert cluster.open_streams == 0


def test_http10_gets_no_trailer(connection):
    connection.send(b"GET /allocations HTTP/1.0\r\n\r\n")
    raw = connection.transport.value()
    status, headers, body, trailers = parse_response(raw)
    assert status == 200 and b"transfer-encoding" not in headers
    assert len(body.splitlines()) == 3 and b"X-Stream-Error: " not in body and trailers is None


def test_writer_stops_pulling_items_while_the_transport_is_paused(connection, cluster):
    cluster.synthetic, gate = 1000, Gate()
    cluster.gate = (10, gate)
    connection.get("/allocations")
    assert connection.transport.value() == b"" and len(gate.waiting) == 1  # waits for item 0
    gate.open_all()  # items 0-9 are written as soon as the source waits again
    assert cluster.produced == 10 and len(gate.waiting) == 1
    assert parse_response(connection.transport.value(), partial=True)[2].count(b"\n") == 10
    connection.channel.pauseProducing()  # the transport's buffer is full
    for _ in range(5):
        gate.open_all()
    assert cluster.produced <= 21, "items were produced while the client could not take them"
    sent = len(connection.transport.value())
    gate.open_all()
    assert len(connection.transport.value()) == sent
    connection.channel.resumeProducing()
    while gate.open_all():
        pass
    status, _, body, trailers = parse_response(connection.transport.value())
    assert status == 200 and len(body.splitlines()) == 1000 and trailers == {b"x-stream-error": b""}
    assert cluster.open_streams == 0


def test_lines_are_gathered_into_bounded_writes(connection, cluster):
    cluster.synthetic = 2000
    writes = []
    write = connection.transport.write
    connection.transport.write = lambda data: (writes.append(len(data)), write(data))
    connection.get("/allocations")
    assert len(writes) < 2000 / 10, "one write per line"
    assert max(writes) < FLUSH_BYTES + 2048
    assert len(parse_response(connection.transport.value())[2].splitlines()) == 2000


def test_client_going_away_closes_the_cluster_iterator(connection, cluster):
    cluster.synthetic, gate = 100, Gate()
    cluster.gate = (10, gate)
    connection.get("/allocations")
    gate.open_all()
    gate.open_all()
    assert cluster.open_streams == 1
    connection.close()
    assert cluster.open_streams == 0
    assert cluster.produced == 20 and len(gate.waiting) == 1
    gate.open_all()  # a late answer from the source goes nowhere
    assert cluster.produced == 20


@pytest.mark.parametrize("opened_after_pause", [1, 2], ids=["source-busy", "source-at-yield"])
def test_a_client_leaving_a_paused_stream_closes_it(connection, cluster, opened_after_pause):
    """Whether the source is busy making the next item (waiting for gate 20) or
    has handed it over, a client that leaves a paused stream closes it."""
    cluster.synthetic, gate = 100, Gate()
    cluster.gate = (10, gate)
    connection.get("/allocations")
    gate.open_all()
    connection.channel.pauseProducing()
    for _ in range(opened_after_pause):
        gate.open_all()  # items 10-19 wait in the buffer, then the source waits for gate 20
    assert cluster.produced == {1: 20, 2: 21}[opened_after_pause]
    connection.close()
    assert cluster.open_streams == 0 and all(d.called for d in gate.waiting)


@pytest.mark.slow
def test_stream_of_100k_items_is_made_lazily_in_bounded_memory(clock):
    """The cluster makes items only as the client reads them, and the server keeps
    none: memory is traced over the last 25k items (tracing all 100k would take
    several times longer); had the response been built in memory, the peak would
    be at least their size (~9 MB)."""
    cluster = FakeCluster(clock)
    cluster.synthetic, gate, batch = 100_000, Gate(), 2000
    cluster.gate = (batch, gate)
    stub = StubTreq(RestAPI(RestAPIConfig(), cluster, clock).resource())
    received = {"lines": 0, "bytes": 0, "traced_from": 0}

    def on_chunk(data):  # the client keeps nothing
        received["lines"] += data.count(b"\n")
        received["bytes"] += len(data)

    responses, done = [], []
    stub.get("http://api/allocations", unbuffered=True).addCallback(responses.append)
    stub.flush()
    try:
        while not done:
            if not tracemalloc.is_tracing() and received["lines"] >= 75_000:
                received["traced_from"] = received["bytes"]
                tracemalloc.start()
            opened = gate.open_all()
            stub.flush()
            if responses and not hasattr(responses[0], "_collecting"):
                responses[0]._collecting = True
                treq.collect(responses[0], on_chunk).addBoth(done.append)
                stub.flush()
            # the cluster is never more than one batch ahead of what the client read
            assert cluster.produced - received["lines"] <= batch + 1
            assert opened or done
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done == [None]
    assert received["lines"] == 100_000 and cluster.produced == 100_000
    traced_bytes = received["bytes"] - received["traced_from"]
    assert traced_bytes > 8_000_000
    assert peak < traced_bytes / 3, f"peak {peak} bytes while streaming {traced_bytes}: the stream was kept"


# --- timeouts ---------------------------------------------------------------------------


def timed_api(cluster, clock, **timeouts):
    config = RestAPIConfig(**{k: Duration.parse(v) for k, v in timeouts.items()})
    return Connection(RestAPI(config, cluster, clock))


def test_read_header_timeout(cluster, clock):
    conn = timed_api(cluster, clock, read_header_timeout="5s", read_timeout="30s")
    conn.send(b"GET /id HTTP/1.1\r\nHost: api\r\n")
    clock.advance(4.9)
    assert not conn.transport.disconnecting
    clock.advance(0.2)
    assert conn.transport.disconnected
    conn.close()
    assert not clock.getDelayedCalls()


def test_read_timeout_covers_the_body(cluster, clock):
    conn = timed_api(cluster, clock, read_header_timeout="5s", read_timeout="30s")
    conn.send(b"POST /peers HTTP/1.1\r\nHost: api\r\nContent-Length: 100\r\n\r\n{")
    clock.advance(29)
    assert not conn.transport.disconnecting
    clock.advance(1.5)
    assert conn.transport.disconnected and cluster.calls == []
    conn.close()


def test_write_timeout_and_idle_timeout(cluster, clock):
    cluster.synthetic, gate = 100, Gate()
    cluster.gate = (10, gate)
    conn = timed_api(cluster, clock, write_timeout="1m0s", idle_timeout="2m0s")
    conn.get("/version")
    conn.get("/allocations")  # the source never answers
    clock.advance(59)
    assert not conn.transport.disconnecting
    clock.advance(2)
    assert conn.transport.disconnected
    conn.close()
    assert cluster.open_streams == 0 and not clock.getDelayedCalls()

    idle = timed_api(cluster, clock, idle_timeout="2m0s")
    idle.get("/version")
    clock.advance(119)
    assert not idle.transport.disconnecting
    clock.advance(2)
    assert idle.transport.disconnecting
    idle.close()


def test_zero_disables_timeouts(cluster, clock):
    conn = timed_api(cluster, clock, read_header_timeout="0s", read_timeout="0s", write_timeout="0s",
                     idle_timeout="0s")
    conn.send(b"GET /id HTTP/1.1\r\n")
    assert not clock.getDelayedCalls()
    clock.advance(10_000)
    assert not conn.transport.disconnecting
    conn.close()


def test_finish_with_trailers_after_disconnect_is_a_no_op(connection):
    class Gone:
        finished = False
        _disconnected = True

    finish_with_trailers(Gone(), {b"X-Stream-Error": "x"})  # nothing to write to, no error


# --- body limits on the service's own site -------------------------------------------


def test_site_refuses_long_bodies_without_buffering_them(connection, cluster):
    connection.send(b"POST /peers HTTP/1.1\r\nHost: api\r\nContent-Length: 70000\r\n\r\n" + b"x" * 69_000)
    request = connection.channel.requests[-1]
    assert request.body_too_large == 70_000 and request.content.getvalue() == b""
    connection.send(b"x" * 1000)
    status, _, body, _ = parse_response(connection.transport.value())
    assert status == 413 and b"request body too large: 70000 bytes" in body

    connection.transport.clear()
    chunks = b"".join(b"%x\r\n%s\r\n" % (8000, b"y" * 8000) for _ in range(9))
    connection.send(b"POST /peers HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    request = connection.channel.requests[-1]
    assert request.body_too_large == 72_000 and request.content.tell() == 0
    connection.send(b"0\r\n\r\n")
    status, _, body, _ = parse_response(connection.transport.value())
    assert status == 413 and b"request body too large: 72000 bytes" in body
    assert cluster.calls == []
