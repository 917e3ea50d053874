"""Tests of the history checkers in ipfscluster.testing.linearizability."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ipfscluster.testing.linearizability import (
    LS,
    PIN,
    STATUS,
    TIMED_OUT,
    UNPIN,
    Operation,
    check_history,
    check_prefix_reads,
)

INF = TIMED_OUT


def op(kind, call, ret, result=None, cid="Qm1", client="c"):
    return Operation(client, kind, cid, call, ret, result)


# --- hand-built per-CID histories ------------------------------------------------


def test_sequential_history_ok():
    h = [op(STATUS, 0, 1, False), op(PIN, 2, 3), op(STATUS, 4, 5, True),
         op(UNPIN, 6, 7), op(STATUS, 8, 9, False)]
    assert check_history(h).ok


def test_stale_read_after_acknowledged_pin_fails():
    h = [op(PIN, 0, 1), op(STATUS, 2, 3, False)]
    result = check_history(h)
    assert not result.ok and result.failing_cid == "Qm1"
    assert "status" in result.explanation and "-> False" in result.explanation


def test_concurrent_read_may_see_either():
    assert check_history([op(PIN, 0, 10), op(STATUS, 2, 3, False)]).ok
    assert check_history([op(PIN, 0, 10), op(STATUS, 2, 3, True)]).ok


def test_read_then_older_read_fails():
    # r1 saw the pin, so r2, which starts after r1 ended, must see it too
    h = [op(PIN, 0, 10), op(STATUS, 1, 2, True, client="a"),
         op(STATUS, 3, 4, False, client="b")]
    assert not check_history(h).ok


def test_reads_in_the_other_order_are_fine():
    h = [op(PIN, 0, 10), op(STATUS, 1, 2, False, client="a"),
         op(STATUS, 3, 4, True, client="b")]
    assert check_history(h).ok


def test_read_of_value_never_written_fails():
    assert not check_history([op(STATUS, 0, 1, True)]).ok
    assert check_history([op(STATUS, 0, 1, True)], initial=["Qm1"]).ok


def test_timed_out_pin_may_take_effect_late_or_never():
    never = [op(PIN, 0, INF), op(STATUS, 5, 6, False), op(STATUS, 7, 8, False)]
    late = [op(PIN, 0, INF), op(STATUS, 5, 6, False), op(STATUS, 7, 8, True)]
    assert check_history(never).ok and check_history(late).ok


def test_timed_out_pin_cannot_be_undone_without_unpin():
    h = [op(PIN, 0, INF), op(STATUS, 5, 6, True), op(STATUS, 7, 8, False)]
    assert not check_history(h).ok


def test_timed_out_pin_cannot_act_before_its_call():
    h = [op(STATUS, 0, 1, True), op(PIN, 2, INF)]
    assert not check_history(h).ok


def test_two_concurrent_writes_one_order_must_explain_all_reads():
    # pin and unpin overlap; reads after both see "pinned" then "unpinned": impossible
    h = [op(PIN, 0, 5, client="w1"), op(UNPIN, 0, 5, client="w2"),
         op(STATUS, 6, 7, True, client="r1"), op(STATUS, 8, 9, False, client="r2")]
    assert not check_history(h).ok
    h[3] = op(STATUS, 8, 9, True, client="r2")
    assert check_history(h).ok


def test_touching_intervals_count_as_concurrent():
    assert check_history([op(PIN, 0, 2), op(STATUS, 2, 3, False)]).ok


def test_cids_are_checked_independently():
    h = [op(PIN, 0, 1, cid="A"), op(STATUS, 2, 3, True, cid="A"),
         op(PIN, 0, 1, cid="B"), op(STATUS, 2, 3, False, cid="B")]
    result = check_history(h)
    assert not result.ok and result.failing_cid == "B"


def test_timed_out_status_is_ignored():
    assert check_history([op(PIN, 0, 1), op(STATUS, 2, INF, False)]).ok


def test_operation_validation():
    with pytest.raises(ValueError):
        op("get", 0, 1)
    with pytest.raises(ValueError):
        op(PIN, 5, 1)


@pytest.mark.parametrize("reads,ok", [(12, True), (13, False)])
def test_alternating_reads_need_enough_concurrent_writes(reads, ok):
    # 6 pins and 6 unpins all overlap every read; reads alternate True/False, so
    # 12 reads are explainable (6 pin/unpin pairs) and a 13th True one is not
    h = [op(PIN if i % 2 else UNPIN, 0, 100, client="w%d" % i) for i in range(12)]
    h += [op(STATUS, 1 + i, 1.5 + i, i % 2 == 0, client="r%d" % i) for i in range(reads)]
    assert check_history(h).ok is ok


# --- prefix reads -----------------------------------------------------------------


def test_prefix_read_ok_and_stale():
    w = [op(PIN, 0, 1, cid="A"), op(PIN, 2, 3, cid="B"), op(UNPIN, 4, 5, cid="A")]
    assert check_prefix_reads(w, [op(LS, 3.5, 3.8, {"A", "B"}, cid=None)]).ok
    # the read started after the unpin was acknowledged: {A, B} is stale
    stale = check_prefix_reads(w, [op(LS, 6, 7, {"A", "B"}, cid=None)])
    assert not stale.ok and "allowed prefix lengths 3..3" in stale.explanation
    assert check_prefix_reads(w, [op(LS, 6, 7, {"B"}, cid=None)]).ok


def test_prefix_read_cannot_see_future_writes():
    w = [op(PIN, 0, 1, cid="A"), op(PIN, 10, 11, cid="B")]
    assert not check_prefix_reads(w, [op(LS, 2, 3, {"A", "B"}, cid=None)]).ok


def test_prefix_read_must_be_a_prefix_not_a_subset():
    w = [op(PIN, 0, 10, cid="A"), op(PIN, 0, 10, cid="B")]  # committed A then B
    assert check_prefix_reads(w, [op(LS, 1, 2, {"A"}, cid=None)]).ok
    assert not check_prefix_reads(w, [op(LS, 1, 2, {"B"}, cid=None)]).ok


def test_prefix_reads_are_monotonic():
    w = [op(PIN, 0, 10, cid="A")]
    later_older = [op(LS, 1, 2, {"A"}, cid=None, client=1), op(LS, 3, 4, set(), cid=None, client=2)]
    assert not check_prefix_reads(w, later_older).ok
    assert check_prefix_reads(w, list(reversed([
        op(LS, 1, 2, set(), cid=None, client=1), op(LS, 3, 4, {"A"}, cid=None, client=2)]))).ok


def test_prefix_read_with_timed_out_committed_write_and_initial_state():
    w = [op(PIN, 0, INF, cid="A")]
    assert check_prefix_reads(w, [op(LS, 1, 2, {"Z"}, cid=None)], initial={"Z"}).ok
    assert check_prefix_reads(w, [op(LS, 1, 2, {"Z", "A"}, cid=None)], initial={"Z"}).ok
    assert check_prefix_reads(w, [op(LS, 5, INF, {"nonsense"}, cid=None)]).ok


# --- generated histories ----------------------------------------------------------


def _sequential_history(rnd, n_ops, cids, timeout_rate):
    """Run ``n_ops`` random operations against a real pinset, each with a
    linearization point at a distinct time inside a random interval; return the
    history and the committed writes in order."""
    pinned = set()
    ops, writes = [], []
    t = 0.0
    for i in range(n_ops):
        t += rnd.uniform(0.1, 1.0)
        kind = rnd.choice([PIN, UNPIN, STATUS, STATUS])
        cid = rnd.choice(cids)
        call = t - rnd.uniform(0, 3) * rnd.random()
        ret = t + rnd.uniform(0, 3) * rnd.random()
        if kind == STATUS:
            ops.append(Operation(i, STATUS, cid, call, ret, cid in pinned))
            continue
        if rnd.random() < timeout_rate:
            ret = INF
            if rnd.random() < 0.5:  # timed out and never took effect
                ops.append(Operation(i, kind, cid, call, ret))
                continue
        (pinned.add if kind == PIN else pinned.discard)(cid)
        op_ = Operation(i, kind, cid, call, ret)
        ops.append(op_)
        writes.append(op_)
        if rnd.random() < 0.2:
            ops.append(Operation(i, LS, None, t + 1e-6, t + 1e-6 + rnd.uniform(0, 2),
                                 frozenset(pinned)))
    return ops, writes


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(1, 40),
       n_cids=st.integers(1, 4), timeout_rate=st.sampled_from([0.0, 0.2]))
def test_real_executions_always_check_ok(seed, n_ops, n_cids, timeout_rate):
    rnd = random.Random(seed)
    ops, writes = _sequential_history(rnd, n_ops, ["c%d" % i for i in range(n_cids)], timeout_rate)
    assert check_history(ops).ok
    assert check_prefix_reads(writes, [o for o in ops if o.kind == LS]).ok


def _forced_status(ops, target):
    """Return the value ``target`` (a status op) must read, or None if not forced.

    Forced when no write on its CID overlaps it and every write that may have been
    the last before it (not followed by another write that completed before the
    status started) has the same kind.
    """
    writes = [o for o in ops if o.cid == target.cid and o.kind in (PIN, UNPIN)]
    if any(w.call <= target.ret and w.ret >= target.call for w in writes):
        return None
    before = [w for w in writes if w.ret < target.call]
    if not before:
        return False
    candidates = [w for w in before if not any(v.call > w.ret for v in before)]
    kinds = {w.kind for w in candidates}
    return (kinds == {PIN}) if len(kinds) == 1 else None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(2, 30), pick=st.integers(0, 10**6))
def test_provably_stale_reads_are_detected(seed, n_ops, pick):
    rnd = random.Random(seed)
    ops, _ = _sequential_history(rnd, n_ops, ["c0", "c1"], 0.0)
    ops = [o for o in ops if o.kind != LS]
    forced = [(i, o) for i, o in enumerate(ops)
              if o.kind == STATUS and _forced_status(ops, o) is not None]
    assume(forced)
    i, target = forced[pick % len(forced)]
    assert target.result == _forced_status(ops, target)  # the generator is truthful
    ops[i] = Operation(target.client, STATUS, target.cid, target.call, target.ret,
                       not target.result)
    result = check_history(ops)
    assert not result.ok and result.failing_cid == target.cid


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(3, 40))
def test_corrupted_prefix_reads_are_detected(seed, n_ops):
    rnd = random.Random(seed)
    ops, writes = _sequential_history(rnd, n_ops, ["c0", "c1", "c2"], 0.0)
    reads = [o for o in ops if o.kind == LS]
    assume(reads)
    target = rnd.choice(reads)
    # a CID that no write ever touched cannot appear in any prefix
    corrupted = Operation(target.client, LS, None, target.call, target.ret,
                          target.result | {"never-written"})
    result = check_prefix_reads(writes, [r if r is not target else corrupted for r in reads])
    assert not result.ok and math.isfinite(target.ret)
