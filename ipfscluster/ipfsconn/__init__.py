"""The IPFS connector: a treq client of the kubo RPC API (``/api/v0``).

See :mod:`ipfscluster.ipfsconn.ipfshttp`.
"""

from ipfscluster.ipfsconn.ipfshttp import IPFSHTTPConnector

__all__ = ["IPFSHTTPConnector"]
