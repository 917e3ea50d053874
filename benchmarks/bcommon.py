"""Shared pieces of the B1–B8 benchmarks (``benchmarks/run.py``).

- :func:`emit`: print a scenario's ONE JSON line, with the machine (CPU count,
  Python version, load average at the end) added;
- :func:`process_cluster`: 3 real peer processes (``twistd -n ipfs-cluster``, real
  TLS between peers, fsync on) with fake kubo daemons answering at once, in a
  temporary folder removed afterwards (:class:`integration.procs.ProcessCluster`);
- :func:`ingest`: N concurrent REST clients pinning fresh CIDs for a duration (or
  a count), each on its own persistent HTTP connection, returning the latencies.

Everything goes through the REST API as a user's client would (``RestClient``), so
the figures include HTTP parsing, JSON, the redirect to the leader and Raft.

Why hand-written: benchmark glue for our own processes; statistics are two lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from twisted.internet import defer  # noqa: E402

from ipfscluster.api.rest.client import RestClient  # noqa: E402
from ipfscluster.cid import CID  # noqa: E402


def percentile(values, fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank); 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def machine() -> dict:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def emit(scenario: str, quick: bool, **figures) -> dict:
    """Print the scenario's JSON line; return it as a dict."""
    line = {"scenario": scenario, "quick": quick, **figures, **machine()}
    print(json.dumps(line), flush=True)
    return line


def random_cids(n: int, seed: int | None = None) -> list[str]:
    """``n`` distinct made-up CIDv0 strings."""
    rng = random.Random(seed)
    return [str(CID.v0(rng.randbytes(32))) for _ in range(n)]


@contextlib.asynccontextmanager
async def process_cluster(reactor, n: int = 3, overrides=None, prefix: str = "bench-"):
    """3 (or ``n``) started peer processes; stopped and removed on exit."""
    from integration.procs import ProcessCluster

    folder = tempfile.mkdtemp(prefix=prefix)
    cluster = ProcessCluster(reactor, folder, n, overrides=overrides)
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def clients(reactor, urls, n: int, timeout: float = 30.0):
    """``n`` REST clients spread over ``urls`` (closed on exit)."""
    made = [RestClient(urls[i % len(urls)], reactor=reactor, timeout=timeout) for i in range(n)]
    try:
        yield made
    finally:
        for c in made:
            await c.close()


async def ingest(reactor, rest_clients, seconds: float = 0.0, count: int = 0, stop=None):
    """Every client pins fresh CIDs one after another, until ``seconds`` have passed
    (or ``count`` pins were made in all, or ``stop()`` is true).

    Returns ``(pins_per_second, latencies, acked)`` where ``acked`` lists
    ``(cid, ack_time)`` (perf_counter).  Errors are raised.
    """
    latencies: list[float] = []
    acked: list[tuple[str, float]] = []
    started = time.perf_counter()
    budget = {"left": count}

    def more() -> bool:
        if stop is not None and stop():
            return False
        if count:
            budget["left"] -= 1
            return budget["left"] >= 0
        return time.perf_counter() - started < seconds

    async def one(client):
        rng = random.Random()
        while more():
            cid = str(CID.v0(rng.randbytes(32)))
            t0 = time.perf_counter()
            await client.pin(cid)
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            acked.append((cid, t1))

    await defer.gatherResults(
        [defer.Deferred.fromCoroutine(one(c)) for c in rest_clients], consumeErrors=True)
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies, acked


def unwrap_first_error(failure):
    """``gatherResults`` wraps errors in FirstError: re-raise the original."""
    failure.trap(defer.FirstError)
    failure.value.subFailure.raiseException()
