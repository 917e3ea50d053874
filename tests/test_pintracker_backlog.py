"""Pins that find the operation queue full wait in the tracker (``pin_queued``).

They are not errors: each is queued, in arrival order, as soon as the queue has
room, so a bulk import is pinned without waiting for a sync interval.  The queue
itself never holds more than ``max_pin_queue_size`` operations; a waiting pin
costs a CID in the backlog.  Time is a ``Clock``; nothing sleeps.
"""

from __future__ import annotations

import attrs

from ipfscluster.errors import QueueFull
from ipfscluster.pintracker.tracker import BACKLOG
from ipfscluster.types import PinMode
from tests.pintracker_env import S, cid, direct, everywhere, failure, local, make_env, remote, result  # noqa: F401

QUEUE = 8


def advance_until(env, condition, step=1.0, limit=100_000):
    """Advance the clock by ``step`` until ``condition()``; fail past ``limit`` steps."""
    for _ in range(limit):
        if condition():
            return
        env.clock.advance(step)
    raise AssertionError("the condition never held")


def all_pinned(env, cids):
    return lambda: all(env.status(c) is S.PINNED for c in cids)


def test_ten_times_the_queue_all_end_pinned_in_order_without_errors(make_env):
    # a sync loop is configured but the clock never reaches it
    env = make_env(latency=0.5, max_queue=QUEUE, sync_interval=3600.0)
    cids = [cid(n) for n in range(10 * QUEUE)]
    for c in cids:
        assert result(env.tracker.track(local(c))) is None
    assert env.tracker.pin_queue_size() == QUEUE
    assert env.tracker.backlog_size() == 10 * QUEUE - QUEUE - 1  # one is running
    seen = set()
    started = env.clock.seconds()

    def done():
        statuses = {i.status for i in env.all()}
        seen.update(statuses)
        assert env.tracker.pin_queue_size() <= QUEUE
        return statuses == {S.PINNED}

    advance_until(env, done, step=0.5)
    assert env.clock.seconds() - started < 3600  # no sync pass was needed
    assert not [s for s in seen if s & S.ERROR]
    assert [a for m, a in env.pin_calls()] == cids  # in arrival order, once each
    assert env.tracker.backlog_size() == 0 and env.tracker.pin_queue_size() == 0


def test_state_sync_of_ten_times_the_queue_ends_pinned(make_env):
    env = make_env(latency=0.1, max_queue=QUEUE)
    pins = [everywhere(cid(n)) for n in range(10 * QUEUE)]
    d = env.tracker.state_sync(iter(pins))
    advance_until(env, lambda: d.called, step=0.1)
    advance_until(env, all_pinned(env, [p.cid for p in pins]), step=0.1)
    assert not env.all(S.ERROR)


def test_a_waiting_pin_shows_pin_queued_and_keeps_no_operation(make_env):
    env = make_env(max_queue=1)
    env.ipfs.hang(cid(0))
    for n in range(4):
        env.tracker.track(local(cid(n)))
    info = env.info(cid(3))
    assert info.status is S.PIN_QUEUED and info.error == "" and info.attempt_count == 0
    entry = env.tracker._state.get(cid(3))
    assert entry.queued is BACKLOG  # no Operation for a waiting pin: its CID is in the backlog
    assert list(env.tracker._backlog) == [cid(2), cid(3)]
    assert env.all(S.PIN_QUEUED) and len(env.all(S.PIN_QUEUED)) == 3


def test_untracking_a_waiting_pin_drops_it_without_an_ipfs_call(make_env):
    env = make_env(max_queue=1)
    env.ipfs.hang(cid(0))
    for n in range(3):
        env.tracker.track(local(cid(n)))
    env.tracker.untrack(cid(2))
    assert env.status(cid(2)) is S.UNPINNED and env.tracker.backlog_size() == 0
    env.ipfs.release(cid(0))
    advance_until(env, all_pinned(env, [cid(0), cid(1)]))
    assert ("unpin", cid(2)) not in env.pin_calls() and ("pin", cid(2)) not in env.pin_calls()


def test_a_waiting_pin_allocated_elsewhere_becomes_remote(make_env):
    env = make_env(max_queue=1)
    env.ipfs.hang(cid(0))
    for n in range(3):
        env.tracker.track(local(cid(n)))
    env.tracker.track(remote(cid(2)))
    assert env.status(cid(2)) is S.REMOTE and env.tracker.backlog_size() == 0
    env.ipfs.release(cid(0))
    advance_until(env, all_pinned(env, [cid(0), cid(1)]))
    assert ("pin", cid(2)) not in env.pin_calls()


def test_a_pinned_cid_waiting_for_a_new_mode_is_unpinned_if_untracked(make_env):
    """A pinned CID whose pin changes (recursive -> direct) waits to be pinned
    again; untracked meanwhile, the daemon's pin is removed, not forgotten."""
    env = make_env(max_queue=1)
    env.tracker.track(direct(cid(9)))
    advance_until(env, all_pinned(env, [cid(9)]))
    env.ipfs.hang(cid(0))
    env.tracker.track(local(cid(0)))  # running
    env.tracker.track(local(cid(1)))  # fills the queue
    env.tracker.track(attrs.evolve(direct(cid(9)), mode=PinMode.RECURSIVE, max_depth=-1))
    assert env.status(cid(9)) is S.PIN_QUEUED and env.tracker.backlog_size() == 1
    # an unpin is needed, and the queue is full for it too
    assert isinstance(failure(env.tracker.untrack(cid(9))), QueueFull)
    assert env.status(cid(9)) is S.UNPIN_ERROR and env.tracker.backlog_size() == 0
    env.ipfs.release(cid(0))
    advance_until(env, all_pinned(env, [cid(0), cid(1)]))
    d = env.tracker.recover(cid(9))
    advance_until(env, lambda: d.called)
    assert env.status(cid(9)) is S.UNPINNED and ("unpin", cid(9)) in env.pin_calls()


def test_a_waiting_pin_tracked_again_keeps_its_place(make_env):
    env = make_env(max_queue=1)
    env.ipfs.hang(cid(0))
    for n in range(4):
        env.tracker.track(local(cid(n)))
    env.tracker.track(local(cid(2), name="renamed"))  # still wanted here: still waiting
    assert env.info(cid(2)).status is S.PIN_QUEUED and env.info(cid(2)).name == "renamed"
    env.ipfs.release(cid(0))
    advance_until(env, all_pinned(env, [cid(n) for n in range(4)]))
    assert [a for m, a in env.pin_calls()] == [cid(n) for n in range(4)]


def test_stopping_drops_the_backlog(make_env):
    env = make_env(max_queue=1)
    env.ipfs.hang(cid(0))
    for n in range(5):
        env.tracker.track(local(cid(n)))
    env.close()
    assert env.tracker.backlog_size() == 0
    assert all(e.queued is None for e in env.tracker._state.entries())
