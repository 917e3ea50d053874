"""Compact binary encoding of one :class:`~ipfscluster.types.Pin` (the state's values).

A value lists only the fields that differ from the *state defaults*: a recursive
``DATA`` pin, replicated everywhere (``-1``/``-1``), unnamed, without metadata,
allocations, expiry or timestamp.  Such a pin encodes to ``b""``; a typical pin with
three allocations and a commit timestamp takes about 15 bytes.

Each present field is ``<tag byte> <payload>``, tags in increasing order.  An
*integer* is a varint byte count followed by the value in little-endian two's
complement, so any Python int fits (a REST ``shard-size`` may exceed 64 bits):

====  =======================  ==========================================
tag   field                    payload
====  =======================  ==========================================
1     replication_factor_min   integer
2     replication_factor_max   integer
3     name                     varint length + UTF-8
4     mode                     varint: 1 = direct
5     shard_size               integer
6     user_allocations         varint count + peer table indexes
7     expire_at                integer (ns)
8     metadata                 varint count + (key, value) strings
9     pin_update               varint length + binary CID
10    origins                  varint count + multiaddr strings
11    type                     varint (PinType bits)
12    allocations              varint count + peer table indexes
13    max_depth                integer
14    reference                varint length + binary CID
15    timestamp                integer (ns)
====  =======================  ==========================================

Peer IDs are numbers in the state's :class:`~ipfscluster.state.store.PeerTable`,
so the encoding is only meaningful together with that table (the snapshot carries
it).  Decoding trusts its input (it comes from the state itself or from a snapshot
whose checksum was verified) and builds the ``Pin`` without re-running the attrs
validators, which makes listing several times faster.
"""

from __future__ import annotations

from types import MappingProxyType

import attrs

from ipfscluster.cid import CID
from ipfscluster.encoding import varint_decode, varint_encode
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.types import Pin, PinMode, PinType

__all__ = ["STATE_DEFAULTS", "decode_pin", "encode_pin", "pin_type_of", "split_timestamp"]

_EMPTY_MAP = MappingProxyType({})

#: field values that are not stored (the common pin)
STATE_DEFAULTS = {
    "replication_factor_min": -1,
    "replication_factor_max": -1,
    "name": "",
    "mode": PinMode.RECURSIVE,
    "shard_size": 0,
    "user_allocations": (),
    "expire_at": 0,
    "metadata": _EMPTY_MAP,
    "pin_update": None,
    "origins": (),
    "type": PinType.DATA,
    "allocations": (),
    "max_depth": -1,
    "reference": None,
    "timestamp": 0,
}

_FIELD_NAMES = [a.name for a in attrs.fields(Pin)]
assert set(_FIELD_NAMES) == set(STATE_DEFAULTS) | {"cid"}, "Pin fields changed: update the codec"

_TYPE_TAG = 11
_TIMESTAMP_TAG = 15


def _int(n: int) -> bytes:
    """Any integer: varint byte count + little-endian two's complement (no size limit)."""
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return varint_encode(len(raw)) + raw


def _text(s: str) -> bytes:
    raw = s.encode("utf-8")
    return varint_encode(len(raw)) + raw


def _peers(peers, table) -> bytes:
    index = table.index
    numbers = [index(p) for p in peers]
    if len(numbers) < 0x80 and max(numbers) < 0x80:
        return bytes([len(numbers), *numbers])  # the usual case: one byte each
    return varint_encode(len(numbers)) + b"".join(map(varint_encode, numbers))


def encode_pin(pin: Pin, table) -> bytes:
    """The state value of ``pin`` (its CID is the key, not part of the value).

    ``table`` is the state's PeerTable; new peer IDs are added to it.
    """
    out = []
    rmin = pin.replication_factor_min
    if rmin != -1:
        out.append(b"\x01" + _int(rmin))
    if pin.replication_factor_max != -1:
        out.append(b"\x02" + _int(pin.replication_factor_max))
    if pin.name:
        out.append(b"\x03" + _text(pin.name))
    if pin.mode is not PinMode.RECURSIVE:
        out.append(b"\x04\x01")
    if pin.shard_size:
        out.append(b"\x05" + _int(pin.shard_size))
    if pin.user_allocations:
        out.append(b"\x06" + _peers(pin.user_allocations, table))
    if pin.expire_at:
        out.append(b"\x07" + _int(pin.expire_at))
    if pin.metadata:
        items = sorted(pin.metadata.items())
        out.append(b"\x08" + varint_encode(len(items)) + b"".join(_text(k) + _text(v) for k, v in items))
    if pin.pin_update is not None:
        raw = pin.pin_update.to_bytes()
        out.append(b"\x09" + varint_encode(len(raw)) + raw)
    if pin.origins:
        out.append(b"\x0a" + varint_encode(len(pin.origins)) + b"".join(_text(str(m)) for m in pin.origins))
    if pin.type is not PinType.DATA:
        out.append(b"\x0b" + varint_encode(int(pin.type)))
    if pin.allocations:
        out.append(b"\x0c" + _peers(pin.allocations, table))
    if pin.max_depth != -1:
        out.append(b"\x0d" + _int(pin.max_depth))
    if pin.reference is not None:
        raw = pin.reference.to_bytes()
        out.append(b"\x0e" + varint_encode(len(raw)) + raw)
    if pin.timestamp:
        out.append(b"\x0f" + _int(pin.timestamp))
    return b"".join(out) if out else b""


def _read_text(data, pos):
    n, pos = varint_decode(data, pos)
    return data[pos : pos + n].decode("utf-8"), pos + n


def _read_peers(data, pos, peers):
    n, pos = varint_decode(data, pos)
    out = []
    for _ in range(n):
        i, pos = varint_decode(data, pos)
        out.append(peers[i])
    return tuple(out), pos


def _read_cid(data, pos):
    n, pos = varint_decode(data, pos)
    return CID.from_bytes(data[pos : pos + n]), pos + n


def _read_int(data, pos):
    n, pos = varint_decode(data, pos)
    end = pos + n
    if end > len(data):
        raise ValueError("pin value truncated inside an integer")
    return int.from_bytes(data[pos:end], "little", signed=True), end


def _read_mode(data, pos):
    n, pos = varint_decode(data, pos)
    return (PinMode.DIRECT if n == 1 else PinMode.RECURSIVE), pos


def _read_metadata(data, pos):
    n, pos = varint_decode(data, pos)
    meta = {}
    for _ in range(n):
        k, pos = _read_text(data, pos)
        meta[k], pos = _read_text(data, pos)
    return MappingProxyType(meta), pos


def _read_origins(data, pos):
    n, pos = varint_decode(data, pos)
    out = []
    for _ in range(n):
        text, pos = _read_text(data, pos)
        out.append(Multiaddr.parse(text))
    return tuple(out), pos


def _read_type(data, pos):
    n, pos = varint_decode(data, pos)
    return PinType(n), pos


# tag -> (field, reader(data, pos[, peers]) -> (value, pos), needs peers)
_READERS = {
    1: ("replication_factor_min", _read_int, False),
    2: ("replication_factor_max", _read_int, False),
    3: ("name", _read_text, False),
    4: ("mode", _read_mode, False),
    5: ("shard_size", _read_int, False),
    6: ("user_allocations", _read_peers, True),
    7: ("expire_at", _read_int, False),
    8: ("metadata", _read_metadata, False),
    9: ("pin_update", _read_cid, False),
    10: ("origins", _read_origins, False),
    11: ("type", _read_type, False),
    12: ("allocations", _read_peers, True),
    13: ("max_depth", _read_int, False),
    14: ("reference", _read_cid, False),
    15: ("timestamp", _read_int, False),
}

_new = object.__new__
_NAMES = list(STATE_DEFAULTS)
_INDEX = {name: i + 1 for i, name in enumerate(_NAMES)}  # slot 0 is the CID
_DEFAULT_VALUES = list(STATE_DEFAULTS.values())
# the slot setters of Pin, in the order [cid, *STATE_DEFAULTS]
_SETTERS = [getattr(Pin, name).__set__ for name in ["cid", *_NAMES]]
_DECODERS = {tag: (_INDEX[name], reader, needs) for tag, (name, reader, needs) in _READERS.items()}


def _decode_into(values: list, data: bytes, peers) -> None:
    pos, end = 0, len(data)
    decoders = _DECODERS
    while pos < end:
        index, reader, needs_peers = decoders[data[pos]]
        if needs_peers:
            values[index], pos = reader(data, pos + 1, peers)
        else:
            values[index], pos = reader(data, pos + 1)
    if pos != end:
        raise ValueError("pin value overruns its length")


def decode_fields(data: bytes, peers) -> dict:
    """The non-default fields encoded in ``data`` as ``{name: value}``.

    Raises ValueError (or IndexError/KeyError) when ``data`` is malformed.
    """
    marker = object()
    values = [marker] * (len(_NAMES) + 1)
    _decode_into(values, data, peers)
    return {name: values[i] for name, i in _INDEX.items() if values[i] is not marker}


def decode_pin(cid: CID, data: bytes, peers: list[str]) -> Pin:
    """The Pin of ``cid`` whose state value is ``data`` (see :func:`encode_pin`).

    ``peers`` is the peer table's list.  Raises ValueError (or IndexError/KeyError)
    when ``data`` is malformed.
    """
    values = [cid, *_DEFAULT_VALUES]
    if data:
        _decode_into(values, data, peers)
    pin = _new(Pin)
    for setter, value in zip(_SETTERS, values):
        setter(pin, value)
    return pin


def split_timestamp(data: bytes, peers) -> tuple[bytes, int]:
    """``(head, timestamp)``: ``data`` without its timestamp field (the last one, if
    present) and the timestamp (0 when absent).  Walks every field, so it raises
    ValueError (or IndexError/KeyError) when ``data`` is malformed."""
    pos, end = 0, len(data)
    decoders = _DECODERS
    while pos < end:
        tag = data[pos]
        if tag == _TIMESTAMP_TAG:
            ts, stop = _read_int(data, pos + 1)
            if stop != end:
                raise ValueError("pin value has data after its timestamp")
            return data[:pos], ts
        _, reader, needs_peers = decoders[tag]
        if needs_peers:
            _, pos = reader(data, pos + 1, peers)
        else:
            _, pos = reader(data, pos + 1)
    if pos != end:
        raise ValueError("pin value overruns its length")
    return data, 0


def pin_type_of(data: bytes) -> PinType:
    """The PinType of an encoded pin, without decoding the rest when it is absent."""
    if not data or _TYPE_TAG not in data:
        return PinType.DATA
    return decode_fields(data, _AnyPeers()).get("type", PinType.DATA)


class _AnyPeers:
    """A stand-in peer list for decoding when peers do not matter."""

    def __getitem__(self, index):
        return ""
