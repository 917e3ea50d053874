"""Tests of the Twisted Raft driver (ipfscluster.consensus.raft.node).

Nodes run on a ``twisted.internet.task.Clock`` and talk through :class:`MemoryNetwork`,
an in-memory transport with per-link cuts and a fixed delivery delay; storage is
real SQLite in ``tmp_path``.
"""

from __future__ import annotations

import json
import random

import pytest
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from ipfscluster.consensus.raft import messages
from ipfscluster.consensus.raft.node import RaftNode
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
from ipfscluster.errors import (
    CommitOutcomeUnknown,
    LeadershipTransferInProgress,
    NotLeader,
    ProposalDropped,
    RaftNodeFailed,
    ShuttingDown,
    StorageCorrupted,
)

TICK = 0.01  # clock step of the tests


class MemoryNetwork:
    """Delivers messages between nodes after ``delay`` seconds on ``clock``."""

    def __init__(self, clock, delay=0.002):
        self.clock = clock
        self.delay = delay
        self.nodes = {}
        self.cut = set()  # (src, dst) pairs that lose everything
        self.sent = []  # (src, decoded message) for inspection

    def transport(self, src):
        return _Link(self, src)

    def isolate(self, node_id):
        for other in self.nodes:
            if other != node_id:
                self.cut |= {(node_id, other), (other, node_id)}

    def heal(self):
        self.cut.clear()

    def _send(self, src, dst, data):
        self.sent.append((src, messages.decode(data)))
        if (src, dst) not in self.cut:
            self.clock.callLater(self.delay, self._arrive, src, dst, data)

    def _arrive(self, src, dst, data):
        node = self.nodes.get(dst)
        if node is not None and (src, dst) not in self.cut:
            node.receive(data)


class _Link:
    def __init__(self, network, src):
        self.network, self.src = network, src

    def send(self, peer_id, data):
        self.network._send(self.src, peer_id, data)


class SetMachine:
    """A pinset as a state machine: entries are b"pin:X[:tag]" / b"unpin:X[:tag]"."""

    def __init__(self):
        self.pins = set()
        self.applied = []
        self.log = []  # data of every entry applied here, in order

    def apply(self, entry):
        op, cid = entry.data.decode().split(":")[:2]
        (self.pins.add if op == "pin" else self.pins.discard)(cid)
        self.applied.append(entry.index)
        self.log.append(entry.data)
        return len(self.pins)

    def snapshot(self):
        log = [d.decode() for d in self.log]
        return json.dumps({"pins": sorted(self.pins), "log": log}).encode()

    def snapshot_chunks(self):
        """The state as of now, handed out lazily in 64-byte pieces."""
        data = self.snapshot()
        self.chunks_started = getattr(self, "chunks_started", 0) + 1
        return (data[i:i + 64] for i in range(0, len(data), 64))

    def restore(self, data):
        state = json.loads(data)
        self.pins = set(state["pins"])
        self.log = [d.encode() for d in state["log"]]


class Cluster:
    def __init__(self, tmp_path, ids=("A", "B", "C"), **options):
        self.tmp_path = tmp_path
        self.clock = Clock()
        self.net = MemoryNetwork(self.clock)
        self.ids = list(ids)
        self.options = options
        self.nodes = {}
        self.machines = {}
        for i, node_id in enumerate(ids):
            self.start(node_id, voters=ids, seed=i)

    def start(self, node_id, voters=None, seed=0):
        machine = SetMachine()
        node = RaftNode(node_id, clock=self.clock, transport=self.net.transport(node_id),
                        data_folder=str(self.tmp_path / node_id), state_machine=machine,
                        voters=voters if voters is not None else self.ids,
                        rng=random.Random(seed), **self.options)
        node.start()
        self.nodes[node_id] = node
        self.machines[node_id] = machine
        self.net.nodes[node_id] = node
        return node

    def crash(self, node_id):
        self.nodes[node_id].crash()
        del self.net.nodes[node_id]

    def run_until(self, predicate, seconds=30.0):
        deadline = self.clock.seconds() + seconds
        while not predicate():
            assert self.clock.seconds() < deadline, "condition not reached in %ss" % seconds
            self.clock.advance(TICK)

    def leaders(self):
        return [n for n in self.nodes.values() if n.running and n.is_leader]

    def leader(self, seconds=30.0):
        self.run_until(lambda: len(self.leaders()) == 1, seconds)
        return self.leaders()[0]

    def commit(self, data, seconds=30.0):
        """Propose on the current leader and run until it is acknowledged."""
        got = []
        d = self.leader().propose(data)
        d.addBoth(got.append)
        self.run_until(lambda: got, seconds)
        if isinstance(got[0], Exception) or hasattr(got[0], "raiseException"):
            got[0].raiseException()
        return got[0]

    def stop(self):
        for node in self.nodes.values():
            node.stop()
        # drain message deliveries and timers left on the test clock
        for call in self.clock.getDelayedCalls():
            call.cancel()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


def outcome(d):
    got = []
    d.addBoth(got.append)
    return got


def test_three_nodes_elect_one_leader_quickly(cluster):
    leader = cluster.leader(seconds=5.0)  # election timeout 1s: 1-2s, plus slack
    assert cluster.clock.seconds() <= 4.0
    cluster.run_until(lambda: all(n.leader_id == leader.id for n in cluster.nodes.values()))
    terms = {n.core.term for n in cluster.nodes.values()}
    assert len(terms) == 1
    # the leader's term and vote are durable
    assert leader.storage.hard_state() == (leader.core.term, leader.id)


def test_commit_replicates_to_every_node(cluster):
    for i in range(5):
        assert cluster.commit(b"pin:Qm%d" % i) == i + 1
    cluster.run_until(lambda: all(m.pins == {"Qm%d" % i for i in range(5)}
                                  for m in cluster.machines.values()))
    applied = [m.applied for m in cluster.machines.values()]
    assert applied[0] == applied[1] == applied[2]


def test_proposals_of_one_turn_are_one_fsync(cluster):
    leader = cluster.leader()
    cluster.commit(b"pin:warmup")
    cluster.run_until(lambda: all(n.applied == leader.applied for n in cluster.nodes.values()))
    before = leader.storage.synced_transactions
    last = leader.storage.last_index()
    results = [outcome(leader.propose(b"pin:Qm%d" % i)) for i in range(100)]
    cluster.clock.advance(0)  # one reactor turn
    assert leader.storage.last_index() == last + 100
    assert leader.storage.synced_transactions == before + 1
    cluster.run_until(lambda: all(results))
    assert [r[0] for r in results] == list(range(2, 102))


def test_follower_refuses_proposals_naming_the_leader(cluster):
    leader = cluster.leader()
    cluster.run_until(lambda: all(n.leader_id == leader.id for n in cluster.nodes.values()))
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    got = outcome(follower.propose(b"pin:x"))
    cluster.clock.advance(0)
    assert got[0].check(NotLeader) and got[0].value.leader == leader.id


def check_durable_before_sent(node, dst, msg, checked) -> None:
    """Assert that a granted vote / successful append ``msg`` is durable on ``node``."""
    if isinstance(msg, messages.VoteResponse) and msg.granted and not msg.pre_vote:
        assert node.storage.hard_state() == (msg.term, dst)
        checked.append(msg)
    if isinstance(msg, messages.AppendResponse) and msg.success:
        assert node.storage.last_index() >= msg.index
        checked.append(msg)


def test_votes_and_entries_are_durable_before_they_are_sent(tmp_path):
    c = Cluster(tmp_path)
    checked = []
    original = c.net._send

    def checking_send(src, dst, data):
        check_durable_before_sent(c.nodes[src], dst, messages.decode(data), checked)
        original(src, dst, data)

    c.net._send = checking_send
    try:
        c.commit(b"pin:one")
        c.run_until(lambda: any(isinstance(m, messages.AppendResponse) for m in checked))
        assert any(isinstance(m, messages.VoteResponse) for m in checked)
    finally:
        c.stop()


def test_leader_crash_and_restart_loses_nothing_acknowledged(cluster):
    acked = set()
    for i in range(10):
        cluster.commit(b"pin:a%d" % i)
        acked.add("a%d" % i)
    old = cluster.leader()
    # some proposals in flight when the leader dies: they may or may not survive
    in_flight = [outcome(old.propose(b"pin:maybe%d" % i)) for i in range(3)]
    cluster.crash(old.id)
    assert all(r and r[0].check(ShuttingDown) for r in in_flight)
    new = cluster.leader()
    assert new.id != old.id
    for i in range(10):
        cluster.commit(b"pin:b%d" % i)
        acked.add("b%d" % i)
    restarted = cluster.start(old.id)
    cluster.run_until(lambda: restarted.applied == new.applied and restarted.leader_id == new.id)
    states = [m.pins for m in cluster.machines.values()]
    assert acked <= states[0] and states[0] == states[1] == states[2]
    assert restarted.core.term == new.core.term


def test_whole_cluster_restart_from_disk(cluster, tmp_path):
    for i in range(20):
        cluster.commit(b"pin:p%d" % i)
    cluster.commit(b"unpin:p3")
    expected = cluster.machines[cluster.leader().id].pins
    for node_id in list(cluster.nodes):
        cluster.crash(node_id)
    for i, node_id in enumerate(cluster.ids):
        cluster.start(node_id, seed=10 + i)
    leader = cluster.leader()
    cluster.commit(b"pin:after")  # a new term commits the old entries too
    cluster.run_until(lambda: all(n.applied == leader.applied for n in cluster.nodes.values()))
    for machine in cluster.machines.values():
        assert machine.pins == expected | {"after"}


def test_minority_leader_cannot_acknowledge(cluster):
    old = cluster.leader()
    cluster.net.isolate(old.id)
    stranded = outcome(old.propose(b"pin:lost"))
    cluster.run_until(lambda: any(n.is_leader for n in cluster.nodes.values() if n is not old))
    new = next(n for n in cluster.nodes.values() if n is not old and n.is_leader)
    got = outcome(new.propose(b"pin:kept"))
    cluster.run_until(lambda: got)
    assert not stranded  # never acknowledged while cut off
    cluster.net.heal()
    cluster.run_until(lambda: stranded and old.applied == new.applied)
    assert stranded[0].check(ProposalDropped)
    assert "lost" not in cluster.machines[old.id].pins and "kept" in cluster.machines[old.id].pins


def test_when_leader_changes_and_when_term_applied(cluster):
    """A follower's waiters for "another leader" and "an entry of a later term applied
    here": a time without a leader does not count; the first one fires when the new
    leader is known, the second once its first entry is applied (from then on an entry
    of the old term is applied here or can never commit)."""
    old = cluster.leader()
    follower = next(n for n in cluster.nodes.values() if n is not old)
    cluster.commit(b"pin:Qm1")
    cluster.run_until(lambda: follower.applied == old.applied)
    term = follower.core.term
    moved = outcome(follower.when_leader_changes(old.id))
    fenced = outcome(follower.when_term_applied(term + 1))
    assert outcome(follower.when_term_applied(term)) == [None]
    cluster.net.isolate(follower.id)  # its own timeout: no leader for a while
    cluster.run_until(lambda: follower.leader_id is None)
    cluster.net.heal()
    cluster.run_until(lambda: follower.leader_id == old.id, seconds=5.0)
    assert not moved and not fenced
    cluster.crash(old.id)
    cluster.run_until(lambda: moved)
    assert moved[0] not in (None, old.id) and follower.core.term > term
    cluster.run_until(lambda: fenced)
    assert follower.core.term_at(follower.applied) > term


def test_snapshot_compaction_and_restart_from_snapshot(tmp_path):
    c = Cluster(tmp_path, snapshot_threshold=20, snapshot_interval=5.0, trailing_logs=5)
    try:
        for i in range(40):
            c.commit(b"pin:s%d" % i)
        c.commit(b"unpin:s0")
        leader = c.leader()
        c.run_until(lambda: all(n.snapshot_index >= 20 for n in c.nodes.values()), seconds=30)
        assert leader.storage.first_index() > 10
        assert leader.snapshots.latest().index == leader.snapshot_index
        expected = set(c.machines[leader.id].pins)
        victim = next(i for i in c.ids if i != leader.id)
        c.crash(victim)
        c.start(victim)
        assert c.machines[victim].pins >= {"s%d" % i for i in range(1, 20)}
        c.run_until(lambda: c.nodes[victim].applied == leader.applied)
        assert c.machines[victim].pins == expected
    finally:
        c.stop()


def test_lagging_follower_catches_up_by_install_snapshot(tmp_path):
    c = Cluster(tmp_path, snapshot_threshold=10, snapshot_interval=2.0, trailing_logs=2)
    try:
        leader = c.leader()
        lagging = next(i for i in c.ids if i != leader.id)
        c.crash(lagging)
        payload = b"x" * 3000
        for i in range(60):
            c.commit(b"pin:big%d-" % i + payload)
        c.run_until(lambda: leader.storage.first_index() > 20, seconds=30)
        restarted = c.start(lagging)
        c.run_until(lambda: restarted.applied == leader.applied, seconds=30)
        assert c.machines[lagging].pins == c.machines[leader.id].pins
        assert any(isinstance(m, messages.InstallSnapshot) and m.dst == lagging
                   for _, m in c.net.sent)
        assert restarted.snapshots.latest() is not None
        got = c.commit(b"pin:after-snapshot")
        c.run_until(lambda: "after-snapshot" in c.machines[lagging].pins)
        assert got == len(c.machines[leader.id].pins)
    finally:
        c.stop()


def test_add_a_fourth_voter(tmp_path):
    c = Cluster(tmp_path)
    try:
        for i in range(5):
            c.commit(b"pin:m%d" % i)
        leader = c.leader()
        configs = []
        leader.on_config = configs.append
        newcomer = c.start("D", voters=())  # joins with no membership of its own
        got = outcome(leader.change_membership("add", "D"))
        c.run_until(lambda: got)
        assert got[0] is None
        assert set(leader.voters) == {"A", "B", "C", "D"} and configs[-1] == ("A", "B", "C", "D")
        c.run_until(lambda: newcomer.applied == leader.applied)
        assert c.machines["D"].pins == c.machines[leader.id].pins
        assert set(newcomer.voters) == {"A", "B", "C", "D"}
    finally:
        c.stop()


def test_read_barrier(cluster):
    leader = cluster.leader()
    cluster.commit(b"pin:r")
    got = outcome(leader.read_barrier())
    cluster.run_until(lambda: got)
    assert got[0] >= 1
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    assert outcome(follower.read_barrier())[0].check(NotLeader)


def test_leadership_transfer(cluster):
    leader = cluster.leader()
    cluster.commit(b"pin:t")
    target = next(i for i in cluster.ids if i != leader.id)
    assert leader.transfer_leadership(target) == target
    cluster.run_until(lambda: cluster.nodes[target].is_leader, seconds=5)


def test_malformed_messages_are_dropped(cluster):
    node = cluster.nodes["A"]
    warnings = []
    observer = warnings.append
    globalLogPublisher.addObserver(observer)
    try:
        node.receive(b"\x01\xffgarbage")
    finally:
        globalLogPublisher.removeObserver(observer)
    assert any("malformed raft message" in e.get("log_format", "") for e in warnings)
    assert cluster.leader() is not None  # still works


def test_messages_claiming_another_source_are_dropped(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    term = follower.core.term
    forged = messages.encode(messages.Heartbeat("intruder", follower.id, term + 5, 0))
    follower.receive(forged, sender="someone-else")
    cluster.clock.advance(0)
    assert follower.core.term == term  # a higher term would have been adopted
    follower.receive(forged, sender="intruder")
    cluster.clock.advance(0)
    assert follower.core.term == term + 5  # the same bytes from their real sender


def test_stopped_node_fails_calls(cluster):
    node = cluster.nodes["A"]
    node.stop()
    assert outcome(node.propose(b"pin:x"))[0].check(ShuttingDown)
    assert outcome(node.when_leader())[0].check(ShuttingDown)


@pytest.mark.allow_logged_errors
def test_storage_failure_stops_the_node(cluster, monkeypatch):
    leader = cluster.leader()
    pending = outcome(leader.propose(b"pin:doomed"))

    def broken_save(**kwargs):
        raise StorageCorrupted("disk on fire", path="x", index=None)

    monkeypatch.setattr(leader.storage, "save", broken_save)
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        cluster.clock.advance(0)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    failures = [e for e in logged if e.get("log_failure") is not None]
    assert len(failures) == 1 and failures[0]["log_failure"].check(StorageCorrupted)
    assert "stops" in failures[0]["log_format"]
    assert not leader.running and isinstance(leader.failed, StorageCorrupted)
    assert pending[0].check(RaftNodeFailed)
    assert outcome(leader.propose(b"pin:more"))[0].check(RaftNodeFailed)


# --- client histories under faults, checked for linearizability ---------------------

NO_EFFECT = (NotLeader, ProposalDropped, LeadershipTransferInProgress)
UNKNOWN = (ShuttingDown, CommitOutcomeUnknown, RaftNodeFailed)


class Clients:
    """Issues pin/unpin/status/ls operations and records their history."""

    def __init__(self, cluster, rnd):
        self.c, self.rnd = cluster, rnd
        self.records = []  # dicts: kind, cid, call, ret, result, tag, dropped

    def issue(self):
        c, rnd = self.c, self.rnd
        running = [n for n in c.nodes.values() if n.running]
        leaders = [n for n in running if n.is_leader]
        node = rnd.choice(leaders if leaders and rnd.random() < 0.9 else running)
        kind = rnd.choice([PIN, UNPIN, STATUS, STATUS, LS])
        rec = {"kind": kind, "cid": rnd.choice(["c0", "c1", "c2"]), "call": c.clock.seconds(),
               "ret": None, "result": None, "tag": len(self.records), "dropped": False}
        self.records.append(rec)
        if kind in (PIN, UNPIN):
            d = node.propose(b"%s:%s:%d" % (kind.encode(), rec["cid"].encode(), rec["tag"]))
            d.addCallbacks(lambda _: self._returned(rec, None), self._failed, errbackArgs=(rec,))
        else:
            machine = c.machines[node.id]
            d = node.read_barrier()
            d.addCallbacks(lambda _: self._returned(rec, self._read(rec, machine)),
                           self._failed, errbackArgs=(rec,))

    @staticmethod
    def _read(rec, machine):
        return rec["cid"] in machine.pins if rec["kind"] == STATUS else frozenset(machine.pins)

    def _returned(self, rec, result):
        rec["ret"], rec["result"] = self.c.clock.seconds(), result

    def _failed(self, failure, rec):
        if failure.check(*NO_EFFECT):
            rec["dropped"] = True
        else:
            failure.trap(*UNKNOWN)
            rec["ret"] = TIMED_OUT

    def history(self):
        ops = []
        for rec in self.records:
            if rec["dropped"] or (rec["kind"] in (STATUS, LS) and rec["ret"] in (None, TIMED_OUT)):
                continue
            ret = TIMED_OUT if rec["ret"] is None else rec["ret"]
            ops.append((rec["tag"], Operation(rec["tag"], rec["kind"], rec["cid"], rec["call"],
                                              ret, rec["result"])))
        return dict(ops)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_client_history_linearizable_under_crashes_and_partitions(tmp_path, seed):
    import random as _random

    rnd = _random.Random(seed)
    c = Cluster(tmp_path, snapshot_threshold=15, snapshot_interval=3.0, trailing_logs=5)
    clients = Clients(c, rnd)
    down = []
    try:
        c.leader()
        for _ in range(250):
            action = rnd.random()
            if action < 0.55:
                clients.issue()
            elif action < 0.59 and not down:
                victim = rnd.choice(c.ids)
                c.crash(victim)
                down.append(victim)
            elif action < 0.65 and down:
                c.start(down.pop(), seed=rnd.randrange(1000))
            elif action < 0.68:
                c.net.isolate(rnd.choice(c.ids))
            elif action < 0.75:
                c.net.heal()
            for _ in range(rnd.randrange(1, 30)):
                c.clock.advance(TICK)
        c.net.heal()
        while down:
            c.start(down.pop(), seed=rnd.randrange(1000))
        leader = c.leader()
        c.commit(b"pin:final")  # commits everything of earlier terms too
        c.run_until(lambda: all(n.applied == leader.applied for n in c.nodes.values()))
        history = clients.history()
        result = check_history(list(history.values()))
        assert result.ok, result.explanation
        final_log = c.machines[leader.id].log
        assert all(m.pins == c.machines[leader.id].pins for m in c.machines.values())
        committed = [int(data.split(b":")[2]) for data in final_log if data.count(b":") == 2]
        writes = [history[tag] for tag in committed if tag in history]
        assert len(writes) == len(committed)  # nothing committed was reported dropped
        acked = {t for t, o in history.items() if o.kind in (PIN, UNPIN) and o.ret != TIMED_OUT}
        assert acked <= set(committed)  # no acknowledged write lost
        reads = [o for o in history.values() if o.kind == LS]
        prefix = check_prefix_reads(writes, reads)
        assert prefix.ok, prefix.explanation
        assert len(acked) > 20 and len(reads) > 5  # the run did real work
    finally:
        c.stop()


def test_background_snapshot_does_not_stop_applies(tmp_path):
    # one voter: a proposal commits and applies in the reactor turn it is handled
    c = Cluster(tmp_path, ids=("A",), snapshot_threshold=30, snapshot_interval=1.0,
                trailing_logs=3)
    try:
        node, machine = c.nodes["A"], c.machines["A"]
        for i in range(40):
            c.commit(b"pin:bg%02d-" % i + b"y" * 200)
        steps, finished = [], []
        original_step, original_finish = node._snapshot_step, node._finish_snapshot

        def step():  # a client request arrives in every turn of the serialisation
            steps.append(node.propose(b"pin:during%d" % len(steps)))
            original_step()

        def finish(index, data, started):
            finished.append((index, machine.applied[-1]))
            return original_finish(index, data, started)

        node._snapshot_step, node._finish_snapshot = step, finish
        c.run_until(lambda: finished, seconds=5)
        (snap_index, applied_at_finish), = finished
        assert len(steps) > 10  # the serialisation took many turns ...
        assert applied_at_finish > snap_index + 5  # ... and applies went on meanwhile
        c.run_until(lambda: all(d.called for d in steps))
        assert node.snapshot_index == snap_index == node.snapshots.latest().index
        assert node.storage.first_index() == snap_index - 3 + 1
        expected = set(machine.pins)
        c.crash("A")
        restarted = c.start("A")
        assert restarted.snapshot_index == snap_index
        c.run_until(lambda: restarted.is_leader and c.machines["A"].pins == expected)
    finally:
        c.stop()
