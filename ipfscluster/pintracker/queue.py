"""The pin tracker's operation queue: at most one pending operation per CID.

Upstream 0.3.0 used two buffered Go channels (pin and unpin, 1024 each) read by one
worker each.  Here one ordered queue holds both kinds, keyed by CID, because the
tracker needs what channels cannot give:

- **cancel-on-opposite-op**: an unpin arriving for a CID whose pin is still waiting
  removes that pin from the queue (and vice versa) instead of running both;
- **jumping the queue**: ``recover`` puts its retry at the front;
- **one bound**: ``max_pin_queue_size`` counts every waiting operation.

An :class:`collections.OrderedDict` gives all three in O(1) (``move_to_end(...,
last=False)`` for the front, ``pop(cid)`` for cancellation), so no library is
needed.  Running operations are not in the queue; the tracker keeps them aside.
"""

from __future__ import annotations

import enum
from collections import OrderedDict

import attrs

from ipfscluster.cid import CID

__all__ = ["OpKind", "Operation", "OperationQueue"]


class OpKind(enum.Enum):
    """What an operation does on the IPFS daemon."""

    PIN = "pin"
    UNPIN = "unpin"


@attrs.define(eq=False)
class Operation:
    """One pin or unpin of a CID, waiting in the queue or running.

    ``intent`` is the tracker's goal for the CID when the operation was queued
    (see ``tracker.Goal``); ``prior`` the ``PinInfo`` (or None) the CID had before,
    restored if the operation is cancelled before it runs; ``priority`` marks a
    retry queued by ``recover``; ``waiters`` are Deferreds fired with the resulting
    ``PinInfo`` when the operation ends; ``call`` is the connector's Deferred while
    running, ``task`` the Deferred of the whole run.
    """

    kind: OpKind
    cid: CID
    intent: object
    prior: object = None
    priority: bool = False
    waiters: list = attrs.Factory(list)
    call: object = None
    task: object = None


class OperationQueue:
    """Waiting operations in order, at most one per CID, at most ``max_size``."""

    def __init__(self, max_size: int):
        self.max_size = max_size
        self._ops: OrderedDict[CID, Operation] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ops)

    def __contains__(self, cid: CID) -> bool:
        return cid in self._ops

    @property
    def full(self) -> bool:
        """True when no further operation may be queued."""
        return len(self._ops) >= self.max_size

    def push(self, op: Operation, front: bool = False) -> None:
        """Queue ``op`` at the back (or the front).

        The caller checks :attr:`full` first and never queues a second operation
        for a CID already waiting (it cancels the first): both are programming
        errors here and raise ``ValueError``.
        """
        if op.cid in self._ops:
            raise ValueError(f"{op.cid} already has a queued operation")
        if self.full:
            raise ValueError("the operation queue is full")
        self._ops[op.cid] = op
        if front:
            self._ops.move_to_end(op.cid, last=False)

    def pop(self) -> Operation | None:
        """Remove and return the operation at the front, or None when empty."""
        if not self._ops:
            return None
        return self._ops.popitem(last=False)[1]

    def cancel(self, cid: CID) -> Operation | None:
        """Remove and return the operation waiting for ``cid`` (None if there is none)."""
        return self._ops.pop(cid, None)

    def clear(self) -> list[Operation]:
        """Remove every waiting operation; return them in queue order."""
        ops = list(self._ops.values())
        self._ops.clear()
        return ops
