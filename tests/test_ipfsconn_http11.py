"""The connector's HTTP/1.1 client (``ipfscluster.ipfsconn.http11``) against
scripted server bytes: framing (length, chunked, end of connection), reuse of
connections, and the failures twisted.web's client would report."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone, ResponseFailed, ResponseNeverReceived
from twisted.web.http import PotentialDataLoss

from ipfscluster.ipfsconn.http11 import HTTP11Client


class Endpoint:
    """Connects every dial to a ``StringTransport`` (or fails, or hangs)."""

    def __init__(self):
        self.connections = []  # (protocol, transport)
        self.fail_with = None
        self.hang = False
        self.pending: list[defer.Deferred] = []

    def connect(self, factory):
        if self.fail_with is not None:
            return defer.fail(self.fail_with)
        if self.hang:
            d = defer.Deferred()
            self.pending.append(d)
            return d
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        transport.abortConnection = lambda: _lose(proto, transport, ConnectionLost())
        transport.loseConnection = lambda: _lose(proto, transport, ConnectionDone())
        proto.makeConnection(transport)
        self.connections.append((proto, transport))
        return defer.succeed(proto)


def _lose(proto, transport, error):
    if not transport.disconnecting:
        transport.disconnecting = True
        proto.connectionLost(Failure(error))


class Body:
    """A ``deliverBody`` protocol recording what arrives."""

    def __init__(self):
        self.data = []
        self.reason = None
        self.transport = None

    def makeConnection(self, transport):
        self.transport = transport

    def dataReceived(self, data):
        self.data.append(data)

    def connectionLost(self, reason):
        self.reason = reason


@pytest.fixture
def setup():
    endpoint = Endpoint()
    return endpoint, HTTP11Client(endpoint, "127.0.0.1:5001", pool_size=2)


def result(d):
    out = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    return out[0]


def answer(endpoint, data: bytes, index: int = -1):
    proto, _ = endpoint.connections[index]
    proto.dataReceived(data)


def read(response) -> Body:
    body = Body()
    response.deliverBody(body)
    return body


def test_request_is_formatted_in_one_write(setup):
    endpoint, client = setup
    client.post("http://127.0.0.1:5001/api/v0/pin/add", params=[("arg", "Qm a+b"), ("x", "/p:1")],
                data=b"body", headers={b"Content-Type": [b"text/plain"]})
    _, transport = endpoint.connections[0]
    assert transport.value() == (
        b"POST /api/v0/pin/add?arg=Qm%20a%2Bb&x=/p:1 HTTP/1.1\r\nHost: 127.0.0.1:5001\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nbody"
    )


def test_content_length_body_and_the_connection_is_reused(setup):
    endpoint, client = setup
    d = client.post("http://h/api/v0/id")
    answer(endpoint, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhel")
    response = result(d)
    assert (response.code, response.headers[b"x-a"]) == (200, [b"1"])
    body = read(response)
    answer(endpoint, b"lo")
    assert b"".join(body.data) == b"hello" and body.reason.check(ResponseDone)
    again = client.post("http://h/api/v0/id")
    assert len(endpoint.connections) == 1  # the idle connection was reused
    answer(endpoint, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    response = result(again)
    assert response.code == 404 and read(response).reason.check(ResponseDone)


def test_chunked_body_split_anywhere_with_extensions_and_trailers(setup):
    endpoint, client = setup
    d = client.post("http://h/api/v0/pin/add")
    wire = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\n{\"a\":\r\n3\r\n1}\n\r\n0\r\nX-Stream-Error: \r\n\r\n")
    for i in range(len(wire)):  # one byte at a time: every boundary is crossed
        answer(endpoint, wire[i:i + 1])
    body = read(result(d))
    assert b"".join(body.data) == b'{"a":1}\n' and body.reason.check(ResponseDone)
    client.post("http://h/api/v0/id")
    assert len(endpoint.connections) == 1


def test_body_delivered_before_and_after_deliver_body(setup):
    endpoint, client = setup
    d = client.post("http://h/x")
    answer(endpoint, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
    response = result(d)
    answer(endpoint, b"2\r\ncd\r\n0\r\n\r\n")
    body = read(response)
    assert b"".join(body.data) == b"abcd" and body.reason.check(ResponseDone)


def test_body_to_the_end_of_the_connection(setup):
    endpoint, client = setup
    d = client.post("http://h/x")
    answer(endpoint, b"HTTP/1.0 200 OK\r\n\r\nall of it")
    body = read(result(d))
    proto, transport = endpoint.connections[0]
    _lose(proto, transport, ConnectionDone())
    assert b"".join(body.data) == b"all of it" and body.reason.check(PotentialDataLoss)
    client.post("http://h/x")
    assert len(endpoint.connections) == 2


def test_connection_close_is_not_reused_and_interim_answers_are_skipped(setup):
    endpoint, client = setup
    d = client.post("http://h/x")
    answer(endpoint, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    response = result(d)
    assert response.code == 204 and read(response).reason.check(ResponseDone)
    assert endpoint.connections[0][1].disconnecting
    client.post("http://h/x")
    assert len(endpoint.connections) == 2


def test_connection_lost_before_the_head_or_inside_the_body(setup):
    endpoint, client = setup
    d = client.post("http://h/x")
    answer(endpoint, b"HTTP/1.1 200 OK\r\nContent-")
    proto, transport = endpoint.connections[0]
    _lose(proto, transport, ConnectionLost())
    assert isinstance(result(d).value, ResponseNeverReceived)
    d = client.post("http://h/x")
    answer(endpoint, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    body = read(result(d))
    proto, transport = endpoint.connections[1]
    _lose(proto, transport, ConnectionDone())
    assert body.reason.check(ResponseFailed)


def test_garbage_closes_the_connection(setup):
    endpoint, client = setup
    d = client.post("http://h/x")
    answer(endpoint, b"SPDY/3 what\r\n\r\n")
    assert isinstance(result(d).value, ResponseNeverReceived)
    assert endpoint.connections[0][1].disconnecting


def test_cancel_closes_the_connection_or_the_dial(setup):
    endpoint, client = setup
    d = client.post("http://h/x")
    d.cancel()
    assert isinstance(result(d).value, defer.CancelledError)
    assert endpoint.connections[0][1].disconnecting
    endpoint.hang = True
    d = client.post("http://h/x")
    d.cancel()
    assert isinstance(result(d).value, defer.CancelledError)
    assert endpoint.pending[0].called  # the dial was cancelled too


def test_stopping_the_body_closes_the_connection(setup):
    endpoint, client = setup
    d = client.post("http://h/x")
    answer(endpoint, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
    body = read(result(d))
    body.transport.stopProducing()
    assert endpoint.connections[0][1].disconnecting
    assert body.reason.check(ResponseFailed)


def test_dial_failure_and_close(setup):
    endpoint, client = setup
    endpoint.fail_with = ConnectionRefusedError()
    assert isinstance(result(client.post("http://h/x")).value, ConnectionRefusedError)
    endpoint.fail_with = None
    d = client.post("http://h/x")
    answer(endpoint, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    read(result(d))
    closed = client.close()
    assert endpoint.connections[-1][1].disconnecting and result(closed) is None


def test_a_connection_lost_right_after_the_dial_fails_the_request(setup):
    endpoint, client = setup

    class Closing(Endpoint):
        def connect(self, factory):
            d = super().connect(factory)
            proto, transport = self.connections[-1]
            _lose(proto, transport, ConnectionDone())
            return d

    closing = Closing()
    client = HTTP11Client(closing, "h:1")
    assert isinstance(result(client.post("http://h/x")).value, ResponseNeverReceived)
