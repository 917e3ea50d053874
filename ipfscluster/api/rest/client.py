"""A treq client of the cluster REST API (what ``ipfs-cluster-ctl`` uses).

:class:`RestClient` has one ``async`` method per route of the REST API and returns
the :mod:`ipfscluster.types` values.  Collections (``/peers``, ``/allocations``,
``/pins``, ``/pins/sync``, ``/pins/recover``, ``/add``) are *async iterators* that
yield items as the NDJSON lines arrive, so a status listing of a million CIDs is
never held in memory; a JSON array body (what ``stream-channels=false`` and the
monitoring routes send) is read as well.

Errors (all from :mod:`ipfscluster.errors`):

- :class:`~ipfscluster.errors.APIError` ``(code, message)``: the API answered with
  a status >= 400; ``code``/``message`` come from its ``{"code","message"}`` body
  (the HTTP status and the body text when the body is not that document);
- :class:`~ipfscluster.errors.APIUnreachable`: the connection failed (refused,
  DNS, TLS handshake, connection lost); :class:`~ipfscluster.errors.APITimeout`
  (a subclass) when ``timeout`` expired;
- :class:`~ipfscluster.errors.APIBadResponse`: the body is not the JSON expected;
- :class:`~ipfscluster.errors.InvalidInput`: a local argument is wrong (a file to
  add cannot be read, a folder without ``recursive``).

Design notes:

- ``timeout`` is one deadline per call covering the request *and* reading the whole
  body (a stream included), like the request context of the Go client; when it
  expires the connection is aborted.  It runs on the injected reactor's clock.
- Bodies are read through our own ``IProtocol`` (not ``treq.content``) so that
  NDJSON lines are parsed as they arrive and the transport is paused when the
  consumer falls behind (back-pressure), and so that an iterator closed early
  aborts its connection.
- Twisted's HTTP client drops HTTP trailers, so the ``X-Stream-Error`` trailer of
  a stream that failed half-way is not visible here: such a stream just ends.
- ``add`` uploads files and folders as ``multipart/form-data`` the way kubo's
  clients do (one part per file or folder; the path, URL-escaped, in
  ``filename``; folders as ``application/x-directory``, symlinks as
  ``application/symlink``).  The body is produced from the files as the connection
  takes it (a file is never read whole) and its length is known in advance, so it
  is sent with ``Content-Length``.  Written by hand because treq's multipart
  producer uses the global cooperator and cannot report progress.
- With ``http_client`` (a ``treq.client.HTTPClient`` or an object with the same
  ``request`` method, such as ``treq.testing.StubTreq`` or an ``HTTPClient`` over
  ``treq.testing.RequestTraversalAgent``) requests go through it; otherwise the
  client builds an ``Agent`` on a persistent connection pool of ``reactor``, which
  :meth:`RestClient.close` closes.  ``StubTreq`` only sends bytes bodies, so
  ``add`` needs the ``RequestTraversalAgent`` form in tests.

This module imports only twisted, treq and the value modules: ``ipfs-cluster-ctl``
runs without any of the server machinery.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import os
import stat
import urllib.parse
import uuid
from typing import AsyncIterator, Callable, Iterable, Mapping, Sequence

import attrs
from twisted.internet import defer, error as net_error
from twisted.internet.protocol import Protocol
from twisted.web import http
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone, ResponseFailed
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

from ipfscluster import __version__
from ipfscluster.cid import CID
from ipfscluster.errors import (
    APIBadResponse,
    APIError,
    APITimeout,
    APIUnreachable,
    InvalidField,
    InvalidInput,
    InvalidMultiaddr,
    WaitFailed,
    WaitTimeout,
)
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.types import (
    ID,
    AddedOutput,
    Alert,
    ConnectGraph,
    GlobalPinInfo,
    Metric,
    Pin,
    PinOptions,
    PinType,
    TrackerStatus,
    Version,
)

__all__ = [
    "DEFAULT_HOST",
    "RestClient",
    "UploadEntry",
    "parse_host",
    "collect_upload",
    "options_query",
    "status_reached",
    "wait_for_status",
]

#: the default ``--host`` (the REST API's default listen address)
DEFAULT_HOST = "/ip4/127.0.0.1/tcp/9094"
#: error bodies are read up to this many bytes
_MAX_ERROR_BODY = 64 * 1024
#: pause the connection when this many parsed lines wait for the consumer
_HIGH_WATER = 1000
_LOW_WATER = 100
_CHUNK = 64 * 1024


# --- addresses ---------------------------------------------------------------------------


def parse_host(text: str) -> tuple[str, int]:
    """Read a ``--host`` value: a multiaddr (``/ip4/127.0.0.1/tcp/9094``,
    ``/dns4/name/tcp/9094``) or ``host:port`` (``[::1]:9094`` for IPv6).

    Returns ``(host, port)``.  Raises :class:`~ipfscluster.errors.InvalidMultiaddr`
    saying what is wrong.
    """
    text = (text or "").strip()
    if text.startswith("/"):
        maddr = Multiaddr.parse(text)
        if maddr.peer_id is not None and maddr.host is None:
            raise InvalidMultiaddr(
                f'invalid host "{text}": the REST API over libp2p is not supported; '
                "use the /ip4/…/tcp/… address the API listens on"
            )
        if maddr.host is None or maddr.transport != "tcp":
            raise InvalidMultiaddr(
                f'invalid host "{text}": it needs an IP address or DNS name and a /tcp/ port '
                "(example: /ip4/127.0.0.1/tcp/9094)"
            )
        return maddr.host.rstrip("."), maddr.port
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidMultiaddr(
            f'invalid host "{text}": use a multiaddress (/ip4/127.0.0.1/tcp/9094) or '
            "host:port (127.0.0.1:9094)"
        )
    return host, int(port)


def _base_url(target: str, https: bool) -> str:
    if target.startswith(("http://", "https://")):
        return target.rstrip("/")
    host, port = parse_host(target)
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if https else 'http'}://{shown}:{port}"


# --- TLS without verification ------------------------------------------------------------


@implementer(IPolicyForHTTPS)
class _NoVerification:
    """TLS for ``--no-check-certificate``: encrypt, but accept any certificate."""

    def creatorForNetloc(self, hostname, port):
        from twisted.internet import ssl

        return ssl.CertificateOptions(verify=False)


# --- deadline ------------------------------------------------------------------------------


class _Deadline:
    """One call's deadline: when it expires, the Deferred being awaited is
    cancelled and :class:`APITimeout` is raised in its place."""

    def __init__(self, clock, seconds: float | None, url: str):
        self.expired = False
        self._url = url
        self._seconds = seconds
        self._pending: defer.Deferred | None = None
        self._call = clock.callLater(seconds, self._expire) if seconds else None

    def _expire(self) -> None:
        self.expired = True
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()

    def _timeout(self) -> APITimeout:
        reason = f"no complete answer within {self._seconds:g}s; raise --timeout or check the peer"
        return APITimeout(f"{self._url}: {reason}", url=self._url, reason=reason)

    async def wait(self, d: defer.Deferred):
        """Await ``d``; raises APITimeout if the deadline expires first."""
        if self.expired:
            d.addErrback(lambda _: None)
            d.cancel()
            raise self._timeout()
        self._pending = d
        try:
            return await d
        except Exception:  # cancelled by the deadline: whatever form the failure takes
            if self.expired:
                raise self._timeout() from None
            raise
        finally:
            self._pending = None

    def stop(self) -> None:
        """Cancel the timer (the call is over)."""
        if self._call is not None and self._call.active():
            self._call.cancel()


# --- reading bodies ------------------------------------------------------------------------


class _BodyReader(Protocol):
    """Receives a response body; hands it out as lines (NDJSON) or whole.

    Pauses the transport when more than ``_HIGH_WATER`` lines wait, resumes it
    below ``_LOW_WATER``.  ``limit`` caps what is kept when reading whole.
    """

    def __init__(self, limit: int | None = None):
        self._partial = bytearray()
        self._lines: collections.deque = collections.deque()
        self._chunks: list[bytes] = []
        self._size = 0
        self._limit = limit
        self._whole = False
        self._done = None  # None while open; then None-reason sentinel or a Failure
        self._closed = False
        self._waiter: defer.Deferred | None = None
        self._paused = False

    # protocol side

    def dataReceived(self, data: bytes) -> None:
        if self._whole:
            if self._limit is None or self._size < self._limit:
                self._chunks.append(data)
            self._size += len(data)
        else:
            self._partial += data
            if b"\n" in data:
                *complete, rest = bytes(self._partial).split(b"\n")
                self._partial = bytearray(rest)
                self._lines.extend(complete)
                if len(self._lines) > _HIGH_WATER and not self._paused and self.transport:
                    self._paused = True
                    self.transport.pauseProducing()
        self._wake()

    def connectionLost(self, reason) -> None:
        self._closed = True
        if reason.check(ResponseDone, http.PotentialDataLoss):
            if self._partial:
                self._lines.append(bytes(self._partial))
                self._partial = bytearray()
        else:
            self._done = reason
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.callback(None)

    # consumer side

    def abort(self) -> None:
        """Drop the connection (the consumer stopped reading early)."""
        if not self._closed and self.transport is not None:
            self._closed = True
            self.transport.stopProducing()

    async def _wait(self, deadline: _Deadline) -> None:
        def cancel(d):
            if self._waiter is d:  # so that the abort below does not fire it
                self._waiter = None
            self.abort()

        self._waiter = defer.Deferred(cancel)
        await deadline.wait(self._waiter)

    def _fail(self):
        self._done.raiseException()

    async def next_line(self, deadline: _Deadline) -> bytes | None:
        """The next line (``None`` at the end).  Raises the connection's failure."""
        while not self._lines:
            if self._closed:
                if self._done is not None:
                    self._fail()
                return None
            await self._wait(deadline)
        line = self._lines.popleft()
        if self._paused and len(self._lines) < _LOW_WATER:
            self._paused = False
            self.transport.resumeProducing()
        return line

    async def read_all(self, deadline: _Deadline) -> bytes:
        """The whole body (what is left of it).  Raises the connection's failure."""
        self._whole = True
        prefix = b"".join(line + b"\n" for line in self._lines) + bytes(self._partial)
        self._lines.clear()
        self._partial = bytearray()
        self._chunks = [prefix] if prefix else []
        self._size = len(prefix)
        if self._paused:
            self._paused = False
            self.transport.resumeProducing()
        while not self._closed:
            await self._wait(deadline)
        if self._done is not None:
            self._fail()
        return b"".join(self._chunks)


def _describe(err: BaseException) -> str:
    """A one-line description of a network failure."""
    if isinstance(err, ResponseFailed):
        reasons = [r.value for r in err.reasons if not isinstance(r.value, ResponseDone)]
        return "; ".join(_describe(r) for r in reasons) or "the connection was lost"
    name = type(err).__module__
    if name.startswith("OpenSSL") or "SSL" in type(err).__name__:
        return (
            f"TLS failed ({err}); check that the API serves HTTPS (drop --https for plain "
            "HTTP) and its certificate (--no-check-certificate to skip the check)"
        )
    if isinstance(err, net_error.ConnectionRefusedError):
        return "connection refused (is the peer running and its REST API listening there?)"
    text = str(err).strip()
    return text or type(err).__name__


def _unreachable(url: str, err: BaseException) -> APIUnreachable:
    reason = _describe(err)
    if url.startswith("https://") and "TLS" not in reason and "refused" not in reason:
        reason += " (with HTTPS: does the API serve HTTPS? If not, drop --https, or add --force-http to --basic-auth)"
    return APIUnreachable(f"cannot reach {url}: {reason}", url=url, reason=reason)


def _loads(data: bytes, url: str):
    try:
        return json.loads(data)
    except ValueError as err:
        shown = data[:200].decode("utf-8", "replace")
        raise APIBadResponse(
            f"{url} sent a response that is not JSON ({err}): {shown!r}; is this a cluster REST API?",
            url=url,
        ) from None


def _build(kind, doc, url: str):
    """``kind.from_json(doc)``, turning a bad document into APIBadResponse."""
    try:
        return kind.from_json(doc)
    except InvalidField as err:
        raise APIBadResponse(f"{url} sent an unexpected {kind.__name__}: {err}", url=url) from None


# --- uploads -------------------------------------------------------------------------------


@attrs.frozen
class UploadEntry:
    """One part of an ``add`` upload: ``name`` is the slash path in the upload,
    ``kind`` one of ``file``, ``dir``, ``symlink``; ``source`` the local path
    (files), ``target`` the link text (symlinks), ``size`` the bytes sent."""

    name: str
    kind: str
    source: str = ""
    target: str = ""
    size: int = 0


def collect_upload(paths: Sequence[str], recursive: bool = False, hidden: bool = False) -> list[UploadEntry]:
    """List what ``add`` uploads for the local ``paths`` (files and folders).

    Folders need ``recursive``; inside them, names starting with ``.`` are skipped
    unless ``hidden``; entries are sorted by name (as kubo's clients send them).
    Symlinks are sent as links, not followed.  Returns the entries, parents before
    children.  Raises :class:`~ipfscluster.errors.InvalidInput` naming a path that
    cannot be read or a folder given without ``recursive``.
    """
    entries: list[UploadEntry] = []
    for path in paths:
        base = os.path.basename(os.path.normpath(path)) or path
        _collect(path, base, recursive, hidden, entries, top=True)
    return entries


def _collect(path, name, recursive, hidden, entries, top=False):
    try:
        st = os.lstat(path)
    except OSError as err:
        raise InvalidInput(f"cannot read {path}: {err.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        if top:  # a path named on the command line is followed, as ipfs add does
            try:
                st = os.stat(path)
            except OSError as err:
                raise InvalidInput(f"cannot read {path}: {err.strerror}") from None
        else:
            target = os.readlink(path)
            entries.append(UploadEntry(name, "symlink", target=target, size=len(target.encode())))
            return
    if stat.S_ISDIR(st.st_mode):
        if not recursive:
            raise InvalidInput(f"{path} is a directory; use -r/--recursive to add folders")
        entries.append(UploadEntry(name, "dir"))
        try:
            children = sorted(os.listdir(path))
        except OSError as err:
            raise InvalidInput(f"cannot read {path}: {err.strerror}") from None
        for child in children:
            if child.startswith(".") and not hidden:
                continue
            _collect(os.path.join(path, child), f"{name}/{child}", recursive, hidden, entries)
    elif stat.S_ISREG(st.st_mode):
        if not os.access(path, os.R_OK):
            raise InvalidInput(f"cannot read {path}: permission denied")
        entries.append(UploadEntry(name, "file", source=path, size=st.st_size))
    else:
        raise InvalidInput(f"cannot add {path}: only files, folders and symlinks can be added")


_PART_TYPES = {
    "file": b"application/octet-stream",
    "dir": b"application/x-directory",
    "symlink": b"application/symlink",
}


@implementer(IBodyProducer)
class _MultipartUpload:
    """The ``multipart/form-data`` body of an upload, produced as the transport
    takes it (see the module docstring).  ``on_progress(sent, total)`` is called
    after each write."""

    def __init__(self, entries: Sequence[UploadEntry], on_progress: Callable | None = None):
        self.boundary = "ipfscluster-" + uuid.uuid4().hex
        self._entries = list(entries)
        self._on_progress = on_progress
        self.length = sum(len(self._head(e)) + e.size + 2 for e in self._entries) + len(self._tail())
        self._consumer = None
        self._done: defer.Deferred | None = None
        self._chunks = None
        self._paused = False
        self._sent = 0

    @property
    def content_type(self) -> bytes:
        return b"multipart/form-data; boundary=" + self.boundary.encode()

    def _head(self, entry: UploadEntry) -> bytes:
        filename = urllib.parse.quote(entry.name, safe="").encode()
        return (
            b"--" + self.boundary.encode() + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            b"Content-Type: " + _PART_TYPES[entry.kind] + b"\r\n\r\n"
        )

    def _tail(self) -> bytes:
        return b"--" + self.boundary.encode() + b"--\r\n"

    def _generate(self):
        for entry in self._entries:
            yield self._head(entry)
            if entry.kind == "symlink":
                yield entry.target.encode()
            elif entry.kind == "file":
                yield from self._file(entry)
            yield b"\r\n"
        yield self._tail()

    @staticmethod
    def _file(entry: UploadEntry):
        left = entry.size
        try:
            with open(entry.source, "rb") as f:
                while left > 0:
                    data = f.read(min(_CHUNK, left))
                    if not data:
                        break
                    left -= len(data)
                    yield data
        except OSError as err:
            raise InvalidInput(f"cannot read {entry.source}: {err.strerror}") from None
        if left:
            raise InvalidInput(f"{entry.source} changed while it was uploaded (it shrank); add it again")

    def startProducing(self, consumer):
        self._consumer = consumer
        self._chunks = self._generate()
        self._done = done = defer.Deferred()
        self._pump()
        return done

    def _pump(self) -> None:
        # writes until the transport pauses us (synchronously, from write()) or the end
        while not self._paused and self._done is not None:
            try:
                data = next(self._chunks)
            except StopIteration:
                done, self._done = self._done, None
                done.callback(None)
                return
            except Exception as err:  # a file that cannot be read: fail the request
                done, self._done = self._done, None
                done.errback(err)
                return
            self._sent += len(data)
            self._consumer.write(data)
            if self._on_progress is not None:
                self._on_progress(self._sent, self.length)

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        self._pump()

    def stopProducing(self):
        self._paused = True
        self._done = None
        if self._chunks is not None:
            self._chunks.close()


# --- the client ----------------------------------------------------------------------------


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _cid_text(cid) -> str:
    return str(CID.parse(cid))


class RestClient:
    """Client of one cluster peer's REST API (see the module docstring).

    :param target: a base URL (``http://127.0.0.1:9094``), a multiaddr or
        ``host:port``.
    :param https: use HTTPS (for a multiaddr or host:port target).
    :param no_check_certificate: with HTTPS, accept any server certificate.
    :param basic_auth: ``(user, password)`` sent as HTTP Basic authentication.
    :param timeout: seconds for each call (request and whole body); None or 0: none.
    :param reactor: the reactor (the global one when None, for library use).
    :param http_client: an ``HTTPClient``-like object to send requests with.
    :param debug: called with one line of text per request sent and per body
        received (``--debug``).
    Raises :class:`~ipfscluster.errors.InvalidMultiaddr` for a bad target.
    """

    def __init__(
        self,
        target: str = DEFAULT_HOST,
        *,
        https: bool = False,
        no_check_certificate: bool = False,
        basic_auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        reactor=None,
        http_client=None,
        debug: Callable[[str], None] | None = None,
    ):
        if reactor is None:
            from twisted.internet import reactor  # library convenience; the ctl passes its own
        self.base_url = _base_url(target, https)
        self.timeout = timeout or None
        self._reactor = reactor
        self._debug = debug
        self._pool = None
        if http_client is None:
            import treq.client

            self._pool = HTTPConnectionPool(reactor, persistent=True)
            self._pool.retryAutomatically = False
            policy = _NoVerification() if no_check_certificate else None
            agent = (
                Agent(reactor, pool=self._pool, contextFactory=policy)
                if policy is not None
                else Agent(reactor, pool=self._pool)
            )
            http_client = treq.client.HTTPClient(agent)
        self._http = http_client
        self._headers = {b"User-Agent": [f"ipfscluster-client/{__version__}".encode()]}
        if basic_auth is not None:
            user, password = basic_auth
            token = base64.b64encode(f"{user}:{password}".encode("utf-8"))
            self._headers[b"Authorization"] = [b"Basic " + token]

    async def close(self) -> None:
        """Close the pooled connections (when this client made its own pool)."""
        if self._pool is not None:
            await self._pool.closeCachedConnections()

    # --- plumbing --------------------------------------------------------------------------

    def url(self, path: str, query: Mapping[str, str] | Iterable | None = None) -> str:
        """The full URL of ``path`` (already escaped) with ``query``."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        return url

    def _log(self, text: str) -> None:
        if self._debug is not None:
            self._debug(text)

    async def _send(self, method: str, url: str, deadline: _Deadline, body=None, content_type=None):
        headers = Headers(dict(self._headers))
        if content_type is not None:
            headers.setRawHeaders(b"Content-Type", [content_type])
        self._log(f"{method} {url}")
        try:
            d = defer.maybeDeferred(
                self._http.request, method, url, headers=headers, data=body, unbuffered=True
            )
            response = await deadline.wait(d)
        except (APITimeout, InvalidInput):
            raise
        except defer.CancelledError:
            raise
        except Exception as err:
            raise _unreachable(url, err) from None
        self._log(f"response: {response.code} {response.phrase.decode('latin-1', 'replace')}")
        return response

    @staticmethod
    async def _receive(url: str, read):
        """Await ``read()`` (a body read), turning a lost connection into APIUnreachable."""
        try:
            return await read()
        except (APITimeout, defer.CancelledError):
            raise
        except Exception as err:
            raise _unreachable(url, err) from None

    async def _read(self, response, url: str, deadline: _Deadline, limit: int | None = None) -> bytes:
        reader = _BodyReader(limit)
        response.deliverBody(reader)
        data = await self._receive(url, lambda: reader.read_all(deadline))
        self._log("body: " + data.decode("utf-8", "replace"))
        return data

    async def _check(self, response, url: str, deadline: _Deadline) -> None:
        """Raise APIError for a status >= 400 (reading the error body)."""
        if response.code < 400:
            return
        data = await self._read(response, url, deadline, _MAX_ERROR_BODY)
        code, message = response.code, ""
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            message = doc["message"]
            if type(doc.get("code")) is int and doc["code"] >= 400:
                code = doc["code"]
        else:
            message = data.decode("utf-8", "replace").strip() or response.phrase.decode("latin-1")
        raise APIError(code, message, url=url)

    async def _call(self, method: str, path: str, query=None, body=None, content_type=None):
        """One request; returns the decoded JSON body, or None for an empty one."""
        url = self.url(path, query)
        deadline = _Deadline(self._reactor, self.timeout, url)
        try:
            response = await self._send(method, url, deadline, body, content_type)
            await self._check(response, url, deadline)
            data = await self._read(response, url, deadline)
        finally:
            deadline.stop()
        if response.code == 204 or not data.strip():
            return None
        return _loads(data, url)

    async def _stream(self, method: str, path: str, query=None, body=None, content_type=None):
        """One request whose body is a collection: yields each JSON item (NDJSON
        lines as they arrive, or the elements of a JSON array)."""
        url = self.url(path, query)
        deadline = _Deadline(self._reactor, self.timeout, url)
        reader = None
        try:
            response = await self._send(method, url, deadline, body, content_type)
            await self._check(response, url, deadline)
            if response.code == 204:
                return
            reader = _BodyReader()
            response.deliverBody(reader)
            while True:
                line = await self._receive(url, lambda: reader.next_line(deadline))
                if line is None:
                    return
                if not line.strip():
                    continue
                if line.lstrip().startswith(b"["):  # one JSON array, not NDJSON
                    rest = await self._receive(url, lambda: reader.read_all(deadline))
                    data = line + b"\n" + rest
                    self._log("body: " + data.decode("utf-8", "replace"))
                    items = _loads(data, url)
                    if not isinstance(items, list):
                        raise APIBadResponse(f"{url} sent a JSON value that is not a list", url=url)
                    for item in items:
                        yield item
                    return
                self._log("line: " + line.decode("utf-8", "replace"))
                yield _loads(line, url)
        finally:
            deadline.stop()
            if reader is not None:
                reader.abort()

    async def _get(self, kind, method, path, query=None, body=None, content_type=None):
        url = self.url(path, query)
        doc = await self._call(method, path, query, body, content_type)
        if doc is None:
            raise APIBadResponse(f"{url} sent an empty response where a {kind.__name__} was expected", url=url)
        return _build(kind, doc, url)

    async def _items(self, kind, method, path, query=None, body=None, content_type=None):
        url = self.url(path, query)
        async with contextlib.aclosing(self._stream(method, path, query, body, content_type)) as docs:
            async for doc in docs:
                yield _build(kind, doc, url)

    # --- peers ------------------------------------------------------------------------------

    async def id(self) -> ID:
        """``GET /id``: the contacted peer's :class:`~ipfscluster.types.ID`."""
        return await self._get(ID, "GET", "/id")

    async def version(self) -> Version:
        """``GET /version``: the peer's :class:`~ipfscluster.types.Version`."""
        return await self._get(Version, "GET", "/version")

    def peers(self) -> AsyncIterator[ID]:
        """``GET /peers``: async iterator of the ``ID`` of every cluster peer."""
        return self._items(ID, "GET", "/peers")

    async def peer_add(self, peer: str) -> ID:
        """``POST /peers``: add a peer given by multiaddress (``/…/p2p/<id>``, sent as
        ``peer_multiaddress``) or by peer ID (sent as ``peer_id``); returns its ID."""
        key = "peer_multiaddress" if str(peer).startswith("/") else "peer_id"
        body = json.dumps({key: str(peer)}).encode()
        return await self._get(ID, "POST", "/peers", body=body, content_type=b"application/json")

    async def peer_remove(self, peer_id: str) -> None:
        """``DELETE /peers/{peer}``: remove a peer from the cluster."""
        await self._call("DELETE", "/peers/" + urllib.parse.quote(peer_id, safe=""))

    # --- pins ---------------------------------------------------------------------------------

    async def pin(self, cid, options: PinOptions | None = None) -> Pin:
        """``POST /pins/{cid}`` with the pin options; returns the committed Pin."""
        return await self._get(Pin, "POST", "/pins/" + _cid_text(cid), options_query(options))

    async def pin_path(self, path: str, options: PinOptions | None = None) -> Pin:
        """``POST /pins/ipfs|ipns|ipld/<path>``: pin what ``path`` resolves to."""
        return await self._get(Pin, "POST", "/pins" + _quote_path(path), options_query(options))

    async def unpin(self, cid) -> Pin:
        """``DELETE /pins/{cid}``; returns the removed Pin (APIError 404 if absent)."""
        return await self._get(Pin, "DELETE", "/pins/" + _cid_text(cid))

    async def unpin_path(self, path: str) -> Pin:
        """``DELETE /pins/ipfs|ipns|ipld/<path>``; returns the removed Pin."""
        return await self._get(Pin, "DELETE", "/pins" + _quote_path(path))

    async def pin_update(self, from_cid, to_cid, options: PinOptions | None = None) -> Pin:
        """Pin ``to_cid`` as an update of ``from_cid`` (``POST /pins/{to}?pin-update=
        {from}``); the options not given are taken from the existing pin."""
        options = attrs.evolve(options or PinOptions(), pin_update=CID.parse(from_cid))
        return await self.pin(to_cid, options)

    def allocations(self, pin_types: PinType = PinType.ALL) -> AsyncIterator[Pin]:
        """``GET /allocations?filter=``: async iterator of the shared state's pins."""
        names = [t.to_json() for t in (PinType.DATA, PinType.META, PinType.CLUSTER_DAG, PinType.SHARD)
                 if t & pin_types]
        query = {} if pin_types == PinType.ALL else {"filter": ",".join(names)}
        return self._items(Pin, "GET", "/allocations", query)

    async def allocation(self, cid) -> Pin:
        """``GET /allocations/{cid}``: the Pin of ``cid`` (APIError 404 if absent)."""
        return await self._get(Pin, "GET", "/allocations/" + _cid_text(cid))

    # --- status, sync, recover -----------------------------------------------------------------

    async def status(self, cid, local: bool = False) -> GlobalPinInfo:
        """``GET /pins/{cid}``: the status of ``cid`` on every peer (or this one)."""
        return await self._get(GlobalPinInfo, "GET", "/pins/" + _cid_text(cid), _local(local))

    def status_all(
        self, status_filter: TrackerStatus = TrackerStatus.UNDEFINED, local: bool = False, cids=None
    ) -> AsyncIterator[GlobalPinInfo]:
        """``GET /pins``: async iterator of GlobalPinInfo, optionally only
        ``status_filter`` statuses, only this peer, or only the CIDs ``cids``."""
        query = _local(local)
        if status_filter:
            query["filter"] = status_filter.to_json()
        if cids:
            query["cids"] = ",".join(_cid_text(c) for c in cids)
        return self._items(GlobalPinInfo, "GET", "/pins", query)

    async def sync(self, cid, local: bool = False) -> GlobalPinInfo:
        """``POST /pins/{cid}/sync``: sync ``cid`` with the daemons; its status."""
        return await self._get(GlobalPinInfo, "POST", f"/pins/{_cid_text(cid)}/sync", _local(local))

    def sync_all(self, local: bool = False) -> AsyncIterator[GlobalPinInfo]:
        """``POST /pins/sync``: async iterator of the items that changed or are in error."""
        return self._items(GlobalPinInfo, "POST", "/pins/sync", _local(local))

    async def recover(self, cid, local: bool = False) -> GlobalPinInfo:
        """``POST /pins/{cid}/recover``: retry ``cid`` where it failed; its status."""
        return await self._get(GlobalPinInfo, "POST", f"/pins/{_cid_text(cid)}/recover", _local(local))

    def recover_all(self, local: bool = False) -> AsyncIterator[GlobalPinInfo]:
        """``POST /pins/recover``: async iterator of the items re-queued."""
        return self._items(GlobalPinInfo, "POST", "/pins/recover", _local(local))

    # --- add ----------------------------------------------------------------------------------

    def add(
        self,
        paths: Sequence[str],
        params: Mapping[str, str] | None = None,
        *,
        recursive: bool = False,
        hidden: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> AsyncIterator[AddedOutput]:
        """``POST /add``: upload local files and folders; async iterator of the
        :class:`~ipfscluster.types.AddedOutput` lines (files, folders, progress).

        ``params`` is the query: pin options (``PinOptions.to_query()``) and add
        options (``cid-version``, ``raw-leaves``, ``wrap-with-directory`` …).
        ``on_progress(sent, total)`` follows the upload.  Raises InvalidInput
        (locally, on first iteration) for unreadable paths.
        """
        return self._add(paths, dict(params or {}), recursive, hidden, on_progress)

    async def _add(self, paths, params, recursive, hidden, on_progress):
        entries = collect_upload(paths, recursive=recursive, hidden=hidden)
        if not entries:
            raise InvalidInput("nothing to add: give at least one file or folder")
        body = _MultipartUpload(entries, on_progress)
        async with contextlib.aclosing(self._items(AddedOutput, "POST", "/add", params, body, body.content_type)) as items:
            async for item in items:
                yield item

    # --- health and monitoring --------------------------------------------------------------

    async def health(self) -> None:
        """``GET /health``: returns when the API answers (204); APIError otherwise."""
        await self._call("GET", "/health")

    async def connect_graph(self) -> ConnectGraph:
        """``GET /health/graph``: the cluster's :class:`~ipfscluster.types.ConnectGraph`."""
        return await self._get(ConnectGraph, "GET", "/health/graph")

    async def alerts(self) -> list[Alert]:
        """``GET /health/alerts``: the recent alerts (expired metrics)."""
        return [a async for a in self._items(Alert, "GET", "/health/alerts")]

    async def metric_names(self) -> list[str]:
        """``GET /monitor/metrics``: the names of the metrics the monitor knows."""
        url = self.url("/monitor/metrics")
        names = [n async for n in self._stream("GET", "/monitor/metrics")]
        if not all(isinstance(n, str) for n in names):
            raise APIBadResponse(f"{url} sent metric names that are not strings", url=url)
        return names

    async def metrics(self, name: str) -> list[Metric]:
        """``GET /monitor/metrics/{name}``: the latest valid metric of each peer."""
        path = "/monitor/metrics/" + urllib.parse.quote(name, safe="")
        return [m async for m in self._items(Metric, "GET", path)]


_DEFAULT_QUERY = {"replication-min": "0", "replication-max": "0", "mode": "recursive", "shard-size": "0"}


def options_query(options: PinOptions | None) -> dict[str, str]:
    """The query parameters of ``options`` without those at their default value
    (the server reads a missing parameter as its default)."""
    query = (options or PinOptions()).to_query()
    return {
        k: v for k, v in query.items() if (v != "" or k.startswith("meta-")) and _DEFAULT_QUERY.get(k) != v
    }


def _local(local: bool) -> dict:
    return {"local": "true"} if local else {}


def _quote_path(path: str) -> str:
    """``/ipfs/<cid>/a b`` as a URL path (segments escaped); checks the namespace."""
    parts = [p for p in str(path).split("/") if p]
    if len(parts) < 2 or parts[0] not in ("ipfs", "ipns", "ipld"):
        raise InvalidInput(f'invalid path "{path}": use /ipfs/<cid>[/...], /ipns/<name>[/...] or /ipld/<cid>')
    return "/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)


# --- waiting for a status ------------------------------------------------------------------


def _relevant(gpi: GlobalPinInfo, target: TrackerStatus) -> dict:
    if target == TrackerStatus.PINNED and gpi.allocations:
        return {p: s for p, s in gpi.peer_map.items() if p in gpi.allocations}
    return dict(gpi.peer_map)


def status_reached(gpi: GlobalPinInfo, target: TrackerStatus, limit: int = 0) -> bool:
    """True when ``gpi`` shows ``target`` (PINNED or UNPINNED) where it matters.

    PINNED: on every allocated peer (every peer but the ``remote`` ones when the
    pin is for everywhere), or on at least ``limit`` peers when ``limit`` > 0.
    UNPINNED: on every peer.  Raises :class:`~ipfscluster.errors.WaitFailed` when a
    relevant peer shows an error status.
    """
    peers = _relevant(gpi, target)
    for peer, short in sorted(peers.items()):
        if short.status.is_error:
            detail = f": {short.error}" if short.error else ""
            raise WaitFailed(
                f"{short.peername or peer} reports {short.status.to_json().upper()} for {gpi.cid}{detail}",
                status=gpi,
            )
    if target == TrackerStatus.PINNED:
        wanted = [s for s in peers.values() if s.status != TrackerStatus.REMOTE]
        done = sum(1 for s in wanted if s.status == TrackerStatus.PINNED)
        if limit > 0:
            return done >= limit
        return bool(wanted) and done == len(wanted)
    return bool(peers) and all(s.status == target for s in peers.values())


async def wait_for_status(
    client,
    cid,
    target: TrackerStatus,
    *,
    clock,
    timeout: float = 0,
    interval: float = 0.5,
    limit: int = 0,
    local: bool = False,
) -> GlobalPinInfo:
    """Poll ``client.status(cid)`` until :func:`status_reached` says ``target`` is
    reached; returns that GlobalPinInfo.

    Polls every ``interval`` seconds of ``clock``; ``timeout`` seconds (0: no
    limit) bound the wait.  Raises :class:`~ipfscluster.errors.WaitTimeout` (with
    the last status) when the deadline passes, WaitFailed when a peer reports an
    error, and whatever ``client.status`` raises.
    """
    from twisted.internet import task

    end = clock.seconds() + timeout if timeout else None
    while True:
        gpi = await client.status(cid, local=local)
        if status_reached(gpi, target, limit):
            return gpi
        now = clock.seconds()
        if end is not None and now >= end:
            raise WaitTimeout(
                f"{cid} did not become {target.to_json().upper()} within {timeout:g}s "
                "(raise --wait-timeout, or check the status later)",
                status=gpi,
            )
        pause = interval if end is None else min(interval, end - now)
        await task.deferLater(clock, pause, lambda: None)
