"""The tracker at scale: status pages in CID order, and a state sync that shares the reactor.

- ``status_page`` hands out the local state a page at a time in binary CID order
  (the order of the shared state's ``list()``), complete, each CID once, whatever
  changes between pages;
- ``state_sync`` walks the shared state in chunks of ``STATE_SYNC_CHUNK`` pins, one
  per reactor turn; asks the daemon for its pins once and does not queue what it
  already pins; pins that do not fit in the queue wait (no line per pin);
  leaves alone what ``track``/``untrack`` changed while it ran.
"""

from __future__ import annotations

import pytest
from twisted.logger import LogLevel

from ipfscluster.cid import CID
from ipfscluster.errors import InvalidCID, ShuttingDown
from ipfscluster.pintracker.tracker import STATE_SYNC_CHUNK, STATUS_PAGE_SIZE
from ipfscluster.types import IPFSPinStatus

from tests.pintracker_env import (  # noqa: F401 - fixtures
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
)


def all_pages(tracker, limit, status_filter=None):
    """Every page of ``status_page`` until the cursor is None."""
    pages, cursor = [], None
    while True:
        items, cursor = result(tracker.status_page(cursor, limit, status_filter))
        pages.append(items)
        if cursor is None:
            return pages


def binary_order(cids):
    return sorted(cids, key=CID.to_bytes)


def pins_of(events, namespace="pintracker", level=None):
    return [e for e in events if e.get("log_namespace") == namespace
            and (level is None or e.get("log_level") == level)]


def drain(env, d, step=0.0):
    """Advance the clock by ``step`` until ``d`` fired; return its outcome."""
    out = []
    d.addBoth(out.append)
    for _ in range(10_000):
        if out:
            return out[0]
        env.clock.advance(step)
    pytest.fail("the Deferred never fired")


# --- status pages -----------------------------------------------------------------------------


def test_pages_come_in_binary_cid_order_and_are_complete(make_env):
    env = make_env(max_queue=100)
    tracked = [cid(n) for n in range(37)] + [CID.v1(0x55, cid(99).multihash)]  # a CIDv1 sorts first
    for c in tracked:
        env.tracker.track(everywhere(c))
    pages = all_pages(env.tracker, 5)
    assert [len(p) for p in pages] == [5] * 7 + [3]
    listed = [info.cid for page in pages for info in page]
    assert listed == binary_order(tracked)
    assert [i.cid for i in env.all()] == listed  # status_all: the same order


def test_the_last_page_has_no_cursor_and_an_empty_tracker_one_empty_page(env):
    assert result(env.tracker.status_page()) == ([], None)
    env.tracker.track(local(cid(1)))
    items, cursor = result(env.tracker.status_page(None, 1))
    assert [i.cid for i in items] == [cid(1)] and cursor is None


def test_cursor_is_the_text_of_the_last_cid_and_only_moves_forward(make_env):
    env = make_env()
    cids = binary_order([cid(n) for n in range(10)])
    for c in cids[::2]:
        env.tracker.track(local(c))
    first, cursor = result(env.tracker.status_page(None, 2))
    assert cursor == str(first[-1].cid) == str(cids[2])
    # changes between pages: one before the cursor (not seen), one after (seen)
    env.tracker.track(local(cids[1]))
    env.tracker.track(local(cids[9]))
    rest = [i.cid for page in all_pages_from(env.tracker, cursor, 2) for i in page]
    assert rest == [cids[4], cids[6], cids[8], cids[9]]


def all_pages_from(tracker, cursor, limit):
    pages = []
    while cursor is not None:
        items, cursor = result(tracker.status_page(cursor, limit))
        pages.append(items)
    return pages


def test_pages_filter_statuses_and_skip_untracked_entries(make_env):
    env = make_env(latency=1.0)
    env.tracker.track(local(cid(1)))  # pinning
    env.tracker.track(local(cid(2)))  # pin_queued
    env.tracker.track(remote(cid(3)))
    env.tracker.track(local(cid(4)))
    env.tracker.untrack(cid(4))  # was waiting: dropped, not listed
    queued = [i.cid for p in all_pages(env.tracker, 1, S.PIN_QUEUED) for i in p]
    assert queued == [cid(2)]
    everything = [i.cid for p in all_pages(env.tracker, 1) for i in p]
    assert sorted(everything, key=CID.to_bytes) == everything
    assert set(everything) == {cid(1), cid(2), cid(3)}


def test_page_size_is_bounded_and_a_bad_cursor_fails(env):
    for n in range(3):
        env.tracker.track(local(cid(n)))
    for n in range(3, STATUS_PAGE_SIZE + 10):
        env.tracker.track(remote(cid(n)))
    items, cursor = result(env.tracker.status_page(None, 1))
    assert len(items) == 1 and cursor == str(items[0].cid)
    items, cursor = result(env.tracker.status_page(None, 10 * STATUS_PAGE_SIZE))
    assert len(items) == STATUS_PAGE_SIZE and cursor is not None
    assert isinstance(failure(env.tracker.status_page("not-a-cid", 5)), InvalidCID)


def test_pages_after_stop_fail_with_shutting_down(make_env):
    env = make_env()
    env.close()
    assert isinstance(failure(env.tracker.status_page()), ShuttingDown)


# --- state sync in chunks -------------------------------------------------------------------


def test_state_sync_yields_to_the_reactor_between_chunks(make_env):
    env = make_env(max_queue=10 * STATE_SYNC_CHUNK)
    for n in range(2 * STATE_SYNC_CHUNK + 7):
        env.ipfs.pins[cid(n)] = IPFSPinStatus.RECURSIVE
    pins = [everywhere(cid(n)) for n in range(2 * STATE_SYNC_CHUNK + 7)]
    d = env.tracker.state_sync(iter(pins))
    fired = []
    d.addCallback(lambda acted: fired.append(acted) or acted)
    # one chunk ran in the caller's turn; the rest waits for the reactor
    assert fired == []
    assert env.tracker.tracked_count() == STATE_SYNC_CHUNK
    assert env.clock.getDelayedCalls()
    # the peer answers meanwhile
    assert env.status(cid(0)) is S.PINNED
    env.clock.advance(0)
    acted = drain(env, d)
    assert len(acted) == len(pins)
    assert env.tracker.tracked_count() == len(pins)


def test_state_sync_does_not_queue_what_the_daemon_already_pins(make_env, log_events):
    env = make_env()
    n = STATE_SYNC_CHUNK + 3
    for i in range(n):
        env.ipfs.pins[cid(i)] = IPFSPinStatus.RECURSIVE
    env.ipfs.pins[cid(n)] = IPFSPinStatus.DIRECT  # covers a direct pin only
    pins = [everywhere(cid(i)) for i in range(n)] + [local(cid(n)), direct(cid(n + 1)), remote(cid(n + 2))]
    acted = drain(env, env.tracker.state_sync(iter(pins)))
    assert len(acted) == len(pins)
    assert all(env.status(cid(i)) is S.PINNED for i in range(n))
    assert env.status(cid(n + 2)) is S.REMOTE
    # one listing of the daemon (recursive and direct), pins only for what it lacked
    assert [c for c in env.ipfs.calls if c[0] == "pin_ls"] == [("pin_ls", "recursive"), ("pin_ls", "direct")]
    assert sorted(a for m, a in env.pin_calls()) == sorted([cid(n), cid(n + 1)])
    assert env.status(cid(n)) is S.PINNED and env.status(cid(n + 1)) is S.PINNED
    summary = [e for e in pins_of(log_events, level=LogLevel.info) if "state sync" in e["log_format"]]
    assert len(summary) == 1 and summary[0]["pinned"] == n


def test_state_sync_of_settled_pins_does_not_ask_the_daemon(env):
    env.tracker.track(local(cid(1)))
    env.tracker.track(remote(cid(2)))
    assert result(env.tracker.state_sync([local(cid(1)), remote(cid(2))])) == []
    assert not [c for c in env.ipfs.calls if c[0] == "pin_ls"]


def test_state_sync_queues_everything_when_the_daemon_cannot_list(make_env, log_events):
    env = make_env(latency=1.0)
    env.ipfs.add_pin(cid(1))
    env.ipfs.set_reachable(False)
    d = env.tracker.state_sync([local(cid(1)), local(cid(2))])
    env.clock.advance(1)  # pin/ls fails: both are queued without the daemon's word
    acted = result(d)
    assert {i.cid for i in acted} == {cid(1), cid(2)}
    assert sorted(a for m, a in env.pin_calls()) == sorted([cid(1), cid(2)])
    warnings = [e for e in pins_of(log_events, level=LogLevel.warn) if "could not list" in e["log_format"]]
    assert len(warnings) == 1


def test_a_full_queue_at_state_sync_makes_pins_wait_without_a_line_per_pin(make_env, log_events):
    env = make_env(latency=1.0, max_queue=10)
    pins = [everywhere(cid(n)) for n in range(3 * STATE_SYNC_CHUNK)]
    drain(env, env.tracker.state_sync(iter(pins)), step=1.0)
    statuses = [i.status for i in env.all()]
    assert S.PIN_ERROR not in statuses
    assert env.tracker.backlog_size() + env.tracker.pin_queue_size() + env.tracker.running_count() == len(pins)
    assert pins_of(log_events, level=LogLevel.warn) == []
    summary = [e for e in pins_of(log_events, level=LogLevel.info) if "state sync:" in e["log_format"]]
    assert len(summary) == 1 and summary[0]["waiting"] > 0
    # a single track that finds the queue full waits too
    assert result(env.tracker.track(local(cid(10_000)))) is None
    assert env.status(cid(10_000)) is S.PIN_QUEUED
    assert pins_of(log_events, level=LogLevel.warn) == []


def test_changes_made_while_a_pass_runs_win_over_its_older_snapshot(make_env):
    env = make_env(max_queue=10 * STATE_SYNC_CHUNK)
    snapshot = [everywhere(cid(n)) for n in range(2 * STATE_SYNC_CHUNK)]
    env.tracker.track(local(cid(-1 % 2**32)))  # tracked before, absent from the snapshot
    late = snapshot[-1].cid
    d = env.tracker.state_sync(iter(snapshot))
    # between chunks: the CID in the second chunk is unpinned, a new one is pinned
    env.tracker.untrack(late)
    new = cid(5_000_000)
    env.tracker.track(local(new))
    drain(env, d)
    env.clock.advance(0)
    assert env.status(late) is S.UNPINNED
    assert env.status(new) is S.PINNED
    assert env.status(cid(-1 % 2**32)) is S.UNPINNED  # stale: untracked by the pass


def test_stopping_during_a_pass_ends_it_with_shutting_down(make_env):
    env = make_env(max_queue=10 * STATE_SYNC_CHUNK)
    d = env.tracker.state_sync(iter([everywhere(cid(n)) for n in range(2 * STATE_SYNC_CHUNK)]))
    out = []
    d.addBoth(out.append)
    env.close()  # asserts that no delayed call is left
    assert out and isinstance(out[0].value, ShuttingDown)


def test_passes_do_not_overlap(make_env):
    env = make_env(max_queue=10 * STATE_SYNC_CHUNK)
    first = env.tracker.state_sync(iter([everywhere(cid(n)) for n in range(2 * STATE_SYNC_CHUNK)]))
    second = env.tracker.state_sync(iter([everywhere(cid(0))]))
    order = []
    first.addCallback(lambda r: order.append("first"))
    second.addCallback(lambda r: order.append("second"))
    drain(env, second)
    assert order == ["first", "second"]
    assert env.tracker.tracked_count() == 1  # the second pass untracked the rest


def test_stopping_while_the_daemon_lists_its_pins_ends_the_pass(make_env):
    env = make_env(latency=1.0)
    d = env.tracker.state_sync([local(cid(1)), local(cid(2))])  # waits for pin/ls
    out = []
    d.addBoth(out.append)
    env.close()
    assert out and isinstance(out[0].value, ShuttingDown)
    assert env.pin_calls() == []
