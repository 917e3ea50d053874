"""B7: leader failover under load (kill -9 the leader).

Each run starts 3 fresh peer processes, puts B1-style load on the two followers
(16 REST clients; a client whose request fails goes on with its next pin), kills
the leader with SIGKILL after ``warmup`` seconds, and measures:

- ``failover_s``: from the kill to the first acknowledgement of a pin whose request
  was sent after the kill (the next committed pin);
- ``new_terms``: how many Raft terms the election took, read offline after the run
  from the Raft data (:func:`ipfscluster.stateops.load_state`): the term of the last
  entry of a survivor minus the term of the last entry of the killed leader (1 = a
  single election, no split vote).

Reported: the p50/p99 of ``failover_s`` over the runs and the share of runs with
one new term.
"""

from __future__ import annotations

import random
import time

from twisted.internet import defer, task

from bcommon import clients, emit, percentile, process_cluster
from ipfscluster.cid import CID


async def _load(rest_clients, stop, acks, errors):
    async def one(client):
        rng = random.Random()
        while not stop():
            cid = str(CID.v0(rng.randbytes(32)))
            sent = time.perf_counter()
            try:
                await client.pin(cid)
            except Exception as err:  # a failed request: counted, the client goes on
                errors.append(type(err).__name__)
                continue
            acks.append((sent, time.perf_counter()))

    await defer.gatherResults([defer.Deferred.fromCoroutine(one(c)) for c in rest_clients])


async def _one_run(reactor, warmup: float) -> dict:
    from ipfscluster.stateops import load_state

    async with process_cluster(reactor, prefix="bench-failover-") as cluster:
        leader = cluster.leader()
        followers = [p for p in cluster.peers if p is not leader]
        acks: list = []
        errors: list = []
        state = {"killed_at": None}

        def stop():
            killed = state["killed_at"]
            return killed is not None and any(sent > killed for sent, _ in acks) or \
                (killed is not None and time.perf_counter() - killed > 30)

        async with clients(reactor, [p.rest_url for p in followers], 16, timeout=10) as made:
            load = defer.Deferred.fromCoroutine(_load(made, stop, acks, errors))
            await task.deferLater(reactor, warmup, lambda: None)
            state["killed_at"] = time.perf_counter()
            cluster.kill(leader)
            await load
        await cluster.wait_exit(leader)
        killed = state["killed_at"]
        after = [ack for sent, ack in acks if sent > killed]
        old_term = load_state(leader.data_folder)[1]["term"]
        await cluster.stop()
        new_term = max(load_state(p.data_folder)[1]["term"] for p in followers)
    return {"failover_s": round(min(after) - killed, 3) if after else None,
            "new_terms": new_term - old_term, "acked_before_kill": sum(1 for s, _ in acks if s <= killed),
            "failed_requests": len(errors)}


async def b7(reactor, quick: bool, runs: int) -> dict:
    runs = 1 if quick else max(runs, 5)
    results = [await _one_run(reactor, 1.0 if quick else 3.0) for _ in range(runs)]
    times = [r["failover_s"] for r in results if r["failover_s"] is not None]
    return emit("B7", quick, runs=runs, failover_p50_s=percentile(times, 0.5), failover_p99_s=percentile(times, 0.99),
                no_failover=sum(1 for r in results if r["failover_s"] is None),
                one_new_term_share=round(sum(1 for r in results if r["new_terms"] == 1) / runs, 2),
                each_run=results, target={"failover_p99_s": 3, "one_new_term_share": 0.95})
