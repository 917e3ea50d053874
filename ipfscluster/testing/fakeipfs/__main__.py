"""Run fake kubo daemons standalone, so the cluster can be tried without kubo.

``python -m ipfscluster.testing.fakeipfs --api /ip4/127.0.0.1/tcp/5001
[--api ...] [--version X] [--network NAME] [--storage-max BYTES]
[--instant-pins]``

Each ``--api`` starts one daemon; all daemons join the network ``NAME`` (default
``default``), so content added on one can be pinned on another.  The network is
kept in a folder (``--network-dir``, default ``<tmp>/ipfscluster-fakeipfs/NAME``),
so daemons started by *separate* commands with the same name share content too.
The process prints one line per daemon (``fakeipfs <peer id> listening on
<multiaddr>``) and runs until interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from ipfscluster.testing.fakeipfs.daemon import DEFAULT_STORAGE_MAX, DEFAULT_VERSION, FakeIPFS
from ipfscluster.testing.fakeipfs.network import SharedDirectoryNetwork


def build_parser() -> argparse.ArgumentParser:
    """The command line parser of the standalone command."""
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
        "--network-dir",
        default=None,
        help="folder holding the shared network (default: <tmp>/ipfscluster-fakeipfs/NAME)",
    )
    parser.add_argument(
        "--storage-max", type=int, default=DEFAULT_STORAGE_MAX, help="StorageMax in bytes"
    )
    parser.add_argument(
        "--instant-pins",
        action="store_true",
        help="pin any CID at once, even when no daemon has its content (kubo would wait)",
    )
    return parser


def start(reactor, argv) -> list[FakeIPFS]:
    """Start the daemons described by ``argv`` on ``reactor``; return them.
    Raises InvalidInput for a bad listen address."""
    options = build_parser().parse_args(argv)
    folder = options.network_dir or os.path.join(
        tempfile.gettempdir(), "ipfscluster-fakeipfs", options.network
    )
    network = SharedDirectoryNetwork(options.network, folder, clock=reactor)
    daemons = []
    for api in options.api or ["/ip4/127.0.0.1/tcp/5001"]:
        daemon = FakeIPFS(
            reactor=reactor,
            network=network,
            version=options.version,
            storage_max=options.storage_max,
            instant_pins=options.instant_pins,
        )
        daemon.listen(api)
        daemons.append(daemon)
        print(f"fakeipfs {daemon.peer_id} listening on {daemon.api_multiaddr}", flush=True)
    return daemons


def main(argv=None) -> int:
    """Run the standalone command; returns the exit status (1 when it cannot start)."""
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
