"""A faithful fake kubo daemon for tests, demos and operators' own tooling.

``FakeIPFS`` answers the kubo RPC API (``/api/v0``) the way kubo does for
everything the cluster and its IPFS proxy use: same paths, arguments, JSON shapes,
NDJSON framing, status codes, error bodies and messages, and real CIDs for ``add``
(kubo's importer: 256 KiB chunks, balanced DAG of 174 links, CIDv0 or CIDv1 with
raw leaves, UnixFS directories).  Several daemons share a ``FakeNetwork`` so content
added on one can be pinned on another; pinning content nobody has waits, as kubo
does.  Tests make a daemon slow, failing, hanging or unreachable through
``daemon.faults`` and ``daemon.go_down()``.

Drive it without sockets through ``treq.testing.StubTreq(daemon.resource)``, or
listen on loopback with ``daemon.listen("/ip4/127.0.0.1/tcp/0")``.  Run it alone
with ``python -m ipfscluster.testing.fakeipfs --api /ip4/127.0.0.1/tcp/5001``.
See ``docs/testing.rst``.
"""

from ipfscluster.testing.fakeipfs.daemon import (
    DEFAULT_STORAGE_MAX,
    DEFAULT_VERSION,
    FakeIPFS,
    Pin,
    RawBody,
)
from ipfscluster.testing.fakeipfs.errors import KuboCommandError, KuboNotFound, KuboRequestError
from ipfscluster.testing.fakeipfs.faults import ALL, Faults, Hang, InjectedError
from ipfscluster.testing.fakeipfs.importer import Imported, Importer, ImportOptions
from ipfscluster.testing.fakeipfs.network import FakeNetwork, forget_named_networks, named_network
from ipfscluster.testing.fakeipfs.server import KuboAPIResource

__all__ = [
    "ALL",
    "DEFAULT_STORAGE_MAX",
    "DEFAULT_VERSION",
    "FakeIPFS",
    "FakeNetwork",
    "Faults",
    "Hang",
    "Imported",
    "Importer",
    "ImportOptions",
    "InjectedError",
    "KuboAPIResource",
    "KuboCommandError",
    "KuboNotFound",
    "KuboRequestError",
    "Pin",
    "RawBody",
    "forget_named_networks",
    "named_network",
]
