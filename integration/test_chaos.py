"""The chaos proxy on real loopback sockets: forwarding and each fault mode."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.internet.task import deferLater

from integration.chaos import LinkProxy


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.factory.received.append(data)
        self.transport.write(data)


class Collect(protocol.Protocol):
    def connectionMade(self):
        self.factory.connected.callback(self)

    def dataReceived(self, data):
        self.factory.got.append(data)


async def until(predicate, seconds=5.0):
    deadline = reactor.seconds() + seconds
    while not predicate():
        assert reactor.seconds() < deadline, "condition not reached"
        await deferLater(reactor, 0.01, lambda: None)


@pytest.fixture
def echo_and_proxy():
    server = protocol.ServerFactory.forProtocol(Echo)
    server.received = []
    port = reactor.listenTCP(0, server, interface="127.0.0.1")
    proxy = LinkProxy(reactor, ("127.0.0.1", port.getHost().port))
    yield server, proxy, proxy.listen()
    pytest_twisted.blockon(defer.ensureDeferred(proxy.stop()))
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


async def connect(port):
    factory = protocol.ClientFactory.forProtocol(Collect)
    factory.got, factory.connected = [], defer.Deferred()
    connector = reactor.connectTCP("127.0.0.1", port, factory)
    client = await factory.connected
    return factory, client, connector


@pytest_twisted.ensureDeferred
async def test_forwards_both_ways_then_one_way_cuts_and_blackhole(echo_and_proxy):
    server, proxy, port = echo_and_proxy
    factory, client, connector = await connect(port)
    try:
        client.transport.write(b"a")
        await until(lambda: b"".join(factory.got) == b"a")
        proxy.set_mode("cut_backward")  # reaches the server, the echo is dropped
        client.transport.write(b"b")
        await until(lambda: b"".join(server.received) == b"ab")
        await until(lambda: proxy.bytes_seen == 4)  # a, echo a, b, echo b (dropped)
        proxy.set_mode("cut_forward")  # nothing reaches the server
        client.transport.write(b"c")
        await until(lambda: proxy.bytes_seen == 5)
        proxy.set_mode("ok")
        client.transport.write(b"d")
        await until(lambda: b"".join(factory.got) == b"ad")
        assert b"".join(server.received) == b"abd"
        proxy.set_mode("blackhole")
        client.transport.write(b"e")
        await until(lambda: proxy.bytes_seen == 8)
        proxy.set_mode("delay", 0.05)
        client.transport.write(b"f")
        await until(lambda: b"".join(factory.got) == b"adf")
        assert b"".join(server.received) == b"abdf"
        with pytest.raises(ValueError):
            proxy.set_mode("sideways")
    finally:
        connector.disconnect()
        await until(lambda: not proxy.connections)


@pytest_twisted.ensureDeferred
async def test_reset_aborts_proxied_connections(echo_and_proxy):
    _, proxy, port = echo_and_proxy
    factory, client, connector = await connect(port)
    lost = defer.Deferred()
    client.connectionLost = lambda reason: lost.callback(None)
    await until(lambda: len(proxy.connections) == 2)
    proxy.reset()
    await lost
    await until(lambda: not proxy.connections)


def test_bytes_sent_before_the_target_connection_is_up_are_relayed():
    """A client writes at once (a TLS ClientHello) while the proxy still connects
    to the target: those bytes must reach the target once it is connected, never
    be dropped (the peer's handshake then waited out its 10 s timeout)."""
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import MemoryReactor, StringTransport

    memory = MemoryReactor()
    proxy = LinkProxy(memory, ("127.0.0.1", 4001))
    proxy.listen()
    inbound_factory = memory.tcpServers[0][1]
    client_side = inbound_factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
    client_transport = StringTransport()
    client_side.makeConnection(client_transport)
    client_side.dataReceived(b"hello")  # before the target connection exists
    host, port, outbound_factory = memory.tcpClients[0][:3]
    assert (host, port) == ("127.0.0.1", 4001)
    target_side = outbound_factory.buildProtocol(IPv4Address("TCP", host, port))
    target_transport = StringTransport()
    target_side.makeConnection(target_transport)
    assert target_transport.value() == b"hello"
    client_side.dataReceived(b" again")
    target_side.dataReceived(b"answer")
    assert target_transport.value() == b"hello again" and client_transport.value() == b"answer"


def test_a_target_connection_made_after_the_client_left_is_closed():
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import MemoryReactor, StringTransport
    from twisted.python.failure import Failure
    from twisted.internet.error import ConnectionDone

    memory = MemoryReactor()
    proxy = LinkProxy(memory, ("127.0.0.1", 4001))
    proxy.listen()
    client_side = memory.tcpServers[0][1].buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
    client_side.makeConnection(StringTransport())
    client_side.dataReceived(b"hello")
    client_side.connectionLost(Failure(ConnectionDone()))
    target_side = memory.tcpClients[0][2].buildProtocol(IPv4Address("TCP", "127.0.0.1", 4001))
    target_transport = StringTransport()
    target_side.makeConnection(target_transport)
    assert target_transport.disconnecting and target_transport.value() == b""
