"""dag-pb and UnixFS block encoding, written by hand.

Why by hand: no maintained Python library encodes dag-pb/UnixFS byte-for-byte the
way kubo does (see the reference, section 16), and both formats are tiny protobuf
messages.  A protobuf field is ``varint(field_number << 3 | wire_type)`` followed by
a varint (wire type 0) or a length-prefixed byte string (wire type 2).

dag-pb ``PBNode``: ``Links`` (field 2, repeated ``PBLink``) are written **before**
``Data`` (field 1), the canonical order kubo and every other implementation use.
``PBLink``: ``Hash`` (1, CID bytes), ``Name`` (2, string, written even when empty),
``Tsize`` (3, varint: the cumulative size of the linked DAG).

UnixFS ``Data``: ``Type`` (1), ``Data`` (2, omitted when there is none), ``filesize``
(3), ``blocksizes`` (4, repeated, not packed), ``hashType`` (5) and ``fanout`` (6)
for HAMT shards.  Only the fields the importer and the
fake daemon need are decoded; unknown fields are skipped.

Decoding raises :class:`ipfscluster.errors.InvalidInput` for malformed blocks.
"""

from __future__ import annotations

import attrs

from ipfscluster.cid import CID
from ipfscluster.encoding import varint_decode, varint_encode
from ipfscluster.errors import InvalidInput

__all__ = [
    "TYPE_RAW",
    "TYPE_DIRECTORY",
    "TYPE_FILE",
    "TYPE_METADATA",
    "TYPE_SYMLINK",
    "TYPE_HAMT_SHARD",
    "PBLink",
    "PBNode",
    "UnixFSData",
    "encode_pbnode",
    "decode_pbnode",
    "encode_unixfs",
    "decode_unixfs",
]

# UnixFS Data.Type values
TYPE_RAW = 0
TYPE_DIRECTORY = 1
TYPE_FILE = 2
TYPE_METADATA = 3
TYPE_SYMLINK = 4
TYPE_HAMT_SHARD = 5

_VARINT = 0
_BYTES = 2


@attrs.frozen
class PBLink:
    """One dag-pb link: the child's CID, its name in the parent and the cumulative
    size of the child's DAG (``Tsize``)."""

    cid: CID
    name: str = ""
    tsize: int = 0


@attrs.frozen
class PBNode:
    """A decoded dag-pb node: its links and its opaque ``data`` (None when absent)."""

    links: tuple = ()
    data: bytes | None = None


@attrs.frozen
class UnixFSData:
    """A decoded UnixFS ``Data`` message."""

    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple = ()
    hash_type: int | None = None
    fanout: int | None = None


def _key(field: int, wire: int) -> bytes:
    return varint_encode(field << 3 | wire)


def _bytes_field(field: int, value: bytes) -> bytes:
    return _key(field, _BYTES) + varint_encode(len(value)) + value


def _varint_field(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + varint_encode(value)


def encode_pbnode(links, data: bytes | None) -> bytes:
    """Return the canonical dag-pb bytes of a node with ``links`` (PBLink values, in
    the given order) and ``data`` (None to leave the Data field out)."""
    out = bytearray()
    for link in links:
        body = _bytes_field(1, link.cid.to_bytes())
        body += _bytes_field(2, link.name.encode("utf-8"))
        body += _varint_field(3, link.tsize)
        out += _bytes_field(2, body)
    if data is not None:
        out += _bytes_field(1, data)
    return bytes(out)


def encode_unixfs(
    type_: int,
    data: bytes | None = None,
    filesize: int | None = None,
    blocksizes=(),
    hash_type: int | None = None,
    fanout: int | None = None,
) -> bytes:
    """Return the bytes of a UnixFS ``Data`` message (fields in number order)."""
    out = bytearray(_varint_field(1, type_))
    if data is not None:
        out += _bytes_field(2, data)
    if filesize is not None:
        out += _varint_field(3, filesize)
    for size in blocksizes:
        out += _varint_field(4, size)
    if hash_type is not None:
        out += _varint_field(5, hash_type)
    if fanout is not None:
        out += _varint_field(6, fanout)
    return bytes(out)


def _fields(buf: bytes):
    """Yield ``(field, wire_type, value)`` for each protobuf field of ``buf``."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = varint_decode(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = varint_decode(buf, pos)
        elif wire == _BYTES:
            length, pos = varint_decode(buf, pos)
            if pos + length > end:
                raise ValueError("length-delimited field runs past the end")
            value = buf[pos : pos + length]
            pos += length
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def decode_pbnode(block: bytes) -> PBNode:
    """Decode a dag-pb block.  Returns a PBNode; raises InvalidInput when the block
    is not valid dag-pb."""
    links = []
    data = None
    try:
        for field, wire, value in _fields(block):
            if field == 2 and wire == _BYTES:
                cid, name, tsize = None, "", 0
                for lf, lw, lv in _fields(value):
                    if lf == 1 and lw == _BYTES:
                        cid = CID.from_bytes(bytes(lv))
                    elif lf == 2 and lw == _BYTES:
                        name = bytes(lv).decode("utf-8")
                    elif lf == 3 and lw == _VARINT:
                        tsize = lv
                if cid is None:
                    raise ValueError("link without a hash")
                links.append(PBLink(cid, name, tsize))
            elif field == 1 and wire == _BYTES:
                data = bytes(value)
    except (ValueError, UnicodeDecodeError, InvalidInput) as e:
        raise InvalidInput(f"invalid dag-pb block: {e}") from None
    return PBNode(tuple(links), data)


def decode_unixfs(data: bytes) -> UnixFSData:
    """Decode a UnixFS Data message.  Raises InvalidInput when it is malformed or has
    no Type."""
    type_, payload, filesize, blocksizes = None, None, None, []
    hash_type = fanout = None
    try:
        for field, wire, value in _fields(data):
            if field == 1 and wire == _VARINT:
                type_ = value
            elif field == 2 and wire == _BYTES:
                payload = bytes(value)
            elif field == 3 and wire == _VARINT:
                filesize = value
            elif field == 4 and wire == _VARINT:
                blocksizes.append(value)
            elif field == 5 and wire == _VARINT:
                hash_type = value
            elif field == 6 and wire == _VARINT:
                fanout = value
    except ValueError as e:
        raise InvalidInput(f"invalid UnixFS data: {e}") from None
    if type_ is None:
        raise InvalidInput("invalid UnixFS data: no Type field")
    return UnixFSData(type_, payload, filesize, tuple(blocksizes), hash_type, fanout)
