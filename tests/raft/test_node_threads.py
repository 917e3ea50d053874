"""RaftNode with durable saves in the reactor's thread pool (a real reactor).

The thread pool is played by :class:`ThreadedClock`: a ``Clock`` that also provides
``IReactorThreads`` and keeps the work handed to ``callInThread`` until the test runs
it, so the order "send, save, step a response" is decided by the test, one step at
a time.
"""

from __future__ import annotations

import random
import threading

from twisted.internet.interfaces import IReactorThreads
from twisted.internet.task import Clock
from zope.interface import implementer

from ipfscluster.consensus.raft import messages
from ipfscluster.consensus.raft.node import RaftNode
from ipfscluster.errors import ShuttingDown
from tests.raft.test_node import (
    TICK,
    Cluster,
    MemoryNetwork,
    SetMachine,
    check_durable_before_sent,
    outcome,
)


@implementer(IReactorThreads)
class ThreadedClock(Clock):
    """A Clock whose 'thread pool' runs jobs only when told to."""

    def __init__(self):
        super().__init__()
        self.jobs = []

    def callInThread(self, f, *args, **kwargs):
        self.jobs.append((f, args, kwargs))

    def callFromThread(self, f, *args, **kwargs):
        self.callLater(0, f, *args, **kwargs)

    def run_jobs(self, owner=None):
        """Run the queued jobs (only those of node ``owner`` when given)."""
        keep = []
        for f, args, kwargs in self.jobs:
            if owner is None or f.__self__ is owner:
                f(*args, **kwargs)
            else:
                keep.append((f, args, kwargs))
        self.jobs = keep


class ThreadedCluster(Cluster):
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.clock = ThreadedClock()
        self.net = MemoryNetwork(self.clock)
        self.ids = ["A", "B", "C"]
        self.options = {}
        self.nodes, self.machines = {}, {}
        for i, node_id in enumerate(self.ids):
            self.start(node_id, voters=self.ids, seed=i)

    def start(self, node_id, voters=None, seed=0):
        machine = SetMachine()
        node = RaftNode(node_id, clock=self.clock, transport=self.net.transport(node_id),
                        data_folder=str(self.tmp_path / node_id), state_machine=machine,
                        voters=voters, rng=random.Random(seed))
        node.start()
        self.nodes[node_id] = node
        self.machines[node_id] = machine
        self.net.nodes[node_id] = node
        return node

    def run_until(self, predicate, seconds=30.0):
        deadline = self.clock.seconds() + seconds
        while not predicate():
            assert self.clock.seconds() < deadline, "condition not reached in %ss" % seconds
            self.clock.run_jobs()
            self.clock.advance(TICK)

    def stop(self):
        self.clock.run_jobs()  # a node waits for its save in flight when it stops
        super().stop()


def test_saves_in_threads_keep_every_durability_promise(tmp_path):
    c = ThreadedCluster(tmp_path)
    early, checked = [], []
    original = c.net._send

    def checking_send(src, dst, data):
        msg = messages.decode(data)
        node = c.nodes[src]
        check_durable_before_sent(node, dst, msg, checked)
        if isinstance(msg, messages.AppendEntries) and msg.entries:
            if node.storage.last_index() < msg.entries[-1].index:
                early.append(msg)  # a leader's append sent before its own save
        original(src, dst, data)

    c.net._send = checking_send
    try:
        for i in range(10):
            c.commit(b"pin:Qm%d" % i)
        c.run_until(lambda: all(m.pins == {"Qm%d" % i for i in range(10)}
                                for m in c.machines.values()))
        assert checked and early
        assert all(isinstance(m, messages.AppendEntries) for m in early)
    finally:
        c.stop()


def save_in_flight(c):
    """Elect, commit entry 2, propose entry 3 and run the leader's turn: its save of
    entry 3 is queued (not run).  Returns the leader and the proposal's outcome."""
    leader = c.leader()
    c.commit(b"pin:warmup")
    c.run_until(lambda: all(n.applied == 2 for n in c.nodes.values()))
    got = outcome(leader.propose(b"pin:x"))
    c.clock.advance(0)  # the leader's turn: appends sent, its save queued
    return leader, got


def save_in_real_thread(c, node):
    """Run ``node``'s queued save in a real thread (started); returns the thread."""
    [job] = [j for j in c.clock.jobs if j[0].__self__ is node]
    c.clock.jobs.remove(job)
    f, args, kwargs = job
    worker = threading.Thread(target=f, args=args, kwargs=kwargs)
    worker.start()
    return worker


def test_leader_steps_no_response_before_its_own_save(tmp_path):
    c = ThreadedCluster(tmp_path)
    try:
        leader, got = save_in_flight(c)
        last, commit = 2, leader.commit
        assert leader.storage.last_index() == last
        followers = [n for n in c.nodes.values() if n is not leader]
        for _ in range(20):  # followers save and answer; the leader's save waits
            for f in followers:
                c.clock.run_jobs(owner=f)
            c.clock.advance(0.001)
        assert all(f.storage.last_index() == last + 1 for f in followers)
        assert leader.commit == commit and not got
        c.clock.run_jobs(owner=leader)
        c.run_until(lambda: got)
        assert got == [2] and leader.commit == last + 1 == 3
    finally:
        c.stop()


def test_a_direct_core_call_waits_for_the_save_in_flight(tmp_path):
    c = ThreadedCluster(tmp_path)
    try:
        leader, got = save_in_flight(c)
        worker = save_in_real_thread(c, leader)  # a real thread: take_snapshot must wait for it, not race it
        assert leader.take_snapshot(force=True)
        worker.join()
        assert leader.storage.last_index() == 3  # the save finished first
        assert leader.snapshot_index == leader.applied == 2
        c.clock.advance(0)  # the save's own wake-up finds its Ready already finished
        c.run_until(lambda: got)
        assert got == [2]
        c.run_until(lambda: all(n.applied == 3 for n in c.nodes.values()))
    finally:
        c.stop()


def test_stop_waits_for_the_save_in_flight_and_keeps_it(tmp_path):
    c = ThreadedCluster(tmp_path)
    try:
        leader, got = save_in_flight(c)
        worker = save_in_real_thread(c, leader)
        leader.stop()  # waits for the save, snapshots what was applied, closes
        worker.join()
        assert got[0].check(ShuttingDown)
        assert leader.snapshot_index == 2
        c.clock.advance(0)  # the save's wake-up arrives after the stop: ignored
        back = c.start(leader.id, voters=c.ids)
        assert back.storage.last_index() == 3  # the entry saved during the stop
    finally:
        c.stop()
