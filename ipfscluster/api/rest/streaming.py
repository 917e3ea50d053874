"""NDJSON streaming of collections, with the ``X-Stream-Error`` trailer (reference §15).

Collections (``GET /pins``, ``/allocations``, ``/peers``, ``POST /pins/recover``,
``/pins/sync``, ``/add``) come from the cluster as *async iterators*.
:func:`stream_ndjson` writes them as one JSON document per line without ever
holding the collection in memory:

- the first item is awaited before anything is sent, so an empty collection is a
  **204** and an error before the first item becomes an ordinary error response
  (the exception propagates to the caller, which writes ``{"code","message"}``);
- then ``200`` with ``Trailer: X-Stream-Error``, and items are encoded and written
  as they come.  Lines are gathered into writes of up to :data:`FLUSH_BYTES`, and
  whatever is gathered is written as soon as the iterator has to wait, so a slow
  source still shows up line by line;
- **back-pressure**: a streaming producer is registered on the request; when the
  transport's buffer fills up, twisted pauses it and the writer stops pulling items
  until it is resumed.  So a slow client makes the cluster produce slowly, and
  memory stays bounded whatever the size of the collection;
- an error in the middle of the stream ends the response with the trailer
  ``X-Stream-Error: <message>``; a complete stream sends the trailer empty;
- a client that goes away cancels the handler: the iterator is closed
  (``aclose``), so the cluster stops its work too.

Trailers: twisted.web cannot send them (``Request.finish()`` writes a bare
``0\\r\\n\\r\\n``).  :func:`finish_with_trailers` writes the last chunk with the
trailer fields itself, then marks the request as not chunked so ``finish()`` does
not write a second terminator.  For a response that is not chunked (HTTP/1.0) the
trailer is dropped, as HTTP requires.
"""

from __future__ import annotations

import json
from typing import AsyncIterator, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

__all__ = [
    "FLUSH_BYTES",
    "STREAM_ERROR_TRAILER",
    "encode_json",
    "finish_with_trailers",
    "stream_ndjson",
    "collect_json_array",
]

log = Logger(namespace="restapi")

#: the trailer carrying a mid-stream error
STREAM_ERROR_TRAILER = b"X-Stream-Error"
#: lines are gathered into writes of at most about this many bytes
FLUSH_BYTES = 64 * 1024

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_json(value) -> bytes:
    """``value`` (plain JSON tree) as one UTF-8 line ending in ``\\n``, as Go's
    ``json.Encoder`` writes it."""
    return (_encoder.encode(value) + "\n").encode("utf-8")


def _trailer_value(text: str) -> bytes:
    # a header value cannot hold line breaks
    return " ".join(text.split()).encode("utf-8", "replace")


def finish_with_trailers(request, trailers: dict[bytes, str]) -> None:
    """Finish ``request``, sending ``trailers`` (``{name: value}``) after a chunked body.

    Does nothing if the connection is gone or the request is already finished.
    """
    if request.finished or getattr(request, "_disconnected", False):
        return
    if not request.startedWriting:
        request.write(b"")
    if request.chunked:
        fields = b"".join(b"%s: %s\r\n" % (k, _trailer_value(v)) for k, v in trailers.items())
        request.channel.write(b"0\r\n" + fields + b"\r\n")
        request.chunked = False
    request.finish()


@implementer(IPushProducer)
class _Throttle:
    """Streaming producer registered on the request: twisted pauses it when the
    transport's buffer is full; the writer awaits :meth:`wait` before each write."""

    def __init__(self):
        self.paused = False
        self.stopped = False
        self._waiting: defer.Deferred | None = None

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        self._wake()

    def stopProducing(self):
        self.stopped = True
        self._wake()

    def _wake(self):
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.callback(None)

    async def wait(self) -> None:
        while self.paused and not self.stopped:
            self._waiting = defer.Deferred()
            await self._waiting


async def _next(iterator):
    return await iterator.__anext__()


def _next_deferred(iterator) -> defer.Deferred:
    """The next item as a Deferred; it has fired already when the iterator did not
    have to wait."""
    return defer.Deferred.fromCoroutine(_next(iterator))


def _to_json(item):
    return item.to_json()


async def stream_ndjson(
    request,
    items: AsyncIterator,
    encode: Callable | None = _to_json,
    headers: dict[bytes, bytes] | None = None,
) -> None:
    """Write the async iterator ``items`` to ``request`` as NDJSON and finish it.

    ``encode(item)`` gives the JSON tree of one item; ``encode=None`` means the
    items are *pre-encoded*: ``bytes`` holding one or more whole NDJSON lines each
    (a batch encoded at once, e.g. ``Cluster.pins_ndjson``), written as they are,
    never empty.  ``headers`` are extra response headers for a non-empty stream.  Returns once the request is
    finished: 204 when ``items`` is empty, otherwise 200 with the lines and the
    ``X-Stream-Error`` trailer.  Raises whatever ``items`` raises before its first
    item (nothing has been written then); later errors go into the trailer and are
    logged.
    """
    try:
        try:
            first = await _next_deferred(items)
        except StopAsyncIteration:
            request.setResponseCode(204)
            request.finish()
            return
        request.setResponseCode(200)
        request.setHeader(b"Trailer", STREAM_ERROR_TRAILER)
        for name, value in (headers or {}).items():
            request.setHeader(name, value)
        await _write_items(request, first, items, encode)
    finally:
        await _close(items)


async def _close(items) -> None:
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()


def _abandon(pending: defer.Deferred | None) -> None:
    """Cancel a request for the next item that nobody will read (the iterator
    then finishes, so it can be closed)."""
    if pending is not None and not pending.called:
        pending.addErrback(lambda _: None)
        pending.cancel()


def _raw(item: bytes) -> bytes:
    return item


async def _write_items(request, first, items, encode) -> None:
    to_line = _raw if encode is None else (lambda item: encode_json(encode(item)))
    throttle = _Throttle()
    request.registerProducer(throttle, True)
    error = ""
    buffer = [to_line(first)]
    size = len(buffer[0])
    pending = None
    try:
        while not throttle.stopped:
            pending = _next_deferred(items)
            if size >= FLUSH_BYTES or (buffer and not pending.called):
                await throttle.wait()
                if throttle.stopped:
                    break
                request.write(b"".join(buffer))
                buffer, size = [], 0
            try:
                item = await pending
            except StopAsyncIteration:
                break
            line = to_line(item)
            buffer.append(line)
            size += len(line)
    except defer.CancelledError:
        raise
    except Exception as err:  # the client sees it in the trailer; we log it
        error = str(err) or type(err).__name__
        log.warn("streaming response to {uri} failed: {error}", uri=request.uri.decode("latin-1", "replace"),
                 error=error)
    finally:
        _abandon(pending)
        if request.channel is not None:  # None once the connection is lost
            request.unregisterProducer()
    if buffer and not throttle.stopped:
        request.write(b"".join(buffer))
    finish_with_trailers(request, {STREAM_ERROR_TRAILER: error})


async def collect_json_array(items: AsyncIterator, encode: Callable = _to_json) -> list:
    """Return every item of ``items`` encoded, as one list (``stream-channels=false``).

    Raises whatever ``items`` raises; the iterator is closed in any case.
    """
    try:
        return [encode(item) async for item in items]
    finally:
        await _close(items)
