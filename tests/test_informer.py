"""Informers (IInformer): disk (freespace/reposize), numpin, and the fake."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from ipfscluster.config.durations import Duration
from ipfscluster.config.informer import DiskInformerConfig, NumpinInformerConfig
from ipfscluster.errors import IPFSUnreachable, ShuttingDown
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.informer import DiskInformer, NumpinInformer, build
from ipfscluster.interfaces import IInformer
from ipfscluster.testing.fakes import FakeInformer

PEER = peer_id_from_public_key(bytes(32))
START = 500.0
SECOND = 10**9


class StubConnector:
    """The three IIPFSConnector calls the informers use; ``down`` makes them fail."""

    def __init__(self, free=1000, size=24, pins=3):
        self.free, self.size, self.pins, self.down = free, size, pins, False

    def _answer(self, value):
        if self.down:
            return defer.fail(IPFSUnreachable("connection refused"))
        return defer.succeed(value)

    def free_space(self):
        return self._answer(self.free)

    def repo_size(self):
        return self._answer(self.size)

    def pin_ls(self, type_filter, receive):
        assert type_filter == "recursive"
        if self.down:
            return defer.fail(IPFSUnreachable("connection refused"))
        for i in range(self.pins):
            receive(i, "recursive")
        return defer.succeed(self.pins)


@pytest.fixture
def clock():
    c = Clock()
    c.advance(START)
    return c


def disk(metric_type):
    def make(clock, connector):
        cfg = DiskInformerConfig(metric_ttl=Duration.parse("30s"), metric_type=metric_type)
        return DiskInformer(cfg, connector, clock, PEER)

    return make


def numpin(clock, connector):
    return NumpinInformer(NumpinInformerConfig(metric_ttl=Duration.parse("10s")), connector, clock, PEER)


def fake(clock, connector):
    informer = FakeInformer(clock, name="numpin", ttl=10, value=3, peer_id=PEER)
    informer.fail = connector.down
    return informer


# (factory, metric name, ttl seconds, expected value with StubConnector())
INFORMERS = [
    pytest.param(disk("freespace"), "freespace", 30, "1000", id="disk-freespace"),
    pytest.param(disk("reposize"), "reposize", 30, "24", id="disk-reposize"),
    pytest.param(numpin, "numpin", 10, "3", id="numpin"),
    pytest.param(fake, "numpin", 10, "3", id="fake"),
]


def result_of(d):
    out = []
    d.addBoth(out.append)
    assert out, "the informer did not answer at once"
    return out[0]


@pytest.mark.parametrize("make, name, ttl, value", INFORMERS)
def test_metric(make, name, ttl, value, clock):
    informer = make(clock, StubConnector())
    assert verifyObject(IInformer, informer)
    assert informer.name == name and informer.ttl == ttl
    clock.advance(1.5)
    metric = result_of(informer.get_metric())
    assert (metric.name, metric.peer, metric.value, metric.valid) == (name, PEER, value, True)
    assert metric.expire == int((START + 1.5 + ttl) * SECOND)


@pytest.mark.parametrize("make, name, ttl, value", INFORMERS)
def test_metric_invalid_when_daemon_down(make, name, ttl, value, clock):
    connector = StubConnector()
    connector.down = True
    metric = result_of(make(clock, connector).get_metric())
    assert metric.name == name and metric.valid is False and metric.value == ""
    assert metric.expire == int((START + ttl) * SECOND)


@pytest.mark.parametrize("make, name, ttl, value", INFORMERS)
def test_get_metric_after_stop(make, name, ttl, value, clock):
    informer = make(clock, StubConnector())
    informer.startService()
    informer.stopService()
    failure = result_of(informer.get_metric())
    assert failure.check(ShuttingDown)


def test_metric_follows_the_daemon(clock):
    connector = StubConnector(free=10)
    informer = disk("freespace")(clock, connector)
    assert result_of(informer.get_metric()).value == "10"
    connector.free = 2**40
    assert result_of(informer.get_metric()).value == str(2**40)


def test_build():
    clock = Clock()
    assert isinstance(build("disk", DiskInformerConfig(), StubConnector(), clock), DiskInformer)
    assert build("numpin", NumpinInformerConfig(), StubConnector(), clock).name == "numpin"
    with pytest.raises(ValueError):
        build("tags", None, None, clock)


def test_failure_streak_logged_once(clock):
    from twisted.logger import globalLogPublisher

    logged = []
    globalLogPublisher.addObserver(logged.append)
    connector = StubConnector()
    informer = numpin(clock, connector)
    try:
        connector.down = True
        for _ in range(3):
            assert result_of(informer.get_metric()).valid is False
        connector.down = False
        assert result_of(informer.get_metric()).valid is True
        connector.down = True
        result_of(informer.get_metric())
    finally:
        globalLogPublisher.removeObserver(logged.append)
    formats = [e.get("log_format", "") for e in logged if e.get("log_namespace") == "informer"]
    assert sum("cannot obtain" in f for f in formats) == 2
    assert sum("available again" in f for f in formats) == 1
