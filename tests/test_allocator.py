"""Allocators and the allocation procedure (reference §9.3), table-driven."""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyObject

from ipfscluster.allocator import (
    AscendingAllocator,
    DescendingAllocator,
    allocate,
    check_replication,
    order_peers,
    parse_metric_value,
    strategy,
)
from ipfscluster.cid import CID
from ipfscluster.errors import AllocationError, InvalidInput, InvalidReplication, NotEnoughPeers
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.interfaces import IPinAllocator
from ipfscluster.testing.fakes import FakeAllocator
from ipfscluster.types import Metric

# eight fixed peer IDs, named A..H in their sorted order (ties break by peer ID)
A, B, C, D, E, F, G, H = sorted(peer_id_from_public_key(bytes([i]) * 32) for i in range(8))
NAMES = dict(zip("ABCDEFGH", (A, B, C, D, E, F, G, H)))
NOW = 1_000_000 * 10**9
TTL = 30 * 10**9
CID0 = CID.parse("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")


def metric(peer, value, name="freespace", valid=True, expired=False):
    expire = NOW - 1 if expired else NOW + TTL
    return Metric(name, peer=peer, value=str(value), expire=expire, valid=valid)


def peers(text):
    """'ABC' -> [A, B, C]."""
    return [NAMES[c] for c in text]


# allocator factories: the real ones and the fake, by direction
DESCENDING = [
    pytest.param(lambda: DescendingAllocator("freespace"), id="real"),
    pytest.param(lambda: FakeAllocator("freespace", descending=True), id="fake"),
]
ASCENDING = [
    pytest.param(lambda: AscendingAllocator("freespace"), id="real"),
    pytest.param(lambda: FakeAllocator("freespace", descending=False), id="fake"),
]


# --- the allocators ------------------------------------------------------------------


@pytest.mark.parametrize("make", DESCENDING + ASCENDING)
def test_allocator_provides_interface(make):
    allocator = make()
    assert verifyObject(IPinAllocator, allocator)
    assert allocator.metrics() == ["freespace"]


@pytest.mark.parametrize("make", DESCENDING)
def test_descending_orders_groups_priority_current_candidates(make):
    got = make().allocate(
        CID0,
        {"freespace": [metric(A, 1), metric(B, 500)]},
        {"freespace": [metric(C, 10), metric(D, 1000), metric(E, 10)]},
        {"freespace": [metric(F, 2), metric(G, 3)]},
    )
    assert got == [G, F, B, A, D, C, E]


@pytest.mark.parametrize("make", ASCENDING)
def test_ascending_orders_lowest_first_ties_by_peer(make):
    got = make().allocate(
        CID0, {}, {"freespace": [metric(D, 7), metric(C, 7), metric(A, 9), metric(B, 0)]}, {}
    )
    assert got == [B, C, D, A]


@pytest.mark.parametrize("make", DESCENDING + ASCENDING)
def test_allocator_skips_unparseable_values_and_other_metrics(make):
    got = make().allocate(
        CID0,
        {},
        {
            "freespace": [metric(A, "x"), metric(B, "-3"), metric(C, "5")],
            "numpin": [metric(D, 1, name="numpin")],
        },
        {},
    )
    assert got == [C]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", 0),
        ("18446744073709551615", 2**64 - 1),
        ("18446744073709551616", None),
        ("-1", None),
        (" 1", None),
        ("1e3", None),
        ("", None),
        ("\u0663", None),  # a non-ASCII digit
        ("1_000", None),
    ],
)
def test_parse_metric_value(value, expected):
    assert parse_metric_value(value) == expected


def test_order_peers_keeps_first_metric_of_a_peer():
    assert order_peers([metric(A, 1), metric(A, 100), metric(B, 50)], descending=True) == [B, A]


@pytest.mark.parametrize(
    "alloc, kind, cls",
    [
        ("disk", "disk", DescendingAllocator),
        ("disk-freespace", "disk", DescendingAllocator),
        ("disk-reposize", "disk", AscendingAllocator),
        ("numpin", "numpin", AscendingAllocator),
        ("pincount", "numpin", AscendingAllocator),
    ],
)
def test_alloc_strategies(alloc, kind, cls):
    assert strategy(alloc) == (kind, cls)


def test_unknown_alloc_strategy():
    with pytest.raises(InvalidInput, match="unknown allocation strategy 'balanced'"):
        strategy("balanced")


# --- the procedure --------------------------------------------------------------------

# (id, min, max, current, metrics {peer letter: value | (value, valid, expired)},
#  blacklist, user allocations, expected letters | ("error", needed, wanted, valid))
CASES = [
    ("everywhere", -1, -1, "", {"A": 1}, "", "", ""),
    ("everywhere-ignores-current", -1, -1, "AB", {"A": 1}, "", "", ""),
    ("fresh-best-two", 2, 2, "", {"A": 10, "B": 30, "C": 20}, "", "", "BC"),
    ("fresh-up-to-max", 2, 3, "", {"A": 10, "B": 30, "C": 20, "D": 40}, "", "", "DBC"),
    ("fresh-min-reached-max-not", 2, 3, "", {"A": 10, "B": 30}, "", "", "BA"),
    ("not-enough", 3, 3, "", {"A": 10, "B": 30}, "", "", ("error", 3, 3, 2)),
    ("not-enough-after-current", 3, 4, "A", {"A": 1, "B": 2}, "", "", ("error", 2, 3, 1)),
    ("keep-current", 2, 2, "AC", {"A": 10, "B": 30, "C": 20}, "", "", "AC"),
    ("keep-current-order", 2, 2, "CA", {"A": 10, "B": 30, "C": 20}, "", "", "CA"),
    ("between-min-and-max-keeps", 1, 3, "A", {"A": 1, "B": 30, "C": 20}, "", "", "A"),
    ("blacklisted-current-replaced", 2, 2, "AC", {"A": 10, "B": 30, "C": 20, "D": 5}, "C", "", "AB"),
    ("blacklisted-candidate-skipped", 2, 2, "", {"A": 10, "B": 30, "C": 20}, "B", "", "CA"),
    ("expired-current-replaced", 2, 2, "AC", {"A": 10, "B": 30, "C": (20, True, True)}, "", "", "AB"),
    ("invalid-current-replaced", 2, 2, "AC", {"A": 10, "B": 30, "C": (20, False, False)}, "", "", "AB"),
    ("current-without-metric-replaced", 2, 2, "AE", {"A": 10, "B": 30, "C": 20}, "", "", "AB"),
    ("invalid-candidate-skipped", 2, 2, "", {"A": 10, "B": (30, False, False), "C": 20}, "", "", "CA"),
    ("above-max-keeps-best", 1, 2, "ABC", {"A": 10, "B": 30, "C": 20}, "", "", "BC"),
    ("above-max-shrinks-to-one", 1, 1, "ABC", {"A": 10, "B": 30, "C": 20}, "", "", "B"),
    ("top-up-current", 3, 3, "A", {"A": 1, "B": 30, "C": 20, "D": 10}, "", "", "ABC"),
    ("user-allocations-first", 2, 2, "", {"A": 10, "B": 30, "C": 20}, "", "A", "AB"),
    ("user-allocations-all", 2, 2, "", {"A": 10, "B": 30, "C": 20}, "", "CA", "CA"),
    ("user-allocation-without-metric", 2, 2, "", {"A": 10, "B": 30, "C": 20}, "", "D", "BC"),
    ("user-allocation-blacklisted", 2, 2, "", {"A": 10, "B": 30, "C": 20}, "A", "A", "BC"),
    ("user-allocation-current-kept", 2, 2, "A", {"A": 10, "B": 30, "C": 20}, "", "AC", "AC"),
    ("ties-by-peer-id", 2, 2, "", {"C": 5, "B": 5, "A": 5}, "", "", "AB"),
    ("unparseable-not-enough", 3, 3, "", {"A": 1, "B": 2, "C": "x"}, "", "", ("error", 3, 3, 2)),
    ("all-blacklisted", 1, 1, "", {"A": 1}, "A", "", ("error", 1, 1, 0)),
]


@pytest.mark.parametrize("make", DESCENDING)
@pytest.mark.parametrize(
    "rmin, rmax, current, values, blacklist, user, expected",
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_allocate(make, rmin, rmax, current, values, blacklist, user, expected):
    metrics = []
    for letter, spec in values.items():
        value, valid, expired = spec if isinstance(spec, tuple) else (spec, True, False)
        metrics.append(metric(NAMES[letter], value, valid=valid, expired=expired))
    call = lambda: allocate(  # noqa: E731
        CID0,
        rmin,
        rmax,
        peers(current),
        {"freespace": metrics},
        make(),
        NOW,
        blacklist=peers(blacklist),
        user_allocations=peers(user),
    )
    if isinstance(expected, tuple):
        _, needed, wanted, valid = expected
        with pytest.raises(NotEnoughPeers) as info:
            call()
        assert str(info.value) == (
            f"not enough peers to allocate CID. Needed at least: {needed}. "
            f"Wanted at most: {wanted}. Valid candidates: {valid}. See logs for more info."
        )
        assert (info.value.needed, info.value.wanted, info.value.candidates) == (needed, wanted, valid)
        assert isinstance(info.value, AllocationError) and info.value.http_status == 500
    else:
        assert call() == peers(expected)


def test_allocate_ascending_uses_lowest():
    metrics = {"numpin": [metric(p, v, name="numpin") for p, v in ((A, 10), (B, 30), (C, 20))]}
    got = allocate(CID0, 2, 2, [], metrics, AscendingAllocator("numpin"), NOW)
    assert got == [A, C]


def test_allocate_ignores_metrics_of_another_name():
    metrics = {"numpin": [metric(A, 1, name="numpin")], "freespace": [metric(B, 1)]}
    assert allocate(CID0, 1, 1, [], metrics, DescendingAllocator("freespace"), NOW) == [B]


def test_allocate_metric_expiring_exactly_now_is_still_valid():
    m = Metric("freespace", peer=A, value="1", expire=NOW, valid=True)
    assert allocate(CID0, 1, 1, [], {"freespace": [m]}, DescendingAllocator(), NOW) == [A]
    with pytest.raises(NotEnoughPeers):
        allocate(CID0, 1, 1, [], {"freespace": [m]}, DescendingAllocator(), NOW + 1)


@pytest.mark.parametrize(
    "rmin, rmax, message",
    [
        (0, 0, "invalid replication factor"),
        (0, 3, "invalid replication factor"),
        (-1, 2, "must both be -1"),
        (2, -1, "must both be -1"),
        (3, 2, "replication_factor_max \\(2\\) must be greater"),
        (-2, -2, "invalid replication factor"),
    ],
)
def test_invalid_replication(rmin, rmax, message):
    with pytest.raises(InvalidReplication, match=message) as info:
        check_replication(rmin, rmax)
    assert info.value.http_status == 400
    with pytest.raises(InvalidReplication):
        allocate(CID0, rmin, rmax, [], {}, DescendingAllocator(), NOW)


@pytest.mark.parametrize("rmin, rmax", [(-1, -1), (1, 1), (2, 5)])
def test_valid_replication(rmin, rmax):
    check_replication(rmin, rmax)


def test_allocate_with_the_monitor_function():
    from twisted.internet.task import Clock

    from ipfscluster.config.monitor import MonBasicConfig
    from ipfscluster.monitor import PeerMonitor

    clock = Clock()
    clock.advance(NOW / 10**9)
    monitor = PeerMonitor(MonBasicConfig(), clock)
    for peer, value in ((A, 5), (B, 50), (C, 20)):
        monitor.log_metric(metric(peer, value))
    monitor.log_metric(metric(D, 99, name="numpin"))
    got = allocate(CID0, 2, 2, [], monitor.latest_metrics, DescendingAllocator(), NOW)
    assert got == [B, C]


# --- properties ----------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SPECS = st.dictionaries(
    st.sampled_from("ABCDEFGH"),
    st.tuples(st.integers(0, 5), st.booleans(), st.booleans()),  # value, valid, expired
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    specs=_SPECS,
    current=st.lists(st.sampled_from("ABCDEFGH"), unique=True, max_size=5),
    blacklist=st.lists(st.sampled_from("ABCDEFGH"), unique=True, max_size=2),
    user=st.lists(st.sampled_from("ABCDEFGH"), unique=True, max_size=3),
    rmin=st.integers(1, 5),
    extra=st.integers(0, 3),
)
def test_allocation_properties(specs, current, blacklist, user, rmin, extra):
    rmax = rmin + extra
    metrics = [metric(NAMES[p], v, valid=ok, expired=old) for p, (v, ok, old) in specs.items()]
    usable = {p for p, (_, ok, old) in specs.items() if ok and not old and p not in blacklist}
    current_valid = [p for p in current if p in usable]
    results = []
    for allocator in (DescendingAllocator(), FakeAllocator()):
        try:
            got = allocate(CID0, rmin, rmax, peers("".join(current)), {"freespace": metrics},
                           allocator, NOW, blacklist=peers("".join(blacklist)),
                           user_allocations=peers("".join(user)))
        except NotEnoughPeers as err:
            assert len(usable) < rmin
            assert err.needed == rmin - len(current_valid) and err.wanted == rmax - len(current_valid)
            results.append("error")
            continue
        letters = [k for peer in got for k, v in NAMES.items() if v == peer]
        assert len(set(letters)) == len(letters)
        assert set(letters) <= usable
        assert rmin <= len(letters) <= rmax or (len(current_valid) >= rmin and letters == current_valid)
        if len(current_valid) <= rmax:
            assert letters[: len(current_valid)] == current_valid  # current valid ones are kept
        else:
            assert set(letters) <= set(current_valid) and len(letters) == rmax
        preferred = [p for p in user if p in usable and p not in current]
        fresh = letters[len(current_valid):] if len(current_valid) <= rmax else []
        if fresh and preferred:
            assert fresh[: len(preferred)] == sorted(
                preferred, key=lambda p: (-specs[p][0], NAMES[p]))[: len(fresh)]
        results.append(got)
    assert results[0] == results[1]  # the fake allocator decides like the real one
