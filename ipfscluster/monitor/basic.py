"""The peer monitor (``monbasic``): stores metrics and raises alerts on expiry (§9.2).

Storage: per metric name, per peer, a ring (``collections.deque(maxlen=10)``) of the
last metrics received, each stamped with ``received_at`` from the injected clock.

Reads:

- :meth:`PeerMonitor.latest_metrics` -- for every *current* peer, its latest metric
  of a name when it is valid and not expired (what allocation uses);
- :meth:`PeerMonitor.latest_for_peer` -- the latest metric as stored, even expired.

Current peers come from the ``peers`` callable given to the constructor (the cluster
passes its view of the Raft peerset); without one, every peer that sent a metric
counts as current.

Alerts: every ``monitor.monbasic.check_interval`` (a ``LoopingCall`` on the injected
clock) each current peer's latest metric of each name is looked at; when it is
valid and expired an :class:`~ipfscluster.types.Alert` is raised and handed to every
subscriber (:meth:`subscribe_alerts`).

**Difference from upstream:** upstream raises the same alert again at every check
for as long as the peer stays silent, and the leader re-allocates that peer's pins
each time.  Here an alert is raised **once per expiry**: a (name, peer) pair that has
alerted stays quiet until a new metric arrives from that peer for that name, which
re-arms it.  Subscribers therefore see one alert per outage, and
:meth:`alerts` lists the alerts raised during the last ``check_interval``.

Distribution of this peer's own metrics (to the leader, or from the leader to every
member) is the cluster's business: it passes a ``send(metric) -> Deferred`` hook
that :meth:`publish_metric` calls after storing the metric locally.
"""

from __future__ import annotations

import collections
from typing import Callable, Iterable

import attrs
from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from ipfscluster.errors import InvalidInput, ShuttingDown
from ipfscluster.interfaces import IPeerMonitor
from ipfscluster.types import Alert

log = Logger(namespace="monitor")

__all__ = ["PeerMonitor", "RING_SIZE"]

#: metrics kept per (name, peer)
RING_SIZE = 10

_NS = 1_000_000_000


def now_ns(clock) -> int:
    """The clock's time in unix nanoseconds."""
    return int(round(clock.seconds() * _NS))


@implementer(IPeerMonitor)
class PeerMonitor(Service):
    """The ``monbasic`` monitor (see the module docstring).

    ``config`` is the ``monitor.monbasic`` section (``check_interval``), ``clock`` an
    ``IReactorTime``; ``peers()`` returns the current peer IDs (None: every peer
    seen); ``send(metric)`` returns a Deferred delivering this peer's metric to the
    peers that need it (None: nothing to send, single peer).
    """

    name = "monitor"

    def __init__(
        self,
        config,
        clock,
        peers: Callable[[], Iterable[str]] | None = None,
        send: Callable | None = None,
        ring_size: int = RING_SIZE,
    ):
        self._config = config
        self._clock = clock
        self._peers = peers
        self._send = send
        self._ring_size = ring_size
        self._store: dict[str, dict[str, collections.deque]] = {}
        self._alerted: set[tuple[str, str]] = set()
        self._recent: collections.deque = collections.deque()
        self._subscribers: list[Callable] = []
        self._loop: task.LoopingCall | None = None
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------

    def startService(self):
        """Start the alert checks every ``check_interval``."""
        super().startService()
        self._stopped = False
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self._clock
        self._loop.start(self._config.check_interval.seconds, now=False)

    def stopService(self):
        """Stop the checks; later calls fail with ShuttingDown."""
        self._stopped = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return super().stopService()

    # -- writes -----------------------------------------------------------------

    def log_metric(self, metric) -> None:
        """Store ``metric`` stamped with ``received_at`` = now (see IPeerMonitor)."""
        if self._stopped:
            raise ShuttingDown()
        if not metric.name or not metric.peer:
            raise InvalidInput(
                f"a metric needs a name and a peer (got name={metric.name!r}, "
                f"peer={metric.peer!r})"
            )
        stamped = attrs.evolve(metric, received_at=now_ns(self._clock))
        ring = self._store.setdefault(metric.name, {}).get(metric.peer)
        if ring is None:
            ring = self._store[metric.name][metric.peer] = collections.deque(
                maxlen=self._ring_size
            )
        ring.append(stamped)
        self._alerted.discard((metric.name, metric.peer))

    def publish_metric(self, metric):
        """Store this peer's ``metric`` and send it through the ``send`` hook.

        Returns a Deferred firing None once sent; it fails with whatever the hook
        fails with (NoLeader, PeerUnreachable), or ShuttingDown after stop.
        """
        try:
            self.log_metric(metric)
        except Exception:
            return defer.fail()
        if self._send is None:
            return defer.succeed(None)
        return defer.maybeDeferred(self._send, metric).addCallback(lambda _: None)

    # -- reads ------------------------------------------------------------------

    def _current_peers(self, name: str) -> list[str]:
        if self._peers is None:
            return sorted(self._store.get(name, {}))
        return sorted(set(self._peers()))

    def latest_metrics(self, name: str) -> list:
        """The latest valid, unexpired metric ``name`` of each current peer, by peer ID."""
        by_peer = self._store.get(name, {})
        now = now_ns(self._clock)
        result = []
        for peer in self._current_peers(name):
            ring = by_peer.get(peer)
            if ring:
                metric = ring[-1]
                if not metric.discard(now):
                    result.append(metric)
        return result

    def latest_for_peer(self, name: str, peer_id: str):
        """The latest metric ``name`` of ``peer_id`` as stored, or None."""
        ring = self._store.get(name, {}).get(peer_id)
        return ring[-1] if ring else None

    def metrics_for_peer(self, name: str, peer_id: str) -> list:
        """Every stored metric ``name`` of ``peer_id``, oldest first (at most the ring size)."""
        return list(self._store.get(name, {}).get(peer_id, ()))

    def metric_names(self) -> list[str]:
        """The sorted names of the metrics stored."""
        return sorted(self._store)

    def alerts(self) -> list:
        """The alerts raised during the last ``check_interval``."""
        self._prune()
        return [alert for _, alert in self._recent]

    def subscribe_alerts(self, callback: Callable) -> Callable[[], None]:
        """Call ``callback(alert)`` for every alert from now on; returns the canceller."""
        self._subscribers.append(callback)

        def cancel():
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return cancel

    # -- checks -----------------------------------------------------------------

    def _prune(self) -> None:
        horizon = now_ns(self._clock) - self._config.check_interval.nanoseconds
        while self._recent and self._recent[0][0] <= horizon:
            self._recent.popleft()

    def check(self) -> list:
        """Run one expiry check now; returns the alerts it raised.

        Called every ``check_interval`` while the service runs.
        """
        now = now_ns(self._clock)
        raised = []
        for name in sorted(self._store):
            by_peer = self._store[name]
            for peer in self._current_peers(name):
                ring = by_peer.get(peer)
                if not ring or (name, peer) in self._alerted:
                    continue
                metric = ring[-1]
                if metric.valid and metric.expired(now):
                    self._alerted.add((name, peer))
                    raised.append(Alert(metric=metric, triggered_at=now))
        self._prune()
        for alert in raised:
            log.info(
                "alert: metric {name} of peer {peer} expired",
                name=alert.metric.name,
                peer=alert.metric.peer,
            )
            self._recent.append((now, alert))
            for callback in list(self._subscribers):
                try:
                    callback(alert)
                except Exception:
                    log.failure("alert subscriber {callback!r} failed", callback=callback)
        return raised
