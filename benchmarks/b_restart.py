"""B6: snapshot, restart and catch-up with N pins in the shared state.

Starts from an imported state (:func:`b_bulk.imported_cluster`) with
``snapshot_threshold`` set low so that a few more pins trigger a snapshot:

- (a) ``snapshot_s``: the time the leader reports for its snapshot of the whole
  state (its log line ``raft snapshot at index … (… bytes, Ns)``), and
  ``max_pin_latency_during_snapshot_ms``: the slowest of the sequential pins made
  while the snapshot was taken (an upper bound of how long applies were blocked);
- (b) ``restart_to_ready_s``: a follower stopped with SIGTERM and started again,
  until it is ready and serves the last pin;
- (c) ``fresh_catch_up_s``: a follower stopped, its Raft data folder removed,
  started again: until it is ready and serves the last pin (it gets the state by
  InstallSnapshot from the leader).  If it has not caught up within half of
  ``limit_s`` on the idle cluster, one more pin is written and
  ``fresh_catch_up_after_one_more_write_s`` is the time from its start until it
  serves that pin (at the time of writing a follower that lost its data catches up
  only when a new entry is written: see docs/performance.rst).

A figure not reached within ``limit_s`` is reported as ``null`` (the run goes on).
"""

from __future__ import annotations

import shutil
import time

from twisted.internet import task

from b_bulk import _get_status, imported_cluster
from bcommon import clients, emit, ms
from integration.procs import SNAPSHOT


async def _serves(reactor, cluster, peer, cid: str, seconds: float) -> float | None:
    """Seconds until ``peer`` is ready and serves ``cid``; None if not within ``seconds``."""
    started = time.perf_counter()
    await cluster.wait_ready(peer, seconds=seconds)
    while await _get_status(reactor, f"{peer.rest_url}/allocations/{cid}") != 200:
        if time.perf_counter() - started > seconds:
            return None
        await task.deferLater(reactor, 0.05, lambda: None)
    return round(time.perf_counter() - started, 2)


async def b6(reactor, quick: bool, runs: int) -> dict:
    pins = 1_000 if quick else 100_000
    threshold = 50
    limit = 20.0 if quick else 60.0  # a figure not reached within it is reported as null
    overrides = {"raft": {"snapshot_threshold": threshold, "trailing_logs": 10, "snapshot_interval": "1s"}}
    async with imported_cluster(reactor, pins, overrides=overrides) as (cluster, cids, _t):
        leader = cluster.leader()
        follower = next(p for p in cluster.peers if p is not leader)
        # (a) pins until the leader logs a snapshot
        latencies = []
        from ipfscluster.cid import CID
        import random

        rng = random.Random(9)
        async with clients(reactor, [leader.rest_url], 1) as (client,):
            deadline = time.perf_counter() + 120
            while not SNAPSHOT.findall(leader.log_since_start()) and time.perf_counter() < deadline:
                t0 = time.perf_counter()
                last = str(CID.v0(rng.randbytes(32)))
                await client.pin(last)
                latencies.append(time.perf_counter() - t0)
        snaps = SNAPSHOT.findall(leader.log_since_start())
        snapshot_s = float(snaps[-1][2]) if snaps else None
        snapshot_bytes = int(snaps[-1][1]) if snaps else None
        # (b) restart a follower
        await cluster.stop_peer(follower)
        cluster.start_peer(follower)
        restart_s = await _serves(reactor, cluster, follower, last, limit)
        # (c) the same follower with its data removed
        await cluster.stop_peer(follower)
        shutil.rmtree(follower.data_folder)
        started = time.perf_counter()
        cluster.start_peer(follower)
        fresh_s = await _serves(reactor, cluster, follower, last, limit / 2)
        after_write_s = None
        if fresh_s is None:  # idle cluster: write one more pin, wait again
            async with clients(reactor, [leader.rest_url], 1) as (client,):
                last = str(CID.v0(rng.randbytes(32)))
                await client.pin(last)
            if await _serves(reactor, cluster, follower, last, limit / 2) is not None:
                after_write_s = round(time.perf_counter() - started, 2)
        fresh_has_first = await _get_status(reactor, f"{follower.rest_url}/allocations/{cids[0]}") == 200
    return emit("B6", quick, pins=pins, snapshot_threshold=threshold, snapshot_s=snapshot_s,
                snapshot_bytes=snapshot_bytes, pins_until_snapshot=len(latencies),
                max_pin_latency_during_snapshot_ms=ms(max(latencies)) if latencies else None,
                restart_to_ready_s=restart_s, fresh_catch_up_s=fresh_s,
                fresh_catch_up_after_one_more_write_s=after_write_s, limit_s=limit,
                fresh_peer_has_imported_pins=fresh_has_first,
                target={"snapshot_s": 2, "blocked_ms": 100, "restart_to_ready_s": 3, "fresh_catch_up_s": 10})


