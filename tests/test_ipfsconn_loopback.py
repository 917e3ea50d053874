"""The kubo connector with its production HTTP client against the fake daemon on
127.0.0.1 (real sockets, the real reactor).

Runs the shared connector contract, then the cases that need real connections: a
pin that hangs is cancelled after ``pin_timeout`` (and the daemon sees the client
leave), and a connector started before its daemon waits for it.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from ipfscluster.cid import CID, RAW, sha256_multihash
from ipfscluster.config.durations import Duration
from ipfscluster.config.ipfshttp import IPFSHTTPConfig
from ipfscluster.errors import IPFSError, IPFSUnreachable, OperationTimeout
from ipfscluster.ipfsconn import IPFSHTTPConnector
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.connector_contract import ConnectorContract
from ipfscluster.testing.fakeipfs import FakeIPFS
from ipfscluster.types import IPFSPinStatus, Pin

pytestmark = pytest.mark.loopback

PIN_TIMEOUT = 0.3


async def until(condition, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``condition()`` every 10 ms until it is true; fail after ``timeout``."""
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.01)


@pytest.fixture
def kubo():
    daemon = FakeIPFS(reactor=reactor)
    daemon.listen("/ip4/127.0.0.1/tcp/0")
    daemon.add_bytes(b"a fresh kubo repo holds its init docs\n", pin=True)  # repo_size > 0
    yield daemon
    pytest_twisted.blockon(daemon.stop())


def make_connector(daemon, **kw) -> IPFSHTTPConnector:
    config = IPFSHTTPConfig(
        node_multiaddress=Multiaddr.parse(daemon.api_multiaddr),
        pin_timeout=Duration.of_seconds(PIN_TIMEOUT),
    )
    return IPFSHTTPConnector(config, reactor, **kw)


@pytest.fixture
def connector(kubo):
    conn = make_connector(kubo)
    conn.startService()
    yield conn
    pytest_twisted.blockon(conn.stopService())


class TestConnectorContractOverLoopback(ConnectorContract):
    """The shared IIPFSConnector behaviour, real connector, fake kubo on loopback."""


@pytest_twisted.ensureDeferred
async def test_pin_that_hangs_is_cancelled_after_pin_timeout(kubo, connector):
    await connector.ready()
    missing = CID.v1(RAW, sha256_multihash(b"content nobody has, loopback"))
    started = reactor.seconds()
    with pytest.raises(OperationTimeout) as info:
        await connector.pin(Pin.new(missing))
    assert reactor.seconds() - started >= PIN_TIMEOUT
    assert "made no progress for 300ms" in str(info.value)
    # the connection was closed, so the daemon stopped waiting for the content
    await until(lambda: kubo.network.waiting == 0, what="the daemon to drop the pin")
    assert await connector.pin_ls_cid(missing) is IPFSPinStatus.UNPINNED


@pytest_twisted.ensureDeferred
async def test_pins_reuse_persistent_connections(kubo, connector):
    await connector.ready()
    added = kubo.add_bytes(b"loopback content\n", pin=False)
    await connector.pin(Pin.new(added.cid))
    assert kubo.pin_mode(added.cid) == "recursive"
    await connector.unpin(added.cid)
    assert kubo.pin_mode(added.cid) is None


@pytest_twisted.ensureDeferred
async def test_connector_started_before_its_daemon_waits_for_it(kubo):
    await kubo.go_down()  # the port is known but nothing listens on it
    conn = make_connector(kubo, ready_backoff=(0.02, 0.05))
    conn.startService()
    try:
        ready = conn.ready()
        await until(lambda: conn.ready_attempts >= 3, what="three attempts")
        assert not ready.called
        with pytest.raises(IPFSUnreachable) as info:
            await conn.repo_stat()
        assert f"cannot reach the IPFS daemon at {kubo.api_multiaddr}" in str(info.value)
        await kubo.come_up()
        await until(lambda: ready.called, what="the connector to become ready")
        assert (await conn.id()).id == kubo.peer_id
    finally:
        await conn.stopService()


@pytest_twisted.ensureDeferred
async def test_arguments_and_bodies_arrive_as_sent(kubo, connector):
    """A value needing quoting (space, ``+``, ``&``, ``=``, non-ASCII) reaches the
    daemon unchanged, and a body of 256 KiB arrives whole."""
    await connector.ready()
    added = kubo.add_bytes(b"quoting\n", pin=False)
    path = f"/ipfs/{added.cid}/a b+c&d=\u00e9/%41"
    with pytest.raises(IPFSError):
        await connector.resolve(path)  # no such link: only the request matters here
    seen = [call for call in kubo.requests if call.endpoint == "resolve"]
    assert seen[-1].args == (path,)
    big = bytes(range(256)) * 1024
    cid = await connector.block_put(big)
    assert await connector.block_get(cid) == big
