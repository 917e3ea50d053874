"""``ipfs_connector.ipfshttp``: the IPFS daemon connector and the IPFS proxy (§3.4).

Defaults are those of ipfs-cluster 0.3.0, plus ``pin_timeout`` (``2m0s``, the
modern upstream default): how long one ``pin/add`` call to the IPFS daemon may run
before it is cancelled (0.3.0 had no timeout at all, reference §14.7).  The
pin tracker's ``pinning_timeout`` bounds the whole operation including retries.
``connect_swarms_delay`` and the proxy HTTP timeouts may be ``0s`` (no delay / no
timeout).
"""

from __future__ import annotations

import attrs

from ipfscluster.config.base import DurationKind, MultiaddrKind, Section, multiaddr_factory, setting
from ipfscluster.config.durations import Duration
from ipfscluster.multiaddr import Multiaddr

_ZERO_OK = DurationKind(minimum=Duration(0))


@attrs.frozen
class IPFSHTTPConfig(Section):
    """The ``ipfs_connector.ipfshttp`` section."""

    PATH = "ipfs_connector.ipfshttp"

    proxy_listen_multiaddress: Multiaddr = setting(
        MultiaddrKind(example="/ip4/127.0.0.1/tcp/9095"), factory=multiaddr_factory("/ip4/127.0.0.1/tcp/9095")
    )
    node_multiaddress: Multiaddr = setting(
        MultiaddrKind(use="connect", example="/ip4/127.0.0.1/tcp/5001"), factory=multiaddr_factory("/ip4/127.0.0.1/tcp/5001")
    )
    connect_swarms_delay: Duration = setting(_ZERO_OK, Duration.parse("30s"))
    proxy_read_timeout: Duration = setting(_ZERO_OK, Duration.parse("10m0s"))
    proxy_read_header_timeout: Duration = setting(_ZERO_OK, Duration.parse("5s"))
    proxy_write_timeout: Duration = setting(_ZERO_OK, Duration.parse("10m0s"))
    proxy_idle_timeout: Duration = setting(_ZERO_OK, Duration.parse("1m0s"))
    pin_timeout: Duration = setting(DurationKind(), Duration.parse("2m0s"))
