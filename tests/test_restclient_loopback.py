"""RestClient over real sockets on 127.0.0.1: a large upload (the body producer is
paused and resumed by the TCP transport) and a long NDJSON stream read while it
is written.  The server here is a plain twisted.web resource that records what it
receives, so these tests check the client's bytes on the wire.
"""

from __future__ import annotations

import os

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.web import server
from twisted.web.resource import Resource

from ipfscluster.api.multipart import boundary_of, parse_parts
from ipfscluster.api.rest.client import RestClient
from ipfscluster.testing.fakecluster import synthetic_cid

pytestmark = pytest.mark.loopback


class Recorder(Resource):
    """``POST /add`` records the body and answers one NDJSON line; ``GET /pins``
    streams ``lines`` status lines, a few per reactor turn."""

    isLeaf = True

    def __init__(self, lines=0):
        super().__init__()
        self.bodies = []
        self.lines = lines

    def render_POST(self, request):
        request.content.seek(0)
        self.bodies.append((request.getHeader(b"content-type").decode(), request.content.read()))
        request.setHeader(b"Content-Type", b"application/json")
        return b'{"name":"big","cid":"%s","size":1}\n' % str(synthetic_cid(1)).encode()

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        line = b'{"cid":"%s","peer_map":{}}\n' % str(synthetic_cid(2)).encode()
        left = [self.lines]

        def more():
            if request.finished or getattr(request, "_disconnected", False):
                return
            batch = min(500, left[0])
            left[0] -= batch
            request.write(line * batch)
            if left[0]:
                reactor.callLater(0, more)
            else:
                request.finish()

        more()
        return server.NOT_DONE_YET


@pytest.fixture
def listen():
    ports = []

    def start(resource):
        port = reactor.listenTCP(0, server.Site(resource), interface="127.0.0.1")
        ports.append(port)
        return f"127.0.0.1:{port.getHost().port}"

    yield start
    for port in ports:
        pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


@pytest_twisted.ensureDeferred
async def test_large_upload_is_sent_exactly(listen, tmp_path):
    recorder = Recorder()
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "big").write_bytes(data)
    (tmp_path / "small").write_bytes(b"s")
    client = RestClient(listen(recorder), reactor=reactor)
    progress = []
    try:
        out = [i async for i in client.add([str(tmp_path / "big"), str(tmp_path / "small")],
                                           on_progress=lambda s, t: progress.append((s, t)))]  # fmt: skip
    finally:
        await client.close()
    assert [o.cid for o in out] == [synthetic_cid(1)]
    content_type, body = recorder.bodies[0]
    parts = parse_parts(body, boundary_of(content_type))
    assert [(p.filename, p.body) for p in parts] == [("big", data), ("small", b"s")]
    assert progress[-1] == (len(body), len(body))
    assert len(progress) > 40  # written in 64 KiB pieces, not in one go


@pytest_twisted.ensureDeferred
async def test_long_stream_over_tcp(listen):
    client = RestClient(listen(Recorder(lines=20_000)), reactor=reactor)
    try:
        count = 0
        async for gpi in client.status_all():
            assert gpi.cid == synthetic_cid(2)
            count += 1
    finally:
        await client.close()
    assert count == 20_000


@pytest_twisted.ensureDeferred
async def test_stopping_early_closes_the_connection(listen):
    recorder = Recorder(lines=1_000_000)
    client = RestClient(listen(recorder), reactor=reactor)
    try:
        items = client.status_all()
        assert (await items.__anext__()).cid == synthetic_cid(2)
        await items.aclose()
    finally:
        await client.close()
    # the leak check of conftest fails this test if the connection stayed open
