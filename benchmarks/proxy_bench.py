"""B8: what ``add`` through the IPFS proxy costs against an add straight to the daemon.

Three cluster peers on loopback (real TLS between peers, fsync on), each with its
proxy and its fake kubo daemon (``ipfscluster.testing.harness.LocalCluster``), all
in this process.  A client in the same process (twisted ``Agent``, persistent
connections) posts the same multipart upload alternately

- **direct** to peer 0's daemon (``/api/v0/add``, kubo's default ``pin=true``), and
- through peer 0's **proxy** (forwarded with ``pin=false``, then cluster-pinned:
  a Raft commit replicated to the three peers before the last line is relayed).

Figures (medians of several runs; both sides measured in the same run):

Each add through the proxy is followed (untimed) by a wait until the three peers'
daemons pin it, so every request is measured on a quiet cluster.

- ``1k``: latency of a 1 KB add, p50/p99 each way, and ``added_ms`` = proxy p50 −
  direct p50 (target ≤ 5 ms); ``relay_only_p50_ms``/``relay_added_ms`` split it: the
  same add through the proxy with ``pin=false`` (forwarding only, no cluster pin),
  so ``added_ms - relay_added_ms`` is the cluster pin's commit;
- ``1m``/``100m``: throughput (MB/s) each way and ``ratio`` = proxy / direct
  (target at 100 MB: ≥ 0.8).

Every upload has distinct content (a counter in its first bytes), so no add is a
no-op for the daemon or the cluster.  The daemon, the peers and the proxy share
this process's one reactor thread, so the proxy's relaying competes with the
daemon's importing: the ratio is a floor for separate processes.  The machine's
load average at the start and the end is printed too: on a shared machine the
figures are only comparable between runs at a similar load.

Prints one JSON line ``{"scenario": "B8", ...}``.  ``--quick`` uses few runs and
1 MB instead of 100 MB, for the test that keeps this script from rotting.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, protocol  # noqa: E402
from twisted.web import client  # noqa: E402
from twisted.web.http_headers import Headers  # noqa: E402

from ipfscluster.api.proxy import IPFSProxy  # noqa: E402
from ipfscluster.api.proxy.forward import NoDelayEndpoints, set_no_delay  # noqa: E402
from ipfscluster.testing.harness import LocalCluster  # noqa: E402

BOUNDARY = b"b8benchmarkboundary"
HEADERS = Headers({b"content-type": [b"multipart/form-data; boundary=" + BOUNDARY]})
KB, MB = 1000, 1000 * 1000

#: production timings instead of the harness's fast test timings, so the peers'
#: heartbeats and metrics do not compete with the adds for this one reactor
QUIET = {
    "ipfshttp": {"proxy_listen_multiaddress": "/ip4/127.0.0.1/tcp/0"},
    "raft": {"heartbeat_timeout": "1s", "election_timeout": "1s"},
    "cluster": {"monitor_ping_interval": "15s"},
    "monitor": {"check_interval": "15s"},
    "disk_informer": {"metric_ttl": "30s"},
    "numpin_informer": {"metric_ttl": "30s"},
}


def _body(size: int, serial: int) -> bytes:
    head = (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    stamp = b"%020d" % serial
    filler = (b"ipfscluster proxy benchmark " * (size // 28 + 1))[: max(0, size - len(stamp))]
    return head + stamp + filler + b"\r\n--" + BOUNDARY + b"--\r\n"


class _Drain(protocol.Protocol):
    def __init__(self, done):
        self.done = done
        self.data = []

    def dataReceived(self, data):
        self.data.append(data)

    def connectionLost(self, reason):
        if reason.check(client.ResponseDone):
            self.done.callback(b"".join(self.data))
        else:
            self.done.errback(reason)


async def _add(agent, url: bytes, body: bytes) -> tuple[float, bytes]:
    """Seconds one add took (to the end of the answer) and the answer; raises on a
    non-200."""
    start = time.perf_counter()
    producer = client.FileBodyProducer(io.BytesIO(body))
    response = await agent.request(b"POST", url, HEADERS, producer)
    done = defer.Deferred()
    response.deliverBody(_Drain(done))
    answer = await done
    elapsed = time.perf_counter() - start
    if response.code != 200 or b'"Type":"error"' in answer:
        raise RuntimeError(f"add failed: {response.code} {answer[:300]!r}")
    return elapsed, answer


def _pct(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))]


async def run(reactor, quick: bool) -> dict:
    folder = tempfile.mkdtemp(prefix="b8-")
    lc = LocalCluster(
        reactor,
        folder,
        3,
        overrides=QUIET,
        apis_factory=lambda cluster: [IPFSProxy(cluster.config.ipfshttp, cluster, reactor)],
    )
    await lc.start()
    pool = client.HTTPConnectionPool(reactor, persistent=True)
    # a client like Go's (kubo's own clients): TCP_NODELAY on its connections
    agent = client.Agent.usingEndpointFactory(reactor, NoDelayEndpoints(reactor), pool=pool)
    peer = lc.peers[0]
    proxy = next(api for api in peer.cluster.c.apis if isinstance(api, IPFSProxy))
    urls = {
        "direct": peer.kubo.api_url.encode() + b"/api/v0/add",
        "proxy": b"http://127.0.0.1:%d/api/v0/add" % proxy.addresses()[0].port,
        "relay": b"http://127.0.0.1:%d/api/v0/add?pin=false" % proxy.addresses()[0].port,
    }
    serial = [0]

    async def sample(size: int, runs: int, ways=("direct", "proxy")) -> dict:
        times = {way: [] for way in ways}
        for _ in range(runs):
            for way in ways:  # alternate: every way sees the same conditions
                serial[0] += 1
                elapsed, answer = await _add(agent, urls[way], _body(size, serial[0]))
                times[way].append(elapsed)
                if way == "proxy":
                    await settled(json.loads(answer.splitlines()[-1])["Hash"])
        return times

    async def settled(cid: str) -> None:
        # the peers pin the new CID in the background after the commit; let them
        # finish (not timed) so the next request is measured on a quiet cluster
        from ipfscluster.cid import CID

        parsed = CID.parse(cid)
        await lc.poll(lambda: all(p.kubo.pin_mode(parsed) for p in lc.peers), seconds=60, what="pinned everywhere")

    try:
        await sample(KB, 3)  # warm-up: connections, leader, caches
        result = {"scenario": "B8", "quick": quick, "peers": 3, "load_avg_start": round(os.getloadavg()[0], 2)}
        small = await sample(KB, 10 if quick else 200, ("direct", "proxy", "relay"))
        p50 = {w: statistics.median(t) * 1000 for w, t in small.items()}
        result["1k"] = {
            "direct_p50_ms": round(p50["direct"], 3),
            "proxy_p50_ms": round(p50["proxy"], 3),
            "relay_only_p50_ms": round(p50["relay"], 3),
            "relay_added_ms": round(p50["relay"] - p50["direct"], 3),
            "direct_p99_ms": round(_pct(small["direct"], 0.99) * 1000, 3),
            "proxy_p99_ms": round(_pct(small["proxy"], 0.99) * 1000, 3),
            "added_ms": round(p50["proxy"] - p50["direct"], 3),
            "target_added_ms": 5,
        }
        for label, size, runs in (("1m", MB, 3 if quick else 10), ("100m", MB if quick else 100 * MB, 1 if quick else 5)):
            times = await sample(size, runs)
            mbs = {w: size / MB / statistics.median(t) for w, t in times.items()}
            result[label] = {
                "bytes": size,
                "direct_mb_s": round(mbs["direct"], 2),
                "proxy_mb_s": round(mbs["proxy"], 2),
                "ratio": round(mbs["proxy"] / mbs["direct"], 3),
            }
        result["100m"]["target_ratio"] = 0.8
        pins = len(list(peer.cluster.c.state.list()))
        result["cluster_pins"] = pins
        result["load_avg_end"] = round(os.getloadavg()[0], 2)
        return result
    finally:
        await pool.closeCachedConnections()
        await lc.stop()


def _servers_without_nagle() -> None:
    """Turn on TCP_NODELAY on every HTTP server connection of this process.

    kubo (Go) sets it on every connection; the fake daemon's twisted server does
    not, and each of its answers would then wait for the client's delayed ACK
    (~40 ms), hiding what the proxy costs.  The proxy sets it itself.
    """
    from twisted.web import http

    made = http.HTTPChannel.connectionMade

    def connection_made(self):
        set_no_delay(self.transport)
        made(self)

    http.HTTPChannel.connectionMade = connection_made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few runs at 1 KB / 1 MB (seconds)")
    options = parser.parse_args(argv)
    from twisted.internet import reactor

    _servers_without_nagle()
    out = {}

    async def go():
        try:
            out.update(await run(reactor, options.quick))
        finally:
            reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(go()))
    reactor.run()
    if not out:
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
