"""The named scenarios T1, T8–T18, T20, T21, T23–T27 of the Raft test plan (§4.2).

They run on the seeded simulator (:mod:`ipfscluster.consensus.raft.sim`), which
checks every safety invariant after every event; each test adds the assertions of
its row of the plan.  Virtual time is in milliseconds; one tick is 100 ms, so the
election timeout is 1,000 ms (randomised up to 2,000 ms) and heartbeats go every
100 ms.
"""

from __future__ import annotations

import random
import time

import pytest
from raft_core_net import Net, checker_history

from ipfscluster.consensus.raft.core import FOLLOWER, LEADER, RaftCore
from ipfscluster.consensus.raft.messages import Entry
from ipfscluster.consensus.raft.sim import Disk, Faults, Sim, load_disk
from ipfscluster.errors import ConfigChangeInProgress, LeadershipTransferInProgress
from ipfscluster.testing.linearizability import Operation, check_history

ELECTION_MS = 1000


def leader_id(sim):
    ld = sim.leader()
    return ld.id if ld is not None else None


def wait_leader(sim, max_ms=10_000):
    assert sim.run_until(lambda: sim.leader() is not None, max_ms), "no leader elected"
    return sim.leader()


def write_and_wait(sim, n, cid_prefix="c", max_ms=5_000):
    ops = [sim.client_write("pin", "%s%d" % (cid_prefix, i)) for i in range(n)]
    assert sim.run_until(lambda: all(o.ok for o in ops), max_ms), [o.ok for o in ops]
    return ops


def assert_linearizable(sim):
    result = check_history(checker_history(sim))
    assert result.ok, (sim.seed, result.failing_cid, result.explanation)


# --- election ---------------------------------------------------------------------


def test_t1_election_basic_3():
    """A leader appears within 2x the election timeout plus slack; exactly one leader
    per term (checked on every event); followers learn the leader id."""
    for seed in range(100):
        sim = Sim(seed, nodes=3)
        # randomised timeouts are below 2x the election timeout; slack for the rounds
        assert sim.run_until(lambda: sim.leader() is not None, 2 * ELECTION_MS + 300, 5)
        ld = sim.leader()
        sim.run_for(300)
        assert {n.core.lead for n in sim.nodes.values()} == {ld.id}
        assert all(len(set(v for t, v in sim.checker.leaders.items() if t == term)) == 1
                   for term in sim.checker.leaders)


def test_t8_heartbeats_suppress_elections():
    """10^4 ticks of a healthy cluster: no election after the first, the term stays."""
    sim = Sim(8, nodes=3)
    ld = wait_leader(sim)
    term = ld.core.term
    sim.run_for(10_000 * 100)
    assert sim.leader() is ld and ld.core.term == term
    assert all(n.core.term == term for n in sim.nodes.values())
    assert len(sim.checker.leaders) == 1
    assert sim.counts["VoteRequest"] <= 4  # only the first election's


def test_t9_split_vote_resolves():
    """Every node times out on the same tick: randomised timeouts produce a leader
    within 3 election rounds in more than 99% of 1,000 seeds."""
    ok = 0
    for seed in range(1000):
        net = Net(("a", "b", "c"), seed=seed)
        for core in net.cores.values():
            core.election_elapsed = core.randomized_timeout - 1
        rounds = 0
        while net.leader() is None and rounds < 200:
            net.tick()
            rounds += 1
        assert net.leader() is not None
        if net.leader().term <= 3:
            ok += 1
    assert ok > 990, ok


def test_t10_prevote_rejoin_no_disruption():
    """A follower isolated for 10 election timeouts rejoins without inflating its
    term or deposing the leader."""
    sim = Sim(10, nodes=3)
    ld = wait_leader(sim)
    term = ld.core.term
    follower = next(n for n in sim.nodes.values() if n is not ld)
    sim.isolate(follower.id)
    sim.run_for(10 * ELECTION_MS)
    assert follower.core.term == term  # pre-vote: no term inflation
    sim.heal()
    sim.run_for(3 * ELECTION_MS)
    assert sim.leader() is ld and ld.core.term == term
    assert follower.core.lead == ld.id and len(sim.checker.leaders) == 1


def test_prevote_off_shows_the_disruption_the_test_catches():
    """Control experiment for T10: without pre-vote the same schedule does raise the
    term, so T10's assertions are able to fail."""
    sim = Sim(10, nodes=3, pre_vote=False, check_quorum=False)
    ld = wait_leader(sim)
    follower = next(n for n in sim.nodes.values() if n is not ld)
    term = ld.core.term
    sim.isolate(follower.id)
    sim.run_for(10 * ELECTION_MS)
    assert follower.core.term > term


def test_t11_checkquorum_stepdown():
    """A leader cut off from the majority steps down within one election timeout
    (plus a tick); the minority side never commits."""
    sim = Sim(11, nodes=5)
    ld = wait_leader(sim)
    sim.run_for(500)
    others = [n for n in sim.ids if n != ld.id]
    sim.partition([ld.id, others[0]], others[1:])
    commit = ld.core.commit
    minority = sim.nodes[others[0]]
    minority_commit = minority.core.commit
    op = sim.client_write("pin", "minority", target=ld.id)
    stepped = sim.run_until(lambda: ld.core.role != LEADER, ELECTION_MS + 200, 5)
    assert stepped
    sim.run_for(5 * ELECTION_MS)
    assert ld.core.commit == commit and minority.core.commit == minority_commit
    assert op.ok is not True


def test_t12_minority_partition_no_ack():
    """Writes to the old leader in the minority are never acknowledged; the majority
    elects a leader and makes progress; after healing the old leader's uncommitted
    suffix is gone."""
    sim = Sim(12, nodes=5)
    old = wait_leader(sim)
    sim.run_for(300)
    others = [n for n in sim.ids if n != old.id]
    sim.partition([old.id, others[0]], others[1:])
    lost = [sim.client_write("pin", "lost%d" % i, target=old.id) for i in range(5)]
    sim.run_for(50)
    assert old.core.last_index > old.core.commit  # appended, not committed
    assert sim.run_until(lambda: sim.leader() not in (None, old), 5 * ELECTION_MS)
    new = sim.leader()
    assert new.id in others[1:]
    write_and_wait(sim, 3, "maj")
    assert not any(o.ok for o in lost)
    sim.settle()
    assert [e.term for e in old.core.entries(1, old.core.last_index + 1)] == \
        [e.term for e in new.core.entries(1, new.core.last_index + 1)]
    assert not any(o.req in old.sm.sessions for o in lost)


def test_t13_leader_crash_mid_replication():
    """The leader crashes after a local append that no follower received: the entry
    is never acknowledged; it is either committed later or lost; nothing acknowledged
    is lost."""
    outcomes = set()
    for seed in range(30):
        sim = Sim(seed, nodes=3)
        ld = wait_leader(sim)
        acked = write_and_wait(sim, 3)
        for o in sim.ids:
            if o != ld.id:
                sim.block(ld.id, o)
        op = sim.client_write("pin", "mid", target=ld.id)
        sim.run_for(5)
        assert ld.core.last_index > ld.core.commit and not op.ok
        sim.crash(ld.id)
        sim.heal()
        sim.run_for(random.Random(seed).randint(0, 3000))
        sim.restart(ld.id)
        sim.settle()
        assert op.ok is not True
        state = sim.nodes[sim.ids[0]].sm.sessions
        outcomes.add(op.req in state)
        assert all(o.req in state for o in acked)
    assert False in outcomes  # the lost case happens (and was never acknowledged)


# --- catch-up ------------------------------------------------------------------------


def test_t14_follower_catchup_from_log():
    """A follower down for fewer than trailing_logs entries catches up through
    AppendEntries with the conflict hint (few rejections, no snapshot)."""
    sim = Sim(14, nodes=3, snapshot_threshold=10_000, trailing_logs=10_000,
              max_append_entries=8)
    ld = wait_leader(sim)
    f = next(n for n in sim.ids if n != ld.id)
    sim.crash(f)
    write_and_wait(sim, 60)
    rejections_before = sim.counts["AppendResponse"]
    sim.restart(f)
    sim.settle()
    assert sim.nodes[f].sm.digest() == ld.sm.digest()
    assert sim.counts["InstallSnapshot"] == 0
    assert sim.counts["AppendResponse"] - rejections_before < 40  # 60+ entries, 8 per message


def test_t14_fast_backoff_hint_skips_whole_terms():
    """The conflict hint lets the leader skip a whole conflicting term per round trip."""
    from ipfscluster.consensus.raft.messages import AppendResponse, HardState
    from raft_core_net import entries_with_terms

    net = Net(("L", "Z", "F"), pre_vote=False)
    leader_log = entries_with_terms([1] * 3 + [4] * 50)
    follower_log = entries_with_terms([1] * 3 + [2] * 40 + [3] * 40)
    net.disk["L"] = [HardState(5, None, 3), leader_log]
    net.disk["Z"] = [HardState(5, None, 3), leader_log]
    net.disk["F"] = [HardState(5, None, 3), follower_log]
    for nid in ("L", "Z", "F"):
        net.restart(nid)
    net.campaign("L")
    net.tick(times=3)
    rejects = [m for m in net.sent if isinstance(m, AppendResponse) and not m.success
               and m.src == "F"]
    assert net.cores["F"].last_index == net.cores["L"].last_index
    assert len(rejects) <= 3


def test_t15_follower_catchup_via_snapshot_resumes_after_dropped_chunk():
    """A follower behind the compaction point gets a chunked InstallSnapshot; a dropped
    chunk is resent from the follower's offset; states match; replication continues
    from the snapshot index."""
    sim = Sim(15, nodes=3, snapshot_threshold=20, trailing_logs=5, snapshot_chunk_size=64)
    ld = wait_leader(sim)
    f = next(n for n in sim.ids if n != ld.id)
    sim.crash(f)
    write_and_wait(sim, 80)
    assert ld.core.first_index > 1
    dropped = []

    def drop_one_chunk(m):
        if type(m).__name__ == "InstallSnapshot" and m.offset > 0 and not dropped:
            dropped.append(m)
            return True
        return False

    sim.drop_filter = drop_one_chunk
    sim.restart(f)
    sim.settle()
    node = sim.nodes[f]
    assert dropped and node.sm.digest() == ld.sm.digest()
    assert node.core.snapshot_meta.index >= ld.core.first_index - 1
    assert sim.counts["InstallSnapshot"] > 3  # several 64-byte chunks
    # later entries flow by AppendEntries again
    snaps = sim.counts["InstallSnapshot"]
    write_and_wait(sim, 3, "after")
    sim.run_for(500)
    assert sim.counts["InstallSnapshot"] == snaps
    assert node.sm.digest() == ld.sm.digest()


def test_snapshot_chunk_out_of_order_is_answered_with_expected_offset():
    from ipfscluster.consensus.raft.messages import InstallSnapshot, SnapshotResponse
    from raft_core_net import drain, make_core

    f = make_core("b", ("a", "b", "c"))
    data = bytes(range(200))
    chunk = lambda off, done=False: InstallSnapshot("a", "b", 1, 10, 1, ("a", "b", "c"), 0,
                                                     off, 200, data[off:off + 100], done)
    f.step(chunk(0))
    assert drain(f).messages[-1] == SnapshotResponse("b", "a", 1, 10, 100, False)
    f.step(chunk(0))  # duplicate
    assert drain(f).messages[-1].next_offset == 100
    f.step(InstallSnapshot("a", "b", 1, 10, 1, ("a", "b", "c"), 0, 150, 200, b"x", False))
    assert drain(f).messages[-1].next_offset == 100
    f.step(chunk(100, done=True))
    rd = drain(f)
    assert rd.snapshot.data == data and rd.snapshot.meta.index == 10
    assert rd.messages[-1].done and f.commit == 10 and f.first_index == 11


def test_t16_snapshot_while_writing():
    """Snapshots taken under a sustained write load do not stall applies; a full
    restart from snapshot + trailing log gives the identical state."""
    sim = Sim(16, nodes=3, snapshot_threshold=25, trailing_logs=10)
    wait_leader(sim)
    ops = []
    for i in range(150):
        ops.append(sim.client_write("pin" if i % 3 else "unpin", "c%d" % (i % 17)))
        sim.run_for(7)
    assert sim.run_until(lambda: all(o.ok for o in ops), 5000)
    assert all(n.core.snapshot_meta.index > 0 for n in sim.nodes.values())
    before = {n.id: (n.sm.applied, n.sm.digest()) for n in sim.nodes.values()}
    for nid in sim.ids:
        sim.crash(nid)
    for nid in sim.ids:
        sim.restart(nid)
    for n in sim.nodes.values():
        # the state machine is rebuilt from the snapshot; the core re-delivers the rest
        assert n.sm.applied == n.core.snapshot_meta.index
    sim.settle()
    ld = sim.leader()
    assert all(n.sm.digest() == ld.sm.digest() for n in sim.nodes.values())
    assert all(o.req in ld.sm.sessions for o in ops)


def test_t16_compaction_cost_is_small():
    """compact() on a 20,000-entry log takes well under 50 ms (applies are not blocked)."""
    core = RaftCore("a", ("a",), rng=random.Random(0), trailing_logs=1000)
    for _ in range(core.randomized_timeout):
        core.tick()
    for i in range(20):
        core.propose_batch([b"x" * 50] * 1000)
    rd = core.ready()
    core.advance(rd)
    assert core.applied == core.last_index == 20_001
    started = time.perf_counter()
    res = core.compact(core.applied, b"state" * 1000)
    assert time.perf_counter() - started < 0.05
    assert res.first_index == 20_001 - 1000 + 1 and core.last_index == 20_001


# --- disks -------------------------------------------------------------------------


def test_disk_model_torn_tail_recovers_to_last_valid_record():
    rng = random.Random(17)
    for trial in range(200):
        disk = Disk()
        disk.write(1, b"durable-1")
        disk.write(2, b"durable-2")
        disk.fsync()
        durable = list(disk.records())
        for i in range(rng.randint(1, 4)):
            disk.write(2, b"tail-%d" % i * rng.randint(1, 30))
        disk.crash(rng, torn=True)
        recs = disk.records()
        assert recs[:2] == durable
        assert all(p.startswith(b"tail-") for _, p in recs[2:])
        assert len(disk.data) == sum(9 + len(p) for _, p in recs)  # garbage cut off


def test_disk_model_ready_batch_is_all_or_nothing():
    """A Ready that replaces a conflicting suffix and raises the commit index is one
    batch: every torn cut gives the old state or the new one, never the new commit
    over the old entries (which would apply entries that were never committed)."""
    from ipfscluster.consensus.raft.messages import HardState
    from ipfscluster.consensus.raft.sim import entries_record, hard_record

    old = [Entry(i, 1, 0, b"old%d" % i) for i in (1, 2, 3)]
    new = [Entry(i, 2, 0, b"new%d" % i) for i in (2, 3)]
    base = Disk()
    base.write_batch([entries_record(old), hard_record(HardState(1, None, 1))])
    base.fsync()
    base.write_batch([entries_record(new), hard_record(HardState(2, None, 3))])
    outcomes = set()
    for cut in range(base.synced, len(base.data) + 1):
        disk = Disk()
        disk.data = bytearray(base.data[:cut])
        hs, _, entries, _ = load_disk(disk)
        outcomes.add((hs.commit, tuple(e.term for e in entries)))
    assert outcomes == {(1, (1, 1, 1)), (3, (1, 2, 2))}


def test_t17_torn_write_recovery():
    """Crash during a log append (slow fsync), tail cut at a random byte and garbled:
    recovery stops at the last valid record, nothing acknowledged is lost, the node
    rejoins."""
    slow = Faults(fsync_outlier=1.0)
    tore = 0
    for seed in range(20):
        sim = Sim(seed, nodes=3, faults=slow)
        wait_leader(sim, 30_000)
        acked = []
        rng = random.Random(seed)
        for _ in range(6):
            acked.append(sim.client_write("pin", "c%d" % rng.randrange(9)))
            victim = sim.nodes[rng.choice(sim.ids)]
            sim.run_until(lambda: victim.busy is not None, 2000, 1)
            if victim.busy is not None and len(victim.disk.data) > victim.disk.synced:
                tore += 1
            sim.crash(victim.id, torn=True)
            sim.run_for(rng.randint(0, 500))
            sim.restart(victim.id)
            sim.run_for(1500)
        sim.settle(120_000)
        state = sim.leader().sm.sessions
        assert all(o.req in state for o in sim.acked_writes())
    assert tore > 20  # crashes really hit un-synced tails


def test_t18_power_loss_unsynced_dropped():
    """All nodes lose their un-synced data at once at random points: nothing
    acknowledged is lost (fsync before ack on leader and followers, term/vote fsync)."""
    faults = Faults(slow_fsync=0.3, fsync_outlier=0.05, drop=0.02, torn=0.5)
    acked = losses = 0
    for seed in range(40):
        sim = Sim(seed, nodes=3, faults=faults)
        wait_leader(sim)
        rng = random.Random(seed)
        for step in range(150):
            sim.client_write(rng.choice(("pin", "unpin")), "c%d" % rng.randrange(6))
            sim.run_for(rng.randint(1, 60))
            if rng.random() < 0.03:
                losses += 1
                sim.power_loss()
        sim.settle(120_000)  # raises if an acknowledged write is missing
        acked += len(sim.acked_writes())
    assert acked > 40 * 15 and losses > 40


# --- membership ------------------------------------------------------------------------


def test_t20_add_voter_catchup():
    """A 4th node added under load catches up; one change in flight; the configuration
    is in effect on append; the quorum becomes 3 of 4."""
    sim = Sim(20, nodes=3, spare=1, snapshot_threshold=30, trailing_logs=10)
    ld = wait_leader(sim)
    write_and_wait(sim, 40)
    ops = [sim.client_write("pin", "load%d" % i) for i in range(10)]
    assert sim.conf_change("add", "n4")
    assert ld.core.voters == ("n1", "n2", "n3", "n4")  # on append, before commit
    with pytest.raises(ConfigChangeInProgress):
        ld.core.propose_conf_change("remove", "n3")
    sim.settle()
    assert sim.nodes["n4"].sm.digest() == ld.sm.digest()
    assert all(o.ok for o in ops)
    # quorum 3 of 4: two followers down -> no commit; one back -> commit
    ld = sim.leader()
    down = [n for n in sim.ids if n != ld.id][:2]
    for nid in down:
        sim.crash(nid)
    op = sim.client_write("pin", "q", target=ld.id)
    sim.run_for(800)
    assert not op.ok
    sim.restart(down[0])
    assert sim.run_until(lambda: op.ok, 5000)


def test_t21_remove_leader():
    """RemoveServer(leader): the leader commits the change, then steps down; the rest
    elect a leader; the removed node does not disrupt them."""
    sim = Sim(21, nodes=3, spare=0)
    ld = wait_leader(sim)
    write_and_wait(sim, 5)
    assert sim.conf_change("remove", ld.id)
    assert sim.run_until(lambda: ld.core.role == FOLLOWER, 3000, 1)
    assert ld.core.commit >= ld.core.config_index  # committed before stepping down
    assert sim.run_until(lambda: sim.leader() not in (None, ld), 5000)
    new = sim.leader()
    assert ld.id not in new.core.voters
    term = new.core.term
    write_and_wait(sim, 3, "after")
    sim.run_for(10 * ELECTION_MS)
    assert sim.leader() is new and new.core.term == term
    assert ld.core.role == FOLLOWER


def test_t21_removed_node_that_missed_its_removal_does_not_disrupt():
    sim = Sim(22, nodes=4)
    ld = wait_leader(sim)
    write_and_wait(sim, 1)
    victim = next(n for n in sim.ids if n != ld.id)
    sim.isolate(victim)
    assert sim.conf_change("remove", victim)
    assert sim.run_until(lambda: ld.core.commit >= ld.core.config_index, 3000)
    term = ld.core.term
    sim.heal()
    sim.run_for(10 * ELECTION_MS)
    assert sim.leader() is ld and ld.core.term == term


# --- transfer ----------------------------------------------------------------------


def test_t23_leadership_transfer():
    """To an up-to-date follower: proposals are refused meanwhile and the target leads
    within an election timeout.  To a lagging follower: it catches up first.  If the
    target dies the transfer aborts and the leader serves again."""
    sim = Sim(23, nodes=3)
    ld = wait_leader(sim)
    write_and_wait(sim, 3)
    target = next(n for n in sim.ids if n != ld.id)
    assert sim.transfer(target)
    with pytest.raises(LeadershipTransferInProgress):
        ld.core.propose(b"x|pin|y")
    assert sim.run_until(lambda: leader_id(sim) == target, ELECTION_MS, 1)
    # lagging target
    ld = sim.leader()
    lag = next(n for n in sim.ids if n != ld.id)
    sim.crash(lag)
    write_and_wait(sim, 30, "lag")
    sim.restart(lag)
    assert sim.transfer(lag)
    assert sim.run_until(lambda: leader_id(sim) == lag, 2 * ELECTION_MS, 1)
    new = sim.leader()
    assert new.sm.applied >= 30 and new.core.term_at(new.core.last_index) == new.core.term
    # the target dies: the transfer aborts and the leader accepts proposals again
    target = next(n for n in sim.ids if n != new.id)
    sim.crash(target)
    sim.block(new.id, target)
    assert sim.transfer(target)
    assert new.core.transferee == target
    assert sim.run_until(lambda: new.core.transferee is None, 2 * ELECTION_MS, 10)
    assert sim.leader() is new
    write_and_wait(sim, 2, "again")


# --- reads, duplicates, skew, retries ----------------------------------------------


def test_t24_linearizable_reads_under_partitions():
    """pin/unpin/status mixed with ReadIndex reads under partitions pass the per-CID
    linearizability checker."""
    checked = 0
    for seed in range(25):
        sim = Sim(seed, nodes=5, faults=Faults(drop=0.02, reorder=0.1))
        rng = random.Random(seed)
        for step in range(250):
            cid = "c%d" % rng.randrange(3)
            r = rng.random()
            if r < 0.4:
                sim.client_write(rng.choice(("pin", "unpin")), cid)
            elif r < 0.85:
                sim.client_read(cid)
            elif r < 0.92:
                sim._random_partition()
            else:
                sim.heal()
            sim.run_for(rng.randint(1, 50))
        sim.settle()
        assert_linearizable(sim)
        checked += sum(1 for o in sim.history if o.kind == "read" and o.ok)
    assert checked > 1000


def test_t24_deposed_leader_never_serves_stale_read():
    sim = Sim(24, nodes=3)
    old = wait_leader(sim)
    write_and_wait(sim, 1)
    sim.isolate(old.id)
    stale = sim.client_read("c0", target=old.id)
    assert sim.run_until(lambda: sim.leader() not in (None, old), 5000)
    sim.client_write("unpin", "c0")
    sim.run_for(3000)
    assert stale.ok is not True
    sim.heal()
    sim.settle()
    assert_linearizable(sim)


def test_checker_catches_a_stale_read():
    """Control: the history check fails when a read returns a value overwritten before
    the read was called (so T24 can fail)."""
    ops = [Operation(1, "pin", "c", 0, 1), Operation(2, "unpin", "c", 2, 3),
           Operation(3, "status", "c", 4, 5, True)]
    assert not check_history(ops).ok


def test_t25_dup_reorder_delay_messages():
    """10% duplication, heavy reordering and random delays: every invariant holds,
    applies are idempotent, late AppendEntries never truncate committed entries."""
    faults = Faults(dup=0.1, reorder=0.5, reorder_ms=300, max_delay=30, drop=0.02)
    for seed in range(40):
        sim = Sim(seed, nodes=3, faults=faults)
        rng = random.Random(seed)
        for _ in range(150):
            sim.client_write(rng.choice(("pin", "unpin")), "c%d" % rng.randrange(5),
                             retries=1)
            sim.run_for(rng.randint(1, 30))
        sim.settle()
        for n in sim.nodes.values():
            assert n.sm.effects == len(n.sm.sessions)
        assert_linearizable(sim)


def test_t26_clock_skew_and_pauses():
    """Tick rates 0.5x–1.5x, pauses longer than 2x the election timeout and 400 ms
    fsync stalls: safety holds, and the cluster makes progress afterwards."""
    faults = Faults(skew=True, fsync_outlier=0.03, slow_fsync=0.1)
    for seed in range(25):
        sim = Sim(seed, nodes=3, faults=faults)
        rng = random.Random(seed)
        for step in range(150):
            sim.client_write("pin", "c%d" % rng.randrange(5))
            if rng.random() < 0.05:
                sim.pause(rng.choice(sim.ids), rng.randint(2 * ELECTION_MS + 1, 4000))
            sim.run_for(rng.randint(1, 50))
        sim.settle()
        ticks = {n.tick_ms for n in sim.nodes.values()}
        assert min(ticks) >= 50 and max(ticks) <= 150
        after = write_and_wait(sim, 2, "progress")
        assert all(o.ok for o in after)


def test_t27_client_retry_idempotency():
    """Clients time out and retry the same request id while leadership moves: exactly
    one effect per request id; the history passes with indeterminate operations."""
    retried = dups = 0
    for seed in range(30):
        sim = Sim(seed, nodes=3, faults=Faults(drop=0.05, reorder=0.2), client_timeout=300)
        rng = random.Random(seed)
        for step in range(200):
            sim.client_write(rng.choice(("pin", "unpin")), "c%d" % rng.randrange(4),
                             retries=3)
            r = rng.random()
            if r < 0.03:
                sim.transfer(rng.choice(sim.ids))
            elif r < 0.05:
                ld = sim.leader()
                if ld is not None:
                    sim.crash(ld.id)
            elif r < 0.1:
                for nid in sim.ids:
                    sim.restart(nid)
            sim.run_for(rng.randint(1, 40))
        sim.settle()
        retried += sum(1 for line in sim.trace if line.endswith("retry"))
        for n in sim.nodes.values():
            assert n.sm.effects == len(n.sm.sessions)  # one effect per request id
        dups += sum(n.sm.duplicates for n in sim.nodes.values())
        assert_linearizable(sim)
    assert retried > 100 and dups > 0


def test_session_table_makes_a_duplicate_request_a_no_op():
    from ipfscluster.consensus.raft.sim import PinStateMachine

    sm = PinStateMachine()
    sm.apply(Entry(1, 1, 0, b"r1|pin|a"))
    sm.apply(Entry(2, 1, 0, b"r2|unpin|a"))
    sm.apply(Entry(3, 1, 0, b"r1|pin|a"))  # the retry of r1 committed again
    assert sm.pins == set() and sm.effects == 2
