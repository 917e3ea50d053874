"""Raft values and wire messages, plus their compact binary codec.

Everything here is a frozen attrs value: log entries (:class:`Entry`), the durable
hard state (:class:`HardState`), snapshot metadata (:class:`SnapshotMeta`) and the
RPC messages exchanged between Raft cores.  Every message carries ``src``, ``dst``
(node ids, i.e. peer ID strings) and the sender's ``term``.

The codec (:func:`encode` / :func:`decode`) is a small hand-written binary format,
not JSON or msgpack: a Raft message is mostly integers and opaque entry payloads,
and a fixed ``struct`` layout is both smaller and several times faster to encode
than JSON with base64 for the bytes (entries are hot: every proposal crosses the
codec once per follower).  No third-party dependency is needed for it.

Layout: one version byte (:data:`CODEC_VERSION`), one type byte, then the fields of
the message in declaration order.  Integers are unsigned 64-bit big-endian, booleans
one byte, strings a 16-bit length plus UTF-8, byte strings a 32-bit length plus the
bytes, optional strings a presence byte first, entry lists a 32-bit count then each
entry as ``index, term, kind(1 byte), data``, string tuples a 16-bit count then the
strings.  :func:`decode` raises :class:`~ipfscluster.errors.RaftCodecError` for
anything malformed (short buffer, unknown type or version, trailing bytes).

Size limits: the core keeps an AppendEntries message under ``max_msg_bytes`` of
entry payload (one oversized entry is still sent alone) and snapshot chunks under
``snapshot_chunk_size``; the defaults keep an encoded message below the 65,535-byte
AMP value cap.
"""

from __future__ import annotations

import struct
from typing import Any

import attrs

from ipfscluster.errors import RaftCodecError

CODEC_VERSION = 1

# --- entries ------------------------------------------------------------------------

ENTRY_NORMAL = 0
"""An application command (for the cluster: a pin/unpin operation)."""
ENTRY_NOOP = 1
"""The empty entry a new leader appends in its term."""
ENTRY_CONFIG = 2
"""A membership change; ``data`` is :func:`encode_config` of the new voter set."""


@attrs.frozen
class Entry:
    """One log entry."""

    index: int
    term: int
    kind: int = ENTRY_NORMAL
    data: bytes = b""


@attrs.frozen
class ConfigChange:
    """The payload of an ``ENTRY_CONFIG`` entry: the full voter set after the change."""

    op: str  # "add" or "remove"
    node: str
    voters: tuple[str, ...]


@attrs.frozen
class HardState:
    """What must be durable before any message depending on it is sent."""

    term: int = 0
    vote: str | None = None
    commit: int = 0


@attrs.frozen
class SnapshotMeta:
    """Where a snapshot sits in the log and the membership at that point.

    ``config_index`` is the index of the configuration entry in effect at ``index``
    (0 for the bootstrap configuration).
    """

    index: int = 0
    term: int = 0
    voters: tuple[str, ...] = ()
    config_index: int = 0


@attrs.frozen
class Snapshot:
    """A state machine snapshot: its metadata and the serialized state."""

    meta: SnapshotMeta
    data: bytes


# --- messages -----------------------------------------------------------------------


@attrs.frozen
class VoteRequest:
    """RequestVote (``pre_vote=False``) or a pre-vote probe (``pre_vote=True``).

    For a pre-vote ``term`` is the term the sender *would* campaign in.  ``transfer``
    marks an election started by TimeoutNow, which voters grant even within a
    leader lease.
    """

    src: str
    dst: str
    term: int
    last_index: int
    last_term: int
    pre_vote: bool = False
    transfer: bool = False


@attrs.frozen
class VoteResponse:
    """Answer to a (pre-)vote; a granted pre-vote carries the prospective term."""

    src: str
    dst: str
    term: int
    granted: bool
    pre_vote: bool = False


@attrs.frozen
class AppendEntries:
    """Entries after ``(prev_index, prev_term)`` plus the leader's commit index."""

    src: str
    dst: str
    term: int
    prev_index: int
    prev_term: int
    commit: int
    entries: tuple[Entry, ...] = ()


@attrs.frozen
class AppendResponse:
    """Answer to AppendEntries.

    On success ``index`` is the last index the follower now knows to match the
    leader.  On rejection ``index`` is the rejected ``prev_index`` and
    ``hint_index``/``hint_term`` say where the conflict is: ``hint_term`` 0 means
    "my log ends before ``hint_index``"; otherwise ``hint_term`` is my term at the
    rejected index and ``hint_index`` the first index I hold of that term.
    ``index`` 0 answers a Heartbeat whose commit index is beyond the follower's log
    (it lost entries it had acknowledged): ``hint_index`` is one past its last entry
    (``hint_index`` 0 too: a plain notification of the follower's newer term).
    """

    src: str
    dst: str
    term: int
    success: bool
    index: int
    hint_index: int = 0
    hint_term: int = 0


@attrs.frozen
class Heartbeat:
    """Leader liveness + commit propagation; ``read_seq`` tags ReadIndex rounds."""

    src: str
    dst: str
    term: int
    commit: int
    read_seq: int = 0


@attrs.frozen
class HeartbeatResponse:
    """Echoes the heartbeat's ``read_seq`` so the leader can confirm ReadIndex rounds."""

    src: str
    dst: str
    term: int
    read_seq: int = 0


@attrs.frozen
class InstallSnapshot:
    """One chunk of a snapshot (``data`` starts at byte ``offset``; ``done`` on the last)."""

    src: str
    dst: str
    term: int
    index: int
    snap_term: int
    voters: tuple[str, ...]
    config_index: int
    offset: int
    size: int
    data: bytes
    done: bool


@attrs.frozen
class SnapshotResponse:
    """``next_offset`` is the next byte the follower expects; ``done`` once installed."""

    src: str
    dst: str
    term: int
    index: int
    next_offset: int
    done: bool


@attrs.frozen
class TimeoutNow:
    """Leadership transfer: the receiver starts an election immediately."""

    src: str
    dst: str
    term: int


Message = (VoteRequest | VoteResponse | AppendEntries | AppendResponse | Heartbeat
           | HeartbeatResponse | InstallSnapshot | SnapshotResponse | TimeoutNow)

# --- codec --------------------------------------------------------------------------

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_ENTRY = struct.Struct(">QQBI")
_HEAD = struct.Struct(">BB")

# (type byte, class, field kinds in declaration order)
_SCHEMAS: list[tuple[int, type, tuple[tuple[str, str], ...]]] = []


def _schema(tag: int, cls: type, **kinds: str) -> None:
    fields = tuple((f.name, kinds.get(f.name, "u64")) for f in attrs.fields(cls))
    _SCHEMAS.append((tag, cls, fields))


_schema(1, VoteRequest, src="str", dst="str", pre_vote="bool", transfer="bool")
_schema(2, VoteResponse, src="str", dst="str", granted="bool", pre_vote="bool")
_schema(3, AppendEntries, src="str", dst="str", entries="entries")
_schema(4, AppendResponse, src="str", dst="str", success="bool")
_schema(5, Heartbeat, src="str", dst="str")
_schema(6, HeartbeatResponse, src="str", dst="str")
_schema(7, InstallSnapshot, src="str", dst="str", voters="strs", data="bytes", done="bool")
_schema(8, SnapshotResponse, src="str", dst="str", done="bool")
_schema(9, TimeoutNow, src="str", dst="str")

_BY_CLASS = {cls: (tag, fields) for tag, cls, fields in _SCHEMAS}
_BY_TAG = {tag: (cls, fields) for tag, cls, fields in _SCHEMAS}


def _put_str(out: list, text: str) -> None:
    raw = text.encode("utf-8")
    out.append(_U16.pack(len(raw)))
    out.append(raw)


def _encode_value(out: list, kind: str, value: Any) -> None:
    if kind == "u64":
        out.append(_U64.pack(value))
    elif kind == "bool":
        out.append(b"\x01" if value else b"\x00")
    elif kind == "str":
        _put_str(out, value)
    elif kind == "bytes":
        out.append(_U32.pack(len(value)))
        out.append(value)
    elif kind == "entries":
        out.append(_U32.pack(len(value)))
        for e in value:
            out.append(_ENTRY.pack(e.index, e.term, e.kind, len(e.data)))
            out.append(e.data)
    else:  # strs
        out.append(_U16.pack(len(value)))
        for text in value:
            _put_str(out, text)


def encode(msg: Message) -> bytes:
    """Serialize a Raft message to bytes (see the module docstring for the layout)."""
    tag, fields = _BY_CLASS[type(msg)]
    out: list = [bytes((CODEC_VERSION, tag))]
    for name, kind in fields:
        _encode_value(out, kind, getattr(msg, name))
    return b"".join(out)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise RaftCodecError("truncated Raft message: needed %d more bytes" % (end - len(self.buf)))
        chunk = self.buf[self.pos:end]
        self.pos = end
        return chunk

    def unpack(self, st: struct.Struct) -> tuple:
        return st.unpack(self.take(st.size))

    def text(self) -> str:
        (n,) = self.unpack(_U16)
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RaftCodecError("bad UTF-8 in Raft message: %s" % exc) from exc


def _decode_value(r: _Reader, kind: str) -> Any:
    if kind == "u64":
        return r.unpack(_U64)[0]
    if kind == "bool":
        flag = r.take(1)[0]
        if flag > 1:
            raise RaftCodecError("bad boolean byte %d in Raft message" % flag)
        return flag == 1
    if kind == "str":
        return r.text()
    if kind == "bytes":
        (n,) = r.unpack(_U32)
        return bytes(r.take(n))
    if kind == "entries":
        (count,) = r.unpack(_U32)
        entries = []
        for _ in range(count):
            index, term, ekind, n = r.unpack(_ENTRY)
            entries.append(Entry(index, term, ekind, bytes(r.take(n))))
        return tuple(entries)
    (count,) = r.unpack(_U16)
    return tuple(r.text() for _ in range(count))


def decode(buf: bytes) -> Message:
    """Parse bytes made by :func:`encode`.

    Returns the message value.  Raises :class:`~ipfscluster.errors.RaftCodecError`
    when the bytes are not one well-formed message of a known version and type.
    """
    r = _Reader(bytes(buf))
    version, tag = r.unpack(_HEAD)
    if version != CODEC_VERSION:
        raise RaftCodecError("unsupported Raft message version %d (this peer speaks %d); "
                             "upgrade the older peer" % (version, CODEC_VERSION))
    try:
        cls, fields = _BY_TAG[tag]
    except KeyError:
        raise RaftCodecError("unknown Raft message type %d" % tag) from None
    values = {name: _decode_value(r, kind) for name, kind in fields}
    if r.pos != len(r.buf):
        raise RaftCodecError("%d trailing bytes after a Raft message" % (len(r.buf) - r.pos))
    return cls(**values)


def encode_config(change: ConfigChange) -> bytes:
    """The ``data`` of an ``ENTRY_CONFIG`` entry."""
    out: list = []
    _put_str(out, change.op)
    _put_str(out, change.node)
    _encode_value(out, "strs", change.voters)
    return b"".join(out)


def decode_config(data: bytes) -> ConfigChange:
    """Parse the ``data`` of an ``ENTRY_CONFIG`` entry; raises RaftCodecError."""
    r = _Reader(bytes(data))
    op = r.text()
    node = r.text()
    voters = _decode_value(r, "strs")
    if r.pos != len(r.buf) or op not in ("add", "remove"):
        raise RaftCodecError("malformed configuration entry")
    return ConfigChange(op, node, voters)
