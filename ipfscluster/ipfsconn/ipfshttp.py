"""The kubo connector: a treq client of the IPFS daemon's RPC API (``/api/v0``).

:class:`IPFSHTTPConnector` implements :class:`~ipfscluster.interfaces.IIPFSConnector`
for one daemon, the ``node_multiaddress`` of the ``ipfs_connector.ipfshttp`` section.
Every call is a ``POST http://<node>/api/v0/<command>?arg=…`` with an empty body
(``block/put`` sends a multipart body), as kubo requires (reference §8.1, §12.5).

Design
------

*One operation, one Deferred, one timer.*  Each public method runs a coroutine
(:meth:`IPFSHTTPConnector._operation`) under a timer on the injected clock.  When
the timer expires the operation's Deferred is cancelled; the cancellation reaches
whatever the coroutine awaits (the HTTP request, or the body being read) and
aborts the HTTP connection, so kubo sees the client go away and stops working on
it.  The failure then becomes :class:`~ipfscluster.errors.OperationTimeout`.  The
same path serves ``stopService`` (every operation in flight fails with
:class:`~ipfscluster.errors.ShuttingDown`) and a caller's own ``cancel()``
(``CancelledError``).  Timers:

- ``request_timeout`` (``ipfs_request_timeout``, 5m by default): the whole
  exchange of the plain calls (``id``, ``repo/stat``, ``swarm/*``, ``config/show``,
  ``resolve``, ``block/*``, ``pin/update``, ``pin/ls?arg=``);
- ``pin_timeout`` (config): for ``pin/add`` the longest time *without progress*:
  the request asks for ``progress=true`` and every progress object kubo streams
  resets the timer (a watchdog), so a large pin that keeps fetching is never cut,
  while one whose content cannot be found is cancelled;
- ``unpin_timeout`` (3h by default): the whole ``pin/rm``;
- for the streamed ``pin/ls`` the timer is also a watchdog, reset by every pin
  received, so listing millions of pins is bounded by silence, not by size.

The config section has no ``ipfs_request_timeout``/``unpin_timeout`` keys today:
the defaults are the module constants :data:`DEFAULT_REQUEST_TIMEOUT` and
:data:`DEFAULT_UNPIN_TIMEOUT` (the modern upstream values), overridable through the
constructor or, once the config section grows those keys, through the config.

*Streaming.*  ``pin/add?progress=true`` and ``pin/ls?stream=true`` answer NDJSON;
the connector reads the body as it arrives with :class:`_LineReader` and handles
each object at once (``pin_ls`` hands each pin to its ``receive`` callback and
keeps nothing).  Why not ``treq.collect``: its Deferred cannot be cancelled in a way
that closes the connection, and closing it is what stops kubo from pinning on;
:class:`_LineReader` is the same ``deliverBody`` protocol with a canceller that
aborts the transport.  Requests use ``unbuffered=True`` so that treq does not
buffer the body itself.  kubo reports an error in the middle of a stream in an
``X-Stream-Error`` trailer, which Twisted's client drops; ``pin/add`` therefore
requires the final ``{"Pins": […]}`` object and fails when the stream ends
without it.

*Errors* (reference §8.1): a non-200 answer whose body is kubo's
``{"Message": …}`` becomes ``IPFSError("IPFS unsuccessful: <code>: <Message>")``
with ``.code`` set to the HTTP status; any other non-200 answer becomes
``IPFSError("IPFS-get '<path>' unsuccessful: <code>: <body>")``.  A refused
connection, a DNS failure or a connection dropped before the answer become
:class:`~ipfscluster.errors.IPFSUnreachable` (``code`` 0) with a message telling
the operator to check that the daemon runs at ``node_multiaddress``.

*Boot.*  ``startService`` starts a loop that calls ``id`` until the daemon
answers, backing off on the injected clock (``ready_backoff``); it logs one
warning naming the address at the first failure and another every
:data:`READY_WARN_EVERY` attempts.  :meth:`ready` fires when the daemon answered
once.  ``stopService`` ends the loop.

*Rate limit.*  After :data:`FAILURE_THRESHOLD` consecutive failed requests (the
daemon is down or broken) requests are spaced :data:`FAILURE_RATE_INTERVAL`
apart until one succeeds, so a dead daemon is not hammered by the pin tracker's
queue (modern upstream does the same).

*HTTP client.*  ``http_client`` is anything with treq's ``HTTPClient.post``
signature: tests pass ``treq.testing.StubTreq(fake.resource)``; in production
the connector builds a ``treq.HTTPClient`` over an ``Agent`` with its own
persistent ``HTTPConnectionPool`` and closes the pool's idle connections in
``stopService``.
"""

from __future__ import annotations

import json
import secrets
from typing import Callable

from twisted.application.service import Service
from twisted.internet import defer, error as ierror
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from treq.client import HTTPClient
from twisted.web import client as webclient
from twisted.web.http import PotentialDataLoss
from zope.interface import implementer

from ipfscluster.cid import CID
from ipfscluster.config.durations import format_duration
from ipfscluster.errors import (
    InvalidCID,
    InvalidInput,
    InvalidMultiaddr,
    IPFSError,
    IPFSUnreachable,
    NotFound,
    OperationTimeout,
    ShuttingDown,
)
from ipfscluster.interfaces import IIPFSConnector
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.types import IPFSID, IPFSPinStatus, Pin, RepoStat

__all__ = [
    "IPFSHTTPConnector",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_UNPIN_TIMEOUT",
    "DEFAULT_READY_BACKOFF",
    "READY_WARN_EVERY",
    "FAILURE_THRESHOLD",
    "FAILURE_RATE_INTERVAL",
    "ORIGINS_CONNECT_TIMEOUT",
    "POOL_SIZE",
    "CONNECT_TIMEOUT",
    "PIN_TYPE_FILTERS",
    "NOT_PINNED_MESSAGES",
]

log = Logger(namespace="ipfshttp")

#: seconds a plain call may take (upstream's ``ipfs_request_timeout``: 5m)
DEFAULT_REQUEST_TIMEOUT = 300.0
#: seconds a ``pin/rm`` may take (upstream's ``unpin_timeout``: 3h)
DEFAULT_UNPIN_TIMEOUT = 3 * 3600.0
#: (first delay, longest delay) in seconds between ``id`` attempts at boot
DEFAULT_READY_BACKOFF = (0.5, 10.0)
#: while waiting for the daemon at boot, warn again every this many attempts
READY_WARN_EVERY = 10
#: consecutive failed requests after which requests are rate-limited
FAILURE_THRESHOLD = 10
#: seconds between requests while rate-limited (1 request per second)
FAILURE_RATE_INTERVAL = 1.0
#: seconds given to the best-effort ``swarm/connect`` to a pin's origins
ORIGINS_CONNECT_TIMEOUT = 10.0
#: idle HTTP connections the production client keeps open to the daemon
POOL_SIZE = 10
#: seconds the production client waits for a TCP connection to the daemon
CONNECT_TIMEOUT = 30.0
#: the ``type`` filters ``pin/ls`` accepts
PIN_TYPE_FILTERS = ("recursive", "direct", "indirect", "all")
#: kubo's answers meaning "this CID is not pinned" (``pin/rm``, ``pin/ls?arg=``)
NOT_PINNED_MESSAGES = ("not pinned or pinned indirectly", "is not pinned")

_MAX_ERROR_BODY = 4096  # bytes of a non-JSON error body quoted in the message


def _seconds(value) -> float:
    """A config Duration or a number, as seconds."""
    return float(getattr(value, "seconds", value))


def _show_duration(seconds: float) -> str:
    return format_duration(round(seconds * 1e9))


# --- reading bodies -----------------------------------------------------------------


class _LineReader(Protocol):
    """A ``deliverBody`` protocol that hands each complete line to ``on_line``.

    ``done`` fires None at the end of the body, fails with the transport's reason
    when the connection is lost, or with what ``on_line`` raised (the connection
    is then closed).  Cancelling ``done`` closes the connection.  With
    ``on_line=None`` the whole body is kept in ``body`` instead.
    """

    def __init__(self, on_line: Callable[[bytes], None] | None):
        self.on_line = on_line
        self.done: defer.Deferred = defer.Deferred(self._cancel)
        self._parts: list[bytes] = []

    @property
    def body(self) -> bytes:
        return b"".join(self._parts)

    def _cancel(self, _d) -> None:
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self._parts.append(data)
        if self.on_line is None or b"\n" not in data:
            return
        *lines, rest = b"".join(self._parts).split(b"\n")
        self._parts = [rest] if rest else []
        try:
            for line in lines:
                if line.strip():
                    self.on_line(line)
        except BaseException:
            failure = Failure()
            self._close()
            if not self.done.called:
                self.done.errback(failure)

    def connectionLost(self, reason=None) -> None:
        if self.done.called:
            return
        if reason is not None and not reason.check(webclient.ResponseDone, PotentialDataLoss):
            self.done.errback(reason)
            return
        if self.on_line is not None and self._parts:
            rest, self._parts = b"".join(self._parts), []
            if rest.strip():
                try:
                    self.on_line(rest)
                except BaseException:
                    self.done.errback(Failure())
                    return
        self.done.callback(None)


def _read(response, on_line=None) -> defer.Deferred:
    """Read ``response``'s body: line by line into ``on_line``, or whole (the
    Deferred then fires the bytes)."""
    reader = _LineReader(on_line)
    response.deliverBody(reader)
    if on_line is None:
        reader.done.addCallback(lambda _: reader.body)
    return reader.done


def _decode_json(data: bytes, what: str):
    try:
        return json.loads(data)
    except ValueError:
        raise IPFSError(
            f"the IPFS daemon sent an answer to {what} that is not JSON: "
            f"{data[:200].decode('utf-8', 'replace')!r}",
            code=200,
        ) from None


def _want_mapping(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise IPFSError(f"the IPFS daemon's answer to {what} is not a JSON object", code=200)
    return value


def _stream_error(obj) -> IPFSError | None:
    """The error an NDJSON stream carries inline (``{"Type":"error"}``), if any."""
    if isinstance(obj, dict) and obj.get("Type") == "error" and "Message" in obj:
        return IPFSError(f"IPFS unsuccessful: 200: {obj['Message']}", code=200)
    return None


def _is_not_pinned(err: IPFSError) -> bool:
    return any(text in err.message for text in NOT_PINNED_MESSAGES)


def _multipart(field: str, data: bytes) -> tuple[bytes, str]:
    """A one-part ``multipart/form-data`` body, as kubo's clients send files."""
    boundary = "ipfscluster-" + secrets.token_hex(12)
    body = b"".join(
        [
            b"--" + boundary.encode() + b"\r\n",
            b'Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
            % (field.encode(), field.encode()),
            b"Content-Type: application/octet-stream\r\n\r\n",
            bytes(data),
            b"\r\n--" + boundary.encode() + b"--\r\n",
        ]
    )
    return body, f"multipart/form-data; boundary={boundary}"


class _Operation:
    """The timer of one operation: a deadline, or a watchdog reset by :meth:`kick`.

    ``kick`` only records the time (it is called for every pin of a listing); the
    timer, when it fires early, re-arms itself for ``last kick + seconds``.
    """

    def __init__(self, clock, seconds: float | None, timeout_error: Callable[[], Exception]):
        self.clock = clock
        self.seconds = seconds
        self.timeout_error = timeout_error
        self.expired = False
        self.cancelled = False
        self.deferred: defer.Deferred | None = None
        self._timer = None
        self._last_kick = clock.seconds()

    def start(self, deferred: defer.Deferred) -> None:
        self.deferred = deferred
        if self.seconds and not deferred.called:
            self._timer = self.clock.callLater(self.seconds, self._expire)

    def kick(self) -> None:
        """Restart the watchdog (progress was made)."""
        self._last_kick = self.clock.seconds()

    def _expire(self) -> None:
        self._timer = None
        left = self._last_kick + self.seconds - self.clock.seconds()
        if left > 0:
            self._timer = self.clock.callLater(left, self._expire)
            return
        self.expired = True
        self.deferred.cancel()

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


# --- the connector ------------------------------------------------------------------


@implementer(IIPFSConnector)
class IPFSHTTPConnector(Service):
    """The IPFS daemon connector (kubo RPC API over HTTP, through treq).

    :param config: the ``ipfs_connector.ipfshttp`` section
        (:class:`~ipfscluster.config.ipfshttp.IPFSHTTPConfig`): ``node_multiaddress``
        and ``pin_timeout`` are used.
    :param clock: the reactor (``IReactorTime``; also ``IReactorTCP`` when
        ``http_client`` is None, to build the production client).
    :param http_client: a treq-like client (``post(url, params=, data=,
        headers=, unbuffered=, allow_redirects=)``), e.g.
        ``treq.testing.StubTreq(resource)``.  None: a ``treq.HTTPClient`` with its
        own persistent connection pool, closed by ``stopService``.
    :param request_timeout: seconds for plain calls (None: config
        ``ipfs_request_timeout`` if the section has it, else
        :data:`DEFAULT_REQUEST_TIMEOUT`).
    :param unpin_timeout: seconds for ``pin/rm`` (None: config ``unpin_timeout``
        if present, else :data:`DEFAULT_UNPIN_TIMEOUT`).
    :param ready_backoff: ``(first, longest)`` delays in seconds between ``id``
        attempts while waiting for the daemon at boot (doubling).
    """

    name = "ipfshttp"

    def __init__(
        self,
        config,
        clock,
        http_client=None,
        *,
        request_timeout: float | None = None,
        unpin_timeout: float | None = None,
        ready_backoff: tuple[float, float] = DEFAULT_READY_BACKOFF,
    ):
        self.config = config
        self.clock = clock
        self.node_multiaddress: Multiaddr = config.node_multiaddress
        self.node_multiaddress.client_endpoint_string()  # InvalidMultiaddr unless IP/DNS + TCP
        host, port = self.node_multiaddress.host.rstrip("."), self.node_multiaddress.port
        self.base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self.pin_timeout = _seconds(config.pin_timeout)
        self.request_timeout = _seconds(
            request_timeout
            if request_timeout is not None
            else getattr(config, "ipfs_request_timeout", DEFAULT_REQUEST_TIMEOUT)
        )
        self.unpin_timeout = _seconds(
            unpin_timeout
            if unpin_timeout is not None
            else getattr(config, "unpin_timeout", DEFAULT_UNPIN_TIMEOUT)
        )
        self.ready_backoff = ready_backoff
        self._pool = None
        if http_client is None:
            http_client = self._production_client(clock)
        self.http = http_client
        self._inflight: set[defer.Deferred] = set()
        self._stopping = False
        self._reached = False
        self._ready_waiters: list[defer.Deferred] = []
        self._ready_loop: defer.Deferred | None = None
        #: how many times the boot loop asked the daemon for ``id``
        self.ready_attempts = 0
        self.consecutive_failures = 0
        self._next_slot = 0.0  # clock time of the next request while rate-limited

    def _production_client(self, reactor):
        self._pool = webclient.HTTPConnectionPool(reactor, persistent=True)
        # idle connections kept for reuse: enough for concurrent pins plus the loops
        self._pool.maxPersistentPerHost = POOL_SIZE
        agent = webclient.Agent(reactor, connectTimeout=CONNECT_TIMEOUT, pool=self._pool)
        return HTTPClient(agent)

    # --- service ------------------------------------------------------------------

    def startService(self):
        """Start waiting for the daemon (see :meth:`ready`); returns None."""
        super().startService()
        if not self._reached and self._ready_loop is None and not self._stopping:
            self._ready_loop = defer.Deferred.fromCoroutine(self._wait_for_daemon())
            self._ready_loop.addErrback(lambda f: f.trap(defer.CancelledError, ShuttingDown))

    def stopService(self):
        """Cancel the boot loop and every call in flight (they fail with
        ShuttingDown), close the connection pool.  Returns a Deferred firing when
        done; later calls fail with ShuttingDown."""
        super().stopService()
        self._stopping = True
        if self._ready_loop is not None:
            self._ready_loop.cancel()
            self._ready_loop = None
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.errback(ShuttingDown("the IPFS connector is shutting down"))
        for d in list(self._inflight):
            d.cancel()
        if self._pool is not None:
            return self._pool.closeCachedConnections()
        return defer.succeed(None)

    def ready(self) -> defer.Deferred:
        """Return a Deferred firing None once the daemon has answered ``id`` once.

        Fires at once when already reached; fails with ShuttingDown when the
        service stops first.
        """
        if self._reached:
            return defer.succeed(None)
        if self._stopping:
            return defer.fail(ShuttingDown("the IPFS connector is shutting down"))
        d = defer.Deferred(self._forget_waiter)
        self._ready_waiters.append(d)
        return d

    def _forget_waiter(self, d: defer.Deferred) -> None:
        if d in self._ready_waiters:
            self._ready_waiters.remove(d)

    async def _wait_for_daemon(self) -> None:
        delay, longest = self.ready_backoff
        while True:
            self.ready_attempts += 1
            attempts = self.ready_attempts
            try:
                await self._identity()
            except (IPFSError, OperationTimeout) as e:
                if attempts == 1 or attempts % READY_WARN_EVERY == 0:
                    log.warn(
                        "waiting for the IPFS daemon at {address} (attempt {attempts}): {error}",
                        address=str(self.node_multiaddress),
                        attempts=attempts,
                        error=str(e),
                    )
                await self._sleep(delay)
                delay = min(delay * 2, longest)
                continue
            break
        self._reached = True
        self._ready_loop = None
        log.info("IPFS daemon reached at {address}", address=str(self.node_multiaddress))
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.callback(None)

    def _sleep(self, seconds: float) -> defer.Deferred:
        d = defer.Deferred(lambda _: call.cancel() if call.active() else None)
        call = self.clock.callLater(seconds, lambda: d.called or d.callback(None))
        return d

    # --- operations ---------------------------------------------------------------

    def _operation(self, coroutine_fn, seconds, timeout_error) -> defer.Deferred:
        """Run ``coroutine_fn(op)`` as one operation (see the module docstring).

        ``seconds``: the operation's timer (None: none); ``timeout_error()`` builds
        the error raised when it expires.  Returns a Deferred that the caller may
        cancel.
        """
        if self._stopping:
            return defer.fail(ShuttingDown("the IPFS connector is shutting down"))
        op = _Operation(self.clock, seconds, timeout_error)

        def cancel(_outer):
            op.cancelled = True
            inner.cancel()

        outer = defer.Deferred(cancel)
        inner = defer.Deferred.fromCoroutine(coroutine_fn(op))
        op.start(inner)
        self._inflight.add(inner)

        def finish(result):
            op.stop()
            self._inflight.discard(inner)
            if isinstance(result, Failure):
                if op.expired:
                    result = Failure(op.timeout_error())
                elif self._stopping:
                    result = Failure(ShuttingDown("the IPFS connector is shutting down"))
                elif op.cancelled:
                    result = Failure(defer.CancelledError())
            if outer.called:  # only after a cancellation: nothing left to report
                if isinstance(result, Failure):
                    result.trap(defer.CancelledError, ShuttingDown)
            elif isinstance(result, Failure):
                outer.errback(result)
            else:
                outer.callback(result)

        inner.addBoth(finish)
        return outer

    def _timeout(self, what: str, seconds: float) -> Callable[[], Exception]:
        return lambda: OperationTimeout(
            f"the IPFS daemon at {self.node_multiaddress} did not answer {what} within "
            f"{_show_duration(seconds)}; check that it is not overloaded, then retry"
        )

    def _call(self, what: str, coroutine_fn, seconds: float | None = None) -> defer.Deferred:
        """A plain operation bounded by the request timeout (or ``seconds``)."""
        seconds = self.request_timeout if seconds is None else seconds
        return self._operation(coroutine_fn, seconds, self._timeout(what, seconds))

    async def _rate_limit(self) -> None:
        if self.consecutive_failures < FAILURE_THRESHOLD:
            return
        now = self.clock.seconds()
        slot = max(now, self._next_slot)
        self._next_slot = slot + FAILURE_RATE_INTERVAL
        if slot > now:
            await self._sleep(slot - now)

    async def _post(self, endpoint: str, params=(), *, data=None, headers=None):
        """Send one request; return the response if its status is 200.

        Raises IPFSError for other statuses (§8.1 messages) and IPFSUnreachable
        when the daemon cannot be reached.
        """
        await self._rate_limit()
        url = f"{self.base_url}/api/v0/{endpoint}"
        params = list(params)
        try:
            response = await self.http.post(
                url,
                params=params,
                data=data,
                headers=headers,
                unbuffered=True,
                allow_redirects=False,
            )
            if response.code != 200:
                body = await _read(response)
        except (
            ierror.ConnectError,
            ierror.ConnectionLost,
            webclient.ResponseNeverReceived,
            webclient.ResponseFailed,
        ) as e:
            self.consecutive_failures += 1
            raise self._unreachable(e) from None
        if response.code != 200:
            self.consecutive_failures += 1
            raise self._status_error(endpoint, params, response.code, body)
        self.consecutive_failures = 0
        return response

    def _unreachable(self, exc: Exception) -> IPFSUnreachable:
        reasons = getattr(exc, "reasons", None)
        reason = reasons[0].getErrorMessage() if reasons else str(exc) or type(exc).__name__
        return IPFSUnreachable(
            f"cannot reach the IPFS daemon at {self.node_multiaddress} ({reason}); check "
            "that the IPFS daemon runs and listens at that address "
            "(ipfs_connector.ipfshttp.node_multiaddress)",
            code=0,
        )

    @staticmethod
    def _status_error(endpoint: str, params, code: int, body: bytes) -> IPFSError:
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict) and isinstance(decoded.get("Message"), str):
            return IPFSError(f"IPFS unsuccessful: {code}: {decoded['Message']}", code=code)
        query = "&".join(f"{k}={v}" for k, v in params)
        path = f"{endpoint}?{query}" if query else endpoint
        text = body[:_MAX_ERROR_BODY].decode("utf-8", "replace").strip()
        return IPFSError(f"IPFS-get '{path}' unsuccessful: {code}: {text}", code=code)

    async def _json(self, endpoint: str, params=()):
        """POST and decode the single JSON value answered."""
        response = await self._post(endpoint, params)
        return _decode_json(await self._read_ok(response), endpoint)

    async def _read_ok(self, response, on_line=None):
        """Read a 200 answer's body; a connection lost meanwhile is IPFSUnreachable."""
        try:
            return await _read(response, on_line)
        except (webclient.ResponseFailed, ierror.ConnectionLost) as e:
            self.consecutive_failures += 1
            raise self._unreachable(e) from None

    # --- identity -------------------------------------------------------------------

    async def _identity(self) -> IPFSID:
        answer = _want_mapping(
            await self._call("id", lambda op: self._json("id")), "id"
        )
        addresses = []
        for text in answer.get("Addresses") or ():
            try:
                addresses.append(Multiaddr.parse(text))
            except InvalidMultiaddr:
                continue  # quic, webtransport, relays …: not used by the cluster
        try:
            return IPFSID(answer.get("ID", ""), tuple(addresses))
        except InvalidInput as e:
            raise IPFSError(f"the IPFS daemon sent an invalid peer ID in id: {e}", code=200) from None

    def id(self) -> defer.Deferred:
        """Return a Deferred firing the daemon's ``IPFSID``; a failure is reported
        in its ``error`` field (no addresses), never as a failed Deferred (except
        CancelledError when the caller cancels)."""

        def report(failure):
            if failure.check(defer.CancelledError):
                return failure
            error = failure.value
            return IPFSID(error=str(error) if isinstance(error, Exception) else repr(error))

        return defer.Deferred.fromCoroutine(self._identity()).addErrback(report)

    # --- pins -----------------------------------------------------------------------

    def pin(self, pin: Pin, timeout: float | None = None) -> defer.Deferred:
        """Pin ``pin.cid`` as ``pin.max_depth`` says (-1 recursive, 0 direct, n > 0
        recursive with ``max-depth=n``).

        Connects to ``pin.origins`` first (best-effort, errors logged at debug);
        no-op when the daemon already pins it that way; with ``pin.pin_update`` set
        and that CID pinned recursively, runs ``pin/update`` instead of
        ``pin/add``.  ``timeout`` (None: ``pin_timeout``) is the longest time
        without progress.  Returns a Deferred firing None; fails with IPFSError,
        IPFSUnreachable, OperationTimeout or ShuttingDown.
        """
        seconds = self.pin_timeout if timeout is None else float(timeout)
        return self._operation(lambda op: self._pin(pin, seconds), None, None)

    async def _pin(self, pin: Pin, seconds: float) -> None:
        if pin.origins:
            await self._connect_origins(pin)
        status = await self.pin_ls_cid(pin.cid)
        if status.is_pinned(pin.max_depth):
            log.debug("{cid} is already pinned on IPFS", cid=str(pin.cid))
            return
        if pin.pin_update is not None and pin.pin_update != pin.cid:
            old = await self.pin_ls_cid(pin.pin_update)
            if old is IPFSPinStatus.RECURSIVE and pin.max_depth != 0:
                await self.pin_update(pin.pin_update, pin.cid, unpin=False)
                return
        params = [("arg", str(pin.cid))]
        if pin.max_depth == 0:
            params.append(("recursive", "false"))
        else:
            params.append(("recursive", "true"))
            if pin.max_depth > 0:
                params.append(("max-depth", str(pin.max_depth)))
        params.append(("progress", "true"))

        def timeout_error():
            return OperationTimeout(
                f"pinning {pin.cid} made no progress for {_show_duration(seconds)} and was "
                "cancelled: the content may not be available on the IPFS network (check the "
                "pin's origins), or raise ipfs_connector.ipfshttp.pin_timeout"
            )

        await self._operation(lambda op: self._pin_add(op, pin.cid, params), seconds, timeout_error)

    async def _pin_add(self, op: _Operation, cid: CID, params) -> None:
        response = await self._post("pin/add", params)
        result = {}

        def on_line(line: bytes) -> None:
            obj = _decode_json(line, "pin/add")
            error = _stream_error(obj)
            if error is not None:
                raise error
            if not isinstance(obj, dict):
                return
            if "Pins" in obj:
                result["pins"] = obj["Pins"]
            progress = obj.get("Progress")
            # kubo sends an object every 500ms, "{}" while nothing is fetched:
            # only a growing node count is progress
            if isinstance(progress, int) and progress > result.get("progress", 0):
                result["progress"] = progress
                op.kick()
                log.debug("pinning {cid}: {nodes} nodes fetched", cid=str(cid), nodes=progress)

        await self._read_ok(response, on_line)
        if "pins" not in result:
            raise IPFSError(
                f"IPFS unsuccessful: 200: pin/add of {cid} ended without confirming the pin "
                "(the daemon reported an error in the stream); check the IPFS daemon's log",
                code=200,
            )
        log.debug("pinned {cid} on IPFS", cid=str(cid))

    def pin_update(self, from_cid: CID, to_cid: CID, unpin: bool = False) -> defer.Deferred:
        """``pin/update?arg=<from>&arg=<to>&unpin=<unpin>``: pin ``to_cid`` reusing
        the recursive pin ``from_cid`` (kept unless ``unpin``).  Returns a Deferred
        firing None; fails with IPFSError, IPFSUnreachable, OperationTimeout."""
        params = [
            ("arg", str(from_cid)),
            ("arg", str(to_cid)),
            ("unpin", "true" if unpin else "false"),
        ]

        async def run(op):
            await self._json("pin/update", params)

        return self._call("pin/update", run)

    def unpin(self, cid: CID, timeout: float | None = None) -> defer.Deferred:
        """``pin/rm?arg=<cid>``; kubo's "not pinned" answer counts as success.

        ``timeout`` in seconds (None: ``unpin_timeout``).  Returns a Deferred firing
        None; fails with IPFSError, IPFSUnreachable, OperationTimeout.
        """
        seconds = self.unpin_timeout if timeout is None else float(timeout)

        async def run(op):
            try:
                await self._json("pin/rm", [("arg", str(cid))])
            except IPFSUnreachable:
                raise
            except IPFSError as e:
                if not _is_not_pinned(e):
                    raise
                self.consecutive_failures = 0
                log.debug("{cid} was not pinned on IPFS", cid=str(cid))
                return
            log.debug("unpinned {cid} on IPFS", cid=str(cid))

        return self._call("pin/rm", run, seconds)

    def pin_ls(self, type_filter: str, receive) -> defer.Deferred:
        """Stream ``pin/ls?stream=true&type=<type_filter>``; call
        ``receive(cid, IPFSPinStatus)`` per pin as it is read.

        Returns a Deferred firing the number of pins received.  Raises InvalidInput
        (in the Deferred) for an unknown filter; IPFSError, IPFSUnreachable,
        OperationTimeout (no pin received for ``request_timeout``).
        """
        if type_filter not in PIN_TYPE_FILTERS:
            return defer.fail(
                InvalidInput(
                    f'invalid pin type filter "{type_filter}": use one of '
                    + ", ".join(PIN_TYPE_FILTERS)
                )
            )
        params = [("stream", "true"), ("type", type_filter)]

        async def run(op):
            response = await self._post("pin/ls", params)
            count = 0

            def on_line(line: bytes) -> None:
                nonlocal count
                obj = _want_mapping(_decode_json(line, "pin/ls"), "pin/ls")
                error = _stream_error(obj)
                if error is not None:
                    raise error
                try:
                    cid = CID.parse(obj.get("Cid", ""))
                except (InvalidCID, TypeError) as e:
                    raise IPFSError(f"the IPFS daemon listed an invalid CID in pin/ls: {e}", code=200) from None
                op.kick()
                count += 1
                receive(cid, IPFSPinStatus.from_ipfs(str(obj.get("Type", ""))))

            await self._read_ok(response, on_line)
            return count

        return self._call("pin/ls", run)

    def pin_ls_cid(self, cid: CID) -> defer.Deferred:
        """``pin/ls?arg=<cid>&type=all`` → a Deferred firing the ``IPFSPinStatus``.

        ``UNPINNED`` when the daemon answers with an error (not pinned, or any
        other daemon error); fails with IPFSUnreachable or OperationTimeout, and
        IPFSError when a 200 answer does not list the CID.
        """

        async def run(op):
            try:
                answer = _want_mapping(
                    await self._json("pin/ls", [("arg", str(cid)), ("type", "all")]), "pin/ls"
                )
            except IPFSUnreachable:
                raise
            except IPFSError as e:
                if e.code != 200:
                    if _is_not_pinned(e):
                        self.consecutive_failures = 0
                    return IPFSPinStatus.UNPINNED
                raise
            keys = answer.get("Keys") or {}
            for key, value in keys.items():
                try:
                    found = CID.parse(key)
                except InvalidCID:
                    continue
                if found == cid or found.multihash == cid.multihash or len(keys) == 1:
                    kind = value.get("Type", "") if isinstance(value, dict) else ""
                    return IPFSPinStatus.from_ipfs(str(kind))
            raise IPFSError(
                f"the IPFS daemon's pin/ls answer does not list {cid}: expected to find the pin "
                "in the response",
                code=200,
            )

        return self._call("pin/ls", run)

    # --- repository -------------------------------------------------------------------

    def repo_stat(self) -> defer.Deferred:
        """``repo/stat?size-only=true`` → a Deferred firing a ``RepoStat``.  Fails
        with IPFSError (also for an unreadable answer), IPFSUnreachable,
        OperationTimeout."""

        async def run(op):
            answer = await self._json("repo/stat", [("size-only", "true")])
            try:
                return RepoStat.from_json(answer)
            except InvalidInput as e:
                raise IPFSError(f"the IPFS daemon's repo/stat answer is not valid: {e}", code=200) from None

        return self._call("repo/stat", run)

    def free_space(self) -> defer.Deferred:
        """A Deferred firing ``StorageMax - RepoSize`` (bytes, ≥ 0); fails like
        :meth:`repo_stat`."""
        return self.repo_stat().addCallback(lambda stat: stat.free_space)

    def repo_size(self) -> defer.Deferred:
        """A Deferred firing ``RepoSize`` (bytes); fails like :meth:`repo_stat`."""
        return self.repo_stat().addCallback(lambda stat: stat.repo_size)

    # --- swarm ------------------------------------------------------------------------

    def swarm_connect(self, multiaddr) -> defer.Deferred:
        """``swarm/connect?arg=<multiaddr>``.  Returns a Deferred firing None;
        fails with IPFSError, IPFSUnreachable, OperationTimeout."""
        return self._swarm_connect(multiaddr, None)

    def _swarm_connect(self, multiaddr, seconds: float | None) -> defer.Deferred:
        async def run(op):
            await self._json("swarm/connect", [("arg", str(multiaddr))])
            log.debug("IPFS daemon connected to {address}", address=str(multiaddr))

        return self._call("swarm/connect", run, seconds)

    def swarm_peers(self) -> defer.Deferred:
        """``swarm/peers`` → a Deferred firing the list of connected peer IDs
        (str).  Fails with IPFSError, IPFSUnreachable, OperationTimeout."""

        async def run(op):
            answer = _want_mapping(await self._json("swarm/peers"), "swarm/peers")
            return [p["Peer"] for p in answer.get("Peers") or () if isinstance(p, dict) and p.get("Peer")]

        return self._call("swarm/peers", run)

    def connect_swarms(self, multiaddrs) -> defer.Deferred:
        """Best-effort ``swarm/connect`` to each of ``multiaddrs`` (reference §8.2).

        The cluster calls it ``connect_swarms_delay`` after start (and when a peer
        joins) with the IPFS addresses of the cluster's members.  Errors are
        logged at debug and otherwise ignored.  Returns a Deferred firing the
        number of successful connections.
        """

        async def one(address) -> bool:
            try:
                await self.swarm_connect(address)
            except (IPFSError, OperationTimeout) as e:
                log.debug("swarm/connect to {address} failed: {error}", address=str(address), error=str(e))
                return False
            return True

        async def run():
            results = await defer.gatherResults(
                [defer.Deferred.fromCoroutine(one(a)) for a in multiaddrs], consumeErrors=True
            ).addErrback(lambda f: f.value.subFailure)
            return sum(1 for ok in results if ok)

        return defer.Deferred.fromCoroutine(run())

    async def _connect_origins(self, pin: Pin) -> None:
        async def one(address):
            try:
                await self._swarm_connect(address, ORIGINS_CONNECT_TIMEOUT)
            except (IPFSError, OperationTimeout) as e:
                log.debug(
                    "connecting to origin {address} of {cid} failed: {error}",
                    address=str(address),
                    cid=str(pin.cid),
                    error=str(e),
                )

        await defer.gatherResults(
            [defer.Deferred.fromCoroutine(one(a)) for a in pin.origins], consumeErrors=True
        ).addErrback(lambda f: f.value.subFailure)

    # --- config, paths, blocks ---------------------------------------------------------

    def config_key(self, keypath: str) -> defer.Deferred:
        """``config/show`` then walk ``keypath`` ("Section/Key", any depth).

        Returns a Deferred firing the decoded JSON value.  Fails with NotFound
        when a component is missing, or IPFSError/IPFSUnreachable/OperationTimeout.
        """

        async def run(op):
            value = await self._json("config/show")
            for part in keypath.split("/"):
                if not isinstance(value, dict) or part not in value:
                    raise NotFound(
                        f'the IPFS daemon\'s configuration has no key "{keypath}"; check the '
                        "key's spelling (for example Datastore/StorageMax)"
                    )
                value = value[part]
            return value

        return self._call("config/show", run)

    def resolve(self, path: str) -> defer.Deferred:
        """``resolve?arg=<path>`` → a Deferred firing the ``CID`` the path leads to.

        ``path`` starts with ``/ipfs/``, ``/ipns/`` or ``/ipld/`` (a bare CID is
        accepted too).  Fails with InvalidInput for another form, or
        IPFSError/IPFSUnreachable/OperationTimeout.
        """
        if not isinstance(path, str) or not path:
            return defer.fail(InvalidInput("cannot resolve an empty path: use /ipfs/<cid>/…"))
        if path.startswith("/"):
            parts = path.split("/")
            if len(parts) < 3 or parts[1] not in ("ipfs", "ipns", "ipld") or not parts[2]:
                return defer.fail(
                    InvalidInput(
                        f'cannot resolve "{path}": use a path such as /ipfs/<cid>/…, '
                        "/ipns/<name>/… or /ipld/<cid>/…"
                    )
                )
        else:
            try:
                CID.parse(path.split("/")[0])
            except InvalidCID as e:
                return defer.fail(InvalidInput(f'cannot resolve "{path}": {e}'))

        async def run(op):
            answer = _want_mapping(await self._json("resolve", [("arg", path)]), "resolve")
            resolved = str(answer.get("Path", ""))
            head = resolved.split("/")[2] if resolved.startswith("/ipfs/") else resolved
            try:
                return CID.parse(head)
            except InvalidCID as e:
                raise IPFSError(f"the IPFS daemon resolved {path} to {resolved!r}: {e}", code=200) from None

        return self._call("resolve", run)

    def block_put(self, data: bytes, codec: str = "raw", mhtype: str = "sha2-256") -> defer.Deferred:
        """``block/put?cid-codec=<codec>&mhtype=<mhtype>`` with ``data`` as a
        multipart file.  Returns a Deferred firing the block's ``CID``; fails with
        IPFSError, IPFSUnreachable, OperationTimeout."""
        body, content_type = _multipart("data", data)
        params = [("cid-codec", codec), ("mhtype", mhtype)]

        async def run(op):
            response = await self._post(
                "block/put", params, data=body, headers={b"Content-Type": [content_type.encode()]}
            )
            keys = []

            def on_line(line: bytes) -> None:
                obj = _want_mapping(_decode_json(line, "block/put"), "block/put")
                error = _stream_error(obj)
                if error is not None:
                    raise error
                keys.append(obj.get("Key", ""))

            await self._read_ok(response, on_line)
            if not keys:
                raise IPFSError(
                    "IPFS unsuccessful: 200: block/put answered no block (the daemon reported "
                    "an error in the stream); check the IPFS daemon's log",
                    code=200,
                )
            try:
                return CID.parse(keys[0])
            except InvalidCID as e:
                raise IPFSError(f"the IPFS daemon answered block/put with an invalid CID: {e}", code=200) from None

        return self._call("block/put", run)

    def add(self, body: bytes, content_type: str, params=()) -> defer.Deferred:
        """``add`` with the multipart ``body`` (``content_type`` carries its
        boundary) and the kubo ``params`` (a list of (key, value)); ``pin=false``
        and ``progress=false`` are always sent.  Returns a Deferred firing the list
        of kubo's answer objects (``{"Name","Hash","Size"}``), in order.  Fails with
        IPFSError (also for an error reported inside the stream), IPFSUnreachable,
        OperationTimeout."""
        params = [(k, v) for k, v in params if k not in ("pin", "progress")]
        params += [("pin", "false"), ("progress", "false")]

        async def run(op):
            response = await self._post(
                "add", params, data=body, headers={b"Content-Type": [content_type.encode("latin-1")]}
            )
            objects = []

            def on_line(line: bytes) -> None:
                obj = _want_mapping(_decode_json(line, "add"), "add")
                error = _stream_error(obj)
                if error is not None:
                    raise error
                objects.append(obj)

            await self._read_ok(response, on_line)
            return objects

        return self._call("add", run)

    def block_get(self, cid: CID) -> defer.Deferred:
        """``block/get?arg=<cid>`` → a Deferred firing the block's bytes.  Fails
        with IPFSError, IPFSUnreachable, OperationTimeout."""

        async def run(op):
            response = await self._post("block/get", [("arg", str(cid))])
            return await self._read_ok(response)

        return self._call("block/get", run)
