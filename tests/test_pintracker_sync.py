"""MapPinTracker: every cell of the reference §7.3 sync table, for sync(cid) and sync_all(),
daemon failures, races with running operations, StateSync and the periodic sync loop."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from ipfscluster.errors import IPFSUnreachable
from ipfscluster.pintracker import MSG
from ipfscluster.types import IPFSPinStatus
from tests.pintracker_env import (  # noqa: F401 - fixtures
    S,
    cid,
    direct,
    env,
    failure,
    local,
    make_env,
    remote,
    result,
)

A, B, C = cid(1), cid(2), cid(3)
PINNING_TIMEOUT = 3600
UNPINNING_TIMEOUT = 300


def _start_in(env, status):
    """Bring A to ``status`` (operations needed for it stay running: hung)."""
    ipfs, tracker = env.ipfs, env.tracker
    if status is S.PINNED:
        tracker.track(local(A))
    elif status is S.PINNING:
        ipfs.hang(A)
        tracker.track(local(A))
    elif status is S.PIN_ERROR:
        ipfs.fail(A)
        tracker.track(local(A))
        ipfs.unfail(A)
    elif status is S.UNPINNING:
        tracker.track(local(A))
        ipfs.hang(A)
        tracker.untrack(A)
    elif status is S.UNPIN_ERROR:
        tracker.track(local(A))
        ipfs.fail(A)
        tracker.untrack(A)
        ipfs.unfail(A)
    elif status is S.REMOTE:
        tracker.track(remote(A))
    assert env.status(A) is status


def _sync(env, how):
    """Run sync(A) or sync_all(); return (new status of A, error, reported items)."""
    if how == "one":
        info = result(env.tracker.sync(A))
        reported = [info]
    else:
        reported = result(env.tracker.sync_all())
    info = env.info(A)
    return info.status, info.error, {i.cid: i for i in reported}


# (status before, ipfs pins it, clock advanced past the operation timeout) ->
# (status after, error text)
TABLE = [
    (S.PINNED, True, False, S.PINNED, ""),
    (S.PINNED, False, False, S.PIN_ERROR, "the item is unexpectedly not pinned on IPFS"),
    (S.PINNING, True, False, S.PINNED, ""),
    (S.PINNING, False, False, S.PINNING, ""),
    (S.PINNING, False, True, S.PIN_ERROR, "pinning operation is taking too long"),
    (S.PIN_ERROR, True, False, S.PINNED, ""),
    (S.PIN_ERROR, False, False, S.PIN_ERROR, "injected"),
    (S.UNPINNING, True, False, S.UNPINNING, ""),
    (S.UNPINNING, True, True, S.UNPIN_ERROR, "unpinning operation is taking too long"),
    (S.UNPINNING, False, False, S.UNPINNED, ""),
    (S.UNPIN_ERROR, True, False, S.UNPIN_ERROR, "injected"),
    (S.UNPIN_ERROR, False, False, S.UNPINNED, ""),
    (S.UNPINNED, False, False, S.UNPINNED, ""),
    (S.REMOTE, True, False, S.REMOTE, ""),
    (S.REMOTE, False, False, S.REMOTE, ""),
]


@pytest.mark.parametrize("how", ["one", "all"])
@pytest.mark.parametrize("before,pinned,late,after,error", TABLE)
def test_sync_table(env, how, before, pinned, late, after, error):
    _start_in(env, before)
    if pinned:
        env.ipfs.add_pin(A)
    else:
        env.ipfs.remove_pin(A)
    if late:
        env.clock.advance((PINNING_TIMEOUT if before is S.PINNING else UNPINNING_TIMEOUT) + 1)
    else:
        env.clock.advance(1)
    status, text, reported = _sync(env, how)
    assert status is after
    assert error in text and (text == "") == (error == "")
    if how == "one":
        assert reported[A].status is after
    else:  # sync_all reports what changed and what is in error
        expect_reported = (after is not before) or after.is_error
        assert (A in reported) == expect_reported
        if expect_reported:
            assert reported[A].status is after


def test_timeouts_are_measured_from_the_operation_start(env):
    _start_in(env, S.PINNING)
    env.clock.advance(PINNING_TIMEOUT - 1)
    assert result(env.tracker.sync(A)).status is S.PINNING
    env.clock.advance(2)
    info = result(env.tracker.sync(A))
    assert info.status is S.PIN_ERROR and info.error == MSG.PINNING_TOO_LONG


def test_untracked_but_pinned_is_unpin_error_via_sync_cid_only(env):
    env.ipfs.add_pin(A)
    assert result(env.tracker.sync_all()) == []
    assert env.status(A) is S.UNPINNED
    info = result(env.tracker.sync(A))
    assert info.status is S.UNPIN_ERROR and info.error == "the item is unexpectedly pinned on IPFS"
    # recover removes the stray pin
    assert result(env.tracker.recover(A)).status is S.UNPINNED
    assert not env.ipfs.is_pinned(A)


def test_operation_relabelled_by_sync_still_settles(env):
    _start_in(env, S.PINNING)
    env.clock.advance(PINNING_TIMEOUT + 1)
    assert result(env.tracker.sync(A)).status is S.PIN_ERROR
    assert result(env.tracker.recover(A)).status is S.PIN_ERROR  # still running: no second pin
    env.ipfs.release(A)
    assert env.status(A) is S.PINNED
    assert env.pin_calls() == [("pin", A)]


def test_unpinning_synced_to_unpinned_then_finishing(env):
    _start_in(env, S.UNPINNING)
    env.ipfs.remove_pin(A)
    assert result(env.tracker.sync(A)).status is S.UNPINNED
    env.tracker.track(local(A))  # wanted again while the old unpin still runs
    env.ipfs.release(A)
    assert env.status(A) is S.PINNED and env.ipfs.is_pinned(A)


def test_sync_to_unpinned_of_a_remote_goal_becomes_remote(env):
    env.tracker.track(local(A))
    env.ipfs.fail(A)
    env.tracker.track(remote(A))  # the unpin-first fails
    assert env.status(A) is S.UNPIN_ERROR
    env.ipfs.remove_pin(A)
    assert result(env.tracker.sync(A)).status is S.REMOTE


def test_queued_items_are_left_to_their_operation(make_env):
    env = make_env()
    env.ipfs.hang(B)
    env.tracker.track(local(B))
    env.tracker.track(local(A))
    assert env.status(A) is S.PIN_QUEUED
    assert result(env.tracker.sync(A)).status is S.PIN_QUEUED
    result(env.tracker.sync_all())
    assert env.status(A) is S.PIN_QUEUED
    env.ipfs.release(B)


# --- the daemon cannot answer ------------------------------------------------------------


def test_sync_with_daemon_down_marks_error_and_fails(env):
    env.tracker.track(local(A))
    env.ipfs.set_reachable(False)
    err = failure(env.tracker.sync(A))
    assert isinstance(err, IPFSUnreachable)
    info = env.info(A)
    assert info.status is S.PIN_ERROR and info.error == str(err)
    # an untracked CID gets no entry
    failure(env.tracker.sync(B))
    assert env.status(B) is S.UNPINNED


@pytest.mark.parametrize(
    "before,after",
    [
        (S.PINNED, S.PIN_ERROR),
        (S.PINNING, S.PIN_ERROR),
        (S.PIN_ERROR, S.PIN_ERROR),
        (S.UNPINNING, S.UNPIN_ERROR),
        (S.UNPIN_ERROR, S.UNPIN_ERROR),
        (S.REMOTE, S.REMOTE),
        (S.UNPINNED, S.UNPINNED),
    ],
)
def test_error_mapping_when_the_daemon_is_down(env, before, after):
    _start_in(env, before)
    env.ipfs.set_reachable(False)
    err = failure(env.tracker.sync(A))
    info = env.info(A)
    assert info.status is after
    if after is not before or after.is_error:
        assert info.error == str(err)  # the newest error replaces the old one
    else:
        assert info.error == ""


def test_sync_all_with_daemon_down_uses_the_error_mapping(make_env):
    env = make_env()
    env.tracker.track(local(A))  # pinned -> pin_error
    env.tracker.track(remote(B))  # remote -> unchanged
    env.tracker.track(local(C))
    env.ipfs.fail(C)
    env.tracker.untrack(C)  # unpin_error -> unpin_error (new error)
    env.ipfs.set_reachable(False)
    err = failure(env.tracker.sync_all())
    assert isinstance(err, IPFSUnreachable)
    got = {i.cid: (i.status, i.error) for i in env.all()}
    assert got == {A: (S.PIN_ERROR, str(err)), B: (S.REMOTE, ""), C: (S.UNPIN_ERROR, str(err))}


def test_sync_all_lists_recursive_and_direct_pins(env):
    env.tracker.track(direct(A))
    env.tracker.track(local(B))
    assert result(env.tracker.sync_all()) == []
    assert env.status(A) is S.PINNED and env.status(B) is S.PINNED
    assert [a for m, a in env.ipfs.calls if m == "pin_ls"] == ["recursive", "direct"]


def test_direct_pin_is_not_satisfied_by_indirect(env):
    env.tracker.track(local(A))
    env.ipfs.add_pin(A, IPFSPinStatus.INDIRECT)
    assert result(env.tracker.sync(A)).status is S.PIN_ERROR


def test_sync_answer_older_than_a_status_change_is_ignored(env):
    env.ipfs.hang(A)
    env.tracker.track(local(A))
    answer = defer.Deferred()
    env.ipfs.pin_ls_cid = lambda c: answer
    d = env.tracker.sync(A)
    env.ipfs.release(A)  # the pin completes while the daemon is being asked
    answer.callback(IPFSPinStatus.UNPINNED)  # an answer from before the pin ended
    assert result(d).status is S.PINNED
    assert env.status(A) is S.PINNED


def test_sync_all_passes_do_not_overlap_and_waiting_calls_share_one(env):
    env.tracker.track(local(A))
    gates = []
    real = env.ipfs.pin_ls

    def gated(type_filter, receive):
        if type_filter != "recursive":
            return real(type_filter, receive)
        gate = defer.Deferred()
        gates.append(gate)
        return gate.addCallback(lambda _: real(type_filter, receive))

    env.ipfs.pin_ls = gated
    order = []
    first = env.tracker.sync_all().addCallback(lambda r: order.append("first") or r)
    second = env.tracker.sync_all().addCallback(lambda r: order.append("second") or r)
    third = env.tracker.sync_all().addCallback(lambda r: order.append("third") or r)
    assert len(gates) == 1  # the second pass waits for the first
    gates[0].callback(None)
    assert order == ["first"] and len(gates) == 2
    gates[1].callback(None)
    assert len(gates) == 2  # the third call shared the second pass
    lists = [result(d) for d in (first, second, third)]
    assert lists == [[], [], []]
    assert lists[1] is not lists[2]  # each caller owns its list
    assert order == ["first", "second", "third"]
    assert env.status(A) is S.PINNED


# --- StateSync ------------------------------------------------------------------------------


def test_state_sync_tracks_missing_and_untracks_stale(env):
    env.tracker.track(local(A))
    env.tracker.track(local(B))
    acted = result(env.tracker.state_sync(iter([local(B), local(C), remote(cid(9))])))
    assert {i.cid for i in acted} == {A, C, cid(9)}
    assert {i.cid: i.status for i in env.all()} == {B: S.PINNED, C: S.PINNED, cid(9): S.REMOTE}
    assert not env.ipfs.is_pinned(A)


def test_state_sync_re_evaluates_allocation_changes(env):
    env.tracker.track(local(A))
    env.tracker.track(remote(B))
    acted = result(env.tracker.state_sync([remote(A), local(B)]))
    assert {i.cid for i in acted} == {A, B}
    assert env.status(A) is S.REMOTE and not env.ipfs.is_pinned(A)
    assert env.status(B) is S.PINNED and env.ipfs.is_pinned(B)


def test_state_sync_leaves_settled_and_failed_items_alone(env):
    env.tracker.track(local(A))
    env.ipfs.fail(B)
    env.tracker.track(local(B))
    env.tracker.track(remote(C))
    calls = len(env.ipfs.calls)
    assert result(env.tracker.state_sync([local(A), local(B), remote(C)])) == []
    assert env.status(B) is S.PIN_ERROR and len(env.ipfs.calls) == calls


def test_state_sync_cancels_a_pending_untrack_of_a_shared_pin(make_env):
    env = make_env(latency=1.0)
    env.tracker.track(local(A))
    env.clock.advance(1)
    env.tracker.track(local(B))  # running
    env.tracker.untrack(A)
    assert env.status(A) is S.UNPIN_QUEUED
    result(env.tracker.state_sync([local(A), local(B)]))
    assert env.status(A) is S.PINNED
    env.clock.pump([1] * 3)
    assert env.ipfs.is_pinned(A)


# --- the periodic sync loop --------------------------------------------------------------------


def test_ipfs_sync_interval_loop_repairs_labels_and_stops_cleanly(make_env):
    env = make_env(sync_interval=60.0)
    env.tracker.track(local(A))
    env.ipfs.remove_pin(A)  # lost behind the cluster's back
    env.clock.advance(59)
    assert env.status(A) is S.PINNED
    env.clock.advance(1)
    info = env.info(A)
    assert info.status is S.PIN_ERROR and info.error == MSG.UNEXPECTEDLY_UNPINNED
    assert result(env.tracker.recover(A)).status is S.PINNED
    env.ipfs.set_reachable(False)  # a failed pass only warns
    env.clock.advance(60)
    assert env.status(A) is S.PIN_ERROR
    env.close()
    assert env.clock.getDelayedCalls() == []


def test_a_direct_pin_does_not_cover_a_recursive_one(env):
    env.tracker.track(local(A))
    env.ipfs.add_pin(A, IPFSPinStatus.DIRECT)
    for outcome in (result(env.tracker.sync(A)), env.info(A)):
        assert outcome.status is S.PIN_ERROR and outcome.error == MSG.UNEXPECTEDLY_UNPINNED


def test_a_recursive_pin_covers_a_direct_one(env):
    env.tracker.track(direct(A))
    env.ipfs.add_pin(A, IPFSPinStatus.RECURSIVE)
    assert result(env.tracker.sync(A)).status is S.PINNED
    assert result(env.tracker.sync_all()) == []


def test_a_direct_pin_still_needs_unpinning(env):
    env.tracker.track(local(A))
    env.ipfs.fail(A)
    env.tracker.untrack(A)  # unpin_error
    env.ipfs.add_pin(A, IPFSPinStatus.DIRECT)  # something is still pinned: stays
    result(env.tracker.sync_all())
    assert env.status(A) is S.UNPIN_ERROR


def test_callers_sharing_a_failed_pass_all_get_the_error(make_env):
    env = make_env(latency=1.0)
    env.tracker.track(local(A))
    env.clock.advance(1)
    env.ipfs.set_reachable(False)
    first, second, third = (env.tracker.sync_all() for _ in range(3))
    env.clock.pump([1] * 4)
    errors = [failure(d) for d in (first, second, third)]
    assert all(isinstance(e, IPFSUnreachable) for e in errors)
    assert errors[1] is errors[2]  # one pass answered both
    assert [m for m, _ in env.ipfs.calls].count("pin_ls") == 2


def test_a_pass_waiting_when_the_tracker_stops_fails_with_shutting_down(make_env):
    from ipfscluster.errors import ShuttingDown

    env = make_env(latency=1.0)
    running = env.tracker.sync_all()
    waiting = env.tracker.sync_all()
    result(env.tracker.stopService())
    env.closed = True
    env.clock.pump([1, 1])
    assert result(running) == []
    assert isinstance(failure(waiting), ShuttingDown)
    assert [m for m, _ in env.ipfs.calls].count("pin_ls") == 2  # the first pass only
    env.ipfs.stopService()
