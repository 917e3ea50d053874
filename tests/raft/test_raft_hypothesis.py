"""Hypothesis drives the simulator with fault schedules it can shrink (plan §4.1).

Each rule is one schedule step (a client operation or a fault, then some traffic);
the simulator checks every invariant after every event, and the teardown heals all
faults, checks convergence, acknowledged-write survival and linearizability.  A
failing schedule is shrunk by Hypothesis to a minimal list of steps.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from raft_core_net import checker_history

from ipfscluster.consensus.raft.sim import NEMESIS_FAULTS, NO_FAULTS, Faults, Sim
from ipfscluster.testing.linearizability import check_history

NODES = 5
node_index = st.integers(0, NODES - 1)


class RaftSchedule(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**32 - 1),
                faults=st.sampled_from([NO_FAULTS, NEMESIS_FAULTS,
                                        Faults(dup=0.2, reorder=0.5, reorder_ms=200)]))
    def start(self, seed, faults):
        self.sim = Sim(seed, nodes=3, spare=2, faults=faults)

    def _id(self, i):
        return self.sim.ids[i]

    @rule(ms=st.integers(1, 1500))
    def run(self, ms):
        self.sim.run_for(ms)

    @rule(kind=st.sampled_from(["pin", "unpin"]), cid=st.sampled_from("abc"),
          retries=st.integers(0, 2))
    def write(self, kind, cid, retries):
        self.sim.client_write(kind, cid, retries=retries)
        self.sim.run_for(20)

    @rule(cid=st.sampled_from("abc"))
    def read(self, cid):
        self.sim.client_read(cid)
        self.sim.run_for(20)

    @rule(i=node_index, torn=st.booleans())
    def crash(self, i, torn):
        self.sim.crash(self._id(i), torn=torn)

    @rule(i=node_index)
    def restart(self, i):
        self.sim.restart(self._id(i))

    @rule()
    def power_loss(self):
        self.sim.power_loss()

    @rule(cut=st.integers(1, NODES - 1))
    def split(self, cut):
        ids = self.sim.ids
        self.sim.partition(ids[:cut], ids[cut:])

    @rule(i=node_index)
    def isolate(self, i):
        self.sim.isolate(self._id(i))

    @rule(i=node_index, j=node_index)
    def block(self, i, j):
        if i != j:
            self.sim.block(self._id(i), self._id(j))

    @rule()
    def heal(self):
        self.sim.heal()

    @rule(i=node_index, ms=st.integers(100, 4000))
    def pause(self, i, ms):
        self.sim.pause(self._id(i), ms)

    @rule(i=node_index)
    def transfer(self, i):
        self.sim.transfer(self._id(i))

    @rule()
    def membership(self):
        self.sim._random_membership()

    def teardown(self):
        sim = getattr(self, "sim", None)
        if sim is None:
            return
        sim.settle()
        result = check_history(checker_history(sim))
        assert result.ok, (result.failing_cid, result.explanation)


RaftSchedule.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestRaftSchedule = RaftSchedule.TestCase
