"""Informers: the metric each peer publishes for allocation (reference §9.1).

- :class:`DiskInformer` (``informer.disk``): ``freespace`` or ``reposize``;
- :class:`NumpinInformer` (``informer.numpin``): ``numpin``.

:func:`build` makes the one the ``--alloc`` strategy names.
"""

from __future__ import annotations

from ipfscluster.informer.disk import DiskInformer
from ipfscluster.informer.numpin import NumpinInformer

__all__ = ["DiskInformer", "NumpinInformer", "build"]


def build(kind: str, informer_config, connector, clock, peer_id: str = ""):
    """The informer of ``kind`` (``"disk"`` or ``"numpin"``) with its config section.

    Raises ValueError for another kind (the ``--alloc`` flag is checked before).
    """
    if kind == "disk":
        return DiskInformer(informer_config, connector, clock, peer_id)
    if kind == "numpin":
        return NumpinInformer(informer_config, connector, clock, peer_id)
    raise ValueError(f"unknown informer kind {kind!r}")
