"""Allocation: which peers pin a CID (reference §9.3).

- :mod:`.ordering`: the allocators (:class:`DescendingAllocator`,
  :class:`AscendingAllocator`), pure orderings of peers by one metric;
- :mod:`.allocate`: the allocation procedure (:func:`allocate`), replication
  min/max, ``-1`` = everywhere, blacklist, user allocations, error messages;
- :func:`strategy`: the ``--alloc`` flag of ``ipfs-cluster-service`` (§2.1).
"""

from __future__ import annotations

from ipfscluster.allocator.allocate import EVERYWHERE, allocate, check_replication, metric_discarded
from ipfscluster.allocator.ordering import (
    AscendingAllocator,
    DescendingAllocator,
    order_peers,
    parse_metric_value,
)
from ipfscluster.errors import InvalidInput

__all__ = [
    "ALLOC_STRATEGIES",
    "AscendingAllocator",
    "DescendingAllocator",
    "EVERYWHERE",
    "allocate",
    "check_replication",
    "metric_discarded",
    "order_peers",
    "parse_metric_value",
    "strategy",
]

#: ``--alloc`` value -> (informer kind, allocator class); the allocator orders by the
#: informer's metric name (``freespace``/``reposize`` from ``informer.disk.metric_type``,
#: or ``numpin``).
ALLOC_STRATEGIES = {
    "disk": ("disk", DescendingAllocator),
    "disk-freespace": ("disk", DescendingAllocator),
    "disk-reposize": ("disk", AscendingAllocator),
    "numpin": ("numpin", AscendingAllocator),
    "pincount": ("numpin", AscendingAllocator),
}


def strategy(alloc: str) -> tuple[str, type]:
    """``(informer kind, allocator class)`` for the ``--alloc`` value ``alloc``.

    The informer kind is ``"disk"`` or ``"numpin"``; build the allocator with the
    informer's metric name: ``cls(informer.name)``.  Raises :class:`InvalidInput`
    ("unknown allocation strategy") for any other value.
    """
    try:
        return ALLOC_STRATEGIES[alloc]
    except KeyError:
        choices = ", ".join(sorted(ALLOC_STRATEGIES))
        raise InvalidInput(
            f"unknown allocation strategy {alloc!r}: use one of {choices}", value=alloc
        ) from None
