"""The numpin informer (``informer.numpin``): how many pins the IPFS daemon holds.

The value is the number of recursive pins in the ipfs state (``pin/ls
?type=recursive``, streamed: the pins are counted, not kept); pair it with the
ascending allocator so that the least loaded peer gets new pins.
"""

from __future__ import annotations

from ipfscluster.informer.base import BaseInformer

__all__ = ["NumpinInformer"]


class NumpinInformer(BaseInformer):
    """Metric ``numpin``.

    ``config`` is the ``informer.numpin`` section, ``connector`` an ``IIPFSConnector``
    (only ``pin_ls`` is used), ``clock`` an ``IReactorTime``, ``peer_id`` the ID
    written in the metrics' ``peer``.
    """

    name = "numpin"

    def __init__(self, config, connector, clock, peer_id: str = ""):
        super().__init__(config.metric_ttl, connector, clock, peer_id)

    async def _value(self) -> int:
        count = 0

        def receive(cid, status):
            nonlocal count
            count += 1

        answered = await self._connector.pin_ls("recursive", receive)
        return count if answered is None else answered
