"""B3 (bulk import of N pins) and B4 (``pin ls`` / ``status`` of everything).

B3: an export file of N pins is written (not timed), then — timed — it is
imported into the three stopped peers' Raft data, three imports in parallel as
three machines would run them, and the three peer processes are started and waited
for until each is ready and serves the last imported pin
(``GET /allocations/<cid>``).  The import is :func:`ipfscluster.stateops.import_state`
run in a child process per peer, which is what ``ipfs-cluster-service state import``
does (the command itself is being wired into the CLI at the time of writing).

B4: in that cluster, ``GET /allocations`` (``pin ls``) and ``GET /pins``
(``status``, a fan-out to every peer's tracker) are read to the end on the leader
and on a follower with a raw HTTP client: time to first byte (headers + first
body bytes), total time, lines received, and the RSS growth of the serving peer
process during the request (sampled every 5 ms).  A request that fails is
reported with its error and the time it failed after.  The peers first finish
their start-up work (``settle_s``: until each peer process uses under 10 % of a
core over a second, at most 120 s: the trackers of freshly imported peers sync
with the shared state and pin their first queue-full of pins), then the leader
and the follower are read alternately (leader, follower, leader, … for each
request), so that background work and the machine's load do not favour one role.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time

from twisted.internet import defer, protocol, task
from twisted.web.client import Agent

from bcommon import ROOT, emit, ms, random_cids

IMPORT = ("import sys; from ipfscluster.stateops import import_state; "
          "n = import_state(sys.argv[1], open(sys.argv[2], 'rb'), sys.argv[3].split(',')); print(n)")


def write_export(path: str, n: int) -> list[str]:
    """Write an export of ``n`` pins (replicated everywhere) to ``path``; return the CIDs."""
    from ipfscluster.cid import CID
    from ipfscluster.state import MapState, export
    from ipfscluster.types import Pin

    cids = random_cids(n, seed=3)
    state = MapState()
    for cid in cids:
        state.add(Pin(CID.parse(cid), replication_factor_min=-1, replication_factor_max=-1))
    with open(path, "wb") as f:
        export(state, f)
    return cids


async def _wait_procs(reactor, procs) -> None:
    while any(p.poll() is None for p in procs):
        await task.deferLater(reactor, 0.02, lambda: None)
    for p in procs:
        if p.returncode:
            raise RuntimeError(f"state import failed: {p.stderr.read().decode()}")


async def _get_status(reactor, url: str) -> int:
    agent = Agent(reactor)
    response = await agent.request(b"GET", url.encode())
    await _drain(response)
    return response.code


class _Counter(protocol.Protocol):
    def __init__(self, done, started):
        self.done, self.started = done, started
        self.first = None
        self.lines = 0

    def dataReceived(self, data):
        if self.first is None:
            self.first = time.perf_counter() - self.started
        self.lines += data.count(b"\n")

    def connectionLost(self, reason):
        self.done.callback(self)


async def _drain(response, started: float = 0.0):
    done = defer.Deferred()
    counter = _Counter(done, started)
    response.deliverBody(counter)
    return await done


@contextlib.asynccontextmanager
async def imported_cluster(reactor, pins: int, overrides=None):
    """Yield ``(cluster, cids, timings)``: 3 peer processes started on an imported state."""
    import shutil
    import tempfile

    from integration.procs import ProcessCluster, child_env

    from ipfscluster.testing.harness import merge_overrides

    folder = tempfile.mkdtemp(prefix="bench-bulk-")
    # loading a large snapshot keeps a peer busy at start: give the others time
    overrides = merge_overrides({"raft": {"wait_for_leader_timeout": "5m"}}, overrides or {})
    cluster = ProcessCluster(reactor, folder, 3, overrides=overrides)
    try:
        export_path = os.path.join(folder, "export.json")
        cids = write_export(export_path, pins)
        voters = ",".join(p.peer_id for p in cluster.peers)
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", IMPORT, p.data_folder, export_path, voters],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=ROOT)
                 for p in cluster.peers]
        await _wait_procs(reactor, procs)
        imported = time.perf_counter()
        cluster.start_kubo()
        for peer in cluster.peers:
            cluster.start_peer(peer)
        for peer in cluster.peers:
            await cluster.wait_ready(peer, seconds=300)
        for peer in cluster.peers:
            while await _get_status(reactor, f"{peer.rest_url}/allocations/{cids[-1]}") != 200:
                await task.deferLater(reactor, 0.05, lambda: None)
        timings = {"import_s": round(imported - started, 2), "start_to_ready_s": round(time.perf_counter() - imported, 2),
                   "wall_s": round(time.perf_counter() - started, 2)}
        yield cluster, cids, timings
    finally:
        await cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def b3(reactor, quick: bool, runs: int) -> dict:
    pins = 1_000 if quick else 100_000
    walls = []
    for _ in range(runs):
        async with imported_cluster(reactor, pins) as (_cluster, _cids, timings):
            walls.append(timings)
    walls.sort(key=lambda t: t["wall_s"])
    return emit("B3", quick, pins=pins, method="state import (stateops.import_state, one child process per peer, in parallel) then start",
                median=walls[len(walls) // 2], each_run=walls, target={"wall_s": 15})


async def _read_all(reactor, peer, path: str, peers=()) -> dict:
    """GET ``path`` on ``peer`` to the end; TTFB, total, lines, RSS growth, and CPU
    per line of the answering peer and of every peer in ``peers`` (the load-light
    figure to compare)."""
    baseline = peer.rss_bytes()
    cpu_before = (peer.cpu_seconds(), sum(p.cpu_seconds() for p in peers))
    peak = {"rss": baseline}

    def sample():
        peak["rss"] = max(peak["rss"], peer.rss_bytes())

    sampler = task.LoopingCall(sample)
    sampler.clock = reactor
    sampler.start(0.005)
    started = time.perf_counter()
    try:
        response = await Agent(reactor).request(b"GET", f"{peer.rest_url}{path}".encode())
        headers = time.perf_counter() - started
        counter = await _drain(response, started)
    except Exception as err:  # reported in the figures: the request failed
        return {"error": f"{type(err).__name__}: {err}"[:300], "after_s": round(time.perf_counter() - started, 3),
                "rss_growth_mb": round((peak["rss"] - baseline) / 1e6, 1)}
    finally:
        sampler.stop()
    sample()
    total = time.perf_counter() - started
    cpu = (peer.cpu_seconds() - cpu_before[0], sum(p.cpu_seconds() for p in peers) - cpu_before[1])
    lines = max(counter.lines, 1)
    return {"ttfb_ms": ms(min(headers, counter.first or headers)), "first_line_ms": ms(counter.first or 0),
            "total_s": round(total, 3), "lines": counter.lines,
            "rss_growth_mb": round((peak["rss"] - baseline) / 1e6, 1),
            "cpu_us_per_line": round(cpu[0] / lines * 1e6, 1),
            "cpu_us_per_line_all_peers": round(cpu[1] / lines * 1e6, 1),
            "loadavg_1m": os.getloadavg()[0]}


async def settle(reactor, peers, seconds: float = 120.0, busy: float = 0.10) -> float:
    """Wait until every peer process uses less than ``busy`` of a core over one
    second (at most ``seconds``); return how long it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        before = [p.cpu_seconds() for p in peers]
        await task.deferLater(reactor, 1.0, lambda: None)
        if all(p.cpu_seconds() - b < busy for p, b in zip(peers, before)):
            break
    return round(time.perf_counter() - started, 1)


class _Abort(protocol.Protocol):
    """Reads nothing: drops the connection at once (the server closes its stream)."""

    def __init__(self, done):
        self.done = done

    def connectionMade(self):
        self.transport.stopProducing()

    def connectionLost(self, reason):
        self.done.callback(None)


async def _any_line(reactor, peer, path: str) -> bool:
    """True when ``GET path`` answers lines (not 204); reads only the status."""
    response = await Agent(reactor).request(b"GET", f"{peer.rest_url}{path}".encode())
    if response.code == 204:
        await _drain(response)
        return False
    done = defer.Deferred()
    response.deliverBody(_Abort(done))
    await done
    return True


async def wait_all_pinned(reactor, peers, seconds: float) -> dict:
    """Poll each peer's local status (``/pins?local=true&filter=queued,pinning,error``,
    only its first bytes: cheap for the peers) until none lists a CID; the time it
    took and which peers still had some at the end."""
    started = time.perf_counter()
    left = None
    while time.perf_counter() - started < seconds:
        left = [await _any_line(reactor, p, "/pins?local=true&filter=queued,pinning,error") for p in peers]
        if not any(left):
            break
        await task.deferLater(reactor, 2.0, lambda: None)
    return {"after_s": round(time.perf_counter() - started, 1), "left_per_peer": left}


async def b4(reactor, quick: bool, runs: int) -> dict:
    return await _b4(reactor, quick, runs, 1_000 if quick else 100_000, wait_pinned=True, name="B4")


async def b4_1m(reactor, quick: bool, runs: int) -> dict:
    """B4 at 1M pins (``run.py B4-1M``).  The trackers need well over an hour to pin
    a million CIDs (two daemon requests per pin, one worker per peer), so the reads
    are made right after every peer is ready, while the trackers work through
    their queues: the figures include that competition for the CPU."""
    return await _b4(reactor, quick, runs, 2_000 if quick else 1_000_000, wait_pinned=False, name="B4-1M")


async def _b4(reactor, quick: bool, runs: int, pins: int, wait_pinned: bool, name: str) -> dict:
    results: dict = {}
    async with imported_cluster(reactor, pins) as (cluster, _cids, timings):
        settle_s = None
        if wait_pinned:
            # after an import every peer pins every CID (the pins that find the queue
            # full wait for room, as pin_queued): wait until no peer has a CID queued,
            # pinning or in error, then for the processes to be idle
            results["all_pinned"] = await wait_all_pinned(reactor, cluster.peers, seconds=30 if quick else 1800)
            settle_s = await settle(reactor, cluster.peers, seconds=10 if quick else 120)
        else:
            results["import"] = timings
        leader = cluster.leader()
        follower = next(p for p in cluster.peers if p is not leader)
        for what, path in (("pin_ls", "/allocations"), ("status", "/pins")):
            each: dict = {"leader": [], "follower": []}
            for _ in range(runs if what == "pin_ls" else 1):
                for role, peer in (("leader", leader), ("follower", follower)):
                    each[role].append(await _read_all(reactor, peer, path, cluster.peers))
            for role, measured in each.items():
                measured.sort(key=lambda r: r.get("total_s", float("inf")))
                results[f"{what}_{role}"] = measured[len(measured) // 2]
    return emit(name, quick, pins=pins, runs=runs, settle_s=settle_s, trackers_idle=wait_pinned, **results,
                target={"ttfb_ms": 100, "total_s_100k_pin_ls": 1, "rss_growth_mb": 50})


_ = (io, json)
