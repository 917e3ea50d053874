"""Periodic metric publication: ``ping`` and the informer metric (reference §9.1).

A :class:`MetricPublisher` makes a metric (``produce()``) and sends it
(``publish(metric)``, usually :meth:`PeerMonitor.publish_metric`, whose ``send`` hook
the cluster points at the leader) at once when started and then every ``interval``
seconds of the injected clock:

- informer metrics: ``interval = ttl / 2``, ``retry_interval = 0.5``: a failed
  publication (no leader yet …) is retried every 500 ms with a fresh metric;
- ping: ``interval = monitor_ping_interval`` and no retry (a failure waits for the
  next tick).

A failure streak is logged once (warning) when it starts and once when it ends, so
a peer without a leader does not fill the log.  Ticks never overlap: the next one is
scheduled when the current publication has finished.
"""

from __future__ import annotations

from typing import Callable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from ipfscluster.types import Metric

log = Logger(namespace="monitor")

__all__ = ["MetricPublisher", "ping_metric"]


class MetricPublisher(Service):
    """Publish ``produce()``'s metric every ``interval`` seconds (see module docstring).

    ``produce()`` returns a Metric or a Deferred firing one; ``publish(metric)``
    returns a Deferred.  ``retry_interval`` (seconds, or None) is the delay before
    trying again after a failure.  ``published`` counts successful publications.
    """

    def __init__(
        self,
        clock,
        interval: float,
        produce: Callable,
        publish: Callable,
        retry_interval: float | None = None,
        name: str = "metric",
    ):
        self.clock = clock
        self.interval = interval
        self.retry_interval = retry_interval
        self._produce = produce
        self._publish = publish
        self.metric_name = name
        self.published = 0
        self._call = None
        self._inflight: defer.Deferred | None = None
        self._failing = False

    def startService(self):
        super().startService()
        self._schedule(0)

    def stopService(self):
        """Cancel the next tick and any publication in flight."""
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._inflight is not None:
            self._inflight.cancel()

    def _schedule(self, delay: float) -> None:
        if self.running:
            self._call = self.clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._call = None
        d = defer.maybeDeferred(self._produce)
        d.addCallback(self._publish)
        d.addCallbacks(self._succeeded, self._failed)
        self._inflight = d
        d.addBoth(self._done)

    def _done(self, _):
        self._inflight = None

    def _succeeded(self, _) -> None:
        self.published += 1
        if self._failing:
            self._failing = False
            log.info("publishing the {name} metric works again", name=self.metric_name)
        self._schedule(self.interval)

    def _failed(self, failure) -> None:
        if failure.check(defer.CancelledError) and not self.running:
            return
        if not self._failing:
            self._failing = True
            log.warn(
                "cannot publish the {name} metric: {error}",
                name=self.metric_name,
                error=failure.getErrorMessage(),
            )
        self._schedule(self.interval if self.retry_interval is None else self.retry_interval)


def ping_metric(clock, peer_id: str, ping_interval: float):
    """The ``ping`` metric of ``peer_id`` now: valid for twice ``ping_interval`` seconds."""
    now = int(round(clock.seconds() * 1_000_000_000))
    return Metric(
        "ping", peer=peer_id, value="", expire=now + int(round(2 * ping_interval * 1e9)), valid=True
    )
