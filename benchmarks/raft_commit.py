"""Raft commit latency and throughput, 3 nodes in one process, real TLS on loopback.

Two layers, each with 1 sequential proposer and 16 concurrent proposers:

- ``raft_*``: :meth:`RaftConsensus.log_pin` on the leader of 3 ``RaftConsensus``
  nodes wired to the real ``RPCServer``/``RPCClient`` (TLS 1.3, TCP_NODELAY) on
  127.0.0.1, SQLite with ``synchronous=FULL`` (fsync on);
- ``cluster_*``: :meth:`Cluster.pin` on the leader of a 3-peer
  :class:`~ipfscluster.testing.harness.LocalCluster` (allocation, Raft, fake kubo
  daemons answering at once).

All three peers share one reactor and one process, so every figure includes the
CPU of the leader AND of both followers (on 2 shared cores).  Prints one JSON line
``{"scenario": "raft_commit", ...}``; ``--quick`` runs a fraction of a second per
figure (a test may run it so the script cannot rot).

Figures on this machine (2 cores shared with ~7 other jobs), ``--seconds 2`` or
``3``, both modes alternating in the same minutes; "before" is ``--sync-saves``
(every save in the reactor thread, a leader sending only after its own fsync).

Busy disk (load 6–8; a 200-byte append + fdatasync took 4 ms p50 / 8 ms p90):

=============================  ==================  ==================
figure                         before (2 runs)     after (2 runs)
=============================  ==================  ==================
raft, 1 proposer: commits/s    73, 71              164, 62
raft, 1 proposer: p50 / p99    12 / 30, 12 / 30    3.9 / 26, 16 / 44
raft, 16 proposers: commits/s  712, 870            999, 680
Cluster.pin, 1: pins/s         27, 20              49, 30
Cluster.pin, 1: p50 ms         36, 44              15, 32
Cluster.pin, 16: pins/s        341, 325            314, 399
=============================  ==================  ==================

Quiet disk (load 4–5; fdatasync 0.14 ms p50, 0.8 ms p90, 43 ms p99), 3 runs:

=============================  ======================  ======================
figure                         before                  after
=============================  ======================  ======================
raft, 1: commits/s             189, 313, 95            257, 290, 159
raft, 1: p50 / p99 ms          3.2/24, 3.0/7.4, 9/36   3.3/11, 3.3/7.2, 4.7/29
raft, 16: commits/s            1968, 1887, 756         2003, 2393, 985
raft, 16: p50 / p99 ms         5.7/26, 6.5/24, 17/71   6.7/21, 5.8/15, 16/33
Cluster.pin, 1: p50 / p99 ms   9.8/68, 8.7/31, 23/119  9.6/26, 9.5/19, 11/40
Cluster.pin, 16: pins/s        708, 903, 384           1037, 595, 592
=============================  ======================  ======================

What bounds them (traced per message with ``time.perf_counter`` marks): no timer or
tick is on the commit path (a proposal is batched and sent in the same reactor turn,
the commit index reaches the followers in an AppendEntries sent at once, the
proposer fires on the leader's apply).  Before, one sequential commit was three
fsyncs one after another in the one reactor thread (leader, then each follower),
the leader's AppendEntries leaving only after its own fsync: 12–24 ms whenever the
disk was busy.  After, the fsyncs overlap (thread pool) and the leader's appends
leave before its fsync, so a commit costs about one fsync plus the CPU of its
messages; an fsync stall no longer freezes the reactor (p99).  With a quiet disk the
figures are CPU-bound (one process runs all three peers): ~11 TLS writes per commit
(every ``Raft.Message`` is an AMP call with an answer, and the commit index goes to
the followers in its own AppendEntries that they answer), SQLite statements of the
commit-index saves, and for ``Cluster.pin`` the allocation, the tracker and the fake
daemon's HTTP; the thread hand-off costs ~0.1–0.3 ms there (p50 about even).
Since then ``Raft.Message`` is one-way (no answer boxes: about half the TLS
writes), and each figure also gives the process's CPU per commit (``cpu_ms``),
which depends less on the machine's load; the later A/B runs (one-way messages,
thread pool against ``--sync-saves``) are in ``docs/performance.rst``
(*Pin ingestion: profile, changes and A/B*).

Why hand-written: benchmark glue for our own components; statistics are two lines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from twisted.internet import defer, task  # noqa: E402

from benchmarks.bcommon import emit, ms, percentile, random_cids  # noqa: E402
from ipfscluster.cid import CID  # noqa: E402
from ipfscluster.types import Pin  # noqa: E402


async def _measure(reactor, pin_one, cids, proposers: int, seconds: float) -> dict:
    """``proposers`` loops calling ``pin_one(cid)`` for ``seconds``; the figures."""
    latencies: list[float] = []
    it = iter(cids)
    deadline = time.perf_counter() + seconds

    async def loop():
        while time.perf_counter() < deadline:
            c = next(it)
            t0 = time.perf_counter()
            await pin_one(c)
            latencies.append(time.perf_counter() - t0)

    start, cpu = time.perf_counter(), time.process_time()
    await defer.gatherResults([defer.Deferred.fromCoroutine(loop()) for _ in range(proposers)],
                              consumeErrors=True)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    # CPU of the whole process (three peers, their threads): less load-sensitive
    return {"per_s": round(len(latencies) / wall, 1), "p50_ms": ms(percentile(latencies, 0.5)),
            "p99_ms": ms(percentile(latencies, 0.99)), "n": len(latencies),
            "cpu_ms": round(cpu * 1000 / max(1, len(latencies)), 3)}


async def _wait(reactor, predicate, seconds=20.0):
    deadline = reactor.seconds() + seconds
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError("condition not reached in %ss" % seconds)
        await task.deferLater(reactor, 0.01, lambda: None)


async def bench_raft(reactor, folder: str, seconds: float, cids) -> dict:
    """RaftConsensus.log_pin on the leader of 3 TLS-connected nodes."""
    from tests.raft.test_raft_consensus import TLSPeer, config

    from ipfscluster.identity import Identity

    cfg = config(election_timeout="1s", heartbeat_timeout="1s",
                 wait_for_leader_timeout="10s", network_timeout="5s",
                 commit_retry_delay="50ms", commit_retries=3)
    identities = [Identity.generate() for _ in range(3)]
    ids = [i.peer_id for i in identities]
    peers = [TLSPeer(reactor, ident, os.path.join(folder, ident.peer_id[-6:]), ids, cfg)
             for ident in identities]
    out = {}
    try:
        for p in peers:
            await p.start()
        for p in peers:
            for other in peers:
                if other is not p:
                    p.client.add_peer_address(other.peer_id, other.multiaddr)
        for p in peers:
            await p.consensus.ready()
        leader_id = await peers[0].consensus.wait_for_leader()
        leader = next(p for p in peers if p.peer_id == leader_id).consensus
        await leader.log_pin(Pin.new(CID.parse(next(cids))))  # warm up connections

        def pin_one(c):
            return leader.log_pin(Pin.new(CID.parse(c)))

        for n in (1, 16):
            fig = await _measure(reactor, pin_one, cids, n, seconds)
            out.update({f"raft_{k}_{n}": v for k, v in fig.items()})
    finally:
        for p in peers:
            await p.stop()
    return out


async def bench_cluster(reactor, folder: str, seconds: float, cids) -> dict:
    """Cluster.pin on the leader of a 3-peer LocalCluster."""
    from ipfscluster.testing.harness import LocalCluster

    overrides = {"raft": {"election_timeout": "1s", "heartbeat_timeout": "1s"}}
    cluster = LocalCluster(reactor, folder, 3, overrides=overrides)
    out = {}
    try:
        await cluster.start()
        leader = (await cluster.leader()).cluster
        await leader.pin(next(cids))

        def pin_one(c):
            return leader.pin(c)

        for n in (1, 16):
            fig = await _measure(reactor, pin_one, cids, n, seconds)
            out.update({f"cluster_{k}_{n}": v for k, v in fig.items()})
    finally:
        await cluster.stop()
    return out


async def main(reactor, argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (seconds)")
    parser.add_argument("--seconds", type=float, default=None, help="per figure")
    parser.add_argument("--only", choices=("raft", "cluster"), default=None)
    parser.add_argument("--sync-saves", action="store_true",
                        help="save in the reactor thread, sending after the save (as before)")
    args = parser.parse_args(argv)
    if args.sync_saves:
        from ipfscluster.consensus.raft import node

        node.PERSIST_IN_THREADS = False
    seconds = args.seconds or (0.5 if args.quick else 5.0)
    cids = (c for _ in iter(int, 1) for c in random_cids(1000))
    folder = tempfile.mkdtemp(prefix="raft-commit-")
    figures = {}
    try:
        if args.only in (None, "raft"):
            figures.update(await bench_raft(reactor, os.path.join(folder, "raft"), seconds, cids))
        if args.only in (None, "cluster"):
            figures.update(await bench_cluster(reactor, os.path.join(folder, "cluster"), seconds, cids))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    emit("raft_commit", args.quick, seconds_per_figure=seconds,
         saves="reactor thread" if args.sync_saves else "thread pool", **figures)


if __name__ == "__main__":
    task.react(lambda reactor: defer.Deferred.fromCoroutine(main(reactor, sys.argv[1:])))
