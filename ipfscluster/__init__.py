"""ipfscluster: a Python/Twisted implementation of ipfs-cluster, the pinset
orchestrator for IPFS.

See ``README.rst`` for the quick start and ``docs/`` for the operator's guide.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
