"""The shared state (:class:`~ipfscluster.interfaces.IState`): the pinset in memory.

Storage is :mod:`.store` (binary CID -> compact pin bytes, peer IDs interned) with
the pin encoding of :mod:`.codec`; a ``Pin`` object exists only while a caller holds
one returned by :meth:`MapState.get` or :meth:`MapState.list`.

Measured with ``benchmarks/state_memory.py`` (B5: RSS delta divided by pins,
Python 3.11, 2-core project machine), against a target of 500 bytes per pin:

===========  =====================================  ==========================
pins         replicated pin (3 allocations among     pin everywhere, no
             10 peers, commit timestamp)             timestamp
===========  =====================================  ==========================
100,000      197 bytes/pin                           133 bytes/pin
1,000,000    195 bytes/pin                           132 bytes/pin
===========  =====================================  ==========================

(A ``dict`` of ``Pin`` objects would take well over 1 KB per pin.)  Decoding costs
~1.3 µs per common pin and ~6 µs per replicated pin, plus ~1.7 µs for the CID;
adding a pin ~9 µs (encoding and the sorted index).

Order: :meth:`MapState.list` yields pins in binary CID order (the byte order of
``cid.to_bytes()``; for CIDv0 this is also the order of their strings, while CIDv1
sort before CIDv0 and among themselves by codec, then multihash).  Every peer lists
the same pinset in the same order.  Note that ``CID.__lt__`` compares the CID
*strings*, so ``sorted(cids)`` differs from this order when CIDv1 are involved; sort
with ``key=CID.to_bytes`` to compare.  (Keeping string order would cost a string
conversion per pin added and ~25 more bytes per pin.)

Consistency: ``list()`` and ``snapshot_chunks()`` see the state as it was when they
were called, however it changes while they are being consumed (see
:class:`~ipfscluster.state.store.StoreView`); they keep 8 bytes per pin (the key
order) plus the previous value of each pin changed meanwhile.

Snapshots (:mod:`.snapshot`) copy the stored bytes without decoding a pin, and
``restore`` of a snapshot does not decode them either (the SHA-256 of the body
guards them): 100k pins snapshot in ~0.1 s and restore in ~0.2 s;
``restore`` also reads the JSON backups and exports of every older version
(:mod:`.migrations`).
"""

from __future__ import annotations

from typing import IO, Iterator

from twisted.logger import Logger
from zope.interface import implementer

from ipfscluster.cid import CID
from ipfscluster.errors import InvalidInput, NotFound, StateCorrupted
from ipfscluster.interfaces import IState
from ipfscluster.state import migrations
from ipfscluster.state.codec import decode_pin, encode_pin, pin_type_of
from ipfscluster.state.pinjson import LINES_PER_CHUNK, PinLines
from ipfscluster.state.snapshot import HEADER_PREFIX, VERSION, iter_snapshot, read_snapshot
from ipfscluster.state.store import PeerTable, PinStore
from ipfscluster.types import Pin, PinType

log = Logger(namespace="consensus")

__all__ = ["MapState", "NOT_FOUND_MESSAGE"]

#: the message of the NotFound raised for a CID absent from the state (upstream's)
NOT_FOUND_MESSAGE = "Cid is not part of the global state"


class _Prefixed:
    """A read-only binary stream: ``head`` bytes, then the rest of ``fileobj``."""

    def __init__(self, head: bytes, fileobj):
        self._head = head
        self._file = fileobj

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._file.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._file.read(n)

    def seekable(self) -> bool:
        return self._file.seekable()

    def seek(self, offset: int, whence: int = 0):
        self._head = b""
        return self._file.seek(offset, whence)


@implementer(IState)
class MapState:
    """The pinset, compact in memory (see the module docstring)."""

    version = VERSION

    def __init__(self):
        self._store = PinStore()

    # -- writes -----------------------------------------------------------------

    def add(self, pin: Pin) -> None:
        """Insert or replace the entry of ``pin.cid``; InvalidInput if not a Pin."""
        if not isinstance(pin, Pin):
            raise InvalidInput(f"the shared state stores Pin values, not {type(pin).__name__}")
        self._store.put(pin.cid.to_bytes(), encode_pin(pin, self._store.peers))

    def rm(self, cid: CID) -> None:
        """Remove ``cid``; raises NotFound when it is not in the state."""
        if not self._store.delete(cid.to_bytes()):
            raise NotFound(NOT_FOUND_MESSAGE, cid=cid)

    # -- reads ------------------------------------------------------------------

    def get(self, cid: CID) -> Pin:
        """The Pin of ``cid``; raises NotFound when absent."""
        value = self._store.get(cid.to_bytes())
        if value is None:
            raise NotFound(NOT_FOUND_MESSAGE, cid=cid)
        return decode_pin(cid, value, self._store.peers.peers)

    def has(self, cid: CID) -> bool:
        """True when ``cid`` is in the state."""
        return cid.to_bytes() in self._store

    def count(self) -> int:
        """The number of pins."""
        return len(self._store)

    def list(self, pin_type: PinType | None = None) -> Iterator[Pin]:
        """Lazy iterator over the pins as they are now, in binary CID order.

        ``pin_type`` (a PinType flag set) keeps only pins of those types.
        """
        view = self._store.view()
        peers = self._store.peers.peers
        wanted = None if pin_type is None or (pin_type & PinType.ALL) == PinType.ALL else pin_type
        return self._decode(view.items(), peers, wanted)

    def list_ndjson(self, pin_type: PinType | None = None, lines: int = LINES_PER_CHUNK) -> Iterator[bytes]:
        """What :meth:`list` lists, as NDJSON bytes: ``lines`` pins per chunk.

        Each line is byte for byte the JSON line of the ``Pin`` (what the REST
        API writes for it), made from the stored value without a ``Pin``
        (:mod:`.pinjson`; ~4× cheaper per line).
        """
        view = self._store.view()
        wanted = None if pin_type is None or (pin_type & PinType.ALL) == PinType.ALL else pin_type
        items = view.items()
        if wanted is not None:
            items = ((k, v) for k, v in items if pin_type_of(v) & wanted)
        return PinLines(self._store.peers.peers).chunks(items, lines)

    @staticmethod
    def _decode(items, peers, wanted) -> Iterator[Pin]:
        from_bytes = CID.from_bytes
        for key, value in items:
            if wanted is not None and not pin_type_of(value) & wanted:
                continue
            yield decode_pin(from_bytes(key), value, peers)

    # -- snapshots --------------------------------------------------------------

    def snapshot_chunks(self) -> Iterator[bytes]:
        """The snapshot of the state as it is now, as an iterator of byte chunks.

        For writers that want to yield to the reactor between chunks: the state may
        change meanwhile without affecting the snapshot.
        """
        view = self._store.view()
        return iter_snapshot(view.items(), list(self._store.peers.peers))

    def snapshot(self, fileobj: IO[bytes]) -> int:
        """Write the versioned snapshot to the binary ``fileobj``; returns the pin count."""
        count = self.count()
        for chunk in self.snapshot_chunks():
            fileobj.write(chunk)
        return count

    def restore(self, fileobj: IO) -> int:
        """Replace the state with a snapshot, backup or export read from ``fileobj``.

        Accepts this format (:mod:`.snapshot`) and every JSON format of
        :mod:`.migrations` (upgraded on the fly).  Returns the number of pins
        loaded.  Raises StateVersionError, StateCorrupted (also for an empty input)
        or InvalidStateImport; the state is unchanged on error.
        """
        head = _read_head(fileobj, len(HEADER_PREFIX))
        if not head:
            raise StateCorrupted("the state snapshot is empty: there is nothing to restore")
        if isinstance(head, str):
            head = head.encode("utf-8")
            fileobj = _TextAsBinary(head, fileobj)
        else:
            fileobj = _Prefixed(head, fileobj)
        if head == HEADER_PREFIX:
            values, peers = read_snapshot(fileobj)
            self._store.replace(values, PeerTable(peers))
        else:
            peers = PeerTable()
            values = dict(_encoded_entries(migrations.read_entries(fileobj), peers))
            self._store.replace(values, peers)  # sorts the keys once
        count = self.count()
        log.info("shared state restored: {count} pins", count=count)
        return count


#: distinct pin shapes remembered by :func:`_encoded_entries`
SHAPE_CACHE_SIZE = 1024


def _encoded_entries(entries, peers: PeerTable) -> Iterator[tuple[bytes, bytes]]:
    """``(binary CID, state value)`` of each JSON entry (an import or a backup).

    The value does not contain the CID, and exports repeat a few *shapes* (every
    field but ``cid`` equal: same options, allocations, timestamp …), so the value
    of a shape seen before is reused: such an entry costs a CID parse instead of a
    validated ``Pin`` and its encoding (≈10× less; B3).  A shape is only reused
    from an entry that passed :func:`~.migrations.pin_from_entry`, and validation
    of a pin does not depend on its CID, so the outcome is the same.  An entry
    without CID text, or with a bad CID, takes the full path (and its errors).
    """
    cache: dict = {}
    parse = CID.parse
    for entry in entries:
        key = _shape(entry)
        value = cache.get(key) if key is not None else None
        if value is not None:
            text = entry["cid"]
            try:
                yield parse(text).to_bytes(), value
                continue
            except Exception:  # noqa: BLE001 - the full path below raises the right error
                pass
        pin = migrations.pin_from_entry(entry)
        value = encode_pin(pin, peers)
        if key is not None and len(cache) < SHAPE_CACHE_SIZE:
            cache[key] = value
        yield pin.cid.to_bytes(), value


def _shape(entry: dict) -> str | None:
    """A key of ``entry`` without its ``cid`` (None when it has no CID text).

    The ``repr`` of the JSON values: it tells ``1``, ``1.0`` and ``true`` apart
    (equal in Python), quotes strings, and costs ~3 µs per entry.
    """
    if type(entry.get("cid")) is not str:
        return None
    rest = dict(entry)
    del rest["cid"]
    return repr(rest)


def _read_head(fileobj, n: int):
    """The first ``n`` bytes (or characters) of ``fileobj``, fewer only at its end."""
    head = fileobj.read(n)
    while head and len(head) < n:
        more = fileobj.read(n - len(head))
        if not more:
            break
        head += more
    return head


class _TextAsBinary(_Prefixed):
    """Binary reads over a text file object (for JSON documents opened as text)."""

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            return data
        text = self._file.read(n if n is None or n < 0 else max(1, n // 4))
        return text.encode("utf-8")
