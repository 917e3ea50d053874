"""MapPinTracker under random sequences of track/untrack/faults/recover/sync (hypothesis).

Invariants checked after every step: never more than ``concurrent_pins`` IPFS
operations in flight and never two for the same CID, the queue within
``max_pin_queue_size``.  At the end the faults
are cleared and the peer does what the cluster does (state sync, drain the queue,
sync with the daemon, recover errors); then the local state must agree with the
shared state and with the daemon for every CID.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.pintracker_env import S, Env, cid, direct, everywhere, local, remote

CIDS = [cid(n) for n in range(1, 6)]
PIN_KINDS = {"local": local, "remote": remote, "everywhere": everywhere, "direct": direct}


def _quiet(d):
    """Keep a Deferred's outcome (errors included) from being reported as unhandled."""
    outcome = []
    d.addBoth(outcome.append)
    return outcome


class TrackerMachine(RuleBasedStateMachine):
    env: Env

    @initialize(
        workers=st.integers(1, 3),
        latency=st.sampled_from([0.0, 1.0]),
        max_queue=st.sampled_from([2, 100]),
    )
    def setup(self, workers, latency, max_queue):
        self.workers = workers
        self.max_queue = max_queue
        self.env = Env(latency=latency, concurrent_pins=workers, max_queue=max_queue,
                       pinning_timeout="10s", unpinning_timeout="10s")
        self.shared = {}  # the shared state the consensus would hold
        self.waiting = []  # outcomes of recover() calls

    # --- what the consensus applies --------------------------------------------------

    @rule(c=st.sampled_from(CIDS), kind=st.sampled_from(sorted(PIN_KINDS)))
    def track(self, c, kind):
        pin = PIN_KINDS[kind](c)
        self.shared[c] = pin
        _quiet(self.env.tracker.track(pin))

    @rule(c=st.sampled_from(CIDS))
    def untrack(self, c):
        self.shared.pop(c, None)
        _quiet(self.env.tracker.untrack(c))

    # --- the daemon misbehaves -------------------------------------------------------

    @rule(c=st.sampled_from(CIDS), knob=st.sampled_from(["fail", "unfail", "hang", "release"]))
    def daemon_fault(self, c, knob):
        getattr(self.env.ipfs, knob)(c)

    @rule(reachable=st.booleans())
    def reachable(self, reachable):
        self.env.ipfs.set_reachable(reachable)

    @rule(c=st.sampled_from(CIDS))
    def lose_pin(self, c):
        self.env.ipfs.remove_pin(c)

    @rule(steps=st.integers(1, 3))
    def time_passes(self, steps):
        self.env.clock.pump([1] * steps)

    @rule()
    def much_time_passes(self):
        self.env.clock.advance(11)  # past both operation timeouts

    # --- operators and periodic work ---------------------------------------------------

    @rule(c=st.sampled_from(CIDS))
    def recover(self, c):
        self.waiting.append(_quiet(self.env.tracker.recover(c)))

    @rule()
    def recover_all(self):
        _quiet(self.env.tracker.recover_all())

    @rule(c=st.sampled_from(CIDS))
    def sync(self, c):
        _quiet(self.env.tracker.sync(c))

    @rule()
    def sync_all(self):
        _quiet(self.env.tracker.sync_all())

    @rule()
    def state_sync(self):
        _quiet(self.env.tracker.state_sync(self.shared.values()))

    # --- invariants --------------------------------------------------------------------

    @invariant()
    def bounded_concurrency(self):
        assert self.env.ipfs.in_flight <= self.workers
        assert self.env.ipfs.max_in_flight <= self.workers
        assert self.env.ipfs.max_in_flight_per_cid <= 1  # never a pin racing an unpin
        assert self.env.tracker.running_count() <= self.workers
        assert self.env.tracker.pin_queue_size() <= self.max_queue

    @invariant()
    def statuses_are_single_known_ones(self):
        allowed = (S.PINNED, S.PINNING, S.PIN_ERROR, S.UNPINNING, S.UNPIN_ERROR, S.REMOTE,
                   S.PIN_QUEUED, S.UNPIN_QUEUED)
        for info in self.env.all():
            assert info.status in allowed

    # --- convergence ---------------------------------------------------------------------

    def _wait(self, d):
        """Run the clock until ``d`` fires; return its outcome."""
        outcome = _quiet(d)
        for _ in range(50):
            if outcome:
                return outcome[0]
            self.env.clock.pump([1])
        raise AssertionError("the call never answered")

    def _drain(self):
        for _ in range(200):
            if not self.env.tracker.running_count() and not self.env.tracker.pin_queue_size():
                return
            self.env.clock.pump([1])
        raise AssertionError("the queue did not drain")

    def teardown(self):
        env = self.env
        try:
            env.ipfs.unfail()
            env.ipfs.set_reachable(True)
            env.ipfs.release()
            self._drain()
            self._wait(env.tracker.state_sync(self.shared.values()))
            for _ in range(10):  # a small queue may need several rounds
                self._drain()
                self._wait(env.tracker.sync_all())
                self._wait(env.tracker.recover_all())
                self._drain()
                if not env.all(S.ERROR | S.QUEUED):
                    break
            assert all(outcome for outcome in self.waiting), "a recover never answered"
            for c in CIDS:
                status = env.status(c)
                pin = self.shared.get(c)
                if pin is None:
                    assert status is S.UNPINNED, (c, status)
                    assert not env.ipfs.is_pinned(c)
                elif pin.is_remote_for(env.tracker.peer_id):
                    assert status is S.REMOTE, (c, status)
                    assert not env.ipfs.is_pinned(c)
                else:
                    assert status is S.PINNED, (c, status)
                    assert env.ipfs.is_pinned(c)
            # a last sync finds nothing to change
            assert self._wait(env.tracker.sync_all()) == []
        finally:
            env.close()


TrackerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_tracker_state_machine = TrackerMachine.TestCase
