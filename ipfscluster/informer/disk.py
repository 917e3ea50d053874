"""The disk informer (``informer.disk``): free space or repository size (§9.1).

``metric_type`` chooses the metric: ``freespace`` (``StorageMax - RepoSize`` from
``repo/stat``, pair it with the descending allocator) or ``reposize`` (``RepoSize``,
pair it with the ascending allocator).  Values are bytes as decimal strings.
"""

from __future__ import annotations

from ipfscluster.informer.base import BaseInformer

__all__ = ["DiskInformer"]


class DiskInformer(BaseInformer):
    """Metric ``freespace`` or ``reposize`` read from the IPFS daemon.

    ``config`` is the ``informer.disk`` section, ``connector`` an ``IIPFSConnector``
    (only ``free_space()``/``repo_size()`` are used), ``clock`` an ``IReactorTime``,
    ``peer_id`` the ID written in the metrics' ``peer``.
    """

    def __init__(self, config, connector, clock, peer_id: str = ""):
        super().__init__(config.metric_ttl, connector, clock, peer_id)
        self.name = config.metric_type

    async def _value(self) -> int:
        if self.name == "reposize":
            return await self._connector.repo_size()
        return await self._connector.free_space()
