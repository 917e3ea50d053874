"""Streaming reverse proxy to the IPFS daemon, with back-pressure both ways.

twisted.web buffers a request body completely before the resource renders it
(reference §15, gotcha 3), which would put a multi-GB ``add`` on disk and delay
the daemon's work until the upload ends.  The proxy's request class
(:mod:`.server`) therefore starts the upstream request as soon as the headers
are in and feeds the body through a :class:`BodyPipe`:

- :class:`BodyPipe` is the ``IBodyProducer`` given to ``twisted.web.client.Agent``.
  Each chunk the client sends is written to the upstream connection at once.  When
  the upstream socket's buffer is full, the TCP transport pauses the pipe, which
  pauses *reading* from the client (TCP back-pressure to the uploader).  The pipe
  keeps at most one socket read of data (:data:`PIPE_HIGH_WATER`) while the
  upstream connection is still being made.  A client ``Content-Length`` is kept
  (the pipe's ``length``); a chunked upload is sent chunked.
- :class:`ResponseRelay` receives the daemon's answer.  Until the request is
  rendered (the whole body was sent) it keeps what arrives, pausing the upstream
  socket above :data:`RELAY_HIGH_WATER`; then it writes straight into the client
  response with the upstream transport registered as the response's producer, so
  a slow reader slows the daemon instead of filling memory.

Headers: hop-by-hop headers (RFC 9110 §7.6.1 and the ``Connection`` list) are
never forwarded; ``Host`` is the daemon's; ``X-Forwarded-For`` gets the client
address.  The daemon's status, reason and headers are relayed unchanged.  Twisted's
HTTP client drops response trailers, so an ``X-Stream-Error`` trailer of the daemon
is lost on the way (clients see a stream that ends early; the ones seen here
tolerate it).
"""

from __future__ import annotations

from twisted.internet import defer, protocol
from twisted.internet.endpoints import HostnameEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import client, http
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgentEndpointFactory, IBodyProducer
from zope.interface import implementer

__all__ = [
    "BodyPipe",
    "NoDelayEndpoints",
    "ResponseRelay",
    "Upstream",
    "copy_response_headers",
    "end_with_stream_error",
    "forward_headers",
    "read_body",
    "set_no_delay",
    "PIPE_HIGH_WATER",
    "RELAY_HIGH_WATER",
]

log = Logger(namespace="ipfsproxy")

#: bytes of request body held while the upstream connection is not writable
PIPE_HIGH_WATER = 256 * 1024
#: bytes of response held before the request has been rendered
RELAY_HIGH_WATER = 1024 * 1024

HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    )
)


def _hop_by_hop(headers: Headers) -> set[bytes]:
    names = set(HOP_BY_HOP)
    for value in headers.getRawHeaders(b"connection", []):
        names.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return names


def end_with_stream_error(request, message: str) -> None:
    """End a response already under way with an error, as kubo does: the chunked
    body ends with an ``X-Stream-Error: <message>`` trailer (twisted cannot send
    trailers, so the last chunk is written by hand); an unchunked one is cut off
    (the connection is closed, so the client sees it was incomplete)."""
    if getattr(request, "chunked", False):
        request.chunked = 0
        text = message.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")
        request.channel.write(b"0\r\nX-Stream-Error: " + text + b"\r\n\r\n")
    else:
        request.channel.transport.loseConnection()


def forward_headers(incoming: Headers, client_address: str | None) -> Headers:
    """The headers to send upstream for a client request with ``incoming`` headers.

    Drops hop-by-hop headers, ``Host`` (the daemon's is used) and
    ``Content-Length`` (the body producer states the length); appends the client
    to ``X-Forwarded-For``.
    """
    skip = _hop_by_hop(incoming) | {b"host", b"content-length", b"expect"}
    out = Headers()
    for name, values in incoming.getAllRawHeaders():
        if name.lower() not in skip:
            out.setRawHeaders(name, list(values))
    if client_address:
        prior = out.getRawHeaders(b"x-forwarded-for")
        value = client_address.encode("ascii", "replace")
        out.setRawHeaders(b"x-forwarded-for", [b", ".join(prior + [value]) if prior else value])
    return out


def copy_response_headers(response, request, *, keep_length: bool = True) -> None:
    """Copy ``response``'s status and headers (minus hop-by-hop ones) onto ``request``.

    ``keep_length=False`` also drops ``Content-Length`` (the body will be rewritten).
    """
    request.setResponseCode(response.code, response.phrase or None)
    skip = _hop_by_hop(response.headers)
    if not keep_length:
        skip.add(b"content-length")
    for name, values in response.headers.getAllRawHeaders():
        if name.lower() not in skip:
            request.responseHeaders.setRawHeaders(name, list(values))


@implementer(IBodyProducer)
class BodyPipe:
    """Request body bytes from the client, produced to the upstream connection.

    :param transport: the client connection's transport (paused and resumed for
        back-pressure).
    :param length: the client's ``Content-Length``, or None for a chunked upload.
    """

    def __init__(self, transport, length: int | None):
        self.length = UNKNOWN_LENGTH if length is None else length
        self._transport = transport
        self._consumer = None
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._paused = False  # by the upstream transport
        self._reading_paused = False
        self._ended = False
        self._discarding = False
        self._done: defer.Deferred | None = None
        self.sent = 0

    @classmethod
    def of_bytes(cls, data: bytes) -> BodyPipe:
        """A pipe holding a whole, already received body (sites without the
        streaming request; the body is produced as soon as the upstream asks)."""
        pipe = cls(_NoTransport(), len(data))
        pipe._buffer, pipe._buffered, pipe._ended = [data] if data else [], len(data), True
        return pipe

    # --- fed by the proxy's request ---------------------------------------------------

    def write(self, data: bytes) -> None:
        """A chunk of body from the client."""
        if self._discarding or not data:
            return
        if self._consumer is not None and not self._paused and not self._buffer:
            self._send(data)
            return
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= PIPE_HIGH_WATER:
            self._pause_reading()

    def end(self) -> None:
        """The client's body is complete."""
        self._ended = True
        self._flush()

    def abort(self, reason: Failure) -> None:
        """The client went away: fail the upload so the upstream request is dropped."""
        self._discarding = True
        self._buffer, self._buffered = [], 0
        done, self._done = self._done, None
        if done is not None:
            done.errback(reason)

    def discard(self) -> None:
        """Upstream is gone: read and drop the rest of the client's body."""
        self._discarding = True
        self._buffer, self._buffered = [], 0
        self._resume_reading()

    # --- IBodyProducer (driven by the Agent) -------------------------------------------

    def startProducing(self, consumer) -> defer.Deferred:
        self._consumer = consumer
        self._done = defer.Deferred()
        done = self._done
        self._flush()
        return done

    def pauseProducing(self) -> None:
        self._paused = True
        self._pause_reading()

    def resumeProducing(self) -> None:
        self._paused = False
        self._flush()

    def stopProducing(self) -> None:
        # the upstream request is over: its Deferred must not fire any more
        self._done = None
        self.discard()

    # --- inside -------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        self.sent += len(data)
        self._consumer.write(data)

    def _flush(self) -> None:
        if self._consumer is None or self._discarding:
            return
        while self._buffer and not self._paused:
            data = self._buffer.pop(0)
            self._buffered -= len(data)
            self._send(data)
        if not self._paused and self._buffered < PIPE_HIGH_WATER:
            self._resume_reading()
        if self._ended and not self._buffer:
            done, self._done = self._done, None
            if done is not None:
                done.callback(None)

    def _pause_reading(self) -> None:
        if not self._reading_paused and not self._ended:
            self._reading_paused = True
            self._transport.pauseProducing()

    def _resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._transport.resumeProducing()


class _NoTransport:
    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass


class ResponseRelay(protocol.Protocol):
    """Relays a daemon response body into a client response (see module docstring).

    ``done`` fires None when the body ended and was written, or fails with the
    reason the upstream body broke off.
    """

    def __init__(self):
        self.done: defer.Deferred = defer.Deferred()
        self._request = None
        self._held: list[bytes] = []
        self._held_size = 0
        self._ended: Failure | None = None

    def connectionMade(self) -> None:
        pass

    def attach(self, request) -> defer.Deferred:
        """Start writing into ``request``; returns :attr:`done`."""
        done = self.done
        self._request = request
        request.registerProducer(self.transport, True)
        request.notifyFinish().addErrback(self._client_gone)
        held, self._held, self._held_size = self._held, [], 0
        for data in held:
            self.write(data)
        self.transport.resumeProducing()
        if self._ended is not None:
            self._finish(self._ended)
        return done

    def _client_gone(self, failure) -> None:
        if self.transport is not None:
            self.transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        if self._request is None:
            self._held.append(data)
            self._held_size += len(data)
            if self._held_size >= RELAY_HIGH_WATER:
                self.transport.pauseProducing()
            return
        self.write(data)

    def write(self, data: bytes) -> None:
        """Write one piece of the body to the client (subclasses rewrite it)."""
        if not self._request.finished and not getattr(self._request, "_disconnected", False):
            self._request.write(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self._request is None:
            self._ended = reason
            return
        self._finish(reason)

    def _finish(self, reason: Failure) -> None:
        request = self._request
        if request.producer is not None:
            request.unregisterProducer()
        done, self.done = self.done, None
        if done is None:
            return
        if reason.check(client.ResponseDone, http.PotentialDataLoss):
            self.ended_well(done)
        else:
            done.errback(reason)

    def ended_well(self, done: defer.Deferred) -> None:
        """The upstream body ended normally; fire ``done`` (subclasses add work)."""
        done.callback(None)


class _Collect(protocol.Protocol):
    def __init__(self, done: defer.Deferred):
        self.done = done
        self.parts: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.parts.append(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if reason.check(client.ResponseDone, http.PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


def read_body(response) -> defer.Deferred:
    """A Deferred firing the whole (small) body of ``response``; fails with the
    reason it broke off."""
    done: defer.Deferred = defer.Deferred()
    response.deliverBody(_Collect(done))
    return done


@implementer(IAgentEndpointFactory)
class NoDelayEndpoints:
    """Agent endpoints whose connections set ``TCP_NODELAY``.

    A request's headers and body go out in separate writes; with Nagle's algorithm
    and the peer's delayed ACK each exchange would wait ~40 ms.  (Go's HTTP
    client and server, kubo's, set no-delay on every connection.)
    """

    def __init__(self, reactor, connect_timeout: float = 30.0):
        self._reactor = reactor
        self._timeout = connect_timeout

    def endpointForURI(self, uri):
        host = uri.host.decode("ascii") if isinstance(uri.host, bytes) else uri.host
        return _NoDelayEndpoint(HostnameEndpoint(self._reactor, host, uri.port, timeout=self._timeout))


class _NoDelayEndpoint:
    def __init__(self, endpoint):
        self._endpoint = endpoint

    def connect(self, factory):
        def nodelay(proto):
            set_no_delay(proto.transport)
            return proto

        return self._endpoint.connect(factory).addCallback(nodelay)


def set_no_delay(transport) -> None:
    """Turn on ``TCP_NODELAY`` where the transport has it (not on test transports)."""
    setter = getattr(transport, "setTcpNoDelay", None)
    if setter is not None:
        try:
            setter(True)
        except OSError:
            pass


class Upstream:
    """The HTTP client of the daemon's API: a persistent connection pool and an Agent.

    :param reactor: the reactor.
    :param base_url: ``http://host:port`` of the daemon.
    :param connect_timeout: seconds to wait for a TCP connection.
    :param agent: an ``IAgent`` to use instead (tests: an in-memory agent).
    """

    def __init__(self, reactor, base_url: str, connect_timeout: float = 30.0, agent=None):
        self.reactor = reactor
        self.base_url = base_url.rstrip("/")
        self.pool = None
        if agent is None:
            self.pool = client.HTTPConnectionPool(reactor, persistent=True)
            self.pool.maxPersistentPerHost = 16
            self.pool.retryAutomatically = False
            agent = client.Agent.usingEndpointFactory(
                reactor, NoDelayEndpoints(reactor, connect_timeout), pool=self.pool
            )
        self.agent = agent

    def request(self, method: bytes, uri: bytes, headers: Headers, body: BodyPipe | None) -> defer.Deferred:
        """Send ``method uri`` (a path with query) to the daemon.

        Returns the Agent's Deferred firing an ``IResponse`` (its body not read
        yet); fails with the connection error.
        """
        url = self.base_url.encode("ascii") + uri
        return self.agent.request(method, url, headers, body)

    def close(self) -> defer.Deferred:
        """Close the idle pooled connections; a Deferred firing when they are closed."""
        if self.pool is None:
            return defer.succeed(None)
        return self.pool.closeCachedConnections()
