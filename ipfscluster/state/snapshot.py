"""The state snapshot format (current version: :data:`VERSION`), written and read in a stream.

Layout (all integers are unsigned LEB128 varints)::

    b"ipfscluster-state <version>\\n"       header line, ASCII
    body:
      <n peers> then n x (<len> <peer ID, UTF-8>)   the peer table
      repeated: <key len ≥ 1> <binary CID> <value len> <encoded pin>
      <0>                                           end of pins
      <pin count>
    <SHA-256 of the body, 32 bytes>

The records are the store's own ``bytes`` (see :mod:`.store` and :mod:`.codec`), so
writing is a copy and reading rebuilds the dictionary without decoding any pin.
Pins are written in binary CID order, so reading rebuilds the sorted index in
linear time.  Writing and reading hold one 64 KiB chunk at a time, never the
whole snapshot.

The header names the format version.  A reader for version N accepts N only; older
state formats (upstream's JSON versions 1-4) go through :mod:`.migrations`, and the
day this binary layout changes, its previous reader stays here with a migration.
"""

from __future__ import annotations

import hashlib
from typing import IO, Iterable, Iterator

from ipfscluster.encoding import varint_encode
from ipfscluster.errors import StateCorrupted, StateVersionError

__all__ = ["HEADER_PREFIX", "VERSION", "iter_snapshot", "read_header", "read_snapshot", "write_snapshot"]

#: the version of the state format this code writes
VERSION = 5

HEADER_PREFIX = b"ipfscluster-state "
_DIGEST = 32
_CHUNK = 1 << 16
_MAX_HEADER = 64


def iter_snapshot(items: Iterable[tuple[bytes, bytes]], peers: list[str]) -> Iterator[bytes]:
    """The snapshot of ``items`` (key order) and ``peers`` as a series of byte chunks."""
    digest = hashlib.sha256()
    yield HEADER_PREFIX + str(VERSION).encode("ascii") + b"\n"
    out = bytearray(varint_encode(len(peers)))
    for peer in peers:
        raw = peer.encode("utf-8")
        out += varint_encode(len(raw))
        out += raw
    count = 0
    for key, value in items:
        out += varint_encode(len(key))
        out += key
        out += varint_encode(len(value))
        out += value
        count += 1
        if len(out) >= _CHUNK:
            chunk = bytes(out)
            digest.update(chunk)
            yield chunk
            out.clear()
    out += b"\x00"
    out += varint_encode(count)
    chunk = bytes(out)
    digest.update(chunk)
    yield chunk + digest.digest()


def write_snapshot(items: Iterable[tuple[bytes, bytes]], peers: list[str], fileobj: IO[bytes]) -> int:
    """Write the snapshot to the binary ``fileobj``; returns the number of pins written."""
    count = 0

    def counted():
        nonlocal count
        for item in items:
            count += 1
            yield item

    for chunk in iter_snapshot(counted(), peers):
        fileobj.write(chunk)
    return count


def read_header(first: bytes) -> tuple[int, int]:
    """``(version, header length)`` from the first bytes of a snapshot.

    Raises :class:`StateCorrupted` when ``first`` does not start with a valid header.
    """
    end = first.find(b"\n", 0, _MAX_HEADER)
    if not first.startswith(HEADER_PREFIX) or end < 0:
        raise StateCorrupted("the state snapshot does not start with an ipfscluster-state header")
    text = first[len(HEADER_PREFIX) : end]
    if not text.isdigit():
        raise StateCorrupted(f"the state snapshot header has a bad version {text!r}")
    return int(text), end + 1


class _Reader:
    """Buffered, hashing reader of the snapshot body."""

    def __init__(self, fileobj, initial: bytes):
        self.file = fileobj
        self.buf = initial
        self.pos = 0
        self.digest = hashlib.sha256()
        self.hashed = 0

    def more(self, need: int) -> None:
        """Make at least ``need`` bytes available after ``pos``."""
        while len(self.buf) - self.pos < need:
            data = self.file.read(max(_CHUNK, need))
            if not data:
                raise StateCorrupted("the state snapshot is truncated")
            self.digest.update(self.buf[self.hashed : self.pos])
            self.buf = self.buf[self.pos :] + data
            self.pos = self.hashed = 0

    def varint(self) -> int:
        buf, pos = self.buf, self.pos
        if pos < len(buf) and buf[pos] < 0x80:
            self.pos = pos + 1
            return buf[pos]
        value = shift = 0
        for _ in range(9):
            self.more(1)
            byte = self.buf[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
        raise StateCorrupted("the state snapshot has a bad length field")

    def take(self, n: int) -> bytes:
        if len(self.buf) - self.pos < n:
            self.more(n)
        start = self.pos
        self.pos = start + n
        return self.buf[start : self.pos]

    def body_digest(self) -> bytes:
        self.digest.update(self.buf[self.hashed : self.pos])
        self.hashed = self.pos
        return self.digest.digest()


def read_snapshot(fileobj: IO[bytes], initial: bytes = b"") -> tuple[dict[bytes, bytes], list[str]]:
    """Read a current-version snapshot from ``fileobj`` (after ``initial`` bytes).

    Returns ``(values, peers)``: the key -> value dictionary (in key order) and the
    peer table.  Raises :class:`StateVersionError` for another version and
    :class:`StateCorrupted` when the data is truncated, malformed or fails the
    checksum.
    """
    head = initial
    while b"\n" not in head[:_MAX_HEADER] and len(head) < _MAX_HEADER:
        data = fileobj.read(_MAX_HEADER)
        if not data:
            break
        head += data
    if not head:
        raise StateCorrupted("the state snapshot is empty")
    version, start = read_header(head)
    reader = _Reader(fileobj, head)
    if version != VERSION:
        raise StateVersionError(
            f"the state snapshot has version {version}; this peer reads version {VERSION}"
            + (" (upgrade ipfscluster)" if version > VERSION else ""),
            version=version,
        )
    reader.pos = reader.hashed = start
    try:
        peers = [reader.take(reader.varint()).decode("utf-8") for _ in range(reader.varint())]
        values: dict[bytes, bytes] = {}
        previous = b""
        while True:
            klen = reader.varint()
            if klen == 0:
                break
            key = reader.take(klen)
            if key <= previous:
                raise StateCorrupted("the state snapshot is not in CID order")
            values[key] = reader.take(reader.varint()) or b""
            previous = key
        count = reader.varint()
    except UnicodeDecodeError:
        raise StateCorrupted("the state snapshot has a peer ID that is not UTF-8") from None
    digest = reader.body_digest()
    if reader.take(_DIGEST) != digest:
        raise StateCorrupted("the state snapshot fails its checksum")
    if count != len(values):
        raise StateCorrupted(f"the state snapshot says {count} pins but holds {len(values)}")
    if reader.pos != len(reader.buf) or fileobj.read(1):
        raise StateCorrupted("the state snapshot has data after its checksum")
    return values, peers
