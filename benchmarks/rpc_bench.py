"""RPC transport: round trips per second and bulk throughput over TLS on loopback.

Two peers in this process (one reactor, so the figures include the CPU of both
ends) talk over real TLS 1.3 sockets on 127.0.0.1, exactly as cluster peers do
(``RPCServer`` + ``RPCClient``, cluster-secret certificates, TCP_NODELAY):

- ``round_trips_per_s_1``: sequential small calls (one in flight), with the p50 and
  p99 latency of one call;
- ``round_trips_per_s_16``: 16 callers each looping over small calls;
- ``mb_per_s``: 1 MiB payloads (``Raft.InstallSnapshotChunk``, so chunked into AMP
  values of 64 KiB) sent one after another, in MB (10**6 bytes) of payload per second;
- ``round_trips_per_s_16_8k`` and ``..._nagle``: 16 callers sending 8 KB payloads with
  TCP_NODELAY (as always) and then, on the same connection in the same run, with
  Nagle's algorithm back on; ``nodelay_speedup`` is their ratio (why every
  connection sets TCP_NODELAY).

Prints one JSON line: ``{"scenario": "rpc", ...}``.  ``--quick`` runs for a
fraction of a second per figure (a test runs it so the script cannot rot).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, task  # noqa: E402

from ipfscluster.identity import Identity  # noqa: E402
from ipfscluster.rpc import commands  # noqa: E402
from ipfscluster.rpc.client import RPCClient  # noqa: E402
from ipfscluster.rpc.server import Responders, RPCServer  # noqa: E402
from ipfscluster.rpc.tls import ClusterTLS  # noqa: E402

SECRET = os.urandom(32)
MIB = 1 << 20


def _percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))]


async def _start_peer(reactor):
    identity = Identity.generate()
    responders = Responders()
    responders.register(commands.RaftMessage, lambda caller, payload: {})
    responders.register(commands.RaftInstallSnapshotChunk, lambda caller, payload: {})
    tls = ClusterTLS(identity.private_key, SECRET, reactor)
    client = RPCClient(reactor, tls, responders, network_timeout=30)
    server = RPCServer(reactor, client, "/ip4/127.0.0.1/tcp/0")
    await server.startService()
    return client, server


async def _loop(call, seconds, latencies):
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
        count += 1
    return count


async def _round_trips(call, in_flight, seconds):
    latencies: list[float] = []
    started = time.perf_counter()
    counts = await defer.gatherResults(
        [defer.Deferred.fromCoroutine(_loop(call, seconds, latencies)) for _ in range(in_flight)]
    )
    elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, latencies


async def _main(reactor, quick: bool):
    seconds = 0.3 if quick else 3.0
    (a, a_server), (b, b_server) = await _start_peer(reactor), await _start_peer(reactor)
    host, port = b_server.address()
    a.add_peer_address(b.peer_id, f"/ip4/{host}/tcp/{port}/p2p/{b.peer_id}")
    small = b"x" * 64

    def call_small():
        return a.send_raft_message(b.peer_id, small)

    try:
        await call_small()  # connect first: the figures are for a warm connection
        rate_1, latencies_1 = await _round_trips(call_small, 1, seconds)
        rate_16, latencies_16 = await _round_trips(call_small, 16, seconds)
        payload = os.urandom(MIB)
        sent = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            await a.send_snapshot_chunk(b.peer_id, payload)
            sent += len(payload)
        mb_per_s = sent / (time.perf_counter() - started) / 1e6
        eight_k = os.urandom(8000)

        def call_8k():
            return a.send_raft_message(b.peer_id, eight_k)

        rate_8k, _ = await _round_trips(call_8k, 16, seconds)
        connections = [a._links[b.peer_id].conn, b._links[a.peer_id].conn]
        for conn in connections:
            conn.transport.transport.setTcpNoDelay(False)
        rate_8k_nagle, _ = await _round_trips(call_8k, 16, seconds)
        tls_version = connections[0].transport.getHandle().get_protocol_version_name()
    finally:
        await a_server.stopService()
        await b_server.stopService()
    print(
        json.dumps(
            {
                "scenario": "rpc",
                "quick": quick,
                "tls": tls_version,
                "round_trips_per_s_1": round(rate_1),
                "p50_ms_1": round(_percentile(latencies_1, 0.5) * 1000, 3),
                "p99_ms_1": round(_percentile(latencies_1, 0.99) * 1000, 3),
                "round_trips_per_s_16": round(rate_16),
                "p50_ms_16": round(_percentile(latencies_16, 0.5) * 1000, 3),
                "mb_per_s": round(mb_per_s, 1),
                "round_trips_per_s_16_8k": round(rate_8k),
                "round_trips_per_s_16_8k_nagle": round(rate_8k_nagle),
                "nodelay_speedup": round(rate_8k / rate_8k_nagle, 1),
            }
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (seconds)")
    args = parser.parse_args(argv)
    task.react(lambda reactor: defer.Deferred.fromCoroutine(_main(reactor, args.quick)))


if __name__ == "__main__":
    main()
