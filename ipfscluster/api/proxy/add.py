"""``/api/v0/add`` through the proxy: the daemon imports, the cluster pins.

The upload is forwarded to the daemon with ``pin=false`` (streamed, see
:mod:`.forward`).  A 200 answer is kubo's NDJSON: one object per file and
directory (``{"Name","Hash","Size"}``) plus progress objects (``{"Name","Bytes"}``).
:class:`AddRelay` relays those lines to the client *as they arrive*, one line
behind: the last line is held back until the roots are cluster-pinned, so a client
that has read the root's line knows the pin was committed.

Roots (:func:`choose_roots`):

- ``wrap-with-directory``: the last object only (the wrapping directory);
- otherwise every object whose name is top level (no ``/``): each file or
  directory named on the command line; entries inside a directory
  (``dir/file``) are covered by their directory's recursive pin.

Each root is cluster-pinned with the replication factors, name and other cluster
options of the query (``replication``, ``replication-min``, ``replication-max``,
``name``, ``user-allocations``, ``expire-in``/``expire-at``, ``meta-*``,
``origins``).  Those keys are removed from the request forwarded to the daemon.

A cluster pin that fails after a good add is reported with the message
``add operation was successful but an error occurred performing the cluster pin
operation: <error>``: as a 500 kubo error object when nothing was relayed yet (one
file, no progress); otherwise, the response being already under way, the held line
is written, then the kubo error object as the last NDJSON line, and the chunked
body ends with an ``X-Stream-Error`` trailer carrying the message (twisted cannot
send trailers; the last chunk is written by hand).
"""

from __future__ import annotations

import json
import urllib.parse

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from ipfscluster.api.proxy.forward import ResponseRelay, end_with_stream_error
from ipfscluster.api.proxy.wire import error_body
from ipfscluster.errors import ClusterError

__all__ = [
    "AddRelay",
    "CLUSTER_PIN_KEYS",
    "PIN_FAILED",
    "choose_roots",
    "cluster_options_query",
    "daemon_add_uri",
    "is_cluster_pin_key",
]

log = Logger(namespace="ipfsproxy")

PIN_FAILED = "add operation was successful but an error occurred performing the cluster pin operation: "

#: query keys that are cluster pin options, not kubo add options
CLUSTER_PIN_KEYS = frozenset(
    ("replication", "replication-min", "replication-max", "name", "user-allocations", "expire-in", "expire-at", "origins")
)


def is_cluster_pin_key(key: str) -> bool:
    """True when the query key ``key`` is a cluster pin option (``meta-*`` included)."""
    return key in CLUSTER_PIN_KEYS or key.startswith("meta-")


def cluster_options_query(query: str) -> dict[str, list[str]]:
    """The cluster pin options of an ``add`` query string, ``{key: [values]}``."""
    out: dict[str, list[str]] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if is_cluster_pin_key(key):
            out.setdefault(key, []).append(value)
    return out


def daemon_add_uri(uri: bytes) -> bytes:
    """The URI to send the daemon for an ``add`` request URI: ``pin=false`` (any
    ``pin`` option replaced) and without the cluster pin options."""
    text = uri.decode("utf-8", "replace")
    path, _, query = text.partition("?")
    kept = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
        if k != "pin" and not is_cluster_pin_key(k)
    ]
    kept.append(("pin", "false"))
    return (path + "?" + urllib.parse.urlencode(kept, quote_via=urllib.parse.quote)).encode("utf-8")


def choose_roots(outputs: list[tuple[str, str]], wrap: bool) -> list[str]:
    """The CIDs to cluster-pin after an add.

    ``outputs`` are the ``(Name, Hash)`` pairs of the daemon's result objects in
    order (progress objects left out); ``wrap`` is ``wrap-with-directory``.
    Returns the root CIDs (text, without duplicates, in output order): the last
    one when wrapping, else those whose name is top level.
    """
    if not outputs:
        return []
    if wrap:
        return [outputs[-1][1]]
    roots: list[str] = []
    for name, cid in outputs:
        if "/" not in name.strip("/") and cid not in roots:
            roots.append(cid)
    return roots


class AddRelay(ResponseRelay):
    """Relays kubo's add NDJSON one line behind, then cluster-pins the roots.

    :param pin_roots: ``pin_roots(cids)`` → Deferred firing once every root is
        committed, or failing with the error.
    :param wrap: the request's ``wrap-with-directory``.
    """

    def __init__(self, pin_roots, wrap: bool):
        super().__init__()
        self._pin_roots = pin_roots
        self._wrap = wrap
        self._partial = b""
        self._last: bytes | None = None
        self.outputs: list[tuple[str, str]] = []
        self.decode_error: str | None = None
        self.roots: list[str] = []

    def write(self, data: bytes) -> None:
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line + b"\n")

    def _line(self, line: bytes) -> None:
        if line.strip():
            self._note(line)
        if self._last is not None:
            super().write(self._last)
        self._last = line

    def _note(self, line: bytes) -> None:
        try:
            obj = json.loads(line)
        except ValueError as err:
            self.decode_error = self.decode_error or f"error decoding response: {err}"
            return
        if isinstance(obj, dict) and isinstance(obj.get("Hash"), str):
            self.outputs.append((str(obj.get("Name", "")), obj["Hash"]))

    def ended_well(self, done: defer.Deferred) -> None:
        if self._partial:
            partial, self._partial = self._partial, b""
            self._line(partial)
        if self.decode_error is not None:
            self._report(done, self.decode_error)
            return
        self.roots = choose_roots(self.outputs, self._wrap)
        if not self.roots:
            self._release(done)
            return
        d = defer.maybeDeferred(self._pin_roots, self.roots)
        d.addCallbacks(lambda _: self._release(done), lambda f: self._pin_failed(done, f))

    def _release(self, done: defer.Deferred) -> None:
        if self._last is not None:
            ResponseRelay.write(self, self._last)
            self._last = None
        done.callback(None)

    def _pin_failed(self, done: defer.Deferred, failure: Failure) -> None:
        err = failure.value
        if not isinstance(err, ClusterError):
            log.failure("cluster-pinning the roots of an add failed", failure)
        self._report(done, PIN_FAILED + (str(err) if isinstance(err, ClusterError) else repr(err)))

    def _report(self, done: defer.Deferred, message: str) -> None:
        request = self._request
        log.warn("proxy add: {message}", message=message)
        if request.finished or getattr(request, "_disconnected", False):
            done.callback(None)
            return
        if not request.startedWriting:
            request.setResponseCode(500)
            for name in (b"x-chunked-output", b"content-length", b"trailer"):
                request.responseHeaders.removeHeader(name)
            request.setHeader(b"content-type", b"application/json")
            request.write(error_body(message, 500))
            done.callback(None)
            return
        if self._last is not None:
            ResponseRelay.write(self, self._last)
            self._last = None
        request.write(error_body(message, 500))
        end_with_stream_error(request, message)
        done.callback(None)
