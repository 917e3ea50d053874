"""NDJSON lines of the shared state's pins, encoded from the stored values (``pin ls``).

``GET /allocations`` sends one JSON line per pin: what
``encode_json(pin.to_json())`` of :mod:`ipfscluster.api.rest.streaming` writes
(compact separators, UTF-8, ``\\n``).  Going through a ``Pin`` costs ~16 µs per
line (decode 5.8, ``to_json`` 6.0, encode 4.2; B4 profile); this module writes the
*same bytes* from the stored key and value instead:

- a stored value lists a pin's non-default fields in tag order and the commit
  timestamp (tag 15) comes last, so a value is a *head* (every other field) plus
  the timestamp.  Pins share heads (same allocations and options), so the JSON of
  a head is made once, by ``Pin.to_json`` and the same encoder, cut in two around
  the ``cid`` and ``timestamp`` values, and kept in a bounded cache;
- a line is then ``prefix + CID text + middle + timestamp text + '"}\\n'``: a
  CID encoding (base32 of the key for a CIDv1) and a time format (cached per
  second).

The split of a value into head and timestamp is checked by walking its fields the
first time a head is seen; a head in the cache was checked, and the walk of a
value starting with it reaches the timestamp at the same place, so a cache hit
needs no walk.  Anything unusual (a timestamp that is not 8 bytes, a head not
seen yet) takes the checked path.
"""

from __future__ import annotations

import base64
import json
from typing import Iterable, Iterator

from ipfscluster.cid import CID
from ipfscluster.state.codec import decode_pin, split_timestamp
from ipfscluster.types import SECOND, ZERO_TIME_TEXT, format_time

__all__ = ["PinLines", "HEAD_CACHE_SIZE", "LINES_PER_CHUNK", "ndjson_chunks"]

#: distinct heads (pin values without their timestamp) whose JSON is kept
HEAD_CACHE_SIZE = 4096
#: lines per chunk of :meth:`PinLines.chunks` (one write of ~100–150 KB)
LINES_PER_CHUNK = 512

# the encoder of api.rest.streaming.encode_json (same settings: same bytes)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_SUFFIX = b'"}\n'
#: a timestamp field of 8 bytes (every time after 1970-01-01 + 2^55 ns … 2262)
_TS8 = b"\x0f\x08"
_CID_KEY = "cid"
_AFTER_CID = ("type", "allocations", "max_depth", "reference")


def _encode(value) -> bytes:
    return _encoder.encode(value).encode("utf-8")


class PinLines:
    """Encodes ``(binary CID, stored value)`` pairs of one state to JSON lines.

    ``peers`` is the state's peer table list (read, never copied: peers added
    later are seen).
    """

    def __init__(self, peers: list[str], cache_size: int = HEAD_CACHE_SIZE):
        self._peers = peers
        self._heads: dict[bytes, tuple[bytes, bytes]] = {}
        self._cache_size = cache_size
        self._seconds: dict[int, str] = {}

    def line(self, key: bytes, value: bytes) -> bytes:
        """The JSON line of the pin stored as ``value`` under ``key``."""
        ts = 0
        parts = None
        if len(value) >= 10 and value[-10] == 0x0F and value[-9] == 0x08:
            parts = self._heads.get(value[:-10])
            if parts is not None:
                ts = int.from_bytes(value[-8:], "little", signed=True)
        if parts is None:
            head, ts = split_timestamp(value, self._peers)
            parts = self._heads.get(head)
            if parts is None:
                parts = self._parts(head)
        prefix, middle = parts
        return prefix + self._cid_text(key) + middle + self._time_text(ts) + _SUFFIX

    def _parts(self, head: bytes) -> tuple[bytes, bytes]:
        pin = decode_pin(None, head, self._peers)
        d = pin.to_json()
        before = {}
        for k, v in d.items():
            if k == _CID_KEY:
                break
            before[k] = v
        after = {k: d[k] for k in _AFTER_CID}
        prefix = _encode(before)[:-1] + b',"cid":"'
        middle = b'",' + _encode(after)[1:-1] + b',"timestamp":"'
        parts = (prefix, middle)
        if len(self._heads) >= self._cache_size:
            self._heads.clear()
        self._heads[head] = parts
        return parts

    @staticmethod
    def _cid_text(key: bytes) -> bytes:
        if key[:1] == b"\x01":  # CIDv1: multibase base32, lower case, no padding
            return b"b" + base64.b32encode(key).lower().rstrip(b"=")
        return str(CID.from_bytes(key)).encode("ascii")

    def _time_text(self, ns: int) -> bytes:
        if ns <= SECOND:
            return (format_time(ns) if ns else ZERO_TIME_TEXT).encode("ascii")
        seconds, frac = divmod(ns, SECOND)
        whole = self._seconds.get(seconds)
        if whole is None:
            whole = format_time(seconds * SECOND)[:-1]  # range checked there; without "Z"
            if len(self._seconds) >= 1024:
                self._seconds.clear()
            self._seconds[seconds] = whole
        if frac:
            return (f"{whole}.{frac:09d}".rstrip("0") + "Z").encode("ascii")
        return (whole + "Z").encode("ascii")

    def chunks(self, items: Iterable[tuple[bytes, bytes]], lines: int = LINES_PER_CHUNK) -> Iterator[bytes]:
        """The lines of ``items`` (``(key, value)`` pairs), ``lines`` per chunk."""
        line = self.line
        batch: list[bytes] = []
        for key, value in items:
            batch.append(line(key, value))
            if len(batch) >= lines:
                yield b"".join(batch)
                batch = []
        if batch:
            yield b"".join(batch)


def ndjson_chunks(pins: Iterable, lines: int = LINES_PER_CHUNK) -> Iterator[bytes]:
    """The JSON lines of ``Pin`` values, ``lines`` per chunk (for a state that only
    lists ``Pin`` objects)."""
    batch: list[bytes] = []
    for pin in pins:
        batch.append(_encode(pin.to_json()) + b"\n")
        if len(batch) >= lines:
            yield b"".join(batch)
            batch = []
    if batch:
        yield b"".join(batch)
