"""Allocators: order candidate peers by their informer metric (reference §9.3).

Two allocators exist, as upstream (``descendalloc`` / ``ascendalloc``):

- :class:`DescendingAllocator`: highest value first; pair it with the ``freespace``
  metric (the peer with the most free space gets the pin);
- :class:`AscendingAllocator`: lowest value first; pair it with ``reposize`` or
  ``numpin`` (the least loaded peer gets the pin).

Metric values are unsigned decimal strings; a value that does not parse is dropped
(the peer is not a candidate), as upstream does.  Upstream leaves ties in map
iteration order; here ties are broken by peer ID (ascending, as text) so that every
peer -- and every test run -- computes the same allocations from the same metrics.

An allocator is a pure ordering: it never looks at the clock, the state or the
network; the allocation procedure (:mod:`ipfscluster.allocator.allocate`) decides
which metrics are candidates.
"""

from __future__ import annotations

from typing import Iterable

from twisted.logger import Logger
from zope.interface import implementer

from ipfscluster.interfaces import IPinAllocator

log = Logger(namespace="allocator")

__all__ = [
    "AscendingAllocator",
    "DescendingAllocator",
    "order_peers",
    "parse_metric_value",
]


def parse_metric_value(value: str) -> int | None:
    """The metric value as a non-negative integer, or None when it is not one.

    Only plain decimal digits are accepted (no sign, no spaces, no underscores),
    like Go's ``strconv.ParseUint(value, 10, 64)``; values above 2**64-1 are rejected.
    """
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    if number >= 1 << 64:
        return None
    return number


def order_peers(metrics: Iterable, descending: bool) -> list:
    """The peers of ``metrics`` ordered by metric value, best first.

    ``metrics`` is an iterable of :class:`ipfscluster.types.Metric`.  Returns a list
    of peer IDs: by value (highest first when ``descending``), ties by peer ID text.
    Metrics whose value is not an unsigned integer are left out (logged at debug).
    A peer appearing twice keeps its first metric.
    """
    keyed = []
    seen = set()
    for metric in metrics:
        if metric.peer in seen:
            continue
        number = parse_metric_value(metric.value)
        if number is None:
            log.debug(
                "ignoring metric {name} of {peer}: value {value!r} is not a number",
                name=metric.name,
                peer=metric.peer,
                value=metric.value,
            )
            continue
        seen.add(metric.peer)
        keyed.append(((-number if descending else number), str(metric.peer), metric.peer))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [peer for _, _, peer in keyed]


class _OrderingAllocator:
    descending: bool = False
    default_metric = ""

    def __init__(self, metric: str | None = None):
        self.metric = metric or self.default_metric

    def metrics(self) -> list[str]:
        """The metric names this allocator orders by (one: the informer's)."""
        return [self.metric]

    def allocate(self, cid, current, candidates, priority) -> list:
        """Peers that should hold ``cid``, best first.

        ``current``, ``candidates`` and ``priority`` map a metric name to a list of
        ``Metric`` (one per peer).  Only this allocator's metric is looked at.
        Returns the priority peers (user allocations), then the current ones, then
        the candidates, each group ordered by metric value (ties by peer ID);
        metrics whose value does not parse are skipped.  Raises nothing.
        """
        result = []
        for group in (priority, current, candidates):
            result.extend(order_peers(group.get(self.metric, ()), self.descending))
        return list(dict.fromkeys(result))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.metric!r})"


@implementer(IPinAllocator)
class DescendingAllocator(_OrderingAllocator):
    """Highest metric value first (use with the ``freespace`` metric)."""

    name = "descending"
    descending = True
    default_metric = "freespace"


@implementer(IPinAllocator)
class AscendingAllocator(_OrderingAllocator):
    """Lowest metric value first (use with ``reposize`` or ``numpin``)."""

    name = "ascending"
    descending = False
    default_metric = "numpin"
