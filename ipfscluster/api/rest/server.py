"""The REST API server (Klein): what operators and ``ipfs-cluster-ctl`` talk to.

:class:`RestAPI` is the ``IAPI`` service of ``api.restapi``.  It serves the routes
of the current upstream REST API (reference §12.2, without ``/token``,
``/health/bandwidth``, ``/ipfs/gc`` and sharding) plus the seed-era ``POST
/pins/sync``, ``POST /pins/{cid}/sync`` and ``POST /peers`` with
``peer_multiaddress``.  It reaches the peer only through
:class:`~ipfscluster.interfaces.ICluster`.  ``docs/rest-api.rst`` lists every
route with a curl example.

Wire rules (reference §12.2, §15), all enforced here:

- every response is ``Content-Type: application/json``; errors are
  ``{"code": <status>, "message": "..."}``; the status of a
  :class:`~ipfscluster.errors.ClusterError` is its ``http_status`` (``NotFound``
  404, ``InvalidInput``/``InvalidParameter`` 400, ``NoLeader`` 503 …), anything
  unexpected is a 500 (logged with its traceback);
- collections stream as NDJSON (:mod:`.streaming`): 204 when empty, an error
  before the first item is an error response, a later one goes into the
  ``X-Stream-Error`` trailer;
- an unknown route is a JSON 404 ``not found``, a known route with another method a
  JSON 405 with ``Allow``; a path with a trailing slash is redirected (307) to the
  path without it when that path exists;
- query parameters: booleans as Go's ``strconv.ParseBool``; a bad CID, peer ID,
  filter or option is a 400 naming the parameter and quoting the value;
- request bodies: at most ``max_body_size`` bytes for ``POST /add`` (1 GiB when
  unset) and :data:`SMALL_BODY_LIMIT` for every other route; bigger ones get a JSON
  413.  With the service's own listener the excess is not even buffered
  (:class:`_LimitedRequest`); with any other site the size is checked before the
  handler runs.

Security:

- ``basic_auth_credentials``: every request needs ``Authorization: Basic`` with one
  of the configured user/password pairs (compared in constant time), except
  ``GET /health`` and CORS preflight requests.  Otherwise 401
  ``{"code":401,"message":"Unauthorized"}`` with
  ``WWW-Authenticate: Basic realm="Restricted"`` (the 0.3.0 wording, which the
  ctl and sharness check; modern upstream says "unauthorized: access denied").
- HTTPS when ``ssl_cert_file``/``ssl_key_file`` are set (paths relative to the
  configuration folder); no plain-HTTP listener then.  TLS 1.2 minimum.
- CORS (like the ``rs/cors`` handler upstream uses): with an ``Origin`` header,
  allowed origins get ``Access-Control-Allow-Origin`` (the origin itself),
  ``Access-Control-Allow-Credentials: true`` and ``Access-Control-Expose-Headers``;
  a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered 204
  with the allowed methods and headers, without authentication.  Empty settings
  mean upstream's defaults: every origin, methods ``GET POST HEAD``, headers
  ``Origin Accept Content-Type X-Requested-With Authorization``, exposed
  ``Content-Type X-Stream-Output X-Chunked-Output X-Content-Length``.

Timeouts (``api.restapi``; ``0s`` disables one), enforced by :class:`_TimedChannel`
on the service's own listener, each closing the connection when it expires:

- ``read_header_timeout``: from the first byte of a request to the end of its
  headers;
- ``read_timeout``: from the first byte of a request to the end of its body;
- ``write_timeout``: from the end of the request to the end of the response (as
  Go's ``WriteTimeout``; long streams need it raised or ``0s``);
- ``idle_timeout``: twisted's own channel timeout, reset by any data received.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import mmap
import os
import urllib.parse

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from klein import Klein
from twisted.application import service
from twisted.internet import defer, ssl
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, server
from twisted.web.resource import Resource
from werkzeug.exceptions import MethodNotAllowed, NotFound as RouteNotFound
from werkzeug.routing import RequestRedirect
from zope.interface import implementer

from ipfscluster.api.multipart import boundary_of, parse_parts
from ipfscluster.api.rest.parsing import (
    bad_parameter,
    parse_cid,
    parse_peer_id,
    query_args,
    query_bool,
    query_choice,
    query_int,
)
from ipfscluster.api.rest.streaming import collect_json_array, encode_json, stream_ndjson
from ipfscluster.errors import ClusterError, InvalidInput
from ipfscluster.interfaces import IAPI
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.types import PinOptions, PinType, TrackerStatus, ns_from_seconds

__all__ = ["RestAPI", "CORSPolicy", "SMALL_BODY_LIMIT", "DEFAULT_MAX_BODY_SIZE"]

log = Logger(namespace="restapi")

#: body limit of every route but ``POST /add`` (their bodies are tiny JSON documents)
SMALL_BODY_LIMIT = 64 * 1024
#: ``POST /add`` body limit when ``max_body_size`` is 0 (unset)
DEFAULT_MAX_BODY_SIZE = 1 << 30

_JSON = b"application/json"
_REALM = b'Basic realm="Restricted"'
_ADD_BOOLEANS = (
    "local", "recursive", "hidden", "wrap-with-directory", "shard", "progress",
    "raw-leaves", "stream-channels", "nocopy", "no-pin",
)  # fmt: skip


@attrs.frozen
class CORSPolicy:
    """The CORS settings of the API (empty tuples mean upstream's defaults)."""

    allowed_origins: tuple = ()
    allowed_methods: tuple = ()
    allowed_headers: tuple = ()
    exposed_headers: tuple = ()
    allow_credentials: bool = True

    DEFAULT_METHODS = ("GET", "POST", "HEAD")
    DEFAULT_HEADERS = ("Origin", "Accept", "Content-Type", "X-Requested-With", "Authorization")
    DEFAULT_EXPOSED = ("Content-Type", "X-Stream-Output", "X-Chunked-Output", "X-Content-Length")

    @classmethod
    def from_config(cls, config) -> CORSPolicy:
        """The policy of an ``api.restapi`` section (missing keys: defaults)."""
        return cls(
            allowed_origins=tuple(getattr(config, "cors_allowed_origins", ())),
            allowed_methods=tuple(getattr(config, "cors_allowed_methods", ())),
            allowed_headers=tuple(getattr(config, "cors_allowed_headers", ())),
            exposed_headers=tuple(getattr(config, "cors_exposed_headers", ())),
        )

    def origin_allowed(self, origin: str) -> bool:
        """True when ``origin`` may read responses (``*`` or an exact match)."""
        origins = self.allowed_origins or ("*",)
        return "*" in origins or origin in origins

    def apply(self, request, origin: str, preflight: bool) -> None:
        """Set the CORS response headers for an allowed ``origin``."""
        request.setHeader(b"Access-Control-Allow-Origin", origin.encode("latin-1", "replace"))
        request.setHeader(b"Vary", b"Origin")
        if self.allow_credentials:
            request.setHeader(b"Access-Control-Allow-Credentials", b"true")
        if preflight:
            methods = self.allowed_methods or self.DEFAULT_METHODS
            headers = self.allowed_headers or self.DEFAULT_HEADERS
            request.setHeader(b"Access-Control-Allow-Methods", ", ".join(methods).encode())
            request.setHeader(b"Access-Control-Allow-Headers", ", ".join(headers).encode())
        else:
            exposed = self.exposed_headers or self.DEFAULT_EXPOSED
            request.setHeader(b"Access-Control-Expose-Headers", ", ".join(exposed).encode())


def error_body(code: int, message: str) -> bytes:
    """The JSON error document ``{"code": code, "message": message}`` (one line)."""
    return encode_json({"code": code, "message": message})


def _respond_error(request, code: int, message: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", _JSON)
    return error_body(code, message)


def _body_size(request) -> int:
    over = getattr(request, "body_too_large", False)
    if over:
        return over
    content = request.content
    if content is None:
        return 0
    position = content.tell()
    size = content.seek(0, os.SEEK_END)
    content.seek(position)
    return size


def _parse_upload(content, boundary: bytes) -> list:
    """The parts of the buffered request body.  When twisted spooled the body to a
    temporary file (large uploads) it is mapped, not read into memory once more.
    Raises MultipartError."""
    try:
        fileno = content.fileno()
    except (AttributeError, OSError):  # a BytesIO (io.UnsupportedOperation is an OSError)
        content.seek(0)
        return parse_parts(content.read(), boundary)
    size = os.fstat(fileno).st_size
    if not size:
        return parse_parts(b"", boundary)
    with mmap.mmap(fileno, size, access=mmap.ACCESS_READ) as view:
        return parse_parts(view, boundary)


def _path(request) -> str:
    return request.path.decode("utf-8", "replace")


class _LimitedRequest(server.Request):
    """A request that stops buffering its body past the limit of its route.

    ``body_too_large`` becomes the announced or received size once it exceeds
    the limit; the handler then answers 413 without reading the body.
    """

    body_too_large = 0
    limit_for = None  # set on the class built per service: path -> limit
    # the handlers parse bodies themselves (twisted's form parsing loses filenames,
    # rejects some valid uploads and would copy every upload into request.args)
    _parsePOSTFormSubmission = False

    def gotLength(self, length):
        self._received = 0
        # twisted sets ``self.path`` only once the whole body is in; the request
        # line was already parsed by the channel (the IPFS proxy relies on it too)
        path = self.path
        if path is None:
            path = (getattr(self.channel, "_path", None) or b"").split(b"?", 1)[0]
        self._limit = self.limit_for(path) if self.limit_for else None
        if self._limit is not None and length is not None and length > self._limit:
            self.body_too_large = length
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self.body_too_large:
            return
        self._received += len(data)
        if self._limit is not None and self._received > self._limit:
            self.body_too_large = self._received
            self.content.seek(0)
            self.content.truncate()
            return
        super().handleContentChunk(data)


class _TimedChannel(http.HTTPChannel):
    """An HTTP/1.1 channel enforcing the read-header, read and write timeouts."""

    timeouts = (0.0, 0.0, 0.0)  # read_header, read, write (seconds; 0: none)
    connections: dict = {}  # the service's open connections: channel -> Deferred fired when closed

    def connectionMade(self):
        self._timers = {}
        self._reading = False
        self.connections[self] = defer.Deferred()
        super().connectionMade()

    def _start(self, name: str, seconds: float) -> None:
        if seconds > 0 and name not in self._timers:
            self._timers[name] = self.callLater(seconds, self._expired, name)

    def _stop(self, name: str) -> None:
        call = self._timers.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def _expired(self, name: str) -> None:
        self._timers.pop(name, None)
        log.info("closing the connection of {peer}: {name} expired",
                 peer=str(self.transport.getPeer()), name=name)
        self.transport.abortConnection()

    def dataReceived(self, data):
        if not self._reading and not self._handlingRequest:
            self._reading = True
            self._start("read_header_timeout", self.timeouts[0])
            self._start("read_timeout", self.timeouts[1])
        super().dataReceived(data)

    def allHeadersReceived(self):
        self._stop("read_header_timeout")
        super().allHeadersReceived()

    def allContentReceived(self):
        self._stop("read_timeout")
        self._reading = False
        self._start("write_timeout", self.timeouts[2])
        super().allContentReceived()

    def requestDone(self, request):
        self._stop("write_timeout")
        super().requestDone(request)

    def connectionLost(self, reason):
        for name in list(self._timers):
            self._stop(name)
        super().connectionLost(reason)
        closed = self.connections.pop(self, None)
        if closed is not None:
            closed.callback(None)


class _APIResource(Resource):
    """Everything that happens before routing: JSON content type, CORS, basic
    auth, body limits; then the Klein resource."""

    isLeaf = True

    def __init__(self, api: RestAPI, routes):
        super().__init__()
        self._api = api
        self._routes = routes

    def render(self, request):
        api = self._api
        request.setHeader(b"Content-Type", _JSON)
        origin = request.getHeader(b"Origin")
        preflight = (
            request.method == b"OPTIONS"
            and request.getHeader(b"Access-Control-Request-Method") is not None
        )
        if origin is not None:
            origin = origin.decode("latin-1")
            if api.cors.origin_allowed(origin):
                api.cors.apply(request, origin, preflight)
        if preflight:
            request.setResponseCode(204)
            return b""
        if not api.authorized(request):
            request.setHeader(b"WWW-Authenticate", _REALM)
            return _respond_error(request, 401, "Unauthorized")
        size = _body_size(request)
        limit = api.body_limit(request.path)
        if size > limit:
            return _respond_error(
                request, 413, f"request body too large: {size} bytes, the limit for this route is {limit}"
            )
        try:
            urllib.parse.unquote_to_bytes(request.path).decode("utf-8")
        except UnicodeDecodeError:
            return _respond_error(request, 400, "the URL path is not valid UTF-8 once percent-decoded")
        if request.path.endswith(b"/") and len(request.path) > 1:
            target = api.trailing_slash_target(request)
            if target is None:
                return _respond_error(request, 404, "not found")
            return api.redirect(request, target)
        return self._routes.render(request)


@implementer(IAPI)
class RestAPI(service.Service):
    """The ``api.restapi`` service (see the module docstring).

    :param config: the :class:`~ipfscluster.config.restapi.RestAPIConfig` section.
    :param cluster: the peer, an :class:`~ipfscluster.interfaces.ICluster`.
    :param reactor: reactor used to listen and for every timer (``IReactorTCP``,
        ``IReactorSSL``, ``IReactorTime``).
    :param config_folder: folder the relative ``ssl_cert_file``/``ssl_key_file``
        paths are resolved against.
    """

    name = "restapi"
    app = Klein()

    def __init__(self, config, cluster, reactor, config_folder: str = ""):
        self.config = config
        self.cluster = cluster
        self.reactor = reactor
        self.config_folder = config_folder
        self.cors = CORSPolicy.from_config(config)
        self._credentials = {
            user.encode("utf-8"): password.encode("utf-8")
            for user, password in (config.basic_auth_credentials or {}).items()
        }
        self._auth_enabled = config.basic_auth_credentials is not None
        self._port = None
        self._site = None
        self._addresses: list[Multiaddr] = []
        self._connections: dict = {}

    # --- policy -------------------------------------------------------------------------

    def authorized(self, request) -> bool:
        """True when ``request`` may proceed: no auth configured, ``GET /health``, or
        valid basic credentials."""
        if not self._auth_enabled:
            return True
        if request.path == b"/health" and request.method in (b"GET", b"HEAD"):
            return True
        header = request.getHeader(b"Authorization") or b""
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        expected = self._credentials.get(user)
        return bool(sep) and expected is not None and hmac.compare_digest(expected, password)

    def body_limit(self, path: bytes) -> int:
        """The largest request body accepted on ``path`` (bytes)."""
        if path == b"/add":
            return getattr(self.config, "max_body_size", 0) or DEFAULT_MAX_BODY_SIZE
        return SMALL_BODY_LIMIT

    def resource(self) -> Resource:
        """The root resource of the API (what the listener serves; tests wrap it
        in ``treq.testing.StubTreq``)."""
        return _APIResource(self, self.app.resource())

    def site(self) -> server.Site:
        """A ``Site`` serving :meth:`resource` with the configured timeouts and body
        limits (what :meth:`startService` listens with)."""
        cfg = self.config
        idle = cfg.idle_timeout.seconds or None

        class Channel(_TimedChannel):
            timeouts = (cfg.read_header_timeout.seconds, cfg.read_timeout.seconds, cfg.write_timeout.seconds)
            connections = self._connections

        class Request(_LimitedRequest):
            limit_for = staticmethod(self.body_limit)

        site = server.Site(self.resource(), requestFactory=Request, reactor=self.reactor, timeout=idle)
        site.protocol = Channel
        site.noisy = False
        site.log = lambda request: None  # access lines are not logged (upstream logs none by default)
        return site

    # --- lifecycle ----------------------------------------------------------------------

    def _tls_options(self) -> ssl.CertificateOptions:
        """TLS settings from the SSL files (TLS 1.2 minimum); the key must match
        the certificate.  Raises ClusterError naming both files otherwise."""
        cert_path = os.path.join(self.config_folder, os.path.expanduser(self.config.ssl_cert_file))
        key_path = os.path.join(self.config_folder, os.path.expanduser(self.config.ssl_key_file))
        try:
            with open(cert_path, "rb") as f:
                certificate = x509.load_pem_x509_certificate(f.read())
            with open(key_path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
            options = ssl.CertificateOptions(
                privateKey=key, certificate=certificate, raiseMinimumTo=ssl.TLSVersion.TLSv1_2
            )
            options.getContext()  # checks that the key belongs to the certificate
        except Exception as err:  # OSError, PEM and OpenSSL errors alike
            raise ClusterError(
                f"api.restapi: cannot load the TLS certificate {cert_path} and key {key_path}: "
                f"{err or type(err).__name__}; check ssl_cert_file and ssl_key_file"
            ) from None
        return options

    def startService(self):
        """Listen on ``listen_multiaddress`` (HTTPS when the SSL files are set).

        Returns a Deferred firing once listening.  Fails with ``ClusterError`` when
        the certificate cannot be loaded, or the listening error.
        """
        super().startService()
        maddr = self.config.listen_multiaddress
        description = maddr.tcp_endpoint_string()
        try:
            if self.config.tls_enabled:
                options = self._tls_options()
                self._site = self.site()
                host, port = maddr.host, maddr.port
                d = defer.maybeDeferred(
                    self.reactor.listenSSL, port, self._site, options, interface=host
                )
            else:
                self._site = self.site()
                d = serverFromString(self.reactor, description).listen(self._site)
        except ClusterError as err:
            self.running = False
            return defer.fail(err)

        def listening(port):
            self._port = port
            bound = port.getHost()
            self._addresses = [Multiaddr.from_host_port(bound.host, bound.port)]
            log.info("REST API listening on {address} ({scheme})", address=str(self._addresses[0]),
                     scheme="https" if self.config.tls_enabled else "http")

        def failed(failure):
            self.running = False
            return failure

        return d.addCallbacks(listening, failed)

    def stopService(self):
        """Stop listening and close every open connection; returns a Deferred
        firing once the listener and the connections are gone."""
        super().stopService()
        port, self._port = self._port, None
        waits = [defer.maybeDeferred(port.stopListening)] if port is not None else []
        for channel, closed in list(self._connections.items()):
            waits.append(closed)
            channel.transport.abortConnection()
        return defer.gatherResults(waits).addCallback(lambda _: None)

    def addresses(self) -> list[Multiaddr]:
        """The multiaddresses the API listens on (bound ports; after ``startService``)."""
        return list(self._addresses)

    # --- helpers for the routes --------------------------------------------------------

    def _now(self) -> int:
        return ns_from_seconds(self.reactor.seconds())

    @staticmethod
    def _json(request, value, code: int = 200) -> bytes:
        request.setResponseCode(code)
        return encode_json(value)

    @staticmethod
    def _query(request) -> dict[str, str]:
        # from the URL only: a form body never adds parameters
        _, _, query = request.uri.partition(b"?")
        return query_args(http.parse_qs(query, 1))

    # --- routes: peer --------------------------------------------------------------------

    @app.route("/id", methods=["GET"])
    async def get_id(self, request):
        ident = await self.cluster.id()
        return self._json(request, ident.to_json())

    @app.route("/version", methods=["GET"])
    def get_version(self, request):
        return self._json(request, self.cluster.version().to_json())

    @app.route("/peers", methods=["GET"])
    async def list_peers(self, request):
        await stream_ndjson(request, self.cluster.peers())

    @app.route("/peers", methods=["POST"])
    async def add_peer(self, request):
        try:
            body = json.loads(request.content.read() or b"null")
        except ValueError as err:
            raise InvalidInput(f"error decoding request body: {err}") from None
        if not isinstance(body, dict):
            raise InvalidInput('error decoding request body: expected {"peer_id": "<peer ID>"} or '
                               '{"peer_multiaddress": "<multiaddress>/p2p/<peer ID>"}')
        if body.get("peer_multiaddress"):
            text = body["peer_multiaddress"]
            try:
                maddr = Multiaddr.parse(text)
            except InvalidInput as err:
                raise bad_parameter("peer_multiaddress", str(text), f"is not a multiaddress: {err}") from None
            if maddr.peer_id is None:
                raise bad_parameter("peer_multiaddress", text, "has no /p2p/<peer ID> part")
            target = str(maddr)
        elif body.get("peer_id"):
            target = parse_peer_id(str(body["peer_id"]), "peer_id")
        else:
            raise InvalidInput('error decoding request body: give "peer_id" or "peer_multiaddress"')
        ident = await self.cluster.peer_add(target)
        return self._json(request, ident.to_json())

    @app.route("/peers/<peer>", methods=["DELETE"])
    async def remove_peer(self, request, peer):
        await self.cluster.peer_remove(parse_peer_id(peer, "peer"))
        request.setResponseCode(204)
        return b""

    # --- routes: shared state ------------------------------------------------------------

    @app.route("/allocations", methods=["GET"])
    async def list_allocations(self, request):
        text = self._query(request).get("filter", "")
        types = PinType.parse_filter(text)
        # pre-encoded batches of lines: the state writes the JSON of its pins itself
        await stream_ndjson(request, self.cluster.pins_ndjson(types), encode=None)

    @app.route("/allocations/<cid>", methods=["GET"])
    async def get_allocation(self, request, cid):
        pin = await self.cluster.pin_get(parse_cid(cid))
        return self._json(request, pin.to_json())

    # --- routes: pins ----------------------------------------------------------------------

    @app.route("/pins", methods=["GET"])
    async def list_status(self, request):
        query = self._query(request)
        status_filter = TrackerStatus.parse_filter(query.get("filter", ""))
        local = query_bool(query, "local")
        cids = [parse_cid(c.strip(), "cids") for c in query.get("cids", "").split(",") if c.strip()]
        items = self.cluster.status_all_ndjson(status_filter or None, local, cids or None)
        await stream_ndjson(request, items, encode=None)  # pre-encoded batches of lines

    @app.route("/pins/sync", methods=["POST"])
    async def sync_all(self, request):
        local = query_bool(self._query(request), "local")
        await stream_ndjson(request, self.cluster.sync_all(local))

    @app.route("/pins/recover", methods=["POST"])
    async def recover_all(self, request):
        local = query_bool(self._query(request), "local")
        await stream_ndjson(request, self.cluster.recover_all(local))

    @app.route("/pins/<cid>", methods=["GET"])
    async def get_status(self, request, cid):
        local = query_bool(self._query(request), "local")
        gpi = await self.cluster.status(parse_cid(cid), local)
        return self._json(request, gpi.to_json())

    @app.route("/pins/<cid>", methods=["POST"])
    async def pin(self, request, cid):
        cid = parse_cid(cid)
        options = PinOptions.from_query(self._query(request), self._now())
        pin = await self.cluster.pin(cid, options)
        return self._json(request, pin.to_json())

    @app.route("/pins/<cid>", methods=["DELETE"])
    async def unpin(self, request, cid):
        pin = await self.cluster.unpin(parse_cid(cid))
        return self._json(request, pin.to_json())

    @app.route("/pins/<any(ipfs,ipns,ipld):namespace>/<path:rest>", methods=["POST"])
    async def pin_path(self, request, namespace, rest):
        options = PinOptions.from_query(self._query(request), self._now())
        pin = await self.cluster.pin_path(f"/{namespace}/{rest}", options)
        return self._json(request, pin.to_json())

    @app.route("/pins/<any(ipfs,ipns,ipld):namespace>/<path:rest>", methods=["DELETE"])
    async def unpin_path(self, request, namespace, rest):
        pin = await self.cluster.unpin_path(f"/{namespace}/{rest}")
        return self._json(request, pin.to_json())

    @app.route("/pins/<cid>/sync", methods=["POST"])
    async def sync(self, request, cid):
        local = query_bool(self._query(request), "local")
        gpi = await self.cluster.sync(parse_cid(cid), local)
        return self._json(request, gpi.to_json())

    @app.route("/pins/<cid>/recover", methods=["POST"])
    async def recover(self, request, cid):
        local = query_bool(self._query(request), "local")
        gpi = await self.cluster.recover(parse_cid(cid), local)
        return self._json(request, gpi.to_json())

    # --- routes: add -------------------------------------------------------------------------

    @app.route("/add", methods=["POST"])
    async def add(self, request):
        query = self._query(request)
        PinOptions.from_query(query, self._now())  # 400 naming a bad pin option now
        flags = {name: query_bool(query, name) for name in _ADD_BOOLEANS}
        streaming = query_bool(query, "stream-channels", default=True)
        query_choice(query, "layout", ("balanced", "trickle"))
        query_choice(query, "format", ("unixfs", "car"))
        query_choice(query, "hash", ("sha2-256",))
        version = query_int(query, "cid-version", 0)
        if version > 1:
            raise bad_parameter("cid-version", query["cid-version"], "is not a CID version (use 0 or 1)")
        if flags["shard"]:
            raise bad_parameter("shard", query["shard"], "is not supported: sharding is not implemented")
        content_type = (request.getHeader(b"Content-Type") or b"").decode("latin-1")
        parts = _parse_upload(request.content, boundary_of(content_type))
        items = self.cluster.add(parts, query)
        if not streaming:
            return self._json(request, await collect_json_array(items))
        headers = {b"X-Chunked-Output": b"1", b"Cache-Control": b"no-cache", b"Connection": b"close"}
        await stream_ndjson(request, items, headers=headers)

    # --- routes: health and monitoring ---------------------------------------------------

    @app.route("/health", methods=["GET"])
    def health(self, request):
        request.setResponseCode(204)
        return b""

    @app.route("/health/graph", methods=["GET"])
    async def health_graph(self, request):
        graph = await self.cluster.connect_graph()
        return self._json(request, graph.to_json())

    @app.route("/health/alerts", methods=["GET"])
    def health_alerts(self, request):
        return self._json(request, [alert.to_json() for alert in self.cluster.alerts()])

    @app.route("/monitor/metrics", methods=["GET"])
    def metric_names(self, request):
        return self._json(request, list(self.cluster.metric_names()))

    @app.route("/monitor/metrics/<name>", methods=["GET"])
    async def metrics(self, request, name):
        metrics = await self.cluster.latest_metrics(name)
        return self._json(request, [m.to_json() for m in metrics])

    # --- errors ----------------------------------------------------------------------------

    @app.handle_errors(Exception)
    def handle_error(self, request, failure: Failure):
        """Every error becomes ``{"code","message"}`` with the matching status."""
        err = failure.value
        if isinstance(err, RequestRedirect):
            location = err.new_url.split("://", 1)[-1]
            location = "/" + location.split("/", 1)[1] if "/" in location else "/"
            return self.redirect(request, location)
        if isinstance(err, RouteNotFound):
            return _respond_error(request, 404, "not found")
        if isinstance(err, MethodNotAllowed):
            allowed = ", ".join(sorted(set(err.valid_methods or ())))
            request.setHeader(b"Allow", allowed.encode())
            return _respond_error(request, 405, "method not allowed")
        if isinstance(err, ClusterError):
            if err.http_status >= 500:
                log.warn("{method} {path} failed: {error}", method=request.method.decode(),
                         path=_path(request), error=str(err))
            return _respond_error(request, err.http_status, str(err))
        if isinstance(err, defer.CancelledError):
            return None
        log.failure("{method} {path} failed", failure, method=request.method.decode(), path=_path(request))
        return _respond_error(request, 500, f"internal error: {err}")

    def trailing_slash_target(self, request) -> str | None:
        """For a path ending in "/": the path without it when that is a route
        (for any method), else None.  None for other paths too."""
        path = _path(request)
        if len(path) <= 1 or not path.endswith("/"):
            return None
        stripped = path.rstrip("/") or "/"
        try:
            self.app.url_map.bind("localhost").match(stripped, method=request.method.decode())
        except MethodNotAllowed:
            pass
        except Exception:  # no such route either
            return None
        return stripped

    @staticmethod
    def redirect(request, location: str) -> bytes:
        """Answer 307 to ``location`` (the query string is kept)."""
        query = request.uri.partition(b"?")[2]
        target = location.encode("utf-8") + (b"?" + query if query else b"")
        request.setHeader(b"Location", target)
        return _respond_error(request, 307, "moved to " + target.decode("utf-8", "replace"))
