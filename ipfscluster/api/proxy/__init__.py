"""The IPFS proxy (``api/proxy``): a kubo RPC API endpoint that cluster-pins.

:class:`~ipfscluster.api.proxy.server.IPFSProxy` is the ``IAPI`` service; see
:mod:`.server` for what is intercepted, :mod:`.add` for ``add`` and
:mod:`.forward` for the streaming reverse proxy.  ``docs/proxy.rst`` is the
operator's guide.
"""

from ipfscluster.api.proxy.server import IPFSProxy

__all__ = ["IPFSProxy"]
