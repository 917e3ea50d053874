"""The allocation procedure: which peers pin a CID (reference §9.3, 0.3.2+ semantics).

:func:`allocate` is a pure function of its inputs (the CID's current allocations, the
leader's latest informer metrics, the replication factors, an optional blacklist and
user allocations, and "now"); the cluster calls it on the leader before committing a
pin and again, with the dead peer blacklisted, when re-allocating (§9.4).

The steps:

1. ``-1/-1`` (pin everywhere) -> no allocations (every peer tracks the pin).
2. Metrics that are invalid, expired at ``now_ns`` or from a blacklisted peer are
   dropped.  The rest split into *current* (the peer is already allocated),
   *priority* (the peer is in ``user_allocations``) and *candidates* (the others).
3. ``needed = min - len(current)``, ``wanted = max - len(current)``.
4. ``wanted < 0`` (more allocations than the maximum, e.g. the factor was lowered):
   keep the ``max`` current peers the allocator ranks best.
5. ``needed <= 0``: keep the current valid allocations, in their existing order
   (a peer that lost its metric or is blacklisted is thereby dropped).
6. Fewer priority + candidate peers than ``needed`` -> :class:`NotEnoughPeers`.
7. Otherwise the allocator orders priority peers first, then candidates; the result
   is the current valid allocations followed by the first ``wanted`` of that order.

Differences from upstream, on purpose: step 5 drops current allocations that have no
valid metric (upstream kept the whole previous list, so a blacklisted peer could stay
allocated); step 4 keeps the best-ranked peers rather than map iteration order; ties
are ordered by peer ID, so the answer is deterministic.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

from twisted.logger import Logger

from ipfscluster.errors import InvalidReplication, NotEnoughPeers

log = Logger(namespace="allocator")

__all__ = ["allocate", "check_replication", "metric_discarded"]

EVERYWHERE = -1


def check_replication(rpl_min: int, rpl_max: int) -> None:
    """Raise :class:`InvalidReplication` unless ``rpl_min``/``rpl_max`` are usable.

    Valid: both ``-1`` (everywhere), or ``1 <= rpl_min <= rpl_max``.  (``0`` means
    "the cluster default" and must be replaced by the caller before allocating.)
    """
    if rpl_min == EVERYWHERE and rpl_max == EVERYWHERE:
        return
    if rpl_min == EVERYWHERE or rpl_max == EVERYWHERE:
        raise InvalidReplication(
            f"replication factors must both be -1 (pin everywhere) or both positive; "
            f"got min={rpl_min} max={rpl_max}. Set both to -1 or give two positive numbers.",
            rpl_min=rpl_min,
            rpl_max=rpl_max,
        )
    if rpl_min < 1 or rpl_max < 1:
        raise InvalidReplication(
            f"invalid replication factor min={rpl_min} max={rpl_max}: use -1 for "
            f"everywhere or a positive number of peers.",
            rpl_min=rpl_min,
            rpl_max=rpl_max,
        )
    if rpl_max < rpl_min:
        raise InvalidReplication(
            f"replication_factor_max ({rpl_max}) must be greater than or equal to "
            f"replication_factor_min ({rpl_min}).",
            rpl_min=rpl_min,
            rpl_max=rpl_max,
        )


def metric_discarded(metric, now_ns: int) -> bool:
    """True when ``metric`` is invalid or expired at ``now_ns`` (unix nanoseconds)."""
    return metric.discard(now_ns)


def allocate(
    cid,
    rpl_min: int,
    rpl_max: int,
    current_allocations: Sequence,
    metrics: Mapping[str, Iterable] | Callable[[str], Iterable],
    allocator,
    now_ns: int,
    blacklist: Iterable = (),
    user_allocations: Sequence = (),
) -> list:
    """The peers that must pin ``cid`` (an empty list means "everywhere").

    ``metrics`` maps a metric name to the latest metrics of that name (one per peer;
    a later one for the same peer is ignored), as ``IPeerMonitor.latest_metrics``
    returns them, or is that function itself (``monitor.latest_metrics``); a peer
    is usable when it has a valid, unexpired metric for every
    name in ``allocator.metrics()``.  ``allocator`` is an :class:`IPinAllocator`,
    ``now_ns`` the current time in unix nanoseconds (from the injected clock).

    Raises :class:`InvalidReplication` for unusable factors and
    :class:`NotEnoughPeers` when fewer than the needed peers have a valid metric.
    """
    check_replication(rpl_min, rpl_max)
    if rpl_min == EVERYWHERE:
        return []
    names = list(allocator.metrics())
    if callable(metrics):
        metrics = {name: metrics(name) for name in names}
    usable = _usable_metrics(names, metrics, now_ns, set(blacklist))
    allocated = set(current_allocations)
    preferred = set(user_allocations)
    current, priority, candidates = {}, {}, {}
    for peer, by_name in usable.items():
        if peer in allocated:
            current[peer] = by_name
        elif peer in preferred:
            priority[peer] = by_name
        else:
            candidates[peer] = by_name

    current_valid = [peer for peer in dict.fromkeys(current_allocations) if peer in current]
    needed = rpl_min - len(current_valid)
    wanted = rpl_max - len(current_valid)

    if wanted < 0:
        ranked = allocator.allocate(cid, _group(names, current), {}, {})
        keep = ranked[:rpl_max]
        log.info(
            "{cid}: {n} allocations above the maximum {max}, keeping {keep}",
            cid=str(cid),
            n=len(current_valid),
            max=rpl_max,
            keep=keep,
        )
        return keep
    if needed <= 0:
        return current_valid
    if len(priority) + len(candidates) < needed:
        raise _not_enough(cid, needed, wanted, list(priority) + list(candidates))
    ordered = allocator.allocate(
        cid, _group(names, current), _group(names, candidates), _group(names, priority)
    )
    fresh = [peer for peer in ordered if peer in priority or peer in candidates]
    if len(fresh) < needed:
        raise _not_enough(cid, needed, wanted, fresh)
    return current_valid + fresh[:wanted]


def _usable_metrics(names, metrics, now_ns, blacklisted) -> dict:
    """peer -> {name: Metric} for the peers with a usable metric of every name."""
    usable: dict = {}
    for index, name in enumerate(names):
        seen = {}
        for metric in metrics.get(name, ()):
            peer = metric.peer
            if peer in seen or peer in blacklisted or metric_discarded(metric, now_ns):
                continue
            if index and peer not in usable:
                continue
            seen[peer] = metric
        if index:
            usable = {peer: by_name for peer, by_name in usable.items() if peer in seen}
        for peer, metric in seen.items():
            usable.setdefault(peer, {})[name] = metric
    return usable


def _group(names, peers: dict) -> dict:
    """{name: [Metric, ...]} for the peers of ``peers`` (peer -> {name: Metric})."""
    return {name: [by_name[name] for by_name in peers.values()] for name in names}


def _not_enough(cid, needed: int, wanted: int, valid: list) -> NotEnoughPeers:
    log.warn(
        "not enough candidates to allocate {cid}: needed {needed}, wanted {wanted}, "
        "valid candidates ({count}): {peers}",
        cid=str(cid),
        needed=needed,
        wanted=wanted,
        count=len(valid),
        peers=", ".join(str(p) for p in valid) or "none",
    )
    return NotEnoughPeers(
        f"not enough peers to allocate CID. Needed at least: {needed}. "
        f"Wanted at most: {wanted}. Valid candidates: {len(valid)}. "
        f"See logs for more info.",
        cid=cid,
        needed=needed,
        wanted=wanted,
        candidates=len(valid),
    )
