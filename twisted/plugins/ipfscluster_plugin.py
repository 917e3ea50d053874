"""twistd plugin: ``twistd -n ipfs-cluster --config DIR`` runs an IPFS Cluster peer.

Only a ServiceMaker lives here (Twisted imports every file of ``twisted/plugins``
when it looks for plugins, so this stays import-cheap); the options and
``makeService`` are in :mod:`ipfscluster.tap`.  There is deliberately no
``__init__.py`` next to this file: ``twisted/plugins`` is a namespace shared with
Twisted itself.
"""

from twisted.application.service import ServiceMaker

ipfsCluster = ServiceMaker(
    "IPFS Cluster peer",
    "ipfscluster.tap",
    "Run an IPFS Cluster peer (pinset orchestration for IPFS)",
    "ipfs-cluster",
)
