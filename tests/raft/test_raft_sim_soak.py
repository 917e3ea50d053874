"""CI soak of the seeded simulator (plan §4.1 layer 3, T28 short form).

500 seeds x 300 schedule steps, each step a client operation or a fault (crash,
torn crash, power loss, partitions of every shape, pauses, transfers, membership
changes) followed by up to 60 ms of traffic with 5% drop, 5% duplication, heavy
reordering, clock skew and slow fsync.  Every invariant is checked after every
event; each seed ends by healing and checking convergence and that every
acknowledged write survived, and the client history must be linearizable.

A nightly job scales it up with ``RAFT_SOAK_SEEDS`` and ``RAFT_SOAK_STEPS`` (for
example 10000 x 1000); failures name the seed to replay with
``python -m ipfscluster.consensus.raft.sim --seed S --events M -v``.
"""

from __future__ import annotations

import os

from raft_core_net import checker_history

from ipfscluster.consensus.raft import sim as simmod
from ipfscluster.testing.linearizability import check_history


def linearizable(sim):
    return check_history(checker_history(sim))


SEEDS = int(os.environ.get("RAFT_SOAK_SEEDS", "500"))
STEPS = int(os.environ.get("RAFT_SOAK_STEPS", "300"))


def test_t28_nemesis_soak_500_seeds_x_300_steps():
    events = acked = terms = 0
    for seed in range(SEEDS):
        s = simmod.run_seed(seed, STEPS)
        events += s.events
        acked += len(s.acked_writes())
        terms += len(s.checker.leaders)
        result = linearizable(s)
        assert result.ok, (seed, result.failing_cid, result.explanation)
    # the runs did real work: many events, many acknowledged writes, many elections
    assert events > SEEDS * STEPS
    assert acked > SEEDS * STEPS // 15
    assert terms > SEEDS


def test_cli_reports_ok_and_replays_a_seed(capsys):
    assert simmod.main(["--seeds", "3", "--events", "50"]) == 0
    assert "0 violations" in capsys.readouterr().out
    assert simmod.main(["--seed", "2", "--events", "30", "-v"]) == 0
    out = capsys.readouterr().out
    again = simmod.main(["--seed", "2", "--events", "30", "-v"])
    assert again == 0
    # the same seed produces the same schedule, line for line
    assert capsys.readouterr().out.splitlines()[:-1] == out.splitlines()[:-1]
