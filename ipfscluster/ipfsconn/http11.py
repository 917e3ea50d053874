"""A small persistent HTTP/1.1 client for the IPFS daemon's RPC API.

Why hand-written: every pin costs each allocated peer two requests to its daemon
(``pin/ls?arg=`` then ``pin/add``), and with twisted.web's ``Agent`` most of that
CPU went to the general machinery around the bytes (URI parsing and re-assembly,
``Headers`` objects, the request and response state machines, the pool's keys):
measured with ``cProfile`` on sequential and 8-concurrent pins against the fake
daemon, ``Agent`` took about a third of the connector's CPU per pin.  The daemon
is one fixed endpoint speaking plain HTTP/1.1, and the connector only POSTs
bodies it holds in memory, so this client does only that:

- ``post(url, params, data, headers)`` with treq's signature (what the connector
  uses of it); the request is formatted in one write;
- up to ``pool_size`` idle connections kept for reuse (closed by :meth:`close`);
  a request that finds none dials the endpoint;
- responses framed by ``Content-Length``, by the chunked transfer coding (chunk
  extensions and trailers are read and dropped, as twisted's client does: kubo's
  ``X-Stream-Error`` trailer is not seen either way) or by the end of the
  connection;
- the response offers what the connector uses of ``IResponse``: ``code``,
  ``phrase``, ``headers`` (lower-case names to lists of values) and
  ``deliverBody(protocol)``, whose transport's ``stopProducing`` closes the
  connection;
- failures are those of twisted.web's client: the endpoint's ``ConnectError``,
  ``ResponseNeverReceived`` when the connection ends before the response's head,
  ``ResponseFailed`` when it ends inside the body (``PotentialDataLoss`` ends a
  body framed by the connection's end), ``ResponseDone`` ends a complete body;
- cancelling the request's Deferred closes its connection (a dial in progress is
  cancelled).

A POST is never retried (twisted's client does not retry one either).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone, ResponseFailed, ResponseNeverReceived
from twisted.web.http import PotentialDataLoss

#: longest response head (status line and headers) accepted
MAX_HEAD = 64 * 1024
#: longest chunk-size line accepted
MAX_CHUNK_LINE = 1024

_NO_BODY = (204, 304)


class HTTPProtocolError(Exception):
    """The daemon's answer is not the HTTP/1.1 this client reads."""


class Response:
    """The head of an answer and its body, delivered to one protocol."""

    def __init__(self, conn: _Connection, version: bytes, code: int, phrase: bytes, headers: dict):
        self.version = version
        self.code = code
        self.phrase = phrase
        self.headers = headers
        self.length = None
        self._conn = conn
        self._protocol = None
        self._early: list[bytes] = []
        self._end: Failure | None = None

    def deliverBody(self, protocol) -> None:
        """Hand the body to ``protocol`` (``dataReceived``, then ``connectionLost``)."""
        self._protocol = protocol
        protocol.makeConnection(_BodyTransport(self._conn))
        early, self._early = self._early, []
        for data in early:
            protocol.dataReceived(data)
        if self._end is not None:
            protocol.connectionLost(self._end)

    def _data(self, data: bytes) -> None:
        if self._protocol is None:
            self._early.append(data)
        else:
            self._protocol.dataReceived(data)

    def _finished(self, reason: Failure) -> None:
        if self._protocol is None:
            self._end = reason
        else:
            self._protocol.connectionLost(reason)


class _BodyTransport:
    """The transport a body protocol sees: stopping it closes the connection."""

    def __init__(self, conn: _Connection):
        self._conn = conn

    def stopProducing(self) -> None:
        self._conn.abort()

    def pauseProducing(self) -> None:
        if self._conn.transport is not None:
            self._conn.transport.pauseProducing()

    def resumeProducing(self) -> None:
        if self._conn.transport is not None:
            self._conn.transport.resumeProducing()


class _Connection(Protocol):
    """One connection to the daemon: one request at a time, kept alive if it can be."""

    def __init__(self, client: HTTP11Client):
        self.client = client
        self.closed = False
        self._buf = bytearray()
        self._state = "idle"  # idle | head | body | done
        self._request: defer.Deferred | None = None
        self._response: Response | None = None
        self._framing = None  # "length" | "chunked" | "close"
        self._left = 0  # bytes left of the body (length) or of the chunk (chunked)
        self._chunk_state = "size"  # size | data | crlf | trailers
        self._keep_alive = False

    def connectionMade(self):
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)

    def send(self, request: bytes, d: defer.Deferred) -> None:
        """Write ``request``; ``d`` fires with the :class:`Response` (or fails)."""
        if self.closed:  # lost between the dial and now
            d.errback(Failure(ResponseNeverReceived([Failure(ConnectionDone())])))
            return
        self._state = "head"
        self._request = d
        self.transport.write(request)

    def abort(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.abortConnection()

    def cancel(self) -> None:
        """The request's Deferred was cancelled: it fails with CancelledError, the
        connection is closed (its answer could not be told from the next one's)."""
        self._request = None
        self.abort()

    # --- reading ------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._state in ("idle", "done"):
            self.abort()  # nothing was asked: not the HTTP we speak
            return
        self._buf += data
        try:
            self._parse()
        except HTTPProtocolError:
            self.abort()

    def _parse(self) -> None:
        while self._buf and not self.closed:
            if self._state == "head":
                if not self._parse_head():
                    return
            elif self._state == "body":
                if self._framing == "chunked":
                    if not self._parse_chunked():
                        return
                else:
                    self._take_body(len(self._buf) if self._framing == "close" else self._left)
                    if self._framing == "length" and self._left == 0:
                        self._body_done()
            else:
                raise HTTPProtocolError("data after the end of the response")

    def _parse_head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD:
                raise HTTPProtocolError("response head too long")
            return False
        head = bytes(self._buf[:end])
        del self._buf[: end + 4]
        status, *lines = head.split(b"\r\n")
        parts = status.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise HTTPProtocolError(f"bad status line {status[:80]!r}")
        code = int(parts[1])
        if 100 <= code < 200:
            return True  # an interim answer (100 Continue): the real one follows
        headers: dict[bytes, list[bytes]] = {}
        for line in lines:
            name, sep, value = line.partition(b":")
            if not sep:
                raise HTTPProtocolError(f"bad header line {line[:80]!r}")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        version = parts[0]
        connection = b",".join(headers.get(b"connection", ())).lower()
        self._keep_alive = version == b"HTTP/1.1" and b"close" not in connection
        response = Response(self, version, code, parts[2] if len(parts) > 2 else b"", headers)
        if code in _NO_BODY:
            self._framing, self._left = "length", 0
        elif b"chunked" in b",".join(headers.get(b"transfer-encoding", ())).lower():
            self._framing, self._chunk_state = "chunked", "size"
        elif b"content-length" in headers:
            try:
                self._framing, self._left = "length", int(headers[b"content-length"][0])
            except ValueError:
                raise HTTPProtocolError("bad Content-Length") from None
            if self._left < 0:
                raise HTTPProtocolError("bad Content-Length")
            response.length = self._left
        else:
            self._framing, self._keep_alive = "close", False
        self._response = response
        self._state = "body"
        d, self._request = self._request, None
        if d is not None and not d.called:
            d.callback(response)
        if self._framing == "length" and self._left == 0 and self._state == "body" and not self.closed:
            self._body_done()
        return True

    def _take_body(self, n: int) -> None:
        n = min(n, len(self._buf))
        if n:
            data = bytes(self._buf[:n])
            del self._buf[:n]
            if self._framing != "close":
                self._left -= n
            self._response._data(data)

    def _parse_chunked(self) -> bool:
        """Consume what the buffer holds of the chunked body; False when it needs more."""
        if self._chunk_state == "size":
            end = self._buf.find(b"\r\n")
            if end < 0:
                if len(self._buf) > MAX_CHUNK_LINE:
                    raise HTTPProtocolError("chunk size line too long")
                return False
            line = bytes(self._buf[:end]).split(b";", 1)[0].strip()
            del self._buf[: end + 2]
            try:
                size = int(line, 16)
            except ValueError:
                raise HTTPProtocolError(f"bad chunk size {line[:20]!r}") from None
            if size < 0:
                raise HTTPProtocolError("bad chunk size")
            self._left = size
            self._chunk_state = "data" if size else "trailers"
        elif self._chunk_state == "data":
            self._take_body(self._left)
            if self._left == 0:
                self._chunk_state = "crlf"
        elif self._chunk_state == "crlf":
            if len(self._buf) < 2:
                return False
            if self._buf[:2] != b"\r\n":
                raise HTTPProtocolError("chunk not followed by CRLF")
            del self._buf[:2]
            self._chunk_state = "size"
        else:  # trailers: lines up to an empty one
            end = self._buf.find(b"\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise HTTPProtocolError("trailers too long")
                return False
            del self._buf[: end + 2]
            if end == 0:
                self._body_done()
        return True

    def _body_done(self) -> None:
        response, self._response = self._response, None
        self._state = "done"
        leftover = bool(self._buf)
        if self._keep_alive and not leftover:
            self._state = "idle"
            self.client._release(self)
        else:
            self.transport.loseConnection()
        response._finished(Failure(ResponseDone()))

    def connectionLost(self, reason=None):
        self.closed = True
        self.client._forget(self)
        d, self._request = self._request, None
        if d is not None and not d.called:
            d.errback(Failure(ResponseNeverReceived([reason])))
        response, self._response = self._response, None
        if response is not None:
            if self._framing == "close" and reason.check(ConnectionDone):
                response._finished(Failure(PotentialDataLoss()))
            else:
                response._finished(Failure(ResponseFailed([reason])))


class _ConnectionFactory(Factory):
    noisy = False

    def __init__(self, client: HTTP11Client):
        self.client = client

    def buildProtocol(self, addr):
        conn = _Connection(self.client)
        conn.factory = self
        return conn


class HTTP11Client:
    """POSTs to one HTTP/1.1 server (see the module docstring).

    :param endpoint: an ``IStreamClientEndpoint`` of the server.
    :param host: the ``Host`` header (``host:port``).
    :param pool_size: idle connections kept for reuse.
    """

    def __init__(self, endpoint, host: str, pool_size: int = 10):
        self._endpoint = endpoint
        self._host = host.encode("idna") if not host.isascii() else host.encode("ascii")
        self._pool_size = pool_size
        self._factory = _ConnectionFactory(self)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._close_waiters: list[tuple[_Connection, defer.Deferred]] = []

    def _format(self, url: str, params, data, headers) -> bytes:
        target = urlsplit(url)
        path = target.path or "/"
        query = urlencode(params, quote_via=quote, safe="/:") if params else target.query
        if query:
            path = f"{path}?{query}"
        lines = [b"POST " + path.encode("ascii") + b" HTTP/1.1", b"Host: " + self._host]
        for name, values in (headers or {}).items():
            name = name if isinstance(name, bytes) else name.encode("latin-1")
            if isinstance(values, (bytes, str)):
                values = [values]
            for value in values:
                lines.append(name + b": " + (value if isinstance(value, bytes) else value.encode("latin-1")))
        body = bytes(data) if data is not None else b""
        lines.append(b"Content-Length: %d" % len(body))
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    def post(self, url: str, params=(), data=None, headers=None, unbuffered=True,
             allow_redirects=False) -> defer.Deferred:
        """POST ``url`` (its path and query are used: the server is the endpoint's)
        with the query ``params`` (pairs) and the bytes ``data``; a Deferred of the
        :class:`Response`, its body not read yet.  ``unbuffered`` and
        ``allow_redirects`` are accepted for treq's signature: bodies are never
        buffered, redirects never followed."""
        request = self._format(url, params, data, headers)
        if self._idle:
            conn = self._idle.pop()
            d = defer.Deferred(lambda _: conn.cancel())
            conn.send(request, d)
            return d
        dialled: dict = {}

        def cancel(_):
            conn = dialled.get("conn")
            if conn is not None:
                conn.cancel()
            else:
                connecting.cancel()

        d = defer.Deferred(cancel)

        def connected(conn):
            self._open.add(conn)
            dialled["conn"] = conn
            if d.called:  # cancelled while dialling
                conn.abort()
                return
            conn.send(request, d)

        def failed(failure):
            if not d.called:
                d.errback(failure)

        connecting = self._endpoint.connect(self._factory)
        connecting.addCallbacks(connected, failed)
        return d

    def _release(self, conn: _Connection) -> None:
        if len(self._idle) < self._pool_size and not self._close_waiters:
            self._idle.append(conn)
        else:
            conn.transport.loseConnection()

    def _forget(self, conn: _Connection) -> None:
        self._open.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)
        waiting = [d for c, d in self._close_waiters if c is conn]
        self._close_waiters = [(c, d) for c, d in self._close_waiters if c is not conn]
        for d in waiting:
            d.callback(None)

    def close(self) -> defer.Deferred:
        """Close the idle connections; fires once they are closed (requests in
        flight keep theirs: the connector cancels them first)."""
        idle, self._idle = self._idle, []
        waits = []
        for conn in idle:
            d = defer.Deferred()
            self._close_waiters.append((conn, d))
            waits.append(d)
            conn.transport.loseConnection()
        return defer.gatherResults(waits).addCallback(lambda _: None)
