"""The HTTP face of the fake daemon: kubo's RPC API framing on twisted.web.

A plain ``twisted.web`` resource rather than Klein: kubo's framing needs control
Klein does not give (the body read before form parsing, streamed NDJSON with an
error trailer, text/plain errors for bad requests).  What it reproduces
(go-ipfs-cmds' HTTP handler):

- ``POST`` only; ``OPTIONS`` answers 204 with ``Allow``; ``GET``/``HEAD``/others
  405 ``405 - Method Not Allowed`` with ``Allow: OPTIONS, POST``;
- command resolution: ``/api/v0/<command path>``, where a last component that is
  not a subcommand is taken as the first argument (``/api/v0/pin/add/<cid>``);
  unknown commands 404 ``404 page not found``; arguments are the ``arg`` query
  values, every other query key is an option;
- a single value is one JSON line; a streamed command sends NDJSON with
  ``X-Chunked-Output: 1``; raw output (``cat``, ``block/get``) has
  ``X-Stream-Output: 1``; every response carries ``Trailer: X-Stream-Error`` and
  the CORS exposure headers;
- a command error before any output is HTTP 500 (400 for client errors) with
  ``{"Message","Code","Type":"error"}``; after output started, the chunked body ends
  with an ``X-Stream-Error`` trailer (twisted cannot send trailers, so the
  last chunk is written by hand, as reference §15 suggests);
- request errors (bad option value, missing argument) are 400 ``text/plain``;
- the global ``timeout`` option (a Go duration) bounds the command
  (``context deadline exceeded``); a client that disconnects cancels it.

Fault knobs (:mod:`~ipfscluster.testing.fakeipfs.faults`) apply here, before the
command runs.  JSON is encoded like Go's ``encoding/json`` (compact, ``<>&``
escaped, map keys sorted where Go sorts them).
"""

from __future__ import annotations

import json
import urllib.parse

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.protocols.policies import WrappingFactory
from twisted.web import resource, server

from ipfscluster.errors import InvalidDuration, InvalidInput
from ipfscluster.config.durations import parse_duration
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.fakeipfs.call import Call
from ipfscluster.testing.fakeipfs.daemon import RawBody, command_name
from ipfscluster.testing.fakeipfs.errors import (
    DEADLINE_EXCEEDED,
    KuboCommandError,
    KuboNotFound,
    KuboRequestError,
)

__all__ = ["KuboAPIResource", "Listener", "go_json", "COMMANDS"]

log = Logger(namespace="fakeipfs")

API_PREFIX = "/api/v0"

# The command tree the fake serves: parent -> subcommands; None marks a command
# that runs itself (and so takes a trailing path component as an argument).
COMMANDS = {
    "id": None,
    "version": None,
    "add": None,
    "cat": None,
    "refs": None,
    "pin": {"add": None, "rm": None, "ls": None, "update": None},
    "repo": {"stat": None, "gc": None},
    "resolve": None,
    "swarm": {"connect": None, "peers": None},
    "config": {"show": None},
    "block": {"put": None, "get": None, "stat": None},
}

EXPOSED = "X-Stream-Output, X-Chunked-Output, X-Content-Length"

# kubo accepts an option under any of its names; these are the short ones
ALIASES = {
    "add": {"q": "quiet", "Q": "quieter", "p": "progress", "n": "only-hash",
            "w": "wrap-with-directory", "s": "chunker", "t": "trickle", "E": "empty-dirs"},
    "cat": {"o": "offset", "l": "length"},
    "pin/add": {"r": "recursive", "n": "name"},
    "pin/rm": {"r": "recursive"},
    "pin/ls": {"t": "type", "q": "quiet", "s": "stream", "n": "name"},
    "refs": {"r": "recursive", "u": "unique", "e": "edges"},
    "repo/stat": {"s": "size-only", "H": "human"},
    "repo/gc": {"q": "quiet"},
    "resolve": {"r": "recursive"},
    "block/put": {"f": "format"},
}


def go_json(value) -> bytes:
    """Encode ``value`` like Go's ``json.Encoder``: compact, HTML characters
    escaped, one trailing newline."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return text.encode("utf-8") + b"\n"


def resolve_command(path: str) -> tuple[str, list[str]]:
    """Map an API path to ``(endpoint, leading arguments)``.  Raises KuboNotFound."""
    if not path.startswith(API_PREFIX + "/"):
        raise KuboNotFound()
    parts = path[len(API_PREFIX) + 1 :].split("/")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    node = COMMANDS
    walked = []
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            raise KuboNotFound()
        walked.append(part)
        node = node[part]
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        return "/".join(walked + [last]), []
    if node is None and walked:
        return "/".join(walked), [last]
    raise KuboNotFound()


def _query(uri: bytes, endpoint: str) -> tuple[list[str], dict]:
    """Arguments and options of a request URI; short option names are replaced by
    their long names.  Raises KuboRequestError when both forms are given."""
    query = urllib.parse.urlsplit(uri.decode("utf-8", "replace")).query
    aliases = ALIASES.get(endpoint, {})
    args, options, spelled = [], {}, {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key == "arg":
            args.append(value)
            continue
        name = aliases.get(key, key)
        if spelled.setdefault(name, key) != key:
            raise KuboRequestError(
                f'duplicate command options were provided ("{key}" and "{spelled[name]}")'
            )
        options.setdefault(name, []).append(value)
    return args, options


def _plain_error(request, status: int, message: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader("Server", "kubo")
    request.setHeader("Content-Type", "text/plain; charset=utf-8")
    request.setHeader("X-Content-Type-Options", "nosniff")
    return message.encode("utf-8") + b"\n"


class _Output:
    """Where a command writes: starts the streamed response on first use."""

    def __init__(self, request, version: str):
        self.request = request
        self.version = version
        self.started = False

    def headers(self, content_type: str, **extra) -> None:
        request = self.request
        request.setHeader("Access-Control-Allow-Headers", EXPOSED)
        request.setHeader("Access-Control-Expose-Headers", EXPOSED)
        request.setHeader("Trailer", "X-Stream-Error")
        request.setHeader("Server", f"kubo/{self.version}")
        request.setHeader("Vary", "Origin")
        request.setHeader("Content-Type", content_type)
        for name, value in extra.items():
            request.setHeader(name, value)

    @property
    def gone(self) -> bool:
        return self.request.finished or getattr(self.request, "_disconnected", False)

    def stream(self) -> None:
        """Begin an NDJSON response (HTTP 200, ``X-Chunked-Output: 1``)."""
        if not self.started:
            self.started = True
            self.headers("application/json", **{"X-Chunked-Output": "1"})
            self.request.setResponseCode(200)

    def emit(self, value) -> None:
        """Send one JSON value as a line of the stream."""
        self.stream()
        if not self.gone:
            self.request.write(go_json(value))

    def single(self, value) -> None:
        self.started = True
        self.headers("application/json")
        self.request.setResponseCode(200)
        self.request.write(go_json(value))

    def raw(self, body: RawBody) -> None:
        self.started = True
        extra = {"X-Stream-Output": "1"}
        if body.length is not None:
            extra["X-Content-Length"] = str(body.length)
        self.headers(body.content_type, **extra)
        self.request.setResponseCode(200)
        if body.data:
            self.request.write(body.data)

    def error(self, err: KuboCommandError) -> None:
        """Report a command error: an error response, or the trailer once started."""
        if not self.started:
            self.started = True
            self.headers("application/json")
            self.request.setResponseCode(err.http_status)
            self.request.write(go_json(err.body()))
            return
        if getattr(self.request, "chunked", False) and not self.gone:
            # twisted cannot send trailers: end the chunked body by hand
            self.request.chunked = 0
            message = err.message.replace("\r", " ").replace("\n", " ")
            self.request.channel.write(
                b"0\r\nX-Stream-Error: " + message.encode("utf-8") + b"\r\n\r\n"
            )


class KuboAPIResource(resource.Resource):
    """The kubo RPC API of one :class:`~ipfscluster.testing.fakeipfs.FakeIPFS`."""

    isLeaf = True

    def __init__(self, daemon):
        super().__init__()
        self.daemon = daemon

    def render(self, request):
        daemon = self.daemon
        if not daemon.online:
            # a daemon that is down never answers: drop the connection
            transport = request.channel.transport if request.channel else None
            if transport is not None:
                abort = getattr(transport, "abortConnection", transport.loseConnection)
                abort()
            return server.NOT_DONE_YET
        path = urllib.parse.unquote(request.path.decode("utf-8", "replace"))
        if not path.startswith(API_PREFIX + "/"):
            return _plain_error(request, 404, KuboNotFound().message)
        method = request.method.decode("ascii", "replace")
        if method == "OPTIONS":
            request.setResponseCode(204)
            request.setHeader("Allow", "OPTIONS, POST")
            return b""
        if method != "POST":
            request.setHeader("Allow", "OPTIONS, POST")
            return _plain_error(request, 405, "405 - Method Not Allowed")
        try:
            endpoint, leading = resolve_command(path)
        except KuboNotFound as e:
            return _plain_error(request, 404, e.message)
        try:
            args, options = _query(request.uri, endpoint)
        except KuboRequestError as e:
            return _plain_error(request, 400, e.message)
        request.content.seek(0)
        call = Call(
            endpoint=endpoint,
            args=tuple(leading + args),
            options=options,
            body=request.content.read(),
            content_type=(request.getHeader("content-type") or ""),
        )
        daemon.requests.append(Call(endpoint, call.args, options, b"", call.content_type))
        out = _Output(request, daemon.version)
        d = defer.Deferred.fromCoroutine(self._serve(request, call, out))
        request.notifyFinish().addErrback(lambda _: d.cancel())
        return server.NOT_DONE_YET

    async def _faults(self, call: Call) -> None:
        daemon = self.daemon
        faults = daemon.faults
        delay = faults.latency_for(call.endpoint)
        if delay:
            await task.deferLater(daemon.clock, delay)
        hang = faults.hang_for(call.endpoint)
        if hang is not None:
            await hang.wait()
        injected = faults.failure_for(call.endpoint, daemon.cids_in(call.args))
        if injected is not None:
            raise KuboCommandError(injected.message, injected.code, injected.status)

    async def _run(self, call: Call, out: _Output):
        await self._faults(call)
        command = getattr(self.daemon, command_name(call.endpoint))
        return await command(call, out)

    async def _serve(self, request, call: Call, out: _Output) -> None:
        timeout = None
        if call.has("timeout"):
            try:
                timeout = max(0.0, parse_duration(call.str("timeout")) / 1e9)
            except (InvalidDuration, KuboRequestError):
                # kubo's handler returns without a word here: an empty 200
                request.setHeader("Server", f"kubo/{self.daemon.version}")
                request.setHeader("Content-Length", "0")
                request.finish()
                return
        work = defer.Deferred.fromCoroutine(self._run(call, out))
        expired = []
        timer = None
        if timeout is not None:

            def expire():
                expired.append(True)
                work.cancel()

            timer = self.daemon.clock.callLater(timeout, expire)
        try:
            result = await work
        except defer.CancelledError:
            if not expired:
                return  # the client went away: nothing to answer
            out.error(KuboCommandError(DEADLINE_EXCEEDED))
        except KuboRequestError as e:
            if out.started:
                out.error(KuboCommandError(e.message, 1))
            else:
                request.write(_plain_error(request, 400, e.message))
        except KuboCommandError as e:
            out.error(e)
        except InvalidInput as e:
            out.error(KuboCommandError(str(e)))
        except Exception as e:  # a bug in the fake: say so like kubo would
            log.failure("fake kubo command {endpoint} failed", endpoint=call.endpoint)
            out.error(KuboCommandError(f"{type(e).__name__}: {e}"))
        else:
            if isinstance(result, RawBody):
                out.raw(result)
            elif result is not None:
                out.single(result)
            else:
                out.stream()
        finally:
            if timer is not None and timer.active():
                timer.cancel()
        if not out.gone:
            request.finish()


class Listener:
    """A daemon's TCP listener, which can be paused (daemon down) and resumed on
    the same port."""

    def __init__(self, daemon, multiaddr: str):
        self.daemon = daemon
        address = Multiaddr.parse(multiaddr)
        address.tcp_endpoint_string()  # raises InvalidMultiaddr unless ip4/ip6 + tcp
        self.family, self.host = address.components[0]
        self.port_number = address.port
        self.port = None
        self.factory = WrappingFactory(server.Site(KuboAPIResource(daemon)))

    @property
    def multiaddr(self) -> str:
        return f"/{self.family}/{self.host}/tcp/{self.port_number}"

    def start(self):
        """Listen; returns the IListeningPort."""
        self.port = self.daemon.reactor.listenTCP(
            self.port_number, self.factory, interface=self.host
        )
        self.port_number = self.port.getHost().port
        return self.port

    def _drop_connections(self) -> None:
        for protocol in list(self.factory.protocols):
            protocol.transport.abortConnection()

    def pause(self) -> defer.Deferred:
        """Stop listening and drop every connection."""
        port, self.port = self.port, None
        self._drop_connections()
        if port is None:
            return defer.succeed(None)
        return defer.maybeDeferred(port.stopListening)

    def resume(self) -> defer.Deferred:
        """Listen again on the same port."""
        if self.port is None:
            self.start()
        return defer.succeed(None)

    def stop(self) -> defer.Deferred:
        """Stop for good."""
        return self.pause()
