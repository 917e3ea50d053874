"""Tests of IConsensus over Raft (ipfscluster.consensus.raft.consensus).

Three (or four) RaftConsensus peers on a ``Clock``, real SQLite in ``tmp_path``, and
an in-memory RPC client that routes calls to the other peers' ``rpc_*`` handlers
after a small delay (and can cut peers off).
"""

from __future__ import annotations

import hashlib
import os
import shutil

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import implementer
from zope.interface.verify import verifyObject

from ipfscluster.cid import CID
from ipfscluster.config.durations import Duration
from ipfscluster.config.raft import RaftConfig
from ipfscluster.consensus.raft.consensus import RaftConsensus, decode_op, encode_op
from ipfscluster.errors import (
    ConfigError,
    InvalidInput,
    NoLeader,
    NotFound,
    OperationTimeout,
    PeerUnreachable,
    ShuttingDown,
    UnknownCommand,
)
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.interfaces import IConsensus, IState
from ipfscluster.types import Pin

TICK = 0.01
PEERS = [peer_id_from_public_key(bytes([i]) * 32) for i in range(1, 6)]


def cid(n):
    return CID.v0(hashlib.sha256(b"%d" % n).digest())


def pin(n):
    return Pin.new(cid(n))


@implementer(IState)
class DictState:
    """The smallest IState: CID -> Pin, snapshots as encoded log operations."""

    version = 1

    def __init__(self):
        self.pins = {}

    def add(self, p):
        self.pins[p.cid] = p

    def rm(self, c):
        if self.pins.pop(c, None) is None:
            raise NotFound("not pinned")

    def get(self, c):
        return self.pins[c]

    def has(self, c):
        return c in self.pins

    def list(self, pin_type=None):
        return iter(sorted(self.pins.values(), key=lambda p: str(p.cid)))

    def count(self):
        return len(self.pins)

    def snapshot(self, fileobj):
        for p in self.list():
            fileobj.write(encode_op("pin", p) + b"\n")
        return len(self.pins)

    def restore(self, fileobj):
        self.pins = {}
        for line in fileobj.read().splitlines():
            self.add(decode_op(line)[1])
        return len(self.pins)


class Net:
    """In-memory RPC between consensus peers."""

    def __init__(self, clock, delay=0.002):
        self.clock = clock
        self.delay = delay
        self.peers = {}
        self.down = set()
        #: peer -> Raft messages to it held back (in order) until :meth:`release`
        self.held: dict[str, list] = {}
        #: (src, dst) links that lose everything (a blackhole: calls only time out),
        #: and links that lose only Raft messages
        self.cut: set[tuple[str, str]] = set()
        self.raft_cut: set[tuple[str, str]] = set()
        #: peers of an older release: they have no Consensus.ReadIndex
        self.older: set[str] = set()

    def blackhole(self, peer_id):
        """Cut ``peer_id`` off both ways; what is on the way is lost too."""
        for other in self.peers:
            if other != peer_id:
                self.cut |= {(peer_id, other), (other, peer_id)}

    def lost(self, src, dst, service):
        return (src, dst) in self.cut or (service == "Raft" and (src, dst) in self.raft_cut)

    def release(self, peer_id, count=None):
        """Deliver the first ``count`` held messages (all of them and stop holding
        when None), one by one, a delay apart."""
        held = self.held.get(peer_id, [])
        if count is None:
            self.held.pop(peer_id, None)
            count = len(held)
        runs, held[:count] = held[:count], []
        for n, run in enumerate(runs, 1):
            self.clock.callLater(n * self.delay, run)

    def client(self, src):
        return _RPC(self, src)


class _RPC:
    def __init__(self, net, src):
        self.net, self.local_peer = net, src

    def call(self, peer_id, service, method, arg=None, timeout=None):
        net = self.net
        d = defer.Deferred()
        target = net.peers.get(peer_id)
        if target is None or {peer_id, self.local_peer} & net.down:
            net.clock.callLater(net.delay, d.errback, PeerUnreachable("cut off"))
            return d
        handler = {
            "Raft.Message": target.rpc_raft_message,
            "Consensus.LogPin": target.rpc_log_pin,
            "Consensus.LogUnpin": target.rpc_log_unpin,
            "Consensus.AddPeer": target.rpc_add_peer,
            "Consensus.RmPeer": target.rpc_rm_peer,
            "Consensus.Peers": target.rpc_peers,
            "Consensus.ReadIndex": target.rpc_read_index,
        }["%s.%s" % (service, method)]

        if (service, method) == ("Consensus", "ReadIndex") and peer_id in net.older:
            handler = _unknown_command

        def run():
            if net.lost(self.local_peer, peer_id, service):
                return
            result = defer.maybeDeferred(handler, self.local_peer, arg)
            result.addBoth(lambda r: net.clock.callLater(net.delay, answer, r))

        def answer(result):
            if not net.lost(peer_id, self.local_peer, service):
                _fire(d, result)

        if service == "Raft" and peer_id in net.held:
            net.held[peer_id].append(run)
        else:
            net.clock.callLater(net.delay, run)
        if timeout:
            d.addTimeout(timeout, net.clock, onTimeoutCancel=lambda *_: Failure(OperationTimeout()))
        return d

    def call_multiple(self, peer_ids, service, method, arg=None, timeout=None):
        raise NotImplementedError


def _unknown_command(caller, arg):
    raise UnknownCommand("no handler for Consensus.ReadIndex; is it running another ipfscluster release?")


def _fire(d, result):
    if d.called:
        return
    if isinstance(result, Failure):
        d.errback(result)
    else:
        d.callback(result)


def config(**overrides):
    values = {k: Duration.parse(v) if isinstance(v, str) else v for k, v in overrides.items()}
    return attrs.evolve(RaftConfig(), **values)


class Peers:
    def __init__(self, tmp_path, count=3, **cfg):
        self.tmp_path = tmp_path
        self.clock = Clock()
        self.net = Net(self.clock)
        self.ids = PEERS[:count]
        self.config = config(**cfg)
        self.services = {}
        for peer_id in self.ids:
            self.start(peer_id)

    def start(self, peer_id, peers=None):
        state = DictState()
        c = RaftConsensus(peer_id=peer_id, config=self.config,
                          data_folder=str(self.tmp_path / peer_id[-6:]), state=state,
                          rpc=self.net.client(peer_id), clock=self.clock,
                          peers=self.ids if peers is None else peers)
        c.applied = []
        c.machine.on_apply = lambda op, p, c=c: c.applied.append((op, p.cid))
        c.startService()
        self.services[peer_id] = c
        self.net.peers[peer_id] = c
        return c

    def kill(self, peer_id):
        c = self.services.pop(peer_id)
        del self.net.peers[peer_id]
        c.node.crash()
        c._stopping = True

    def run(self, d, seconds=30.0):
        got = []
        d.addBoth(got.append)
        deadline = self.clock.seconds() + seconds
        while not got:
            assert self.clock.seconds() < deadline, "no result in %ss" % seconds
            self.clock.advance(TICK)
        if isinstance(got[0], Failure):
            got[0].raiseException()
        return got[0]

    def settle(self, predicate, seconds=30.0):
        deadline = self.clock.seconds() + seconds
        while not predicate():
            assert self.clock.seconds() < deadline
            self.clock.advance(TICK)

    def leader(self):
        return self.run(next(iter(self.services.values())).wait_for_leader())

    def stop(self):
        for c in list(self.services.values()):
            self.run(c.stopService())
        for call in self.clock.getDelayedCalls():
            call.cancel()


@pytest.fixture
def peers(tmp_path):
    p = Peers(tmp_path)
    yield p
    p.stop()


def test_provides_iconsensus(peers):
    for c in peers.services.values():
        assert verifyObject(IConsensus, c)


def test_ready_leader_and_peers(peers):
    for c in peers.services.values():
        assert peers.run(c.ready()) is None
    leaders = {peers.run(c.leader()) for c in peers.services.values()}
    assert len(leaders) == 1 and leaders <= set(peers.ids)
    assert peers.run(peers.services[peers.ids[0]].peers()) == sorted(peers.ids)
    leader = peers.services[leaders.pop()]
    peers.run(leader.log_pin(pin(5)))
    for c in peers.services.values():  # leader: ReadIndex; followers: leader contact
        peers.run(c.wait_for_sync())
        assert c.state.has(cid(5))


def test_wait_for_sync_on_a_lagging_follower_sees_what_committed_before(peers):
    """The follower's read point is the leader's ReadIndex, not the commit index of
    the next leader message it gets (sent before the entry committed, it would
    let "already pinned" be answered from a state that lacks an unpin)."""
    leader = peers.leader()
    follower = next(p for p in peers.ids if p != leader)
    lagging = peers.services[follower]
    peers.net.held[follower] = []  # the leader's appends to it wait in the network
    peers.run(peers.services[leader].log_pin(pin(3)))  # committed by the other two
    assert not lagging.state.has(cid(3))
    synced = lagging.wait_for_sync()
    peers.clock.advance(1.0)
    assert not synced.called  # the leader answered, the entry is not applied here yet
    # the oldest held message, sent before the entry committed, arrives first
    peers.net.release(follower, 1)
    peers.clock.advance(1.0)
    assert not synced.called and not lagging.state.has(cid(3))
    peers.net.release(follower)
    peers.run(synced)
    assert lagging.state.has(cid(3))


def test_wait_for_sync_through_a_leader_of_an_older_release(peers, log_events):
    """A leader without Consensus.ReadIndex (a rolling upgrade): the follower falls
    back to the next leader message's commit index and warns once per leader."""
    leader = peers.leader()
    for c in peers.services.values():  # readiness syncs too: done before the test
        peers.run(c.ready())
    follower = peers.services[next(p for p in peers.ids if p != leader)]
    peers.net.older.add(leader)
    peers.run(peers.services[leader].log_pin(pin(6)))
    peers.run(follower.wait_for_sync())  # the weaker sync point, not an error
    peers.run(follower.wait_for_sync())
    warnings = [e for e in log_events if "has no Consensus.ReadIndex" in e.get("log_format", "")]
    assert len(warnings) == 1 and warnings[0]["leader"] == leader


def test_wait_for_sync_retries_when_the_leader_is_gone(tmp_path):
    p = Peers(tmp_path, wait_for_leader_timeout="20s")
    try:
        leader = p.leader()
        follower = next(i for i in p.ids if i != leader)
        p.run(p.services[leader].log_pin(pin(4)))
        p.kill(leader)
        p.run(p.services[follower].wait_for_sync())  # asks the next leader
        assert p.services[follower].state.has(cid(4))
        assert p.leader() != leader
    finally:
        p.stop()


@pytest.mark.parametrize("compacted", [False, True], ids=["by-append", "by-snapshot"])
def test_follower_with_a_wiped_data_folder_is_ready_only_once_caught_up(tmp_path, compacted):
    """A follower restarted on an empty Raft folder gets the state on the idle cluster
    (no new write), and says "ready" only once it holds what was committed."""
    p = Peers(tmp_path, trailing_logs=0, snapshot_threshold=1)
    try:
        leader = p.leader()
        for n in range(5):
            p.run(p.services[leader].log_pin(pin(n)))
        follower = next(i for i in p.ids if i != leader)
        folder = p.services[follower].data_folder
        core = p.services[leader].node.core
        # the leader knows the follower has everything (nothing left to send it)
        p.settle(lambda: core._progress[follower].match == core.last_index)
        if compacted:
            assert p.services[leader].node.take_snapshot(force=True)
        p.kill(follower)
        shutil.rmtree(folder)
        last_index = p.services[leader].node.core.last_index
        started = p.clock.seconds()
        back = p.start(follower)
        seen = []
        p.run(back.ready().addCallback(lambda _: seen.append(back.state.count())))
        assert seen == [5]
        assert p.clock.seconds() - started < 3.0
        assert {q.cid for q in back.state.list()} == {cid(n) for n in range(5)}
        assert p.services[leader].node.core.last_index == last_index  # nothing written
        assert back.node.snapshot_index == (back.node.applied if compacted else 0)
    finally:
        p.stop()


def _ops(c, n):
    return [op for op, got in c.applied if got == cid(n)]


def test_pin_forwarded_to_a_leader_cut_off_moves_to_the_new_leader(peers):
    """The old leader is blackholed (calls to it only time out, after
    network_timeout = 10 s): the forwarded pin moves to the new leader as soon as
    the follower knows it, and the old leader steps down by check-quorum."""
    old = peers.leader()
    follower = next(p for p in peers.ids if p != old)
    peers.settle(lambda: peers.services[follower].node.leader_id == old)
    peers.net.blackhole(old)
    cut_at = peers.clock.seconds()
    pending = peers.services[follower].log_pin(pin(1))
    # check-quorum: no answer from a majority within an election timeout (1 s)
    peers.settle(lambda: not peers.services[old].node.is_leader, seconds=1.3)
    peers.run(pending, seconds=4.0)  # an election (1-2 s) and a heartbeat, not 10 s
    assert peers.clock.seconds() - cut_at < 3.0
    new = peers.services[follower].node.leader_id
    assert new not in (None, old)
    peers.net.cut = set()
    peers.settle(lambda: all(c.state.has(cid(1)) for c in peers.services.values()))
    for c in peers.services.values():
        assert _ops(c, 1) == ["pin"]


def _unpin_through_a_leader_that_is_cut_off(peers, replicated):
    """Unpin from a follower through the leader; the leader appends the entry (and
    replicates it to both followers or to none), then loses all its links before
    it hears an acknowledgement.  Returns the follower's result and how long it took
    from the cut."""
    old = peers.leader()
    follower = next(p for p in peers.ids if p != old)
    others = [p for p in peers.ids if p != old]
    peers.run(peers.services[old].log_pin(pin(2)))
    peers.settle(lambda: all(c.state.has(cid(2)) for c in peers.services.values()))
    index = peers.services[old].node.core.last_index + 1
    for o in others:
        peers.net.raft_cut.add((o, old))  # no acknowledgement reaches the leader
        if not replicated:
            peers.net.raft_cut.add((old, o))
    result = []
    peers.services[follower].log_unpin(pin(2)).addBoth(result.append)
    peers.settle(lambda: peers.services[old].node.core.last_index == index)
    if replicated:
        peers.settle(lambda: all(peers.services[o].node.core.last_index == index
                                 for o in others))
    peers.net.blackhole(old)
    cut_at = peers.clock.seconds()
    peers.settle(lambda: result, seconds=20.0)
    took = peers.clock.seconds() - cut_at
    peers.net.cut, peers.net.raft_cut = set(), set()
    peers.settle(lambda: not any(c.state.has(cid(2)) for c in peers.services.values()))
    peers.settle(lambda: all(c.node.applied == peers.services[follower].node.applied
                             for c in peers.services.values()))
    for c in peers.services.values():
        assert _ops(c, 2) == ["pin", "unpin"], c.peer_id
    return result[0], took


def test_unpin_replicated_by_a_leader_cut_off_is_answered_once(peers):
    """The new leader commits the old leader's entry: the follower sees it applied
    and answers success without a second entry (a retry would find the CID gone
    and answer "not pinned")."""
    result, took = _unpin_through_a_leader_that_is_cut_off(peers, replicated=True)
    assert result is None
    assert took < 3.0


def test_unpin_lost_with_a_leader_cut_off_is_retried_once(peers):
    """The entry stayed on the old leader: once the new leader's first entry is
    applied, it can never commit, and the one retry makes the only unpin."""
    result, took = _unpin_through_a_leader_that_is_cut_off(peers, replicated=False)
    assert result is None
    assert took < 3.0


def test_pin_from_any_peer_is_committed_everywhere(peers):
    leader = peers.leader()
    follower = next(p for p in peers.ids if p != leader)
    peers.run(peers.services[follower].log_pin(pin(1)))  # forwarded to the leader
    peers.run(peers.services[leader].log_pin(pin(2)))
    peers.settle(lambda: all(c.state.has(cid(1)) and c.state.has(cid(2))
                             for c in peers.services.values()))
    peers.run(peers.services[follower].log_unpin(pin(1)))
    peers.settle(lambda: not any(c.state.has(cid(1)) for c in peers.services.values()))
    for c in peers.services.values():
        assert c.applied == [("pin", cid(1)), ("pin", cid(2)), ("unpin", cid(1))]


def test_unpin_of_unknown_cid_is_not_found(peers):
    leader = peers.leader()
    follower = next(p for p in peers.ids if p != leader)
    with pytest.raises(NotFound):
        peers.run(peers.services[follower].log_unpin(pin(99)))


def test_no_leader_times_out(tmp_path):
    p = Peers(tmp_path, wait_for_leader_timeout="3s", commit_retries=0)
    try:
        for peer_id in p.ids[1:]:
            p.kill(peer_id)
        alone = p.services[p.ids[0]]
        with pytest.raises(OperationTimeout, match="timed out waiting for leader"):
            p.run(alone.wait_for_leader())
        with pytest.raises(NoLeader):
            p.run(alone.log_pin(pin(1)))
        with pytest.raises(NoLeader):
            p.run(alone.leader())
    finally:
        p.stop()


def test_leader_crash_then_restart_loses_nothing(peers):
    first = peers.leader()
    for n in range(5):
        peers.run(peers.services[first].log_pin(pin(n)))
    peers.kill(first)
    survivor = peers.services[next(iter(peers.services))]
    for n in range(5, 10):
        peers.run(survivor.log_pin(pin(n)))  # waits for the new leader, then commits
    assert peers.leader() != first
    back = peers.start(first)
    peers.run(back.wait_for_sync())
    assert back.state.count() == 10
    assert {p.cid for p in back.state.list()} == {cid(n) for n in range(10)}


def test_add_and_remove_a_peer(peers):
    leader = peers.leader()
    newcomer = PEERS[3]
    joining = peers.start(newcomer, peers=())
    peers.run(peers.services[leader].log_pin(pin(7)))
    follower = next(p for p in peers.ids if p != leader)
    peers.run(peers.services[follower].add_peer(newcomer))
    assert peers.run(peers.services[leader].peers()) == sorted(peers.ids + [newcomer])
    peers.run(joining.wait_for_sync())
    assert joining.state.has(cid(7))
    peers.run(peers.services[leader].add_peer(newcomer))  # already there: no-op
    peers.run(peers.services[follower].rm_peer(newcomer))
    assert newcomer not in peers.run(peers.services[leader].peers())
    with pytest.raises(NotFound):
        peers.run(peers.services[leader].rm_peer(PEERS[4]))
    with pytest.raises(InvalidInput):
        peers.run(peers.services[leader].add_peer("not-a-peer-id"))


def test_cannot_remove_the_last_peer(tmp_path):
    p = Peers(tmp_path, count=1)
    try:
        only = p.services[p.ids[0]]
        p.run(only.ready())
        p.run(only.log_pin(pin(1)))
        with pytest.raises(InvalidInput, match="1-peer cluster"):
            p.run(only.rm_peer(p.ids[0]))
    finally:
        p.stop()


def test_existing_data_with_other_peers_refuses_to_start(tmp_path):
    p = Peers(tmp_path, count=1)
    only = p.services[p.ids[0]]
    p.run(only.log_pin(pin(1)))
    p.stop()
    other = RaftConsensus(peer_id=p.ids[0], config=p.config,
                          data_folder=str(tmp_path / p.ids[0][-6:]), state=DictState(),
                          rpc=p.net.client(p.ids[0]), clock=p.clock, peers=PEERS[:3])
    with pytest.raises(ConfigError, match="cluster.peers"):
        other.startService()


def test_stop_fails_new_calls_and_clean_rotates(peers, tmp_path):
    leader = peers.leader()
    c = peers.services[leader]
    peers.run(c.log_pin(pin(1)))
    peers.run(c.stopService())
    del peers.services[leader]
    del peers.net.peers[leader]
    with pytest.raises(ShuttingDown):
        peers.run(c.log_pin(pin(2)))
    folder = c.data_folder
    peers.run(c.clean())
    assert not os.path.exists(folder) and os.path.isdir(folder + ".old.0")
    running = next(iter(peers.services.values()))
    with pytest.raises(InvalidInput, match="stop it first"):
        peers.run(running.clean())


def test_commit_in_flight_finishes_before_stop(peers):
    leader = peers.services[peers.leader()]
    pending = leader.log_pin(pin(3))
    stopped = leader.stopService()
    assert peers.run(pending) is None
    peers.run(stopped)
    del peers.services[leader.peer_id]
    assert leader.state.has(cid(3))


# --- three peers over real AMP/TLS on 127.0.0.1 ----------------------------------------

SECRET = bytes(range(32))


class TLSPeer:
    """A RaftConsensus wired to the real RPC client/server on a loopback port."""

    def __init__(self, reactor, identity, folder, ids, cfg):
        from ipfscluster.rpc import commands
        from ipfscluster.rpc.client import RPCClient
        from ipfscluster.rpc.server import Responders, RPCServer
        from ipfscluster.rpc.tls import ClusterTLS

        self.identity = identity
        self.peer_id = identity.peer_id
        self.responders = Responders()
        self.client = RPCClient(reactor, ClusterTLS(identity.private_key, SECRET, reactor),
                                self.responders, network_timeout=cfg.network_timeout.seconds)
        self.server = RPCServer(reactor, self.client, "/ip4/127.0.0.1/tcp/0")
        self.consensus = RaftConsensus(peer_id=self.peer_id, config=cfg, data_folder=folder,
                                       state=DictState(), rpc=self.client, clock=reactor,
                                       peers=ids)
        c = self.consensus
        for command, handler in [
            (commands.RaftMessage, c.rpc_raft_message),
            (commands.ConsensusLogPin, c.rpc_log_pin),
            (commands.ConsensusLogUnpin, c.rpc_log_unpin),
            (commands.ConsensusAddPeer, c.rpc_add_peer),
            (commands.ConsensusRmPeer, c.rpc_rm_peer),
            (commands.ConsensusReadIndex, c.rpc_read_index),
        ]:
            self.responders.register_value(command, handler)

    async def start(self):
        await self.server.startService()
        self.consensus.startService()

    @property
    def multiaddr(self):
        host, port = self.server.address()
        return "/ip4/%s/tcp/%d/p2p/%s" % (host, port, self.peer_id)

    async def kill(self):
        """Like kill -9 for Raft: no final snapshot, no goodbye; connections drop."""
        self.consensus.node.crash()
        self.consensus._stopping = True
        await self.server.stopService()

    async def stop(self):
        if self.consensus.running:
            await self.consensus.stopService()
        if self.server.running:
            await self.server.stopService()


async def _poll(reactor, predicate, seconds=20.0):
    from twisted.internet.task import deferLater

    deadline = reactor.seconds() + seconds
    while not predicate():
        assert reactor.seconds() < deadline, "condition not reached in %ss" % seconds
        await deferLater(reactor, 0.01, lambda: None)


def _introduce(peers):
    for peer in peers:
        for other in peers:
            if other is not peer:
                peer.client.add_peer_address(other.peer_id, other.multiaddr)


@pytest.mark.loopback
@pytest_twisted.ensureDeferred
async def test_three_peers_over_tls_survive_leader_kill_and_restart(tmp_path):
    from twisted.internet import reactor

    from ipfscluster.identity import Identity

    cfg = config(election_timeout="300ms", heartbeat_timeout="300ms",
                 wait_for_leader_timeout="10s", network_timeout="2s",
                 commit_retry_delay="50ms", commit_retries=3)
    identities = [Identity.generate() for _ in range(3)]
    ids = [i.peer_id for i in identities]
    peers = [TLSPeer(reactor, ident, str(tmp_path / ident.peer_id[-6:]), ids, cfg)
             for ident in identities]
    try:
        for peer in peers:
            await peer.start()
        _introduce(peers)
        for peer in peers:
            await peer.consensus.ready()
        leader_id = await peers[0].consensus.wait_for_leader()
        for n in range(5):  # from every peer: followers forward to the leader
            await peers[n % 3].consensus.log_pin(pin(n))
        await _poll(reactor, lambda: all(p.consensus.state.count() == 5 for p in peers))

        victim = next(p for p in peers if p.peer_id == leader_id)
        await victim.kill()
        survivors = [p for p in peers if p is not victim]
        for n in range(5, 10):
            await survivors[n % 2].consensus.log_pin(pin(n))
        new_leader = await survivors[0].consensus.wait_for_leader()
        assert new_leader != leader_id

        back = TLSPeer(reactor, victim.identity, victim.consensus.data_folder, ids, cfg)
        peers[peers.index(victim)] = back
        await back.start()
        _introduce(peers)
        await back.consensus.wait_for_sync()
        assert back.consensus.state.count() == 10
        assert {p.cid for p in back.consensus.state.list()} == {cid(n) for n in range(10)}
        await back.consensus.log_unpin(pin(0))
        await _poll(reactor, lambda: all(not p.consensus.state.has(cid(0)) for p in peers))
    finally:
        for peer in peers:
            await peer.stop()
