"""The cluster RPC over real TLS sockets on 127.0.0.1 (ports chosen by the OS)."""

from __future__ import annotations

import itertools

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater

from ipfscluster import errors
from ipfscluster.identity import Identity
from ipfscluster.rpc import commands
from ipfscluster.rpc.client import RPCClient
from ipfscluster.rpc.server import Responders, RPCServer
from ipfscluster.rpc.tls import ClusterTLS

pytestmark = pytest.mark.loopback

SECRET = bytes(range(32))
TIMEOUT = 2.0

Echo = commands._command("Test.Echo", [(b"data", commands.Chunked())], [(b"data", commands.Chunked())])
Hang = commands._command("Test.Hang")


class Peer:
    def __init__(self):
        self.identity = Identity.generate()
        self.peer_id = self.identity.peer_id
        self.responders = Responders()
        self.tls = ClusterTLS(self.identity.private_key, SECRET, reactor)
        self.client = RPCClient(reactor, self.tls, self.responders, network_timeout=TIMEOUT)
        self.server = RPCServer(reactor, self.client, "/ip4/127.0.0.1/tcp/0")
        self.hung: list[Deferred] = []
        self.responders.register(Echo, lambda caller, data: {"data": data})
        self.responders.register(Hang, self._hang)

    def _hang(self, caller):
        d = Deferred()
        self.hung.append(d)
        return d

    @property
    def multiaddr(self):
        host, port = self.server.address()
        return f"/ip4/{host}/tcp/{port}/p2p/{self.peer_id}"


class _Silent(Protocol):
    """Accepts a TCP connection and never answers (a hung peer)."""


async def until(condition, deadline=5.0):
    """Poll ``condition`` every 10 ms until true; fail after ``deadline`` seconds."""
    end = reactor.seconds() + deadline
    while not condition():
        if reactor.seconds() > end:
            raise AssertionError("condition not met in time")
        await deferLater(reactor, 0.01)


@pytest.fixture
def peers():
    made = []

    async def make(count):
        new = [Peer() for _ in range(count)]
        made.extend(new)
        for peer in new:
            await peer.server.startService()
        for peer, other in itertools.permutations(made, 2):
            peer.client.add_peer_address(other.peer_id, other.multiaddr)
        return new

    yield make
    for peer in made:
        for d in peer.hung:
            if not d.called:
                d.callback({})
    pytest_twisted.blockon(DeferredList([p.server.stopService() for p in made if p.server.running]))


@pytest_twisted.ensureDeferred
async def test_a_megabyte_round_trips(peers):
    a, b = await peers(2)
    data = bytes(range(256)) * 4096  # 1 MiB
    answer = await a.client.call_command(b.peer_id, Echo, {"data": data})
    assert answer["data"] == data


@pytest_twisted.ensureDeferred
async def test_ten_thousand_pipelined_calls_complete(peers):
    a, b = await peers(2)
    await a.client.call_command(b.peer_id, Echo, {"data": b"warm"})  # connected within TIMEOUT
    calls = [a.client.call_command(b.peer_id, Echo, {"data": b"%d" % i}, timeout=60) for i in range(10_000)]
    results = await DeferredList(calls, fireOnOneErrback=True, consumeErrors=True)
    assert [r[1]["data"] for r in results] == [b"%d" % i for i in range(10_000)]
    assert a.client.connected_peers() == {b.peer_id}


@pytest_twisted.ensureDeferred
async def test_connections_use_tcp_nodelay(peers):
    import socket

    a, b = await peers(2)
    await a.client.call_command(b.peer_id, Echo, {"data": b"x"})
    assert a.client.remote_address(b.peer_id) == b.server.address()
    for side, other in ((a, b), (b, a)):
        tls_transport = side.client._links[other.peer_id].conn.transport
        sock = tls_transport.transport.getHandle()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest_twisted.ensureDeferred
async def test_a_connection_killed_mid_call_gives_a_typed_error_and_redials(peers):
    a, b = await peers(2)
    await a.client.call_command(b.peer_id, Echo, {"data": b"warm"})
    started = reactor.seconds()
    call = a.client.call_command(b.peer_id, Hang)
    await until(lambda: b.hung)
    b.client._links[a.peer_id].conn.transport.abortConnection()
    with pytest.raises(errors.PeerConnectionLost):
        await call
    assert reactor.seconds() - started < TIMEOUT
    again = await a.client.call_command(b.peer_id, Echo, {"data": b"again"})
    assert again["data"] == b"again"


@pytest_twisted.ensureDeferred
async def test_a_silent_connection_times_out_and_the_next_call_redials(peers):
    a, b = await peers(2)
    await a.client.call_command(b.peer_id, Echo, {"data": b"warm"})
    # b stops reading that connection: the call is neither answered nor refused
    b.client._links[a.peer_id].conn.transport.pauseProducing()
    started = reactor.seconds()
    with pytest.raises(errors.RPCTimeout):
        await a.client.call_command(b.peer_id, Echo, {"data": b"lost"})
    elapsed = reactor.seconds() - started
    assert TIMEOUT <= elapsed < TIMEOUT + 1.0
    again = await a.client.call_command(b.peer_id, Echo, {"data": b"again"})
    assert again["data"] == b"again"


@pytest_twisted.ensureDeferred
async def test_fan_out_with_dead_peers_returns_in_time(peers):
    a, b, c, stopped = await peers(4)
    await stopped.server.stopService()  # connection refused
    silent_port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Factory.forProtocol(_Silent))
    hole = Identity.generate().peer_id  # accepts TCP, never speaks TLS
    a.client.add_peer_address(hole, f"/ip4/127.0.0.1/tcp/{silent_port.getHost().port}")
    try:
        started = reactor.seconds()
        everyone = [a.peer_id, b.peer_id, c.peer_id, stopped.peer_id, hole]
        results = await a.client.call_all(everyone, Echo, {"data": b"hi"})
        elapsed = reactor.seconds() - started
    finally:
        await silent_port.stopListening()
    assert elapsed < TIMEOUT + 1.0
    for ok in (a, b, c):
        assert results[ok.peer_id] == {"data": b"hi"}
    assert results[stopped.peer_id].check(errors.PeerUnreachable)
    assert results[hole].check(errors.PeerUnreachable, errors.RPCTimeout)
    assert stopped.peer_id in str(results[stopped.peer_id].value)


@pytest_twisted.ensureDeferred
async def test_simultaneous_dials_end_with_one_connection(peers):
    a, b = await peers(2)
    results = await DeferredList(
        [
            a.client.call_command(b.peer_id, Echo, {"data": b"from a"}),
            b.client.call_command(a.peer_id, Echo, {"data": b"from b"}),
        ],
        fireOnOneErrback=True,
        consumeErrors=True,
    )
    assert [r[1]["data"] for r in results] == [b"from a", b"from b"]
    # a duplicate, if both dials crossed, is retired and closed
    await until(lambda: len(a.client._protocols) == 1 and len(b.client._protocols) == 1)
    [on_a], [on_b] = a.client._protocols, b.client._protocols
    assert on_a.dialled != on_b.dialled
    lower = min(a, b, key=lambda p: p.peer_id)
    assert (on_a if lower is a else on_b).dialled
    more = await b.client.call_command(a.peer_id, Echo, {"data": b"again"})
    assert more["data"] == b"again"
