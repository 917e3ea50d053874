"""The local state: what the pin tracker knows and wants about each CID.

One :class:`Entry` per CID the tracker deals with, in a plain dict.  An entry holds

- ``info``: the ``PinInfo`` shown to operators (None: the CID is *not tracked*,
  i.e. ``unpinned``; ``status()`` then answers a fresh ``unpinned`` record);
- ``pin``: the latest ``Pin`` value from the shared state (kept for retries);
- ``goal``: what the tracker is driving the CID towards (pinned here, remote, or
  gone);
- ``queued`` / ``running``: its waiting and its running operation (at most one each);
- two small integers used by the sync passes (``changed``: the tracker's change
  counter at the last status change, so a sync answer that raced with an operation
  is ignored; ``mark`` / ``shared``: the generation of the last ``sync_all`` pass that saw the
  CID pinned on IPFS / of the last ``state_sync`` that saw it in the shared state), so
  ``sync_all`` and ``state_sync`` need no set of CIDs besides this dict.

An entry stays in the dict while an operation for it is queued or running, even
when ``info`` is None, so a late result can never be applied to another entry.
Entries use ``__slots__``: a peer may track millions of CIDs.

Order: the entries are kept in binary CID order (``cid.to_bytes()``, the order of
the shared state's ``list()``) in a ``sortedcontainers.SortedDict`` keyed by those
bytes, so :meth:`LocalState.page` hands out the tracked CIDs a page at a time after
a cursor in O(log n + page) and every peer lists its local state in the same
order (the status fan-out merges the peers' pages as they come).  Lookups are
plain dict lookups; an insertion or a removal costs O(log n).
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedDict

from ipfscluster.cid import CID
from ipfscluster.types import PinInfo

__all__ = ["Entry", "LocalState"]


class Entry:
    """The tracker's record for one CID (mutable, owned by the tracker)."""

    __slots__ = ("cid", "pin", "described", "goal", "info", "queued", "running", "pinned_depth", "changed", "mark", "shared")

    def __init__(self, cid: CID, pin, goal):
        self.cid = cid
        self.pin = pin
        self.described = None  # the Pin that ``info``'s description was copied from
        self.goal = goal
        self.info: PinInfo | None = None
        self.queued = None
        self.running = None
        self.pinned_depth: int | None = None  # max_depth of the last successful pin
        self.changed = 0
        self.mark = 0
        self.shared = 0

    @property
    def idle(self) -> bool:
        """True when no operation is queued or running for the CID."""
        return self.queued is None and self.running is None

    def __repr__(self) -> str:
        status = self.info.status.to_json() if self.info is not None else "untracked"
        return f"<Entry {self.cid} {status} goal={self.goal}>"


class LocalState:
    """CID -> :class:`Entry` in binary CID order, with the views the tracker needs."""

    def __init__(self):
        self._entries: SortedDict[bytes, Entry] = SortedDict()

    def __len__(self) -> int:
        """Number of entries (tracked CIDs plus untracked ones with work pending)."""
        return len(self._entries)

    def get(self, cid: CID) -> Entry | None:
        """The entry of ``cid`` or None."""
        return self._entries.get(cid.to_bytes())

    def setdefault(self, cid: CID, pin, goal) -> Entry:
        """The entry of ``cid``, created (untracked, with ``pin`` and ``goal``) if absent."""
        key = cid.to_bytes()
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = Entry(cid, pin, goal)
        return entry

    def discard(self, entry: Entry) -> None:
        """Drop ``entry`` when it is untracked and idle (else keep it)."""
        if entry.info is None and entry.idle:
            key = entry.cid.to_bytes()
            if self._entries.get(key) is entry:
                del self._entries[key]

    def entries(self) -> Iterator[Entry]:
        """Iterate the entries in place, in no particular order (the caller must not
        add or remove entries while iterating)."""
        return iter(dict.values(self._entries))

    def infos(self) -> tuple[PinInfo, ...]:
        """A consistent snapshot of the ``PinInfo`` of every tracked CID, in CID order.

        A tuple of references to the (immutable) values: one pointer per entry,
        the values themselves are shared, not copied.
        """
        return tuple(e.info for e in self._entries.values() if e.info is not None)

    def page(self, after: bytes | None, limit: int, wanted=None) -> tuple[list[PinInfo], bytes | None]:
        """Up to ``limit`` ``PinInfo`` of tracked CIDs after the binary CID ``after``
        (None: from the start), in CID order, whose status matches ``wanted`` (a
        ``TrackerStatus`` flag set; None: all).

        Returns ``(items, last)``: ``last`` is the key of the last item when more
        entries follow it (the cursor of the next page), else None.  The page is
        read now; pages read later see the changes made meanwhile, and every CID
        appears at most once over the pages since the cursor only moves forward.
        """
        entries = self._entries
        items: list[PinInfo] = []
        keys = entries.irange(minimum=after, inclusive=(False, True)) if after is not None else iter(entries)
        last = None
        for key in keys:
            if len(items) >= limit:
                return items, last
            info = entries[key].info
            if info is None or (wanted is not None and not info.status.match(wanted)):
                continue
            items.append(info)
            last = key
        return items, None
