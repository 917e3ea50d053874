"""FakeIPFSConnector: the connector contract, plus its fault knobs."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from ipfscluster.cid import CID
from ipfscluster.errors import IPFSError, IPFSUnreachable, OperationTimeout, ShuttingDown
from ipfscluster.multiaddr import Multiaddr
from ipfscluster.testing.connector_contract import ConnectorContract
from ipfscluster.testing.fakeconnector import FakeIPFSConnector
from ipfscluster.types import IPFSPinStatus, Pin
from tests.pintracker_env import failure, result

A = CID.v0(b"\xaa" * 32)
B = CID.v0(b"\xbb" * 32)


class TestFakeContract(ConnectorContract):
    @pytest.fixture
    def connector(self):
        fake = FakeIPFSConnector(Clock())
        fake.startService()
        yield fake
        fake.stopService()


class TestFakeContractWithLatency(ConnectorContract):
    """The contract holds when answers arrive later (the clock runs on its own)."""

    @pytest.fixture
    def connector(self):
        from twisted.internet import reactor

        fake = FakeIPFSConnector(reactor, latency=0.001)
        fake.startService()
        yield fake
        fake.stopService()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake(clock):
    f = FakeIPFSConnector(clock)
    f.startService()
    yield f
    f.stopService()


def test_fail_then_unfail(fake):
    fake.fail(A)
    err = failure(fake.pin(Pin.new(A)))
    assert isinstance(err, IPFSError) and "injected" in str(err)
    assert not fake.is_pinned(A)
    # other CIDs are unaffected
    assert result(fake.pin(Pin.new(B))) is None
    fake.unfail(A)
    assert result(fake.pin(Pin.new(A))) is None
    assert fake.is_pinned(A)


def test_fail_with_given_error(fake):
    fake.fail(A, OperationTimeout("slow"))
    assert isinstance(failure(fake.unpin(A)), OperationTimeout)


def test_hang_until_released(fake):
    fake.hang(A)
    d = fake.pin(Pin.new(A))
    assert not d.called
    assert fake.waiting() == [A]
    assert fake.in_flight == 1
    assert not fake.is_pinned(A)  # hangs before doing anything
    fake.release(A)
    assert result(d) is None
    assert fake.is_pinned(A)
    assert fake.in_flight == 0 and fake.max_in_flight == 1


def test_in_flight_per_cid(fake):
    fake.hang(A)
    fake.pin(Pin.new(A))
    fake.unpin(A)
    fake.hang(B)
    fake.pin(Pin.new(B))
    assert fake.max_in_flight == 3 and fake.max_in_flight_per_cid == 2
    fake.release()
    assert fake.in_flight == 0


def test_hang_times_out_after_pin_timeout(clock):
    fake = FakeIPFSConnector(clock, pin_timeout=120.0)
    fake.startService()
    fake.hang(A)
    d = fake.pin(Pin.new(A))
    clock.advance(119)
    assert not d.called
    clock.advance(1)
    assert isinstance(failure(d), OperationTimeout)
    assert fake.waiting() == []
    fake.stopService()


def test_cancel_hung_call(fake):
    fake.hang(A)
    d = fake.unpin(A)
    d.cancel()
    assert isinstance(failure(d), defer.CancelledError)
    assert fake.waiting() == [] and fake.in_flight == 0


def test_unreachable(fake):
    fake.set_reachable(False)
    assert isinstance(failure(fake.pin(Pin.new(A))), IPFSUnreachable)
    assert isinstance(failure(fake.pin_ls_cid(A)), IPFSUnreachable)
    assert isinstance(failure(fake.pin_ls("recursive", lambda c, s: None)), IPFSUnreachable)
    ident = result(fake.id())
    assert ident.error and not ident.id
    ready = fake.ready()
    assert not ready.called
    fake.set_reachable(True)
    assert ready.called and result(fake.pin_ls_cid(A)) is IPFSPinStatus.UNPINNED


def test_latency_on_the_clock(clock):
    fake = FakeIPFSConnector(clock, latency=2.0)
    fake.startService()
    d = fake.pin(Pin.new(A))
    clock.advance(1.9)
    assert not d.called and fake.in_flight == 1
    clock.advance(0.1)
    assert result(d) is None and fake.in_flight == 0
    pending = fake.pin_ls_cid(A)
    fake.stopService()
    assert clock.getDelayedCalls() == []
    assert isinstance(failure(pending), ShuttingDown)


def test_cancel_during_latency(clock):
    fake = FakeIPFSConnector(clock, latency=2.0)
    fake.startService()
    d = fake.pin(Pin.new(A))
    d.cancel()
    assert isinstance(failure(d), defer.CancelledError)
    assert clock.getDelayedCalls() == []
    clock.advance(5)
    assert not fake.is_pinned(A)


def test_stop_fails_hung_calls_and_refuses_new_ones(clock):
    fake = FakeIPFSConnector(clock, pin_timeout=10)
    fake.startService()
    fake.hang(A)
    d = fake.pin(Pin.new(A))
    fake.set_reachable(False)
    ready_waiter = fake.ready()
    fake.stopService()
    assert clock.getDelayedCalls() == []
    assert isinstance(failure(d), ShuttingDown)
    assert fake.in_flight == 0
    assert isinstance(failure(ready_waiter), ShuttingDown)
    assert isinstance(failure(fake.pin_ls_cid(A)), ShuttingDown)


def test_behind_the_back_changes(fake):
    fake.add_pin(A)
    assert result(fake.pin_ls_cid(A)) is IPFSPinStatus.RECURSIVE
    fake.remove_pin(A)
    assert result(fake.pin_ls_cid(A)) is IPFSPinStatus.UNPINNED


def test_pin_ls_counts_and_filters(fake):
    fake.add_pin(A)
    fake.add_pin(B, IPFSPinStatus.DIRECT)
    got = []
    assert result(fake.pin_ls("recursive", lambda c, s: got.append((c, s)))) == 1
    assert got == [(A, IPFSPinStatus.RECURSIVE)]
    assert isinstance(failure(fake.pin_ls("bogus", lambda c, s: None)), IPFSError)


def test_swarm_connect_records_peer(fake):
    peer = fake.peer_id
    addr = Multiaddr.parse(f"/ip4/127.0.0.1/tcp/4001/p2p/{peer}")
    result(fake.swarm_connect(addr))
    assert result(fake.swarm_peers()) == [peer]
    assert isinstance(failure(fake.swarm_connect(Multiaddr.parse("/ip4/127.0.0.1/tcp/1"))), IPFSError)


def test_calls_are_recorded(fake):
    fake.pin(Pin.new(A))
    fake.unpin(A)
    fake.pin_ls_cid(B)
    assert fake.calls == [("pin", A), ("unpin", A), ("pin_ls_cid", B)]
