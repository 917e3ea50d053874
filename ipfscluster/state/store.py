"""The compact storage under the shared state: binary CID -> encoded pin bytes.

Memory is the point (benchmark B5: at most 500 bytes per pin at a million pins).
Python objects are expensive (an attrs ``Pin`` with its CID, lists and strings is
well over 1 KB), so the state keeps none of them.  Each pin is stored as two
``bytes`` objects in a ``dict``:

- the key: the binary CID (36 bytes for a CIDv1, 34 for a CIDv0);
- the value: the pin's fields that differ from the defaults, encoded by
  :mod:`.codec`.  The common pin (recursive, no name, no metadata, replication -1,
  no allocations) encodes to ``b""``, which CPython shares, so it costs nothing.

Peer IDs repeat across pins (allocations), so they are interned in a
:class:`PeerTable` (append-only list + index) and the values carry small integers.

Order: a ``sortedcontainers.SortedList`` of the keys keeps the pins in *binary CID
order* (byte order of ``cid.to_bytes()``, so CIDv1 sort before CIDv0, and CIDv0 sort
like their base58 strings).  It costs ~9 bytes per pin and makes listing start at
once at any size.  (``sortedcontainers`` is pure Python, maintained, already a
dependency of hypothesis; a hand-made B-tree would be the alternative.)

Consistent listings without copies: :meth:`PinStore.view` captures the key order at
call time (a list of references, 8 bytes per pin) and registers itself; while it is
alive, every ``put``/``delete`` first saves the previous value of the key into each
live view, so a view yields the store exactly as it was when it was taken, however
the store changes meanwhile, at a cost proportional to the changes made meanwhile.
"""

from __future__ import annotations

import weakref
from typing import Iterator

from sortedcontainers import SortedList

__all__ = ["PeerTable", "PinStore", "StoreView"]

_ABSENT = object()


class PeerTable:
    """Interned peer IDs: ``index(peer) -> int`` and ``peers[i] -> str``; append-only."""

    __slots__ = ("peers", "_index")

    def __init__(self, peers=()):
        self.peers: list[str] = []
        self._index: dict[str, int] = {}
        for peer in peers:
            self.index(peer)

    def index(self, peer: str) -> int:
        """The number of ``peer`` (added when new)."""
        number = self._index.get(peer)
        if number is None:
            number = self._index[peer] = len(self.peers)
            self.peers.append(peer)
        return number

    def __len__(self) -> int:
        return len(self.peers)


class StoreView:
    """The store's content at the time the view was taken (see the module docstring)."""

    __slots__ = ("_keys", "_store", "_saved", "__weakref__")

    def __init__(self, store: PinStore):
        self._store = store
        self._keys = list(store._order)
        self._saved: dict[bytes, object] = {}

    def _remember(self, key: bytes, old) -> None:
        if key not in self._saved:
            self._saved[key] = old

    def __len__(self) -> int:
        return len(self._keys)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` in key order, as they were when the view was taken."""
        values = self._store._values
        saved = self._saved
        try:
            for key in self._keys:
                value = saved.get(key, _ABSENT) if saved else _ABSENT
                if value is _ABSENT:
                    value = values[key]
                elif value is None:
                    continue  # added after the view was taken
                yield key, value
        finally:
            self.close()

    def close(self) -> None:
        """Stop tracking changes (done automatically at the end of ``items``)."""
        self._store._views.discard(self)
        self._keys = []
        self._saved = {}


class PinStore:
    """``bytes -> bytes`` map kept in key order, with :class:`StoreView` snapshots."""

    __slots__ = ("_values", "_order", "peers", "_views")

    def __init__(self):
        self._values: dict[bytes, bytes] = {}
        self._order = SortedList()
        self.peers = PeerTable()
        self._views: weakref.WeakSet[StoreView] = weakref.WeakSet()

    def _before_change(self, key: bytes) -> None:
        if self._views:
            old = self._values.get(key)
            for view in list(self._views):
                view._remember(key, old)

    def put(self, key: bytes, value: bytes) -> None:
        """Insert or replace ``key``."""
        self._before_change(key)
        values = self._values
        if key not in values:
            self._order.add(key)
        values[key] = value

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; False when it was absent."""
        if key not in self._values:
            return False
        self._before_change(key)
        del self._values[key]
        self._order.remove(key)
        return True

    def get(self, key: bytes):
        """The value of ``key`` or None."""
        return self._values.get(key)

    def __contains__(self, key: bytes) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def view(self) -> StoreView:
        """A :class:`StoreView` of the current content."""
        view = StoreView(self)
        self._views.add(view)
        return view

    def replace(self, values: dict[bytes, bytes], peers: PeerTable) -> None:
        """Swap in a whole new content (restore); open views keep the old one."""
        for view in list(self._views):
            for key, value in self._values.items():
                view._remember(key, value)
            for key in values:
                view._remember(key, None)
        self._values = values
        order = SortedList()
        order.update(values)  # timsort: linear when the keys arrive sorted
        self._order = order
        self.peers = peers
