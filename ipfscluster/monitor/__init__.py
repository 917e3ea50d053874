"""Monitoring: metrics from every peer, alerts when they stop (reference §9.1-§9.2).

- :class:`PeerMonitor` (:mod:`.basic`): the ``monbasic`` monitor
  (:class:`~ipfscluster.interfaces.IPeerMonitor`): rings of metrics, latest metrics
  for allocation, one alert per expiry;
- :class:`MetricPublisher` (:mod:`.publisher`): publishes the ``ping`` metric and
  the informer's metric on the injected clock.
"""

from __future__ import annotations

from ipfscluster.monitor.basic import RING_SIZE, PeerMonitor
from ipfscluster.monitor.publisher import MetricPublisher, ping_metric

__all__ = ["MetricPublisher", "PeerMonitor", "RING_SIZE", "ping_metric"]
