"""What the informers share: a Twisted service producing one metric on demand.

An informer (§9.1) answers :meth:`get_metric` with a fresh
:class:`~ipfscluster.types.Metric` named :attr:`name`, expiring :attr:`ttl` seconds
after the injected clock's now.  When the IPFS daemon cannot give the value the
metric is still produced, with ``valid=False`` and an empty value, so the monitor and
the allocator treat the peer as having no usable metric; the failure is logged once
when it starts and once when it ends.  The cluster asks for a
metric every ``ttl / 2`` and publishes it (see :mod:`ipfscluster.monitor.publisher`).
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ipfscluster.errors import ShuttingDown
from ipfscluster.interfaces import IInformer
from ipfscluster.types import Metric

log = Logger(namespace="informer")

_NS = 1_000_000_000


@implementer(IInformer)
class BaseInformer(Service):
    """Common part of the informers; subclasses implement ``_value()``.

    ``_value()`` is ``async`` and returns the metric value as an int (it may raise
    anything: that makes the metric invalid).
    """

    name = ""

    def __init__(self, metric_ttl, connector, clock, peer_id: str = ""):
        self.ttl = metric_ttl.seconds
        self._ttl_ns = metric_ttl.nanoseconds
        self._connector = connector
        self._clock = clock
        self.peer_id = peer_id
        self._stopped = False
        self._failing = False

    def startService(self):
        self._stopped = False
        return super().startService()

    def stopService(self):
        self._stopped = True
        return super().stopService()

    def get_metric(self):
        """A Deferred firing a fresh Metric (``valid=False`` if the value is unavailable).

        Fails only with :class:`ShuttingDown` after ``stopService``.
        """
        if self._stopped:
            return defer.fail(ShuttingDown())
        return defer.Deferred.fromCoroutine(self._produce())

    async def _produce(self):
        try:
            value = str(int(await self._value()))
            valid = True
        except Exception as err:
            if not self._failing:  # log once per failure streak, not every ttl/2
                log.warn(
                    "cannot obtain the {name} metric, publishing it as invalid: {error}",
                    name=self.name,
                    error=str(err) or repr(err),
                )
            self._failing = True
            value, valid = "", False
        else:
            if self._failing:
                log.info("the {name} metric is available again", name=self.name)
            self._failing = False
        expire = int(round(self._clock.seconds() * _NS)) + self._ttl_ns
        return Metric(name=self.name, peer=self.peer_id, value=value, expire=expire, valid=valid)

    async def _value(self) -> int:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ttl={self.ttl}s>"
