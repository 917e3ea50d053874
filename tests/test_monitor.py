"""The peer monitor (IPeerMonitor), real and fake, and the metric publisher."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from ipfscluster.config.durations import Duration
from ipfscluster.config.monitor import MonBasicConfig
from ipfscluster.errors import InvalidInput, NoLeader, ShuttingDown
from ipfscluster.identity import peer_id_from_public_key
from ipfscluster.interfaces import IPeerMonitor
from ipfscluster.monitor import RING_SIZE, MetricPublisher, PeerMonitor, ping_metric
from ipfscluster.testing.fakes import FakePeerMonitor
from ipfscluster.types import Metric

A, B, C = sorted(peer_id_from_public_key(bytes([i]) * 32) for i in range(3))
SECOND = 10**9
START = 1000.0


def make_real(clock, peers=None):
    return PeerMonitor(MonBasicConfig(check_interval=Duration.parse("15s")), clock, peers=peers)


def make_fake(clock, peers=None):
    return FakePeerMonitor(clock, check_interval=15.0, peers=peers)


@pytest.fixture(params=[make_real, make_fake], ids=["real", "fake"])
def make(request):
    return request.param


@pytest.fixture
def clock():
    c = Clock()
    c.advance(START)
    return c


def metric(peer, name="ping", ttl=30, valid=True, value="", clock_now=START):
    return Metric(name, peer=peer, value=value, expire=int((clock_now + ttl) * SECOND), valid=valid)


@pytest.fixture
def running(make, clock):
    """A started monitor; stopped (and checked to leave no timer) at the end."""
    monitor = make(clock)
    monitor.startService()
    yield monitor
    monitor.stopService()
    assert clock.getDelayedCalls() == []


def test_provides_interface(make, clock):
    assert verifyObject(IPeerMonitor, make(clock))


def test_log_metric_stamps_received_at(make, clock):
    monitor = make(clock)
    clock.advance(2.5)
    monitor.log_metric(metric(A))
    stored = monitor.latest_for_peer("ping", A)
    assert stored.received_at == int((START + 2.5) * SECOND)
    assert stored.peer == A and stored.valid
    assert monitor.latest_for_peer("ping", B) is None
    assert monitor.latest_for_peer("other", A) is None


@pytest.mark.parametrize("bad", [Metric("", peer=A), Metric("ping")])
def test_log_metric_needs_name_and_peer(make, clock, bad):
    with pytest.raises(InvalidInput):
        make(clock).log_metric(bad)


def test_latest_metrics_valid_unexpired_sorted(make, clock):
    monitor = make(clock)
    monitor.log_metric(metric(C, name="freespace", value="3"))
    monitor.log_metric(metric(A, name="freespace", value="1"))
    monitor.log_metric(metric(B, name="freespace", value="2", valid=False))
    assert [m.peer for m in monitor.latest_metrics("freespace")] == [A, C]
    monitor.log_metric(metric(A, name="freespace", value="9", ttl=5))
    assert [m.value for m in monitor.latest_metrics("freespace")] == ["9", "3"]
    clock.advance(5.001)
    assert [m.peer for m in monitor.latest_metrics("freespace")] == [C]
    assert monitor.latest_metrics("nothing") == []


def test_latest_metrics_only_current_peers(make, clock):
    current = [A, C]
    monitor = make(clock, peers=lambda: current)
    for peer in (A, B, C):
        monitor.log_metric(metric(peer, name="numpin", value="1"))
    assert [m.peer for m in monitor.latest_metrics("numpin")] == [A, C]
    current.remove(C)
    assert [m.peer for m in monitor.latest_metrics("numpin")] == [A]


def test_metric_names(make, clock):
    monitor = make(clock)
    assert monitor.metric_names() == []
    monitor.log_metric(metric(A, name="ping"))
    monitor.log_metric(metric(A, name="freespace"))
    assert monitor.metric_names() == ["freespace", "ping"]


def test_alert_once_per_expiry_and_rearm(running, clock):
    seen = []
    running.subscribe_alerts(seen.append)
    running.log_metric(metric(A, ttl=20))
    running.log_metric(metric(B, ttl=100))
    clock.advance(15)
    assert seen == []
    clock.advance(15)  # A expired at +20, checked at +30
    assert [(a.peer, a.name) for a in seen] == [(A, "ping")]
    assert seen[0].triggered_at == int((START + 30) * SECOND)
    clock.advance(15)
    clock.advance(15)
    assert len(seen) == 1  # upstream would repeat here; we alert once per expiry
    running.log_metric(metric(A, ttl=10, clock_now=START + 60))
    clock.advance(15)
    assert [a.peer for a in seen] == [A, A]


def test_no_alert_for_invalid_latest_metric(running, clock):
    seen = []
    running.subscribe_alerts(seen.append)
    running.log_metric(metric(A, ttl=5))
    running.log_metric(metric(A, ttl=5, valid=False))
    clock.advance(30)
    assert seen == []


def test_alerts_only_for_current_peers(make, clock):
    current = [A]
    monitor = make(clock, peers=lambda: current)
    monitor.startService()
    seen = []
    monitor.subscribe_alerts(seen.append)
    monitor.log_metric(metric(A, ttl=1))
    monitor.log_metric(metric(B, ttl=1))
    clock.advance(15)
    monitor.stopService()
    assert [a.peer for a in seen] == [A]


def test_alerts_lists_the_last_interval(running, clock):
    running.log_metric(metric(A, ttl=1))
    assert running.alerts() == []
    clock.advance(15)
    assert [a.peer for a in running.alerts()] == [A]
    clock.advance(15)
    assert running.alerts() == []


def test_unsubscribe(running, clock):
    seen = []
    cancel = running.subscribe_alerts(seen.append)
    cancel()
    cancel()
    running.log_metric(metric(A, ttl=1))
    clock.advance(15)
    assert seen == [] and len(running.alerts()) == 1


def test_publish_metric_stores_it(make, clock):
    monitor = make(clock)
    d = monitor.publish_metric(metric(A, name="freespace", value="7"))
    assert d.called and d.result is None
    assert monitor.latest_metrics("freespace")[0].value == "7"


def test_calls_after_stop_fail(make, clock):
    monitor = make(clock)
    monitor.startService()
    monitor.stopService()
    with pytest.raises(ShuttingDown):
        monitor.log_metric(metric(A))
    failure = []
    monitor.publish_metric(metric(A)).addErrback(failure.append)
    assert failure and failure[0].check(ShuttingDown)
    assert clock.getDelayedCalls() == []


@pytest.mark.allow_logged_errors
def test_failing_subscriber_is_logged_and_others_still_called(make, clock):
    from twisted.logger import globalLogPublisher

    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        monitor = make(clock)
        seen = []
        monitor.subscribe_alerts(lambda alert: 1 / 0)
        monitor.subscribe_alerts(seen.append)
        monitor.log_metric(metric(A, ttl=1))
        clock.advance(5)
        assert len(monitor.check()) == 1
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert len(seen) == 1
    failures = [e for e in logged if e.get("log_failure") is not None]
    assert failures and failures[0]["log_failure"].check(ZeroDivisionError)


# --- real monitor only -----------------------------------------------------------------


def test_ring_keeps_last_metrics(clock):
    monitor = make_real(clock)
    for i in range(RING_SIZE + 3):
        monitor.log_metric(metric(A, name="numpin", value=str(i)))
    assert [m.value for m in monitor.metrics_for_peer("numpin", A)] == [
        str(i) for i in range(3, RING_SIZE + 3)
    ]


def test_publish_metric_uses_send_hook(clock):
    sent = []
    monitor = PeerMonitor(MonBasicConfig(), clock, send=lambda m: sent.append(m) or defer.succeed("ignored"))
    results = []
    monitor.publish_metric(metric(A)).addCallback(results.append)
    assert [m.peer for m in sent] == [A] and results == [None]
    failing = PeerMonitor(MonBasicConfig(), clock, send=lambda m: defer.fail(NoLeader()))
    errors = []
    failing.publish_metric(metric(A)).addErrback(errors.append)
    assert errors[0].check(NoLeader)
    assert failing.latest_for_peer("ping", A) is not None  # stored locally anyway


# --- publisher -------------------------------------------------------------------------------


def test_publisher_publishes_now_then_every_interval(clock):
    published = []
    pub = MetricPublisher(clock, 15, lambda: ping_metric(clock, A, 15), lambda m: published.append(m))
    pub.startService()
    clock.advance(0)
    assert len(published) == 1
    assert published[0].expire == int((START + 30) * SECOND) and published[0].valid
    clock.advance(14.9)
    assert len(published) == 1
    clock.advance(0.1)
    assert len(published) == 2 and pub.published == 2
    pub.stopService()
    assert clock.getDelayedCalls() == []


@pytest.mark.allow_logged_errors
def test_publisher_retries_and_logs_once_per_streak(clock):
    from twisted.logger import globalLogPublisher

    logged = []
    globalLogPublisher.addObserver(logged.append)
    attempts = []
    healthy = [False]

    def publish(m):
        attempts.append(clock.seconds())
        return defer.succeed(None) if healthy[0] else defer.fail(NoLeader())

    pub = MetricPublisher(clock, 5, lambda: metric(A, name="freespace", value="1"), publish,
                          retry_interval=0.5, name="freespace")
    try:
        pub.startService()
        clock.advance(0)
        clock.pump([0.5] * 4)
        healthy[0] = True
        clock.advance(0.5)
        clock.advance(4.9)
        count = len(attempts)
        clock.advance(0.1)
        pub.stopService()
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert attempts[:6] == [START + 0.5 * i for i in range(6)]
    assert len(attempts) == count + 1
    warnings = [e for e in logged if "cannot publish" in e.get("log_format", "")]
    assert len(warnings) == 1
    assert any("works again" in e.get("log_format", "") for e in logged)
    assert clock.getDelayedCalls() == []


def test_publisher_stop_cancels_inflight(clock):
    pending = defer.Deferred()
    pub = MetricPublisher(clock, 5, lambda: metric(A), lambda m: pending)
    pub.startService()
    clock.advance(0)
    pub.stopService()
    assert pending.called  # cancelled
    assert clock.getDelayedCalls() == []
