"""CI short form of the process-level fault suite (:mod:`integration.faults`).

Three real ``twistd -n ipfs-cluster`` processes, a pin/unpin/status workload
through the REST API, the leader killed with SIGKILL and restarted several times,
a follower's Raft data wiped (it must catch up by snapshot), the leader cut off
behind the chaos proxies;
the run passes only if the recorded history is linearizable per CID, every peer
ends with the same shared state and every daemon pins what the state holds.
About two minutes for both; the README's test command runs them (``integration``
is in ``testpaths``).  Soaks:
``python -m integration.faults --minutes 30``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.slow


def run_suite(*args: str) -> tuple[int, dict, str]:
    out = subprocess.run([sys.executable, "-m", "integration.faults", *args], capture_output=True,
                         text=True, timeout=170, cwd=ROOT)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return out.returncode, (json.loads(lines[-1]) if lines else {}), out.stderr


def test_leader_kills_and_data_loss_keep_history_linearizable_and_peers_converge():
    seed = random.randrange(1 << 30)
    code, summary, stderr = run_suite("--seconds", "40", "--seed", str(seed), "--pause", "5",
                                      "--lose-data")
    assert code == 0, f"seed {seed}: {summary or stderr[-3000:]}"
    assert summary["ok"] and summary["linearizable"] and summary["states_converged"]
    assert summary["not_pinned_by_daemons"] == []
    # the faults really happened and the workload really ran through them
    assert summary["leader_kills"] + len(summary["data_losses"]) >= 2
    assert all(k["failover_s"] is not None for k in summary["kills"])
    assert summary["acknowledged_writes"] > 50 and summary["reads"] > 20


def test_leader_partitions_and_kills_through_chaos_proxies():
    seed = random.randrange(1 << 30)
    code, summary, stderr = run_suite("--seconds", "40", "--seed", str(seed), "--pause", "5", "--partitions")
    assert code == 0, f"seed {seed}: {summary or stderr[-3000:]}"
    assert summary["ok"] and summary["linearizable"] and summary["states_converged"]
    assert len(summary["partitions"]) + summary["leader_kills"] >= 1
    assert summary["acknowledged_writes"] > 20
