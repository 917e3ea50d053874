"""The proxy streams: a big upload and a big download never sit in its memory.

The daemon is a small stand-in in a **separate process** (stdlib ``http.server``,
:data:`SINK`) that reads an upload in 1 MiB pieces, answering ``add`` with kubo's
NDJSON object for a CID of the bytes it read, and answers ``cat?arg=<n>`` with
``n`` bytes.  So the test process holds only the proxy, the in-memory cluster
(``FakeCluster``) and a client that makes its upload on the fly and counts the
download, and its peak RSS growth is the proxy's.  The issue asks for < 100 MB at
1 GB; the test uses :data:`SIZE` with the same bound on the growth.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.web import client
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from ipfscluster.api.proxy import IPFSProxy
from ipfscluster.cid import CID, RAW, sha256_multihash
from ipfscluster.config.ipfshttp import IPFSHTTPConfig
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakecluster import FakeCluster

pytestmark = [pytest.mark.loopback, pytest.mark.slow]

SIZE = 256 * 1024 * 1024
BOUND = 100 * 1024 * 1024
BLOCK = os.urandom(1024 * 1024)
BOUNDARY = b"proxystreamingboundary"
HEAD = (
    b"--" + BOUNDARY + b"\r\n"
    b'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)
TAIL = b"\r\n--" + BOUNDARY + b"--\r\n"
#: the stand-in daemon reads at most ~50 MiB/s (1 MiB per read), well below what
#: the proxy can take from the client, so without back-pressure the upload piles up
SINK_SECONDS_PER_READ = 0.02

SINK = r"""
import base64, hashlib, json, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        path, _, query = self.path.partition("?")
        q = urllib.parse.parse_qs(query)
        remaining = int(self.headers.get("Content-Length") or 0)
        digest, n = hashlib.sha256(), 0
        while remaining:
            data = self.rfile.read(min(remaining, 1 << 20))
            if not data:
                break
            remaining -= len(data)
            n += len(data)
            digest.update(data)
            time.sleep(THROTTLE)  # a daemon slower than the client: back-pressure must hold
        if path == "/api/v0/add":
            cid = "b" + base64.b32encode(bytes([1, 0x55, 0x12, 0x20]) + digest.digest()).decode().lower().rstrip("=")
            body = json.dumps({"Name": "big.bin", "Hash": cid, "Size": str(n), "Pin": q.get("pin")}).encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Chunked-Output", "1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/api/v0/cat":
            size = int(q["arg"][0])
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("X-Stream-Output", "1")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b"x" * (1 << 20)
            while size:
                part = block[: min(size, len(block))]
                self.wfile.write(part)
                size -= len(part)
        else:
            body = b'{"Version":"sink"}\n'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

THROTTLE = float(sys.argv[1])
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def reset_peak() -> None:
    """Make VmHWM start again from the current RSS (Linux ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


@implementer(IBodyProducer)
class MadeUpUpload:
    """A multipart upload of ``size`` bytes made while it is sent (never held)."""

    def __init__(self, size: int):
        self.size = size
        self.length = len(HEAD) + size + len(TAIL)
        self.digest = hashlib.sha256()
        self._left = size
        self._paused = False
        self._consumer = None
        self._done = None

    def startProducing(self, consumer):
        self._consumer = consumer
        self._done = defer.Deferred()
        consumer.write(HEAD)
        self._produce()
        return self._done

    def _produce(self):
        while not self._paused and self._left and self._done is not None:
            block = BLOCK[: min(self._left, len(BLOCK))]
            self._left -= len(block)
            self.digest.update(block)
            self._consumer.write(block)
        if not self._left and self._done is not None:
            done, self._done = self._done, None
            self._consumer.write(TAIL)
            done.callback(None)

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        self._produce()

    def stopProducing(self):
        self._done = None


class Counter(protocol.Protocol):
    """Counts a response body; with ``slow``, reads at most ~50 MiB/s (a client
    slower than the daemon: the proxy must slow the daemon down, not buffer)."""

    def __init__(self, slow: bool = False):
        self.done = defer.Deferred()
        self.count = 0
        self.parts = []
        self.slow = slow
        self._since_pause = 0

    def dataReceived(self, data):
        self.count += len(data)
        if len(self.parts) < 4:
            self.parts.append(data)
        self._since_pause += len(data)
        if self.slow and self._since_pause >= 1 << 20:
            self._since_pause = 0
            self.transport.pauseProducing()
            reactor.callLater(SINK_SECONDS_PER_READ, self.transport.resumeProducing)

    def connectionLost(self, reason):
        if reason.check(client.ResponseDone):
            self.done.callback(self.count)
        else:
            self.done.errback(reason)


@pytest.fixture
def sink():
    process = subprocess.Popen([sys.executable, "-c", SINK, str(SINK_SECONDS_PER_READ)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


@pytest.fixture
def proxy(sink):
    cluster = FakeCluster(clock=reactor)
    cluster.ipfs_api_url = lambda: sink
    config = IPFSHTTPConfig(proxy_listen_multiaddress=Multiaddr.parse("/ip4/127.0.0.1/tcp/0"))
    service = IPFSProxy(config, cluster, reactor)
    pytest_twisted.blockon(defer.maybeDeferred(service.startService))
    yield service
    pytest_twisted.blockon(defer.maybeDeferred(service.stopService))


@pytest_twisted.ensureDeferred
async def test_big_upload_and_download_stream_through(proxy):
    pool = client.HTTPConnectionPool(reactor, persistent=False)
    agent = client.Agent(reactor, pool=pool)
    base = f"http://127.0.0.1:{proxy.addresses()[0].port}".encode()
    try:
        # upload: add, cluster-pinned by the proxy
        upload = MadeUpUpload(SIZE)
        headers = Headers({b"content-type": [b"multipart/form-data; boundary=" + BOUNDARY]})
        reset_peak()
        before = rss_bytes()
        response = await agent.request(b"POST", base + b"/api/v0/add?replication=2", headers, upload)
        counter = Counter()
        response.deliverBody(counter)
        await counter.done
        growth = peak_bytes() - before
        assert response.code == 200
        answer = __import__("json").loads(b"".join(counter.parts))
        assert int(answer["Size"]) == len(HEAD) + SIZE + len(TAIL)
        assert answer["Pin"] == ["false"]  # the daemon was told not to pin
        cid = CID.parse(answer["Hash"])
        pin = proxy.cluster.state[cid]
        assert pin.replication_factor_max == 2
        assert growth < BOUND, f"the proxy's RSS grew by {growth / 2**20:.0f} MiB during a {SIZE >> 20} MiB upload"

        # download: cat, relayed as it arrives
        reset_peak()
        before = rss_bytes()
        response = await agent.request(b"POST", base + b"/api/v0/cat?arg=%d" % SIZE)
        counter = Counter(slow=True)
        response.deliverBody(counter)
        assert await counter.done == SIZE
        growth = peak_bytes() - before
        assert response.headers.getRawHeaders(b"x-stream-output") == [b"1"]
        assert growth < BOUND, f"the proxy's RSS grew by {growth / 2**20:.0f} MiB during a {SIZE >> 20} MiB download"
    finally:
        await pool.closeCachedConnections()


def test_cid_helpers_agree():
    """The sink's CID text is the CIDv1 raw of the bytes (as ``CID.v1`` builds it)."""
    digest = hashlib.sha256(b"abc").digest()
    import base64

    text = "b" + base64.b32encode(bytes([1, 0x55, 0x12, 0x20]) + digest).decode().lower().rstrip("=")
    assert CID.parse(text) == CID.v1(RAW, sha256_multihash(b"abc"))


async def poll(predicate, seconds: float, what: str) -> None:
    """Wait until ``predicate()`` holds; fail after ``seconds``."""
    from twisted.internet.task import deferLater

    deadline = reactor.seconds() + seconds
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"{what} not reached within {seconds}s")
        await deferLater(reactor, 0.02, lambda: None)


class Pausing(protocol.Protocol):
    """Stops reading after the first piece until told to go on; counts lines."""

    def __init__(self):
        self.done = defer.Deferred()
        self.lines = 0
        self.first = defer.Deferred()

    def dataReceived(self, data):
        self.lines += data.count(b"\n")
        if not self.first.called:
            self.transport.pauseProducing()
            self.first.callback(None)

    def connectionLost(self, reason):
        if reason.check(client.ResponseDone):
            self.done.callback(self.lines)
        else:
            self.done.errback(reason)


@pytest_twisted.ensureDeferred
async def test_pin_ls_waits_for_a_slow_client(proxy):
    """``pin/ls`` of a huge shared state: while the client does not read, the proxy
    stops taking pins from the cluster; then the whole list arrives."""
    total = 300_000
    proxy.cluster.synthetic = total
    pool = client.HTTPConnectionPool(reactor, persistent=False)
    agent = client.Agent(reactor, pool=pool)
    base = f"http://127.0.0.1:{proxy.addresses()[0].port}".encode()
    try:
        response = await agent.request(b"POST", base + b"/api/v0/pin/ls?stream=true")
        reader = Pausing()
        response.deliverBody(reader)
        await reader.first
        channel = next(iter(proxy._connections))

        def listing_paused():
            requests = channel.requests
            return bool(requests) and getattr(requests[0].producer, "_paused", False)

        await poll(listing_paused, seconds=30, what="the listing paused by the full socket")
        assert proxy.cluster.produced < total
        reader.transport.resumeProducing()
        assert await reader.done == total
    finally:
        await pool.closeCachedConnections()
