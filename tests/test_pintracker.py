"""MapPinTracker: reference §7.3 transitions, queue, concurrency, recover, remote pins, stop.

Deterministic: a ``Clock`` and a ``FakeIPFSConnector`` (tests/pintracker_env.py).
The sync table has its own module (test_pintracker_sync.py).
"""

from __future__ import annotations

import attrs
from twisted.logger import globalLogPublisher
from zope.interface.verify import verifyObject

from ipfscluster.errors import QueueFull, ShuttingDown
from ipfscluster.interfaces import IPinTracker
from ipfscluster.pintracker import MSG
from tests.pintracker_env import (  # noqa: F401 - fixtures
    ME,
    OTHER,
    S,
    cid,
    direct,
    env,
    everywhere,
    failure,
    local,
    make_env,
    remote,
    result,
    slow,
)

A, B, C, D = cid(1), cid(2), cid(3), cid(4)


def test_provides_interface(env):
    assert verifyObject(IPinTracker, env.tracker)


# --- track / untrack transitions ------------------------------------------------------


def test_track_queues_then_pins(slow):
    assert result(slow.tracker.track(local(A, name="a"))) is None
    # the single worker takes it at once: pinning, nothing left in the queue
    info = slow.info(A)
    assert info.status is S.PINNING and info.attempt_count == 1
    slow.tracker.track(local(B))
    assert slow.status(B) is S.PIN_QUEUED
    assert slow.tracker.pin_queue_size() == 1
    slow.clock.advance(1)
    info = slow.info(A)
    assert info.status is S.PINNED and info.error == ""
    assert info.peer == ME and info.peername == "peer-a" and info.name == "a"
    assert info.allocations == (ME, OTHER)
    assert info.timestamp == int(slow.clock.seconds() * 1e9)
    assert slow.status(B) is S.PINNING
    slow.clock.advance(1)
    assert slow.status(B) is S.PINNED
    assert slow.ipfs.is_pinned(A) and slow.ipfs.is_pinned(B)


def test_work_queued_before_start_runs_at_start(make_env):
    from ipfscluster.pintracker import MapPinTracker

    env = make_env()
    tracker = MapPinTracker(ME, env.ipfs, clock=env.clock)
    result(tracker.track(local(A)))
    assert result(tracker.status(A)).status is S.PIN_QUEUED and env.ipfs.calls == []
    tracker.startService()
    assert result(tracker.status(A)).status is S.PINNED
    result(tracker.stopService())


def test_pin_failure_is_pin_error(env):
    env.ipfs.fail(A)
    result(env.tracker.track(local(A)))
    info = env.info(A)
    assert info.status is S.PIN_ERROR
    assert "injected" in info.error and info.attempt_count == 1


def test_untrack_unpins_and_forgets(slow):
    slow.tracker.track(local(A))
    slow.clock.advance(1)
    assert result(slow.tracker.untrack(A)) is None
    assert slow.status(A) is S.UNPINNING
    slow.clock.advance(1)
    info = slow.info(A)
    assert info.status is S.UNPINNED and info.timestamp == int(slow.clock.seconds() * 1e9)
    assert slow.all() == [] and slow.tracker.tracked_count() == 0
    assert not slow.ipfs.is_pinned(A)
    assert slow.pin_calls() == [("pin", A), ("unpin", A)]


def test_unpin_failure_is_unpin_error(env):
    env.tracker.track(local(A))
    env.ipfs.fail(A)
    env.tracker.untrack(A)
    info = env.info(A)
    assert info.status is S.UNPIN_ERROR and "injected" in info.error


def test_untrack_unknown_unpins_anyway_then_forgets(env):
    # e.g. a peer restarted between the pin and the unpin: its daemon may still
    # hold the pin, so the unpin goes to the daemon (a no-op there if not pinned)
    env.ipfs.add_pin(A)
    assert result(env.tracker.untrack(A)) is None
    env.clock.pump([1] * 5)
    assert ("unpin", A) in env.ipfs.calls
    assert not env.ipfs.is_pinned(A)
    assert env.all() == []


def test_status_of_untracked_is_fresh_unpinned(env):
    env.clock.pump([1] * 5)
    info = env.info(A)
    assert info.status is S.UNPINNED and info.peer == ME
    assert info.timestamp == int(env.clock.seconds() * 1e9)


def test_direct_pin_pins_direct(env):
    env.tracker.track(direct(A))
    assert env.status(A) is S.PINNED
    assert env.ipfs.pins[A].name == "DIRECT"


def test_mode_change_re_pins(env):
    env.tracker.track(local(A))
    env.tracker.track(direct(A))
    assert env.pin_calls() == [("pin", A), ("pin", A)]


def test_retrack_of_pinned_updates_the_description_only(env):
    env.tracker.track(local(A, name="old"))
    env.clock.pump([1] * 10)
    stamp = env.info(A).timestamp
    env.tracker.track(local(A, name="new"))
    info = env.info(A)
    assert info.status is S.PINNED and info.name == "new" and info.timestamp == stamp
    assert env.pin_calls() == [("pin", A)]


def test_track_of_pin_error_retries(env):
    env.ipfs.fail(A)
    env.tracker.track(local(A))
    env.ipfs.unfail(A)
    env.tracker.track(local(A))
    assert env.status(A) is S.PINNED


# --- remote pins ------------------------------------------------------------------------


def test_remote_pin_is_marked_remote_without_ipfs(env):
    result(env.tracker.track(remote(A)))
    info = env.info(A)
    assert info.status is S.REMOTE and info.allocations == (OTHER,)
    assert env.ipfs.calls == []


def test_everywhere_pin_is_local(env):
    env.tracker.track(everywhere(A))
    assert env.status(A) is S.PINNED


def test_remote_when_pinned_unpins_first(slow):
    slow.tracker.track(local(A))
    slow.clock.advance(1)
    slow.tracker.track(remote(A))
    assert slow.status(A) is S.UNPINNING
    slow.clock.advance(1)
    assert slow.status(A) is S.REMOTE
    assert not slow.ipfs.is_pinned(A)
    assert slow.pin_calls() == [("pin", A), ("unpin", A)]


def test_remote_unpin_failure_is_unpin_error_and_recover_makes_it_remote(env):
    env.tracker.track(local(A))
    env.ipfs.fail(A)
    env.tracker.track(remote(A))
    assert env.status(A) is S.UNPIN_ERROR
    env.ipfs.unfail(A)
    assert result(env.tracker.recover(A)).status is S.REMOTE


def test_remote_to_local_pins(env):
    env.tracker.track(remote(A))
    env.tracker.track(local(A))
    assert env.status(A) is S.PINNED


def test_untrack_remote_forgets_without_ipfs(env):
    env.tracker.track(remote(A))
    env.tracker.untrack(A)
    assert env.status(A) is S.UNPINNED and env.ipfs.calls == []


def test_remote_while_queued_cancels_the_pin(slow):
    slow.tracker.track(local(B))  # occupies the worker
    slow.tracker.track(local(A))
    slow.tracker.track(remote(A))
    assert slow.status(A) is S.REMOTE
    slow.clock.pump([1] * 5)
    assert slow.pin_calls() == [("pin", B)]


# --- cancel-on-opposite-op and in-flight operations ------------------------------------


def test_untrack_of_queued_pin_cancels_it(slow):
    slow.tracker.track(local(B))  # running
    slow.tracker.track(local(A))
    assert slow.status(A) is S.PIN_QUEUED
    slow.tracker.untrack(A)
    assert slow.status(A) is S.UNPINNED
    assert slow.tracker.pin_queue_size() == 0
    slow.clock.pump([1] * 5)
    assert slow.pin_calls() == [("pin", B)]  # neither pin nor unpin of A
    assert [i.cid for i in slow.all()] == [B]


def test_track_of_queued_unpin_cancels_it(slow):
    slow.tracker.track(local(A))
    slow.tracker.track(local(B))
    slow.clock.pump([1, 1])
    slow.tracker.track(local(C))  # running
    slow.tracker.untrack(A)
    assert slow.status(A) is S.UNPIN_QUEUED
    slow.tracker.track(local(A))
    assert slow.status(A) is S.PINNED
    slow.clock.pump([1] * 5)
    assert ("unpin", A) not in slow.pin_calls()
    assert slow.ipfs.is_pinned(A)


def test_untrack_during_pin_lets_it_finish_then_unpins(slow):
    slow.tracker.track(local(A))
    assert slow.status(A) is S.PINNING
    slow.tracker.untrack(A)
    assert slow.status(A) is S.PINNING  # not interrupted
    slow.clock.advance(1)
    assert slow.status(A) is S.UNPINNING
    slow.clock.advance(1)
    assert slow.status(A) is S.UNPINNED
    assert slow.pin_calls() == [("pin", A), ("unpin", A)]
    assert not slow.ipfs.is_pinned(A)


def test_track_during_unpin_pins_again_afterwards(slow):
    slow.tracker.track(local(A))
    slow.clock.advance(1)
    slow.tracker.untrack(A)
    slow.tracker.track(local(A))
    assert slow.status(A) is S.UNPINNING
    slow.clock.pump([1, 1])  # callLater counts from the advanced time: one step each
    assert slow.status(A) is S.PINNED and slow.ipfs.is_pinned(A)
    assert slow.pin_calls() == [("pin", A), ("unpin", A), ("pin", A)]


def test_failed_pin_untracked_in_flight_is_unpinned(env):
    env.ipfs.hang(A)
    env.ipfs.fail(A)
    env.tracker.track(local(A))
    env.tracker.untrack(A)
    env.ipfs.unfail(A)
    env.ipfs.release(A)
    assert env.status(A) is S.UNPINNED
    assert env.pin_calls() == [("pin", A), ("unpin", A)]


# --- queue bound and concurrency ---------------------------------------------------------


def test_a_pin_that_finds_the_queue_full_waits_as_pin_queued(make_env):
    env = make_env(max_queue=2)
    env.ipfs.hang(A)
    env.tracker.track(local(A))  # running, not queued
    env.tracker.track(local(B))
    env.tracker.track(local(C))
    assert result(env.tracker.track(local(D))) is None  # no QueueFull: it waits
    info = env.info(D)
    assert info.status is S.PIN_QUEUED and info.error == ""
    assert env.tracker.pin_queue_size() == 2 and env.tracker.backlog_size() == 1
    env.ipfs.release(A)  # the queue moves: D gets its place, then is pinned
    assert [env.status(c) for c in (A, B, C, D)] == [S.PINNED] * 4
    assert [a for m, a in env.pin_calls()] == [A, B, C, D]
    assert env.tracker.backlog_size() == 0


def test_queue_full_on_untrack_is_unpin_error(make_env):
    env = make_env(max_queue=1)
    env.tracker.track(local(A))
    env.ipfs.hang(B)
    env.tracker.track(local(B))  # running
    env.tracker.track(local(C))  # fills the queue
    assert isinstance(failure(env.tracker.untrack(A)), QueueFull)
    info = env.info(A)
    assert info.status is S.UNPIN_ERROR and info.error == "unpin queue is full"
    env.ipfs.release(B)
    assert result(env.tracker.recover(A)).status is S.UNPINNED


def test_n_workers_never_more_than_n_in_flight(make_env):
    env = make_env(latency=1.0, concurrent_pins=3)
    for n in range(10):
        env.tracker.track(local(cid(100 + n)))
    assert env.tracker.running_count() == 3 and env.ipfs.in_flight == 3
    assert env.tracker.pin_queue_size() == 7
    for _ in range(4):
        env.clock.advance(1)
        assert env.ipfs.in_flight <= 3
    assert env.ipfs.max_in_flight == 3
    assert all(i.status is S.PINNED for i in env.all()) and len(env.all()) == 10


def test_one_worker_is_strictly_serialized(env):
    for c in (A, B, C):
        env.ipfs.hang(c)
        env.tracker.track(local(c))
    assert env.ipfs.waiting() == [A]
    assert [env.status(c) for c in (A, B, C)] == [S.PINNING, S.PIN_QUEUED, S.PIN_QUEUED]
    env.ipfs.release(A)
    assert env.ipfs.waiting() == [B]
    env.ipfs.release(B)
    env.ipfs.release(C)
    assert env.pin_calls() == [("pin", A), ("pin", B), ("pin", C)]
    assert env.ipfs.max_in_flight == 1


def test_unpins_share_the_queue_and_the_workers(make_env):
    env = make_env(latency=1.0, concurrent_pins=2)
    for c in (A, B, C, D):
        env.tracker.track(local(c))
    env.clock.advance(2)
    for c in (A, B, C):
        env.tracker.untrack(c)
    env.tracker.track(local(cid(9)))
    env.clock.pump([1] * 10)
    assert env.ipfs.max_in_flight == 2
    assert [i.cid for i in env.all()] == [D, cid(9)]


# --- recover ------------------------------------------------------------------------------


def test_recover_pin_error_jumps_the_queue(env):
    env.ipfs.fail(A)
    env.tracker.track(local(A))
    env.ipfs.unfail(A)
    env.ipfs.hang(B)
    env.tracker.track(local(B))  # running
    env.tracker.track(local(C))  # queued
    d = env.tracker.recover(A)
    assert env.status(A) is S.PIN_QUEUED and env.info(A).priority_pin
    assert not d.called
    env.ipfs.release(B)
    info = result(d)
    assert info.status is S.PINNED and info.attempt_count == 2
    assert env.pin_calls() == [("pin", A), ("pin", B), ("pin", A), ("pin", C)]


def test_recover_that_fails_again_counts_attempts(env):
    env.ipfs.fail(A)
    env.tracker.track(local(A))
    info = result(env.tracker.recover(A))
    assert info.status is S.PIN_ERROR and info.attempt_count == 2 and "injected" in info.error


def test_recover_unpin_error(env):
    env.tracker.track(local(A))
    env.ipfs.fail(A)
    env.tracker.untrack(A)
    env.ipfs.unfail(A)
    assert result(env.tracker.recover(A)).status is S.UNPINNED
    assert not env.ipfs.is_pinned(A)


def test_recover_other_statuses_returns_them_unchanged(slow):
    slow.tracker.track(local(A))  # pinning
    slow.tracker.track(local(B))  # pin_queued
    slow.tracker.track(remote(C))
    for c, status in ((A, S.PINNING), (B, S.PIN_QUEUED), (C, S.REMOTE), (D, S.UNPINNED)):
        assert result(slow.tracker.recover(c)).status is status
    slow.clock.pump([1] * 5)
    assert slow.pin_calls() == [("pin", A), ("pin", B)]


def test_recover_all(env):
    for c in (A, B):
        env.ipfs.fail(c)
        env.tracker.track(local(c))
    env.tracker.track(local(C))
    env.ipfs.hang(D)
    env.tracker.track(local(D))  # holds the worker
    env.ipfs.unfail()
    queued = result(env.tracker.recover_all())
    assert [(i.cid, i.status) for i in queued] == [(A, S.PIN_QUEUED), (B, S.PIN_QUEUED)]
    env.ipfs.release(D)
    assert {i.cid: i.status for i in env.all()} == {c: S.PINNED for c in (A, B, C, D)}


def test_recover_cancelled_by_untrack_fires_with_the_result(env):
    env.ipfs.fail(A)
    env.tracker.track(local(A))
    env.ipfs.hang(B)
    env.tracker.track(local(B))
    d = env.tracker.recover(A)
    env.tracker.untrack(A)  # the queued retry is cancelled; A is unpinned next
    assert result(d).status is S.UNPIN_QUEUED
    env.ipfs.unfail(A)
    env.ipfs.release(B)
    assert env.status(A) is S.UNPINNED


# --- status_all ------------------------------------------------------------------------------


def test_status_all_filters_and_is_a_snapshot(env):
    env.tracker.track(local(A))
    env.tracker.track(remote(B))
    env.ipfs.fail(C)
    env.tracker.track(local(C))
    everything = result(env.tracker.status_all())
    assert iter(everything) is everything  # a lazy iterator
    env.tracker.untrack(A)  # after the call: not seen by the iterator
    assert {i.cid: i.status for i in everything} == {A: S.PINNED, B: S.REMOTE, C: S.PIN_ERROR}
    assert [i.cid for i in env.all(S.ERROR)] == [C]
    assert [i.cid for i in env.all(S.REMOTE | S.PIN_ERROR)] == [B, C]


# --- stop --------------------------------------------------------------------------------------


def test_stop_with_work_in_flight(make_env):
    env = make_env(concurrent_pins=2)
    env.ipfs.fail(cid(7))
    env.tracker.track(local(cid(7)))
    for c in (A, B, C, D):
        env.ipfs.hang(c)
        env.tracker.track(local(c))
    waiter = env.tracker.recover(cid(7))
    assert env.tracker.running_count() == 2 and env.tracker.pin_queue_size() == 3
    stopped = env.tracker.stopService()
    env.closed = True
    assert result(stopped) is None
    assert isinstance(failure(waiter), ShuttingDown)
    assert env.tracker.running_count() == 0 and env.tracker.pin_queue_size() == 0
    assert env.ipfs.in_flight == 0 and env.ipfs.waiting() == []
    # the running pins were cancelled, the queued ones never ran
    assert env.pin_calls() == [("pin", cid(7)), ("pin", A), ("pin", B)]
    assert isinstance(failure(env.tracker.track(local(A))), ShuttingDown)
    assert isinstance(failure(env.tracker.status(A)), ShuttingDown)
    env.ipfs.stopService()
    assert env.clock.getDelayedCalls() == []


def test_stop_waits_for_the_running_operation(make_env):
    """A connector whose cancellation answers later: stop fires only after it."""
    from twisted.internet import defer

    env = make_env()
    late = defer.Deferred()  # the end of the connector's clean-up, fired by the test

    def slow_to_cancel(pin, timeout=None):
        return defer.Deferred().addBoth(lambda outcome: late.addCallback(lambda _: outcome))

    env.ipfs.pin = slow_to_cancel
    env.tracker.track(local(A))
    stopped = env.tracker.stopService()
    env.closed = True
    assert not stopped.called
    late.callback(None)
    assert result(stopped) is None


def test_logs_use_the_pintracker_facility(env):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        env.tracker.track(local(A))
    finally:
        globalLogPublisher.removeObserver(events.append)
    pinned = [e for e in events if e.get("log_format") == "pinned {cid}"]
    assert pinned and pinned[0]["log_namespace"] == "pintracker" and pinned[0]["cid"] == A


def test_pin_info_is_a_frozen_value(env):
    env.tracker.track(local(A))
    info = env.info(A)
    assert attrs.evolve(info, error="x").error == "x" and info.error == ""


def test_mode_change_while_pinning_pins_again_in_the_new_mode(env):
    env.ipfs.hang(A)
    env.tracker.track(local(A))  # recursive, running
    env.tracker.track(direct(A))
    env.ipfs.release(A)
    assert env.status(A) is S.PINNED
    assert env.pin_calls() == [("pin", A), ("pin", A)]
