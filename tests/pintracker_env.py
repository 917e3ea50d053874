"""Shared set-up of the pin tracker tests: a tracker on a Clock over a FakeIPFSConnector."""

from __future__ import annotations

import attrs
import pytest
from twisted.internet.task import Clock

from ipfscluster.cid import CID
from ipfscluster.config.durations import Duration
from ipfscluster.config.pintracker import MapTrackerConfig
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.pintracker import MapPinTracker
from ipfscluster.testing.fakeconnector import FakeIPFSConnector
from ipfscluster.types import Pin, PinMode, PinOptions, TrackerStatus

S = TrackerStatus
ME = peer_id_from_public_key(b"\x01" * 31 + b"\x02")
OTHER = peer_id_from_public_key(b"\x03" * 32)


def cid(n: int) -> CID:
    """The n-th test CID."""
    return CID.v0(n.to_bytes(32, "big"))


def local(c: CID, **kw) -> Pin:
    """A pin of ``c`` allocated to this peer (and another one)."""
    return attrs.evolve(Pin.new(c, PinOptions(**kw)), allocations=(ME, OTHER))


def direct(c: CID) -> Pin:
    return attrs.evolve(Pin.new(c, PinOptions(mode=PinMode.DIRECT)), allocations=(ME,))


def remote(c: CID) -> Pin:
    """A pin of ``c`` allocated to another peer only."""
    return attrs.evolve(Pin.new(c, PinOptions(replication_factor_min=1, replication_factor_max=1)),
                        allocations=(OTHER,))


def everywhere(c: CID) -> Pin:
    """A pin of ``c`` for every peer (replication -1, no allocations)."""
    return Pin.new(c, PinOptions(replication_factor_min=-1, replication_factor_max=-1))


def result(d):
    """The result of a fired Deferred (fails the test if it failed or is pending)."""
    out = []
    d.addCallbacks(out.append, lambda f: pytest.fail(f"unexpected failure: {f.getTraceback()}"))
    assert out, "the Deferred has not fired"
    return out[0]


def failure(d):
    """The exception a fired Deferred failed with."""
    out = []
    d.addCallbacks(lambda r: pytest.fail(f"unexpected success: {r!r}"), out.append)
    assert out, "the Deferred has not fired"
    return out[0].value


class Env:
    """A started tracker + fake connector on a Clock; ``close()`` stops both."""

    def __init__(self, *, latency=0.0, concurrent_pins=1, max_queue=4096, pinning_timeout="1h0m0s",
                 unpinning_timeout="5m0s", pin_timeout=None, sync_interval=None):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)  # a realistic epoch time
        self.ipfs = FakeIPFSConnector(self.clock, latency=latency, pin_timeout=pin_timeout)
        config = MapTrackerConfig(
            pinning_timeout=Duration.parse(pinning_timeout),
            unpinning_timeout=Duration.parse(unpinning_timeout),
            max_pin_queue_size=max_queue,
            concurrent_pins=concurrent_pins,
        )
        self.tracker = MapPinTracker(ME, self.ipfs, config, self.clock, peername="peer-a",
                                     ipfs_sync_interval=sync_interval)
        self.ipfs.startService()
        self.tracker.startService()
        self.closed = False

    def status(self, c: CID):
        return result(self.tracker.status(c)).status

    def info(self, c: CID):
        return result(self.tracker.status(c))

    def all(self, status_filter=None):
        return list(result(self.tracker.status_all(status_filter)))

    def pin_calls(self):
        return [(m, a) for m, a in self.ipfs.calls if m in ("pin", "unpin")]

    def close(self):
        if not self.closed:
            self.closed = True
            result(self.tracker.stopService())
            self.ipfs.stopService()
        assert self.clock.getDelayedCalls() == []


@pytest.fixture
def make_env():
    envs = []

    def make(**kw):
        env = Env(**kw)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


@pytest.fixture
def env(make_env):
    return make_env()


@pytest.fixture
def slow(make_env):
    """Every IPFS call answers one second later: queued states are visible."""
    return make_env(latency=1.0)
