"""The IPFS proxy: the kubo RPC API on ``proxy_listen_multiaddress``, cluster-pinning.

:class:`IPFSProxy` (an ``IAPI`` service) listens on
``ipfs_connector.ipfshttp.proxy_listen_multiaddress`` (plain HTTP, no auth, as
upstream) and makes any kubo client a cluster client (reference §8.3, §12.4,
§15).  It reaches the peer only through :class:`~ipfscluster.interfaces.ICluster`
and the daemon only through HTTP at ``cluster.ipfs_api_url()``.

Intercepted (``POST`` only; other methods go to the daemon, which refuses them as
kubo does):

==============  ================================================================
``pin/add``     every ``arg`` (query or path form ``/pin/add/<arg>``; a CID or an
                ``/ipfs|ipns|ipld/`` path) is cluster-pinned (``Cluster.pin`` /
                ``pin_path``); ``recursive=false`` or ``type=direct`` pins direct;
                ``name``/``replication*`` … are cluster pin options.
                → ``{"Pins":[cid…]}``
``pin/rm``      every ``arg`` is cluster-unpinned → ``{"Pins":[cid…]}``; one not
                in the shared state is kubo's ``not pinned or pinned indirectly``
``pin/ls``      answers from the **shared state**: ``{"Keys":{cid:{"Type"}}}``, or
                NDJSON ``{"Cid","Type"}`` lines with ``stream=true``; ``type``
                filters (``all`` default, ``recursive``, ``direct``, ``indirect``);
                with ``arg``\\ s only those, ``path '<arg>' is not pinned`` otherwise
``pin/update``  ``arg`` from, ``arg`` to: ``Cluster.pin_update`` then (``unpin``,
                default true) the old pin is removed → ``{"Pins":[from,to]}``
``add``         see :mod:`.add` (forwarded with ``pin=false``, NDJSON relayed as it
                arrives, roots cluster-pinned)
``repo/stat``   ``Cluster.repo_stat(local=False)``: sizes summed over the peers'
                daemons, shaped like kubo's ``size-only`` answer
==============  ================================================================

Everything else is reverse-proxied, streaming both ways (:mod:`.forward`).

*Streaming requests.*  :class:`ProxyRequest` decides at the end of the headers
(before any body byte) what a request is: a forwarded one (everything but the small
intercepted commands, ``add`` included) starts its upstream request at once and
pipes the body as it arrives; the small intercepted commands are buffered as usual.
The method and URI are read from the channel's private ``_command``/``_path``
because twisted sets them on the request only after the body — the one twisted
internal relied on, and checked by the tests.  The routing is done by hand in a
leaf resource instead of Klein because it must be decided in the request class,
before rendering (DESIGN.md names Klein for the proxy; the table is small).

*Errors* are kubo's ``{"Message","Code","Type":"error"}``: 400/code 1 for bad
arguments (:class:`~ipfscluster.errors.InvalidInput`), 500/code 0 otherwise.  A
daemon that cannot be reached gives 500 ``error forwarding request to the IPFS
daemon at <url>: <reason>``.

*Headers.*  Intercepted answers carry the daemon's own headers (CORS, ``Server``,
``Vary`` …), read from its ``/api/v0/version`` answer and cached per ``Origin``
for :data:`HEADERS_TTL` seconds (modern upstream's ``extract_headers_*`` default);
browsers and the IPFS web UI need them.

*Timeouts* (``proxy_*`` keys; ``0s`` disables one), each closing the connection:
``proxy_read_header_timeout`` (first byte of a request to the end of its headers),
``proxy_read_timeout`` (… to the end of its body), ``proxy_write_timeout`` (end of
the request to the end of the response), ``proxy_idle_timeout`` (twisted's channel
timeout between requests).
"""

from __future__ import annotations

import io
import json
import urllib.parse

import attrs
from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import http, server
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from zope.interface import implementer

from ipfscluster.api.proxy.add import AddRelay, cluster_options_query, daemon_add_uri, is_cluster_pin_key
from ipfscluster.api.proxy.forward import (
    BodyPipe,
    ResponseRelay,
    Upstream,
    copy_response_headers,
    end_with_stream_error,
    forward_headers,
    read_body,
    set_no_delay,
)
from ipfscluster.api.proxy.wire import (
    KuboQuery,
    ProxyArgumentError,
    error_body,
    error_status,
    go_json,
    resolve,
)
from ipfscluster.cid import CID
from ipfscluster.errors import ClusterError, InvalidCID, NotFound
from ipfscluster.interfaces import IAPI
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.types import PinOptions

__all__ = ["IPFSProxy", "ProxyRequest", "DaemonHeaders", "HEADERS_TTL"]

log = Logger(namespace="ipfsproxy")

#: seconds the daemon's headers are reused before being fetched again
HEADERS_TTL = 300.0
#: pins written per chunk when listing the shared state
_LIST_BATCH = 512
_JSON = b"application/json"
_PIN_TYPES = ("all", "recursive", "direct", "indirect")
_NOT_PINNED_RM = "not pinned or pinned indirectly"


def _pin_type(pin) -> str:
    return "direct" if pin.max_depth == 0 else "recursive"


def _is_gone(request) -> bool:
    return bool(request.finished or getattr(request, "_disconnected", False))


# --- the daemon's headers, mirrored on intercepted answers ------------------------------


class DaemonHeaders:
    """The daemon's response headers worth mirroring, cached per ``Origin``.

    :param fetch: ``fetch(origin)`` → Deferred firing the daemon's response
        ``Headers`` to a ``version`` call made with that ``Origin`` (or None).
    :param clock: ``IReactorTime``.
    :param ttl: seconds an answer is reused.
    """

    #: headers that describe one body, not the daemon
    EXCLUDED = frozenset(
        (b"content-type", b"content-length", b"date", b"trailer", b"transfer-encoding", b"connection",
         b"keep-alive", b"x-chunked-output", b"x-stream-output", b"x-content-length")
    )  # fmt: skip
    MAX_ORIGINS = 64

    def __init__(self, fetch, clock, ttl: float = HEADERS_TTL):
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[bytes, tuple[float, list]] = {}

    async def get(self, origin: bytes | None) -> list[tuple[bytes, list[bytes]]]:
        """The headers to set, ``[(name, values)]``; ``[]`` (or the stale copy) when
        the daemon cannot be asked.  Never raises."""
        key = origin or b""
        cached = self._cache.get(key)
        now = self._clock.seconds()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            headers = await self._fetch(origin)
        except Exception as err:
            log.warn("could not read the IPFS daemon's headers to mirror them: {error}", error=str(err))
            return cached[1] if cached is not None else []
        kept = [
            (name, list(values))
            for name, values in headers.getAllRawHeaders()
            if name.lower() not in self.EXCLUDED
        ]
        if len(self._cache) >= self.MAX_ORIGINS and key not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (now + self._ttl, kept)
        return kept


# --- one forwarded request -----------------------------------------------------------------


@attrs.define(eq=False)
class Forwarding:
    """A request on its way to the daemon (or refused before being sent)."""

    url: str
    pipe: BodyPipe | None = None
    ready: defer.Deferred | None = None  # fires (response, relay)
    relay: ResponseRelay | None = None
    error: ClusterError | None = None
    rendered: bool = False

    def cancel(self, reason) -> None:
        """The client went away: drop the upload and the answer."""
        if self.pipe is not None:
            self.pipe.abort(reason)
        if self.ready is not None:
            if not self.ready.called:
                self.ready.cancel()
            if not self.rendered:
                # nobody will wait for the answer: its failure is expected
                self.ready.addErrback(lambda failure: None)
        relay = self.relay
        if relay is not None and relay.transport is not None and relay.done is not None:
            relay.transport.stopProducing()


class ProxyRequest(server.Request):
    """A request whose body streams to the daemon (see the module docstring).

    ``proxy`` is set on the subclass the proxy's site uses.
    """

    proxy: IPFSProxy | None = None
    forwarding: Forwarding | None = None

    def gotLength(self, length):
        channel = self.channel
        method = getattr(channel, "_command", None)
        uri = getattr(channel, "_path", None)
        if self.proxy is not None and method is not None and uri is not None:
            try:
                self.forwarding = self.proxy._plan(self, method, uri, length)
            except Exception as err:
                log.failure("planning the proxy request {uri} failed", uri=uri)
                self.forwarding = Forwarding("", error=ClusterError(f"the proxy could not handle the request: {err}"))
        if self.forwarding is None:
            super().gotLength(length)
        else:
            self.content = io.BytesIO()

    def handleContentChunk(self, data):
        fwd = self.forwarding
        if fwd is None:
            super().handleContentChunk(data)
        elif fwd.pipe is not None:
            fwd.pipe.write(data)

    def requestReceived(self, command, path, version):
        fwd = self.forwarding
        if fwd is not None and fwd.pipe is not None:
            fwd.pipe.end()
        super().requestReceived(command, path, version)

    def connectionLost(self, reason):
        fwd = self.forwarding
        if fwd is not None:
            fwd.cancel(reason)
        super().connectionLost(reason)


class _Drain:
    """A push producer standing in for a listing: lets it wait while the client's
    socket is full (the transport pauses it) instead of piling the list up."""

    def __init__(self):
        self._paused = False
        self._waiter: defer.Deferred | None = None

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.callback(None)

    def stopProducing(self) -> None:
        self.resumeProducing()

    def wait(self) -> defer.Deferred:
        """A Deferred firing once the client can take more (at once if it can)."""
        if not self._paused:
            return defer.succeed(None)
        self._waiter = defer.Deferred()
        return self._waiter


class _Deadlines:
    """Named timers of one connection; each aborts the connection when it fires."""

    def __init__(self, channel, limits: dict):
        self._channel = channel
        self._limits = limits
        self._calls: dict = {}

    def arm(self, name: str) -> None:
        seconds = self._limits.get(name, 0)
        if seconds and name not in self._calls:
            self._calls[name] = self._channel.callLater(seconds, self._fire, name)

    def disarm(self, *names: str) -> None:
        for name in names or tuple(self._calls):
            call = self._calls.pop(name, None)
            if call is not None and call.active():
                call.cancel()

    def _fire(self, name: str) -> None:
        self._calls.pop(name, None)
        transport = self._channel.transport
        log.info("closing the proxy connection of {peer}: {name} expired", peer=str(transport.getPeer()), name=name)
        transport.abortConnection()


class ProxyChannel(http.HTTPChannel):
    """HTTP/1.1 channel with the proxy's timeouts; registers itself while open."""

    limits: dict = {}
    open_channels: dict = {}

    def connectionMade(self):
        self.deadlines = _Deadlines(self, self.limits)
        self.open_channels[self] = defer.Deferred()
        self._in_request = False
        set_no_delay(self.transport)
        super().connectionMade()

    def dataReceived(self, data):
        if not self._in_request and not self._handlingRequest:
            self._in_request = True
            self.deadlines.arm("proxy_read_header_timeout")
            self.deadlines.arm("proxy_read_timeout")
        super().dataReceived(data)

    def allHeadersReceived(self):
        self.deadlines.disarm("proxy_read_header_timeout")
        super().allHeadersReceived()

    def allContentReceived(self):
        self.deadlines.disarm("proxy_read_timeout")
        self._in_request = False
        self.deadlines.arm("proxy_write_timeout")
        super().allContentReceived()

    def requestDone(self, request):
        self.deadlines.disarm("proxy_write_timeout")
        super().requestDone(request)

    def connectionLost(self, reason):
        self.deadlines.disarm()
        super().connectionLost(reason)
        closed = self.open_channels.pop(self, None)
        if closed is not None:
            closed.callback(None)


class _ProxyResource(Resource):
    isLeaf = True

    def __init__(self, proxy: IPFSProxy):
        super().__init__()
        self._proxy = proxy

    def render(self, request):
        proxy = self._proxy
        fwd = getattr(request, "forwarding", None)
        if fwd is None:
            endpoint = resolve(request.uri) if request.method == b"POST" else None
            if endpoint is not None and endpoint != "add":
                work = proxy._intercept(request, endpoint)
            else:
                # a site without ProxyRequest (tests): the body is buffered already
                request.content.seek(0)
                data = request.content.read()
                body = BodyPipe.of_bytes(data) if data else None
                fwd = proxy._plan(request, request.method, request.uri, len(data), body=body)
                work = proxy._relay(request, fwd)
        else:
            work = proxy._relay(request, fwd)
        defer.Deferred.fromCoroutine(work)
        return server.NOT_DONE_YET


# --- the service -------------------------------------------------------------------------


@implementer(IAPI)
class IPFSProxy(service.Service):
    """The IPFS proxy of one peer.

    :param config: the ``ipfs_connector.ipfshttp`` section (``IPFSHTTPConfig``).
    :param cluster: the peer (``ICluster``).
    :param reactor: the reactor (listening, timers, the daemon client).
    :param agent: an ``IAgent`` for the daemon (tests); default: a pooled Agent.
    :param headers_ttl: seconds the daemon's headers are cached.
    """

    name = "ipfsproxy"

    def __init__(self, config, cluster, reactor, *, agent=None, headers_ttl: float = HEADERS_TTL):
        self.config = config
        self.cluster = cluster
        self.reactor = reactor
        self._agent = agent
        self._upstream: Upstream | None = None
        self.headers = DaemonHeaders(self._fetch_headers, reactor, headers_ttl)
        self._port = None
        self._addresses: list[Multiaddr] = []
        self._connections: dict = {}

    # --- plumbing -----------------------------------------------------------------------

    @property
    def upstream(self) -> Upstream:
        """The daemon client (made on first use from ``cluster.ipfs_api_url()``)."""
        if self._upstream is None:
            self._upstream = Upstream(self.reactor, self.cluster.ipfs_api_url(), agent=self._agent)
        return self._upstream

    def resource(self) -> Resource:
        """The root resource (tests drive it with ``treq.testing.StubTreq``)."""
        return _ProxyResource(self)

    def site(self) -> server.Site:
        """A ``Site`` with :class:`ProxyRequest` (streaming) and the timeouts."""
        cfg = self.config
        proxy = self

        class Request(ProxyRequest):
            pass

        Request.proxy = proxy

        class Channel(ProxyChannel):
            limits = {
                "proxy_read_header_timeout": cfg.proxy_read_header_timeout.seconds,
                "proxy_read_timeout": cfg.proxy_read_timeout.seconds,
                "proxy_write_timeout": cfg.proxy_write_timeout.seconds,
            }
            open_channels = self._connections

        site = server.Site(
            self.resource(), requestFactory=Request, reactor=self.reactor,
            timeout=cfg.proxy_idle_timeout.seconds or None,
        )  # fmt: skip
        site.protocol = Channel
        site.noisy = False
        site.log = lambda request: None
        return site

    # --- lifecycle ----------------------------------------------------------------------

    def startService(self):
        """Listen on ``proxy_listen_multiaddress``; a Deferred firing once listening.

        Fails with the listening error (e.g. the port is taken).
        """
        super().startService()
        maddr = self.config.proxy_listen_multiaddress
        try:
            maddr.tcp_endpoint_string()  # raises InvalidMultiaddr unless ip + tcp
            port = self.reactor.listenTCP(maddr.port, self.site(), interface=maddr.host)
        except Exception as err:
            self.running = False
            return defer.fail(err)
        self._port = port
        bound = port.getHost()
        self._addresses = [Multiaddr.from_host_port(bound.host, bound.port)]
        log.info(
            "IPFS Proxy: {address} -> {daemon}", address=str(self._addresses[0]), daemon=self.upstream.base_url
        )
        return defer.succeed(None)

    def stopService(self):
        """Stop listening, drop open connections (and their daemon requests), close
        the pooled daemon connections; a Deferred firing once all are gone."""
        super().stopService()
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            await defer.maybeDeferred(port.stopListening)
        waits = []
        for channel, closed in list(self._connections.items()):
            waits.append(closed)
            channel.transport.abortConnection()
        await defer.gatherResults(waits)
        if self._upstream is not None:
            await self._upstream.close()

    def addresses(self) -> list[Multiaddr]:
        """The multiaddresses the proxy listens on (bound ports; after ``startService``)."""
        return list(self._addresses)

    # --- forwarding -----------------------------------------------------------------------

    def _plan(self, request, method: bytes, uri: bytes, length, body=None) -> Forwarding | None:
        """What to do with a request whose headers just arrived: None (an intercepted
        command, rendered later) or a :class:`Forwarding` already under way."""
        endpoint = resolve(uri)
        if method == b"POST" and endpoint is not None and endpoint != "add":
            return None
        url = self.upstream.base_url
        relay_for = None
        if method == b"POST" and endpoint == "add":
            try:
                relay_for, uri = self._plan_add(uri)
            except ClusterError as err:
                return Forwarding(url, error=err)
        peer = request.getClientAddress()
        headers = forward_headers(request.requestHeaders, getattr(peer, "host", None))
        pipe = None
        if body is None and length != 0:
            pipe = BodyPipe(request.channel.transport, length)
        fwd = Forwarding(url, pipe=pipe)
        d = self.upstream.request(method, uri, headers, pipe if body is None else body)

        def answered(response):
            relay = relay_for() if (relay_for is not None and response.code == 200) else ResponseRelay()
            fwd.relay = relay
            response.deliverBody(relay)
            return response, relay

        def failed(failure):
            if pipe is not None:
                pipe.discard()
            return failure

        fwd.ready = d.addCallbacks(answered, failed)
        return fwd

    def _plan_add(self, uri: bytes):
        """``(relay factory or None, daemon URI)`` of an ``add``; raises
        ProxyArgumentError / InvalidParameter for bad options."""
        query = KuboQuery("add", uri)
        pin = query.bool("pin", True)
        wrap = query.bool("wrap-with-directory", False)
        if pin and query.bool("only-hash", False):
            raise ProxyArgumentError(
                "only-hash cannot be used through the cluster proxy: nothing would be stored to pin; "
                "add pin=false, or ask the IPFS daemon directly"
            )
        raw_query = uri.decode("utf-8", "replace").partition("?")[2]
        options = PinOptions.from_query(cluster_options_query(raw_query), self._now_ns())
        daemon_uri = daemon_add_uri(uri)
        if not pin:
            return None, daemon_uri

        async def pin_roots(roots):
            for root in roots:
                pin_ = await self.cluster.pin(CID.parse(root), options)
                log.info("proxy add: cluster-pinned {cid}", cid=str(pin_.cid))

        return (lambda: AddRelay(lambda roots: defer.Deferred.fromCoroutine(pin_roots(roots)), wrap)), daemon_uri

    def _now_ns(self) -> int:
        return int(self.reactor.seconds() * 1e9)

    async def _relay(self, request, fwd: Forwarding) -> None:
        fwd.rendered = True
        if fwd.error is not None:
            self._error(request, fwd.error)
            request.finish()
            return
        try:
            response, relay = await fwd.ready
        except defer.CancelledError:
            return
        except Exception as err:
            if not _is_gone(request):
                message = f"error forwarding request to the IPFS daemon at {fwd.url}: {_reason(err)}"
                log.warn("{message}", message=message)
                self._error(request, message, 500)
                request.finish()
            return
        copy_response_headers(response, request, keep_length=not isinstance(relay, AddRelay))
        try:
            await relay.attach(request)
        except Exception as err:
            if not _is_gone(request):
                log.warn("the IPFS daemon's answer broke off: {error}", error=_reason(err))
                request.channel.transport.abortConnection()
            return
        if not _is_gone(request):
            request.finish()

    async def _fetch_headers(self, origin: bytes | None) -> Headers:
        headers = Headers()
        if origin:
            headers.setRawHeaders(b"origin", [origin])
        response = await self.upstream.request(b"POST", b"/api/v0/version", headers, None)
        await read_body(response)
        return response.headers

    async def _daemon_json(self, endpoint: str, params) -> object:
        uri = ("/api/v0/" + endpoint + "?" + urllib.parse.urlencode(params)).encode("ascii")
        response = await self.upstream.request(b"POST", uri, Headers(), None)
        body = await read_body(response)
        try:
            value = json.loads(body)
        except ValueError:
            value = None
        if response.code != 200:
            message = value.get("Message") if isinstance(value, dict) else None
            raise ClusterError(message or body.decode("utf-8", "replace").strip() or f"HTTP {response.code}")
        return value

    # --- intercepted commands -------------------------------------------------------------

    def _error(self, request, err, status: int | None = None) -> None:
        if status is None:
            status = error_status(err) if isinstance(err, Exception) else 500
        request.setResponseCode(status)
        request.setHeader(b"content-type", _JSON)
        request.write(error_body(err, status))

    async def _intercept(self, request, endpoint: str) -> None:
        handler = {
            "pin/add": self._pin_add,
            "pin/rm": self._pin_rm,
            "pin/ls": self._pin_ls,
            "pin/update": self._pin_update,
            "repo/stat": self._repo_stat,
        }[endpoint]
        try:
            for name, values in await self.headers.get(request.getHeader(b"origin")):
                request.responseHeaders.setRawHeaders(name, values)
            request.setHeader(b"content-type", _JSON)
            await handler(request, KuboQuery(endpoint, request.uri))
        except Exception as err:
            if not isinstance(err, ClusterError):
                log.failure("proxy {endpoint} failed", endpoint=endpoint)
            if _is_gone(request):
                return
            if request.startedWriting:
                # a listing broke off after it started: kubo's trailer
                end_with_stream_error(request, str(err))
                request.finish()
                return
            request.responseHeaders.removeHeader(b"x-chunked-output")
            self._error(request, err)
        if not _is_gone(request):
            request.finish()

    def _reply(self, request, value) -> None:
        request.setResponseCode(200)
        request.write(go_json(value))

    def _pin_options(self, query: KuboQuery) -> PinOptions:
        recursive = query.bool("recursive", True)
        mode = query.str("type", "") or ("recursive" if recursive else "direct")
        if mode not in ("recursive", "direct"):
            raise ProxyArgumentError(f'invalid type "{mode}": use "recursive" or "direct"')
        raw = {k: [v] for k, v in query.options.items() if is_cluster_pin_key(k)}
        raw["mode"] = [mode]
        return PinOptions.from_query(raw, self._now_ns())

    async def _pin_add(self, request, query: KuboQuery) -> None:
        args = query.require_args("ipfs-path")
        options = self._pin_options(query)
        pinned = []
        for arg in args:
            cid, path = _cid_or_path(arg)
            if cid is not None:
                pin = await self.cluster.pin(cid, options)
            else:
                pin = await self.cluster.pin_path(path, options)
            pinned.append(str(pin.cid))
        self._reply(request, {"Pins": pinned})

    async def _pin_rm(self, request, query: KuboQuery) -> None:
        args = query.require_args("ipfs-path")
        removed = []
        for arg in args:
            cid, path = _cid_or_path(arg)
            try:
                if cid is not None:
                    pin = await self.cluster.unpin(cid)
                else:
                    pin = await self.cluster.unpin_path(path)
            except NotFound:
                raise ClusterError(_NOT_PINNED_RM) from None
            removed.append(str(pin.cid))
        self._reply(request, {"Pins": removed})

    async def _cid_of(self, arg: str) -> CID:
        cid, path = _cid_or_path(arg)
        if cid is not None:
            return cid
        answer = await self._daemon_json("resolve", [("arg", path)])
        resolved = answer.get("Path", "") if isinstance(answer, dict) else ""
        cid, _ = _cid_or_path(resolved)
        if cid is None:
            raise ClusterError(f"could not resolve {arg} to a CID (the daemon answered {resolved!r})")
        return cid

    async def _pin_ls(self, request, query: KuboQuery) -> None:
        kind = query.str("type", "") or "all"
        if kind not in _PIN_TYPES:
            raise ProxyArgumentError(f"invalid type '{kind}', must be one of {{direct, indirect, recursive, all}}")
        stream = query.bool("stream", False)
        names = query.bool("names", False)

        def wanted(pin) -> bool:
            return kind == "all" or kind == _pin_type(pin)

        def entry(pin) -> dict:
            value = {"Type": _pin_type(pin)}
            if names and pin.name:
                value["Name"] = pin.name
            return value

        if query.args:
            found = []
            for arg in query.args:
                cid = await self._cid_of(arg)
                try:
                    pin = await self.cluster.pin_get(cid)
                except NotFound:
                    pin = None
                if pin is None or not wanted(pin):
                    raise ClusterError(f"path '{arg}' is not pinned")
                found.append(pin)
            if stream:
                request.setHeader(b"x-chunked-output", b"1")
                request.setResponseCode(200)
                request.write(b"".join(go_json({"Cid": str(p.cid), **entry(p)}) for p in found))
            else:
                self._reply(request, {"Keys": {str(p.cid): entry(p) for p in found}})
            return
        request.setResponseCode(200)
        if stream:
            request.setHeader(b"x-chunked-output", b"1")
        batch: list[bytes] = []
        first = True
        if not stream:
            batch.append(b'{"Keys":{')
        drain = _Drain()
        request.registerProducer(drain, True)
        try:
            async for pin in self.cluster.pins():
                if not wanted(pin):
                    continue
                if stream:
                    batch.append(go_json({"Cid": str(pin.cid), **entry(pin)}))
                else:
                    sep = b"" if first else b","
                    batch.append(sep + go_json(str(pin.cid))[:-1] + b":" + go_json(entry(pin))[:-1])
                first = False
                if len(batch) >= _LIST_BATCH:
                    request.write(b"".join(batch))
                    batch = []
                    await drain.wait()
                    if _is_gone(request):
                        return
            if not stream:
                batch.append(b"}}\n")
            if batch:
                request.write(b"".join(batch))
        finally:
            if request.producer is drain:
                request.unregisterProducer()

    async def _pin_update(self, request, query: KuboQuery) -> None:
        from_arg, to_arg = query.require_args("from-path, to-path", 2)
        unpin = query.bool("unpin", True)
        from_cid = await self._cid_of(from_arg)
        to_cid = await self._cid_of(to_arg)
        await self.cluster.pin_update(from_cid, to_cid, None)
        if unpin and from_cid != to_cid:
            await self.cluster.unpin(from_cid)
        self._reply(request, {"Pins": [str(from_cid), str(to_cid)]})

    async def _repo_stat(self, request, query: KuboQuery) -> None:
        query.bool("size-only", False)
        query.bool("human", False)
        stat = await self.cluster.repo_stat(local=False)
        self._reply(
            request,
            {"RepoSize": stat.repo_size, "StorageMax": stat.storage_max, "NumObjects": 0, "RepoPath": "", "Version": ""},
        )


_PATH_NAMESPACES = ("/ipfs/", "/ipns/", "/ipld/")


def _cid_or_path(arg: str) -> tuple[CID | None, str | None]:
    """``(cid, None)`` for a CID or ``/ipfs/<cid>``; ``(None, path)`` for a path to
    resolve.  Raises ProxyArgumentError (400) for anything else."""
    text = arg.strip()
    if not text.startswith("/"):
        head, _, rest = text.partition("/")
        if not rest.strip("/"):
            return _parse_cid(head, arg), None
        text = "/ipfs/" + text
    if not text.startswith(_PATH_NAMESPACES):
        raise ProxyArgumentError(f'invalid path "{arg}": paths start with /ipfs/, /ipns/ or /ipld/')
    namespace, _, rest = text[1:].partition("/")
    head, _, tail = rest.partition("/")
    if namespace == "ipfs" and not tail.strip("/"):
        return _parse_cid(head, arg), None
    if not head:
        raise ProxyArgumentError(f'invalid path "{arg}": path does not have enough components')
    return None, text


def _parse_cid(text: str, arg: str) -> CID:
    try:
        return CID.parse(text)
    except InvalidCID as err:
        reason = getattr(err, "reason", None) or str(err)
        raise ProxyArgumentError(f'invalid path "{arg}": {reason}') from None


def _reason(err: Exception) -> str:
    reasons = getattr(err, "reasons", None)
    if reasons:
        return "; ".join(r.getErrorMessage() for r in reasons)
    return str(err) or type(err).__name__
