"""Run fake kubo daemons standalone, so the cluster can be tried without kubo.

``python -m ipfscluster.testing.fakeipfs --api /ip4/127.0.0.1/tcp/5001
[--api ...] [--version X] [--network NAME] [--storage-max BYTES]``

Each ``--api`` starts one daemon; all daemons of the process join the network
``NAME`` (default ``default``), so content added on one can be pinned on another.
The process prints one line per daemon (``fakeipfs <peer id> listening on
<multiaddr>``) and runs until interrupted.
"""

from __future__ import annotations

import argparse
import sys

from ipfscluster.testing.fakeipfs.daemon import DEFAULT_STORAGE_MAX, DEFAULT_VERSION, FakeIPFS
from ipfscluster.testing.fakeipfs.network import named_network


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ipfscluster.testing.fakeipfs",
        description="Serve a fake kubo RPC API (for trying ipfs-cluster without kubo).",
    )
    parser.add_argument(
        "--api",
        action="append",
        metavar="MULTIADDR",
        help="listen address, e.g. /ip4/127.0.0.1/tcp/5001 (repeat for more daemons)",
    )
    parser.add_argument("--version", default=DEFAULT_VERSION, help="kubo version to report")
    parser.add_argument("--network", default="default", help="name of the shared network")
    parser.add_argument(
        "--storage-max", type=int, default=DEFAULT_STORAGE_MAX, help="StorageMax in bytes"
    )
    return parser


def start(reactor, argv) -> list[FakeIPFS]:
    """Start the daemons described by ``argv`` on ``reactor``; return them.
    Raises InvalidInput for a bad listen address."""
    options = build_parser().parse_args(argv)
    network = named_network(options.network)
    daemons = []
    for api in options.api or ["/ip4/127.0.0.1/tcp/5001"]:
        daemon = FakeIPFS(
            reactor=reactor,
            network=network,
            version=options.version,
            storage_max=options.storage_max,
        )
        daemon.listen(api)
        daemons.append(daemon)
        print(f"fakeipfs {daemon.peer_id} listening on {daemon.api_multiaddr}", flush=True)
    return daemons


def main(argv=None) -> int:
    from twisted.internet import reactor

    from twisted.internet.error import CannotListenError

    from ipfscluster.errors import ClusterError

    try:
        start(reactor, sys.argv[1:] if argv is None else argv)
    except (ClusterError, CannotListenError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
