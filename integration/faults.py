"""Process-level fault suite: real peers, kill -9 of the leader, a checked client history.

``python -m integration.faults [--seconds S | --minutes M] [--seed N] [--keep DIR]``

Three ``twistd -n ipfs-cluster`` processes with fake kubo daemons
(:class:`integration.procs.ProcessCluster`) run while:

- **a client workload** (``--clients`` workers, default 4) picks operations at
  random over a small pool of CIDs (so operations on one CID overlap):
  ``pin`` (``POST /pins/<cid>``) and ``unpin`` (``DELETE /pins/<cid>``) on a random
  running peer, and ``status`` (``GET /allocations/<cid>``: is the CID in the shared
  state) on the peer currently known as the leader.  Every operation is recorded
  as an :class:`~ipfscluster.testing.linearizability.Operation` with its call and
  return times; a request that failed in a way that may still have taken effect
  (connection lost, timeout, 5xx) gets ``ret = inf`` (unknown outcome); an unpin
  answered 404 (the CID was not in the state, nothing was proposed) is a read of
  "not pinned"; failed reads are left out.
- **a nemesis** kills the leader with SIGKILL, waits until the survivors commit a
  pin again (recorded as ``failover_s``), restarts the killed peer and waits until
  it is ready; the leader named by the restarted peer's ``consensus ready`` line is
  the next one killed.  With ``--lose-data`` the nemesis also, half of the time,
  stops a follower, removes its Raft data folder and starts it again (snapshots
  are then taken every second, so it must catch up by InstallSnapshot).  With
  ``--partitions`` every peer link goes through a chaos proxy
  (:mod:`integration.chaos`) and the nemesis also cuts the leader off (blackhole
  or a one-way cut) for a few seconds, then heals.  Reads pause while no leader is known: the REST API serves
  reads from the local state, which only the leader guarantees to be current.

After the run every peer is running; the suite then checks:

1. the history is linearizable per CID
   (:func:`~ipfscluster.testing.linearizability.check_history`), including one
   final status read per CID and peer made after the peers converged (so an
   acknowledged pin that was lost shows up as a violation);
2. every peer's shared state (``GET /allocations``) is the same set of CIDs;
3. every pinned CID is reported ``pinned`` by every peer's tracker
   (``GET /pins/<cid>``): every fake daemon pins what it is allocated.

Prints one JSON line with the counts and exits 1 on any violation.  The CI short
form is ``integration/test_process_faults.py`` (about a minute); ``--minutes 30``
is a soak.

Why hand-written: the workload and nemesis are specific to this cluster; the
linearizability checker is our own port of porcupine's algorithm.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

from twisted.internet import defer, task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ipfscluster.api.rest.client import RestClient  # noqa: E402
from ipfscluster.cid import CID  # noqa: E402
from ipfscluster.errors import APIError  # noqa: E402
from ipfscluster.testing.linearizability import PIN, STATUS, UNPIN, Operation, check_history  # noqa: E402

from integration.procs import ProcessCluster  # noqa: E402

UNKNOWN = math.inf


class Run:
    """One fault run: the cluster, the history, the nemesis bookkeeping."""

    def __init__(self, reactor, cluster: ProcessCluster, seed: int, n_cids: int = 10, timeout: float = 10.0):
        self.reactor = reactor
        self.cluster = cluster
        self.rng = random.Random(seed)
        rng = random.Random(seed + 1)
        self.cids = [str(CID.v0(rng.randbytes(32))) for _ in range(n_cids)]
        self.history: list[Operation] = []
        self.clients = {p.index: RestClient(p.rest_url, reactor=reactor, timeout=timeout) for p in cluster.peers}
        self.leader_id: str | None = None
        self.stopping = False
        self.kills: list[dict] = []
        self.data_losses: list[int] = []
        self.partitions: list[dict] = []
        self.errors: dict[str, int] = {}

    def now(self) -> float:
        return time.perf_counter()

    # --- workload ---------------------------------------------------------------------

    async def _op(self, worker: int) -> None:
        kind = self.rng.choice((PIN, PIN, UNPIN, STATUS, STATUS))
        cid = self.rng.choice(self.cids)
        running = [p for p in self.cluster.peers if p.running()]
        if kind == STATUS:
            leader = next((p for p in running if p.peer_id == self.leader_id), None)
            if leader is None:
                kind = PIN
            else:
                await self._read(worker, leader, cid)
                return
        peer = self.rng.choice(running) if running else self.cluster.peers[0]
        client = self.clients[peer.index]
        call = self.now()
        try:
            await (client.pin(cid) if kind == PIN else client.unpin(cid))
            ret = self.now()
        except APIError as err:
            self._count(f"{kind} {err.code}")
            if kind == UNPIN and err.code == 404:
                # nothing was proposed: the peer read "not pinned" from a state in
                # sync with the leader, so it counts as a read of "absent"
                self.history.append(Operation(worker, STATUS, cid, call, self.now(), False))
                return
            ret = UNKNOWN
        except Exception as err:  # unreachable / timeout: outcome unknown
            self._count(f"{kind} {type(err).__name__}")
            ret = UNKNOWN
        self.history.append(Operation(worker, kind, cid, call, ret))

    async def _read(self, worker, peer, cid: str) -> None:
        call = self.now()
        try:
            await self.clients[peer.index].allocation(cid)
            pinned = True
        except APIError as err:
            if err.code != 404:
                self._count(f"status {err.code}")
                return
            pinned = False
        except Exception as err:
            self._count(f"status {type(err).__name__}")
            return
        if peer.peer_id != self.leader_id:
            return  # leadership moved while reading: the answer may be stale
        self.history.append(Operation(worker, STATUS, cid, call, self.now(), pinned))

    def _count(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def worker(self, worker: int) -> None:
        while not self.stopping:
            await self._op(worker)

    # --- nemesis ----------------------------------------------------------------------

    async def next_commit(self, victim, since: float) -> float | None:
        """Seconds from ``since`` until a pin through a peer other than ``victim``
        commits (None after 30 s)."""
        probe = str(CID.v0(self.rng.randbytes(32)))
        survivor = next(p for p in self.cluster.peers if p.running() and p is not victim)
        while self.now() - since < 30:
            try:
                await self.clients[survivor.index].pin(probe)
                return self.now() - since
            except Exception:
                await task.deferLater(self.reactor, 0.1, lambda: None)
        return None

    async def kill_leader(self) -> None:
        """Kill the known leader, wait for the next commit, restart it."""
        victim = next((p for p in self.cluster.peers if p.peer_id == self.leader_id and p.running()), None)
        if victim is None:
            return
        self.leader_id = None
        killed_at = self.now()
        self.cluster.kill(victim)
        await self.cluster.wait_exit(victim)
        failover = await self.next_commit(victim, killed_at)
        self.cluster.start_peer(victim)
        self.leader_id = await self.cluster.wait_ready(victim)
        self.kills.append({"peer": victim.index, "failover_s": round(failover, 2) if failover else None})

    async def lose_data(self) -> None:
        """Stop a follower, remove its Raft data folder, start it again (it must
        catch up from the leader, by snapshot when the log was compacted)."""
        followers = [p for p in self.cluster.peers if p.running() and p.peer_id != self.leader_id]
        if not followers:
            return
        victim = self.rng.choice(followers)
        await self.cluster.stop_peer(victim)
        shutil.rmtree(victim.data_folder, ignore_errors=True)
        self.cluster.start_peer(victim)
        await self.cluster.wait_ready(victim)
        self.data_losses.append(victim.index)

    async def partition_leader(self, seconds: float = 6.0) -> None:
        """Cut the known leader off (blackhole, or a one-way cut) for ``seconds``, while
        the others must commit; then heal.  Reads pause until a restart names the
        leader again (the REST API reads the local state, so the isolated old
        leader would answer stale reads)."""
        victim = next((p for p in self.cluster.peers if p.peer_id == self.leader_id and p.running()), None)
        if victim is None:
            return
        mode = self.rng.choice(("blackhole", "cut_forward", "cut_backward"))
        self.leader_id = None
        cut_at = self.now()
        self.cluster.isolate(victim, mode)
        failover = await self.next_commit(victim, cut_at)
        rest = seconds - (self.now() - cut_at)
        if rest > 0:
            await task.deferLater(self.reactor, rest, lambda: None)
        self.cluster.isolate(victim, "ok")
        self.partitions.append({"peer": victim.index, "mode": mode,
                                "failover_s": round(failover, 2) if failover else None})

    async def kill_any(self) -> None:
        """Kill -9 a running peer (the leader or not) and restart it; the restarted
        peer names the leader."""
        victim = self.rng.choice([p for p in self.cluster.peers if p.running()])
        self.leader_id = None
        self.cluster.kill(victim)
        await self.cluster.wait_exit(victim)
        self.cluster.start_peer(victim)
        self.leader_id = await self.cluster.wait_ready(victim)
        self.kills.append({"peer": victim.index, "failover_s": None, "any": True})

    async def nemesis(self, seconds: float, pause: float, lose_data: bool = False,
                      partitions: bool = False) -> None:
        deadline = self.now() + seconds
        while self.now() < deadline:
            await task.deferLater(self.reactor, self.rng.uniform(pause / 2, pause), lambda: None)
            if self.now() >= deadline:
                break
            roll = self.rng.random()
            if lose_data and roll < 0.4:
                action = self.lose_data
            elif partitions and roll < 0.8 and self.leader_id is not None:
                action = self.partition_leader
            elif self.leader_id is None:
                action = self.kill_any
            else:
                action = self.kill_leader
            self.trace(f"{action.__name__} (leader {self.leader_id})")
            await action()
            self.trace(f"{action.__name__} done")

    def trace(self, what: str) -> None:
        """One line on stderr per nemesis step, with the wall clock time (to read
        next to the peers' logs when a run fails)."""
        stamp = time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        links = {f"{i}>{j}": f"{p.mode}/{len(p.connections)}" for (i, j), p in self.cluster.proxies.items()}
        print(f"nemesis {stamp} {what}" + (f" links {links}" if links else ""), file=sys.stderr, flush=True)

    # --- after healing --------------------------------------------------------------------

    async def shared_states(self) -> dict[int, set[str]]:
        out = {}
        for peer in self.cluster.peers:
            out[peer.index] = {str(pin.cid) async for pin in self.clients[peer.index].allocations()}
        return out

    async def _settled(self, what: str, probe, seconds: float):
        """Call ``probe()`` until it returns ``(True, value)`` or ``seconds`` pass;
        a failed request is one more try (peers reconnect after the faults), the
        last one raises."""
        deadline = self.now() + seconds
        while True:
            try:
                done, value = await probe()
            except Exception as err:
                if self.now() > deadline:
                    raise
                self._count(f"{what} {type(err).__name__}")
                done, value = False, None
            if done or self.now() > deadline:
                return value
            await task.deferLater(self.reactor, 0.2, lambda: None)

    async def converge(self, seconds: float = 60.0) -> dict[int, set[str]]:
        """Wait until every peer's shared state is the same; return them."""
        async def probe():
            states = await self.shared_states()
            return len({frozenset(s) for s in states.values()}) == 1, states
        return await self._settled("converge", probe, seconds)

    async def final_reads(self, states) -> None:
        """One status read per CID and peer, after convergence, into the history."""
        for index, pinned in states.items():
            at = self.now()
            for cid in self.cids:
                self.history.append(Operation(f"final-{index}", STATUS, cid, at, at, cid in pinned))

    async def daemons_pinned(self, pinned: set[str], seconds: float = 60.0) -> list[str]:
        """CIDs some peer's tracker does not report pinned (after waiting)."""
        client = self.clients[0]

        async def probe():
            missing = []
            for cid in sorted(pinned):
                gpi = await client.status(cid)
                if any(info.status.name.lower() != "pinned" for info in gpi.peer_map.values()) \
                        or len(gpi.peer_map) != len(self.cluster.peers):
                    missing.append(cid)
            return not missing, missing
        return await self._settled("daemons", probe, seconds)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


async def run_faults(reactor, folder: str, seconds: float, seed: int, clients: int = 4,
                     pause: float = 6.0, lose_data: bool = False, overrides=None,
                     partitions: bool = False) -> dict:
    """One fault run in ``folder``; returns the summary (``ok`` says if it passed)."""
    cluster = ProcessCluster(reactor, folder, 3, overrides=overrides)
    run = None
    try:
        if partitions:
            cluster.proxy_links()
        await cluster.start()
        run = Run(reactor, cluster, seed)
        run.leader_id = cluster.leader().peer_id
        started = run.now()
        workers = [defer.Deferred.fromCoroutine(run.worker(i)) for i in range(clients)]
        try:
            await run.nemesis(seconds, pause, lose_data, partitions)
        finally:
            run.stopping = True
            await defer.gatherResults(workers, consumeErrors=True)
        for peer in cluster.peers:
            if not peer.running():
                cluster.start_peer(peer)
                await cluster.wait_ready(peer)
        states = await run.converge()
        same = len({frozenset(s) for s in states.values()}) == 1
        await run.final_reads(states)
        result = check_history(run.history)
        missing = await run.daemons_pinned(states[0]) if same else []
        ok = result.ok and same and not missing
        summary = {
            "ok": ok, "seed": seed, "seconds": round(run.now() - started, 1),
            "operations": len(run.history),
            "acknowledged_writes": sum(1 for o in run.history if o.kind != STATUS and o.ret != UNKNOWN),
            "unknown_outcome": sum(1 for o in run.history if o.ret == UNKNOWN),
            "reads": sum(1 for o in run.history if o.kind == STATUS),
            "leader_kills": len(run.kills), "kills": run.kills, "data_losses": run.data_losses,
            "partitions": run.partitions,
            "linearizable": result.ok, "states_converged": same,
            "pinned_cids": len(states[0]), "not_pinned_by_daemons": missing,
            "errors": run.errors,
        }
        if not result.ok:
            summary["violation"] = result.explanation
        if not same:
            summary["states"] = {i: sorted(s) for i, s in states.items()}
        return summary
    finally:
        if run is not None:
            await run.close()
        await cluster.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="process-level fault suite (see the module docstring)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the faulty phase")
    parser.add_argument("--minutes", type=float, default=None, help="length in minutes (soaks)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--pause", type=float, default=6.0, help="seconds between leader kills (about)")
    parser.add_argument("--lose-data", action="store_true",
                        help="also wipe a follower's Raft data folder now and then (snapshot every 1s)")
    parser.add_argument("--partitions", action="store_true",
                        help="every peer link through a chaos proxy; also cut the leader off for a while")
    parser.add_argument("--keep", default=None, help="keep the peers' folders (logs) in this folder")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60 if args.minutes is not None else args.seconds
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    folder = args.keep or tempfile.mkdtemp(prefix="faults-")
    outcome = {}

    async def go(reactor):
        overrides = {"raft": {"snapshot_interval": "1s", "snapshot_threshold": 64, "trailing_logs": 32}} \
            if args.lose_data else None
        outcome.update(await run_faults(reactor, folder, seconds, seed, args.clients, args.pause,
                                        args.lose_data, overrides, args.partitions))

    from twisted.internet import reactor

    failures = []
    d = defer.Deferred.fromCoroutine(go(reactor))
    d.addErrback(failures.append).addBoth(lambda _: reactor.stop())
    reactor.run()
    if failures:
        failures[0].printTraceback(file=sys.stderr)
        print(f"peers' folders and logs kept in {folder}", file=sys.stderr)
        return 2
    print(json.dumps(outcome), flush=True)
    if args.keep is None and outcome.get("ok"):
        shutil.rmtree(folder, ignore_errors=True)
    elif not outcome.get("ok"):
        print(f"peers' folders and logs kept in {folder}", file=sys.stderr)
    return 0 if outcome.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
