"""B1 (16 concurrent REST clients pinning) and B2 (one sequential client).

Both run against 3 peer processes (:func:`bcommon.process_cluster`).  Each
measurement phase pins fresh CIDs for ``seconds``; ``runs`` phases are made in the
same cluster and the median of each figure is reported, next to every run's value.
B1 is measured twice per run in the same cluster: every client talking to the
leader (``leader``), and the clients spread over the three peers (``spread``, two
thirds of the requests forwarded to the leader over the cluster RPC).

Besides pins/s and latencies, each run reports the CPU time the cluster (three
peer processes and the fake daemons) and the benchmark's own client used per
committed pin (the peers, the fake daemons and the client apart): on a machine shared with other work, that figure says what the
rate would be with the cores to ourselves (``2 cores / CPU per pin``).
"""

from __future__ import annotations

import statistics
import time

from bcommon import clients, emit, ingest, ms, percentile, process_cluster


def _figures(rate, latencies, cpu: float, kubo_cpu: float, client_cpu: float) -> dict:
    pins = max(1, len(latencies))
    return {"pins_per_s": round(rate, 1), "p50_ms": ms(percentile(latencies, 0.5)),
            "p99_ms": ms(percentile(latencies, 0.99)), "pins": len(latencies),
            "peers_cpu_ms_per_pin": round(cpu * 1000 / pins, 2),
            "fake_kubo_cpu_ms_per_pin": round(kubo_cpu * 1000 / pins, 2),
            "client_cpu_ms_per_pin": round(client_cpu * 1000 / pins, 2)}


def _median(runs: list[dict]) -> dict:
    return {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}


async def _phase(reactor, cluster, urls, n, seconds):
    async with clients(reactor, urls, n) as made:
        await ingest(reactor, made, count=n)  # warm the connections
        (cpu, kubo), client_cpu = cluster.cpu_seconds(), time.process_time()
        rate, latencies, _ = await ingest(reactor, made, seconds=seconds)
        (cpu_after, kubo_after), client_after = cluster.cpu_seconds(), time.process_time()
    return _figures(rate, latencies, cpu_after - cpu, kubo_after - kubo, client_after - client_cpu)


async def b1(reactor, quick: bool, runs: int) -> dict:
    """B1: 16 concurrent clients; pins/s and latency percentiles."""
    seconds = 1.0 if quick else 10.0
    async with process_cluster(reactor) as cluster:
        leader = cluster.leader()
        every = [p.rest_url for p in cluster.peers]
        results = {"leader": [], "spread": []}
        for _ in range(runs):
            results["leader"].append(await _phase(reactor, cluster, [leader.rest_url], 16, seconds))
            results["spread"].append(await _phase(reactor, cluster, every, 16, seconds))
    return emit("B1", quick, clients=16, seconds_per_run=seconds, runs=runs,
                leader=_median(results["leader"]), spread=_median(results["spread"]),
                each_run=results, target={"pins_per_s": 3000, "p99_ms": 30})


async def b2(reactor, quick: bool, runs: int) -> dict:
    """B2: one sequential client, to the leader and to a follower."""
    seconds = 1.0 if quick else 10.0
    async with process_cluster(reactor) as cluster:
        leader = cluster.leader()
        follower = next(p for p in cluster.peers if p is not leader)
        results = {"leader": [], "follower": []}
        for _ in range(runs):
            results["leader"].append(await _phase(reactor, cluster, [leader.rest_url], 1, seconds))
            results["follower"].append(await _phase(reactor, cluster, [follower.rest_url], 1, seconds))
    return emit("B2", quick, clients=1, seconds_per_run=seconds, runs=runs,
                leader=_median(results["leader"]), follower=_median(results["follower"]),
                each_run=results, target={"p50_ms": 2, "p99_ms": 10})
