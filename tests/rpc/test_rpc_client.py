"""RPC client and server: dialling, reuse, errors, timeouts, fan-out, shutdown.

Several peers share one ``MemoryReactorClock``: their ``RPCServer`` listens on the
memory reactor, their ``RPCClient`` dials through real endpoint strings, and
:class:`Net` completes the pending TCP connections with ``twisted.test.iosim``
(real pyOpenSSL over memory BIOs).  Time only moves when a test advances it.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.test import iosim
from zope.interface.verify import verifyObject

from ipfscluster import errors
from ipfscluster.identity import Identity
from ipfscluster.interfaces import IComponent, IRPCClient
from ipfscluster.rpc import commands
from ipfscluster.rpc.client import RPCClient
from ipfscluster.rpc.server import Responders, RPCServer
from ipfscluster.rpc.tls import ClusterTLS
from ipfscluster.types import Version

T0 = 1_800_000_000.0
SECRET = bytes(range(32))
TIMEOUT = 5.0


class Net:
    """Completes the memory reactor's pending TCP connections and moves their bytes."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.pumps = []
        self.refused: set[int] = set()  # ports whose connection attempts are refused
        self.blackholed: set[int] = set()  # ports whose connection attempts never complete

    def _complete_one(self) -> bool:
        reactor = self.reactor
        for index, (host, port, factory, _timeout, _bind) in enumerate(reactor.tcpClients):
            if reactor.connectors[index].stoppedConnecting:
                reactor.tcpClients.pop(index)  # the dialler gave up (timeout, shutdown)
                reactor.connectors.pop(index)
                return True
            if port in self.blackholed:
                continue
            if port in self.refused:
                reactor.tcpClients.pop(index)
                connector = reactor.connectors.pop(index)
                factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
                return True
            server = next((s for s in reactor.tcpServers if s[0] == port), None)
            if server is None:
                continue
            reactor.tcpClients.pop(index)
            reactor.connectors.pop(index)
            client_proto = factory.buildProtocol(None)
            server_proto = server[1].buildProtocol(None)
            pump = iosim.connect(
                server_proto,
                iosim.makeFakeServer(server_proto),
                client_proto,
                iosim.makeFakeClient(client_proto),
                greet=False,
                clock=reactor,
            )
            self.pumps.append(pump)
            return True
        return False

    def run(self, rounds=1000):
        """Until quiet: complete connections, move bytes, run zero-delay calls."""
        for _ in range(rounds):
            progress = self._complete_one()
            progress = any([pump.pump(advanceClock=False) for pump in self.pumps]) or progress
            due = [c for c in self.reactor.getDelayedCalls() if c.getTime() <= self.reactor.seconds()]
            self.reactor.advance(0)
            if not progress and not due:
                return
        raise AssertionError("the memory network did not settle")

    def advance(self, seconds):
        self.reactor.advance(seconds)
        self.run()

    def open_connections(self):
        return [p for p in self.pumps if not (p.clientIO.disconnected or p.serverIO.disconnected)]


class Peer:
    def __init__(self, net: Net, port: int, **client_kwargs):
        self.net = net
        self.port = port
        self.identity = Identity.generate()
        self.peer_id = self.identity.peer_id
        self.responders = Responders()
        self.tls = ClusterTLS(self.identity.private_key, SECRET, net.reactor)
        self.client = RPCClient(
            net.reactor, self.tls, self.responders, network_timeout=TIMEOUT, **client_kwargs
        )
        self.server = RPCServer(net.reactor, self.client, f"/ip4/127.0.0.1/tcp/{port}")
        self.handled = []
        self.responders.register(commands.ClusterVersion, self._version)

    @property
    def multiaddr(self):
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer_id}"

    def _version(self, caller):
        self.handled.append(caller)
        return {"version": Version(self.peer_id[-6:])}


def result_of(d):
    box = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    return box[0].value if isinstance(box[0], Failure) else box[0]


@pytest.fixture
def net():
    reactor = MemoryReactorClock()
    reactor.advance(T0)
    return Net(reactor)


@pytest.fixture
def make_peers(net):
    made = []

    def make(count, **kwargs):
        peers = [Peer(net, 9001 + len(made) + i, **kwargs) for i in range(count)]
        made.extend(peers)
        for peer in peers:
            peer.server.startService()
        for peer, other in itertools.permutations(made, 2):
            peer.client.add_peer_address(other.peer_id, other.multiaddr)
        return peers

    yield make
    for peer in made:
        peer.server.stopService()
    net.run()
    assert not net.open_connections()
    assert not [c for c in net.reactor.getDelayedCalls() if c.active()]


# --- basic calls ---------------------------------------------------------------------------


def test_client_and_server_provide_their_interfaces(net, make_peers):
    [a] = make_peers(1)
    assert verifyObject(IRPCClient, a.client)
    assert verifyObject(IComponent, a.server)
    assert a.client.local_peer == a.peer_id


def test_dials_on_first_use_and_reuses_the_connection(net, make_peers):
    a, b = make_peers(2)
    first = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert result_of(first) == {"version": Version(b.peer_id[-6:])}
    calls = [a.client.call_command(b.peer_id, commands.ClusterVersion) for _ in range(5)]
    back = b.client.call_command(a.peer_id, commands.ClusterVersion)
    net.run()
    assert all(result_of(d)["version"].version == b.peer_id[-6:] for d in calls)
    assert result_of(back)["version"].version == a.peer_id[-6:]
    assert len(net.pumps) == 1  # one connection carried everything, both directions
    assert a.client.remote_address(Identity.generate().peer_id) is None
    assert b.handled == [a.peer_id] * 6 and a.handled == [b.peer_id]


def test_local_calls_run_in_process(net, make_peers):
    [a] = make_peers(1)
    d = a.client.call_command(a.peer_id, commands.ClusterVersion)
    also = a.client.call_command("", commands.ClusterVersion)
    assert result_of(d) == {"version": Version(a.peer_id[-6:])}
    assert result_of(also) == {"version": Version(a.peer_id[-6:])}
    assert a.handled == [a.peer_id, a.peer_id]
    assert net.reactor.tcpClients == []


def test_local_calls_fill_optional_arguments_and_check_required_ones(net, make_peers):
    [a] = make_peers(1)
    seen = []
    a.responders.register(
        commands.ClusterPins, lambda caller, cursor, limit: seen.append((cursor, limit)) or {"items": []}
    )
    assert result_of(a.client.call_command(a.peer_id, commands.ClusterPins)) == {"items": [], "next_cursor": None}
    assert seen == [(None, None)]
    a.responders.register(commands.ClusterPinGet, lambda caller, cid: {"pin": None})
    error = result_of(a.client.call_command(a.peer_id, commands.ClusterPinGet))
    assert isinstance(error, TypeError) and "cid" in str(error)


def test_remote_typed_errors_arrive_typed(net, make_peers):
    a, b = make_peers(2)

    def missing(caller, cid):
        raise errors.NotFound(f"{cid} is not pinned; pin it first")

    b.responders.register(commands.ClusterPinGet, missing)
    d = a.client.call_command(b.peer_id, commands.ClusterPinGet, {"cid": "QmX"})
    net.run()
    error = result_of(d)
    assert type(error) is errors.NotFound
    assert str(error) == "QmX is not pinned; pin it first"


def test_remote_error_fields_travel(net, make_peers):
    a, b = make_peers(2)

    def not_leader(caller, peer):
        raise errors.NotLeader("send it to the leader", leader=a.peer_id, term=7, hint=object())

    b.responders.register(commands.ConsensusAddPeer, not_leader)
    d = a.client.call_command(b.peer_id, commands.ConsensusAddPeer, {"peer": b.peer_id})
    net.run()
    error = result_of(d)
    assert type(error) is errors.NotLeader and str(error) == "send it to the leader"
    assert error.leader == a.peer_id and error.term == 7
    assert not hasattr(error, "hint")  # only simple values travel
    # error classes defined after the commands module are known too
    assert commands.error_class(errors.ClusterSecretMismatch.amp_tag()) is errors.ClusterSecretMismatch


@pytest.mark.allow_logged_errors
def test_unexpected_handler_failures_are_logged_there_and_typed_here(net, make_peers):
    a, b = make_peers(2)
    with capturedLogs() as logged:
        b.responders.register(commands.ClusterPinGet, lambda caller, cid: 1 / 0)
        d = a.client.call_command(b.peer_id, commands.ClusterPinGet, {"cid": "QmX"})
        local = b.client.call_command(b.peer_id, commands.ClusterPinGet, {"cid": "QmX"})
        net.run()
    for error in (result_of(d), result_of(local)):
        assert isinstance(error, errors.RemoteError)
        assert "ZeroDivisionError" in str(error)
    failures = [e for e in logged if e.get("log_failure") is not None]
    assert len(failures) == 2
    # the connection survived
    after = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert result_of(after)["version"].version == b.peer_id[-6:]
    assert len(net.pumps) == 1 and len(net.open_connections()) == 1


def test_unknown_commands_are_typed(net, make_peers):
    a, b = make_peers(2)
    remote = a.client.call_command(b.peer_id, commands.ClusterPinGet, {"cid": "QmX"})
    local = a.client.call_command(a.peer_id, commands.ClusterPinGet, {"cid": "QmX"})
    net.run()
    assert isinstance(result_of(remote), errors.UnknownCommand)
    assert isinstance(result_of(local), errors.UnknownCommand)


def test_interface_form_call_and_call_multiple(net, make_peers):
    a, b, c = make_peers(3)
    for peer in (a, b, c):
        peer.responders.register_value(commands.ConsensusPeers, lambda caller, arg, p=peer: [p.peer_id])
    b.responders.register_value(commands.ClusterPinGet, lambda caller, cid: _raise(errors.NotFound(cid)))
    one = a.client.call(b.peer_id, "Consensus", "Peers")
    many = a.client.call_multiple([a.peer_id, b.peer_id, c.peer_id], "Consensus", "Peers")
    failing = a.client.call_multiple([b.peer_id], "Cluster", "PinGet", "QmY")
    unknown = a.client.call(b.peer_id, "Nope", "Nothing")
    net.run()
    assert result_of(one) == [b.peer_id]
    assert result_of(many) == {p.peer_id: [p.peer_id] for p in (a, b, c)}
    assert isinstance(result_of(failing)[b.peer_id], errors.NotFound)
    assert isinstance(result_of(unknown), errors.UnknownCommand)


def _raise(error):
    raise error


def test_iter_pages_walks_a_paged_listing(net, make_peers):
    a, b = make_peers(2)
    items = [Version(str(i)) for i in range(25)]

    def pins(caller, cursor, limit):
        start = int(cursor or 0)
        end = min(start + limit, len(items))
        return {"items": items[start:end], "next_cursor": str(end) if end < len(items) else None}

    b.responders.register(commands.ClusterPins, pins)
    # Cluster.Pins lists Pin values; Version stands in for any to_json/from_json value
    command = commands._command(
        "Test.Pins", commands.PAGE_ARGUMENTS, commands.PAGE_RESPONSE("ipfscluster.types:Version")
    )
    b.responders.register(command, pins)
    pages = []

    async def walk():
        async for page in a.client.iter_pages(b.peer_id, command, page_size=10):
            pages.append(page)

    d = Deferred.fromCoroutine(walk())
    for _ in range(5):
        net.run()
    result_of(d)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [v for p in pages for v in p] == items


def test_raft_payloads_of_any_size(net, make_peers):
    a, b = make_peers(2)
    got = []
    b.responders.register(commands.RaftMessage, lambda caller, payload: got.append((caller, payload)))
    b.responders.register(commands.RaftInstallSnapshotChunk, lambda caller, payload: got.append((caller, len(payload))))
    big = bytes(range(256)) * 1000  # 256,000 bytes: four AMP values
    d1 = a.client.send_raft_message(b.peer_id, b"vote")
    d2 = a.client.send_raft_message(b.peer_id, big)
    d3 = a.client.send_snapshot_chunk(b.peer_id, big)
    net.run()
    assert [result_of(d) for d in (d1, d2, d3)] == [None, None, None]
    assert got == [(a.peer_id, b"vote"), (a.peer_id, big), (a.peer_id, len(big))]


def _ready_connection(net, a, b):
    warm = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert not isinstance(result_of(warm), Exception)
    return a.client._links[b.peer_id].conn


def test_raft_messages_over_a_ready_connection_get_no_answer(net, make_peers):
    a, b = make_peers(2)
    got = []
    b.responders.register(commands.RaftMessage, lambda caller, payload: got.append(payload))
    conn = _ready_connection(net, a, b)
    before = conn.receptions
    sent = [a.client.send_raft_message(b.peer_id, b"m%d" % i) for i in range(5)]
    assert [result_of(d) for d in sent] == [None] * 5  # sent: nothing to wait for
    net.run()
    assert got == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert conn.receptions == before  # no answer came back
    assert not conn._outstandingRequests


def test_a_silent_connection_carrying_raft_messages_is_dropped_and_redialled(net, make_peers):
    a, b = make_peers(2)
    got = []
    b.responders.register(commands.RaftMessage, lambda caller, payload: got.append(payload))
    _ready_connection(net, a, b)
    a.client.send_raft_message(b.peer_id, b"one")
    net.run()
    # the peer sends something within the timeout: the connection is alive
    back = b.client.call_command(a.peer_id, commands.ClusterVersion)
    net.run()
    assert not isinstance(result_of(back), Exception)
    net.advance(TIMEOUT)
    assert len(net.open_connections()) == 1
    # one-way messages and then silence for the whole timeout: dropped as dead
    a.client.send_raft_message(b.peer_id, b"two")
    net.run()
    with capturedLogs() as logged:
        net.advance(TIMEOUT)
    assert net.open_connections() == []
    assert any("dropping the connection as dead" in e.get("log_format", "") for e in logged)
    # the next message dials a new connection
    d = a.client.send_raft_message(b.peer_id, b"three")
    net.run()
    assert result_of(d) is None
    assert got == [b"one", b"two", b"three"]
    assert len(net.open_connections()) == 1


@pytest.mark.allow_logged_errors
def test_a_failing_one_way_handler_is_logged_by_the_receiver_only(net, make_peers):
    a, b = make_peers(2)

    def broken(caller, payload):
        raise RuntimeError("boom")

    b.responders.register(commands.RaftMessage, broken)
    _ready_connection(net, a, b)
    with capturedLogs() as logged:
        d = a.client.send_raft_message(b.peer_id, b"x")
        net.run()
    assert result_of(d) is None
    assert any("one-way" in e.get("log_format", "") for e in logged)
    assert len(net.open_connections()) == 1  # the connection stays up
    again = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert not isinstance(result_of(again), Exception)


# --- connections ---------------------------------------------------------------------------


def test_simultaneous_dials_keep_the_connection_of_the_lower_peer_id(net, make_peers):
    a, b = make_peers(2)
    to_b = a.client.call_command(b.peer_id, commands.ClusterVersion)
    to_a = b.client.call_command(a.peer_id, commands.ClusterVersion)
    net.run()
    assert result_of(to_b)["version"].version == b.peer_id[-6:]
    assert result_of(to_a)["version"].version == a.peer_id[-6:]
    assert len(net.pumps) == 2
    assert len(net.open_connections()) == 1
    lower, higher = sorted((a, b), key=lambda p: p.peer_id)
    assert lower.client._links[higher.peer_id].conn.dialled is True
    assert higher.client._links[lower.peer_id].conn.dialled is False
    # later calls in both directions use the kept connection only
    more = [a.client.call_command(b.peer_id, commands.ClusterVersion), b.client.call_command(a.peer_id, commands.ClusterVersion)]
    net.run()
    assert all(not isinstance(result_of(d), Exception) for d in more)
    assert len(net.pumps) == 2 and len(net.open_connections()) == 1


def test_no_address_is_a_typed_error(net, make_peers):
    [a] = make_peers(1)
    stranger = Identity.generate().peer_id
    error = result_of(a.client.call_command(stranger, commands.ClusterVersion))
    assert isinstance(error, errors.NoPeerAddress) and stranger in str(error)


def test_address_must_match_the_peer(net, make_peers):
    a, b = make_peers(2)
    with pytest.raises(errors.InvalidInput):
        a.client.add_peer_address(a.peer_id, b.multiaddr)


def test_failed_dials_back_off(net, make_peers):
    a, b = make_peers(2, backoff_initial=1.0, backoff_max=4.0)
    net.refused.add(b.port)
    first = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    error = result_of(first)
    assert isinstance(error, errors.PeerUnreachable) and b.peer_id in str(error)
    # within the back-off, a call waits instead of dialling again
    second = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert not second.called and net.reactor.tcpClients == []
    net.refused.clear()
    net.advance(1.0)
    assert result_of(second)["version"].version == b.peer_id[-6:]


def test_back_off_doubles_up_to_its_maximum(net, make_peers):
    a, b = make_peers(2, backoff_initial=1.0, backoff_max=4.0)
    net.refused.add(b.port)
    dial_times = []
    for _ in range(5):
        d = a.client.call_command(b.peer_id, commands.ClusterVersion)
        while not d.called:
            net.advance(0.5)
        dial_times.append(net.reactor.seconds())
        assert isinstance(result_of(d), errors.PeerUnreachable)
    gaps = [round(b2 - b1, 1) for b1, b2 in zip(dial_times, dial_times[1:])]
    assert gaps == [1.0, 2.0, 4.0, 4.0]


def test_a_hung_call_times_out_and_the_next_call_redials(net, make_peers):
    a, b = make_peers(2)
    hang = Deferred()
    b.responders.register(commands.ClusterPinGet, lambda caller, cid: hang)
    warm = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert not isinstance(result_of(warm), Exception)
    d = a.client.call_command(b.peer_id, commands.ClusterPinGet, {"cid": "QmX"})
    net.advance(TIMEOUT - 0.1)
    assert not d.called
    net.advance(0.1)
    error = result_of(d)
    assert isinstance(error, errors.RPCTimeout) and isinstance(error, errors.OperationTimeout)
    assert b.peer_id in str(error) and "Cluster.PinGet" in str(error)
    # nothing came back on that connection for the whole timeout: it was dropped
    assert net.open_connections() == []
    again = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert result_of(again)["version"].version == b.peer_id[-6:]
    assert len(net.pumps) == 2


def test_a_connection_killed_mid_call_fails_the_call_and_the_next_redials(net, make_peers):
    a, b = make_peers(2)
    hang = Deferred()
    b.responders.register(commands.ClusterPinGet, lambda caller, cid: hang)
    d = a.client.call_command(b.peer_id, commands.ClusterPinGet, {"cid": "QmX"})
    net.run()
    assert not d.called
    [pump] = net.pumps
    pump.server.transport.abortConnection()
    net.run()
    error = result_of(d)
    assert isinstance(error, errors.PeerConnectionLost) and isinstance(error, errors.PeerUnreachable)
    again = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert result_of(again)["version"].version == b.peer_id[-6:]
    assert len(net.pumps) == 2


def test_fan_out_returns_every_answer_and_the_dead_peers_error_in_time(net, make_peers):
    a, b, c, dead = make_peers(4)
    net.blackholed.add(dead.port)  # connection attempts hang
    d = a.client.call_all([a.peer_id, b.peer_id, c.peer_id, dead.peer_id], commands.ClusterVersion)
    net.run()
    assert not d.called
    net.advance(TIMEOUT)
    results = result_of(d)
    assert results[a.peer_id]["version"].version == a.peer_id[-6:]
    assert results[b.peer_id]["version"].version == b.peer_id[-6:]
    assert results[c.peer_id]["version"].version == c.peer_id[-6:]
    assert results[dead.peer_id].check(errors.PeerUnreachable, errors.RPCTimeout)
    net.blackholed.clear()


def test_close_fails_pending_calls_and_closes_connections(net, make_peers):
    a, b = make_peers(2)
    warm = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert not isinstance(result_of(warm), Exception)
    net.blackholed.add(9999)
    a.client.add_peer_address(Identity.generate().peer_id, "/ip4/127.0.0.1/tcp/9999")
    [pending_peer] = [p for p in a.client._addresses if p not in (b.peer_id,)]
    pending = a.client.call_command(pending_peer, commands.ClusterVersion)
    closed = a.client.close()
    net.run()
    assert result_of(closed) is None
    assert isinstance(result_of(pending), (errors.ShuttingDown, errors.PeerUnreachable))
    assert net.open_connections() == []
    assert isinstance(result_of(a.client.call_command(b.peer_id, commands.ClusterVersion)), errors.ShuttingDown)


def test_server_start_warns_loudly_without_a_secret(net):
    with capturedLogs() as events:
        identity = Identity.generate()
        tls = ClusterTLS(identity.private_key, b"", net.reactor)
        client = RPCClient(net.reactor, tls, Responders())
        server = RPCServer(net.reactor, client, "/ip4/0.0.0.0/tcp/9096")
        server.startService()
        assert server.address() == ("0.0.0.0", 9096)
        server.stopService()
    warnings = [e for e in events if e.get("log_namespace") == "rpc" and e["log_level"].name == "warn"]
    assert len(warnings) == 1
    assert "NOT protected" in warnings[0]["log_format"] and warnings[0]["listen"] == "/ip4/0.0.0.0/tcp/9096"


def test_each_call_keeps_its_own_timeout(net, make_peers):
    a, b = make_peers(2)
    b.responders.register(commands.ClusterPinGet, lambda caller, cid: Deferred())
    b.responders.register(commands.ClusterStatus, lambda caller, cid: Deferred())
    warm = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert not isinstance(result_of(warm), Exception)
    slow = a.client.call_command(b.peer_id, commands.ClusterPinGet, {"cid": "QmA"}, timeout=3.0)
    quick = a.client.call_command(b.peer_id, commands.ClusterStatus, {"cid": "QmB"}, timeout=1.0)
    answered = a.client.call_command(b.peer_id, commands.ClusterVersion, timeout=2.0)
    net.run()
    assert not isinstance(result_of(answered), Exception)
    net.advance(1.0)
    assert isinstance(result_of(quick), errors.RPCTimeout) and not slow.called
    net.advance(1.9)
    assert not slow.called
    net.advance(0.1)
    error = result_of(slow)
    assert isinstance(error, errors.RPCTimeout) and "within 3s" in str(error)
    # the deadline timer is gone once nothing is pending (the fixture checks it too)
    assert not [c for c in net.reactor.getDelayedCalls() if c.active()]


@pytest.mark.allow_logged_errors
def test_a_failing_caller_callback_does_not_break_the_connection(net, make_peers):
    a, b = make_peers(2)
    warm = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert not isinstance(result_of(warm), Exception)
    with capturedLogs() as logged:
        buggy = a.client.call_command(b.peer_id, commands.ClusterVersion)
        buggy.addCallback(lambda _: 1 / 0)  # a bug in the caller's code
        net.run()
    [failure] = [e["log_failure"] for e in logged if e.get("log_failure") is not None]
    assert failure.check(ZeroDivisionError)
    after = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert not isinstance(result_of(after), Exception)
    assert len(net.pumps) == 1 and len(net.open_connections()) == 1


def test_cancelling_a_call_fails_it_with_cancelled(net, make_peers):
    a, b = make_peers(2)
    b.responders.register(commands.ClusterPinGet, lambda caller, cid: Deferred())
    warm = a.client.call_command(b.peer_id, commands.ClusterVersion)
    net.run()
    assert not isinstance(result_of(warm), Exception)
    d = a.client.call_command(b.peer_id, commands.ClusterPinGet, {"cid": "QmX"})
    net.run()
    d.cancel()
    assert isinstance(result_of(d), CancelledError)
    assert not [c for c in net.reactor.getDelayedCalls() if c.active()]  # no deadline left


def test_network_timeout_may_be_a_config_duration(net):
    from ipfscluster.config.raft import RaftConfig

    identity = Identity.generate()
    tls = ClusterTLS(identity.private_key, SECRET, net.reactor)
    client = RPCClient(net.reactor, tls, Responders(), network_timeout=RaftConfig().network_timeout)
    assert client.network_timeout == 10.0


def test_bad_arguments_fail_the_deferred(net, make_peers):
    from twisted.protocols.amp import InvalidSignature

    a, b = make_peers(2)
    cold = a.client.call_command(b.peer_id, commands.ClusterPinGet, {})  # dials first
    net.run()
    warm = a.client.call_command(b.peer_id, commands.ClusterPinGet, {})  # connection ready
    assert isinstance(result_of(cold), InvalidSignature)
    assert isinstance(result_of(warm), InvalidSignature)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("call"), st.sampled_from([1.0, 2.5, 10.0])),
            st.tuples(st.just("end"), st.integers(min_value=0, max_value=30)),
            st.tuples(st.just("wait"), st.sampled_from([0.0, 0.5, 1.0, 3.0])),
        ),
        max_size=40,
    )
)
def test_deadlines_expire_exactly_the_late_calls(steps):
    from twisted.internet.task import Clock

    from ipfscluster.rpc.client import _Call, _Deadlines

    clock = Clock()
    expired = []

    def on_expiry(call):
        expired.append((call, clock.seconds()))
        call.deferred = None

    deadlines = _Deadlines(clock, on_expiry)
    calls = []
    for action, value in steps:
        if action == "call":
            call = _Call("peer", commands.ClusterVersion, value, clock.seconds())
            call.deferred = object()  # pending
            calls.append(call)
            deadlines.add(call)
        elif action == "end" and calls:
            call = calls[value % len(calls)]
            if call.deferred is not None:
                call.deferred = None
                deadlines.ended(call)
        else:
            clock.advance(value)
        for call, at in expired:
            assert at >= call.deadline  # never early
        for call in calls:
            if call.deferred is not None:
                assert clock.seconds() < call.deadline  # never late
    for call in calls:
        if call.deferred is not None:
            call.deferred = None
            deadlines.ended(call)
    assert not clock.getDelayedCalls()  # no timer once nothing is pending


def test_raft_transport_delivers_in_order_with_the_sender_and_drops_quietly(net, make_peers):
    from ipfscluster.rpc.client import RaftTransport

    a, b, dead = make_peers(3)
    received = []
    RaftTransport.serve(b.responders, lambda data, sender: received.append((data, sender)))
    transport = RaftTransport(a.client)
    from ipfscluster.consensus.raft.node import IRaftTransport

    assert verifyObject(IRaftTransport, transport, tentative=True)
    net.refused.add(dead.port)
    with capturedLogs() as logged:
        for i in range(20):
            transport.send(b.peer_id, b"message %d" % i)
        transport.send(dead.peer_id, b"lost")
        net.run()
    assert received == [(b"message %d" % i, a.peer_id) for i in range(20)]
    assert not [e for e in logged if e.get("log_failure") is not None]


@pytest.mark.parametrize("outcome", ["refused", "accepted"])
def test_a_waiter_cancelled_by_another_waiters_callback_is_skipped(net, make_peers, outcome):
    a, b = make_peers(2)
    if outcome == "refused":
        net.refused.add(b.port)
    first = a.client.call_command(b.peer_id, commands.ClusterVersion)
    second = a.client.call_command(b.peer_id, commands.ClusterVersion)
    first.addBoth(lambda result: second.cancel() or result)  # e.g. a fan-out giving up
    net.run()
    assert isinstance(result_of(second), CancelledError)
    first_result = result_of(first)
    if outcome == "refused":
        assert isinstance(first_result, errors.PeerUnreachable)
    else:
        assert first_result["version"].version == b.peer_id[-6:]
