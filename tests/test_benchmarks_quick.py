"""Every benchmark scenario runs in ``--quick`` mode and prints its JSON line.

The figures of a quick run are not checked against the targets (the machine is
shared and the runs are tiny); what is checked is that each scenario starts what
it needs, measures something real (non-zero counts, the expected keys), stops
everything and prints ONE parseable JSON line.  Slow: real peer processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "run.py")

pytestmark = pytest.mark.slow


def run(scenario: str) -> dict:
    out = subprocess.run([sys.executable, RUN, scenario, "--quick"], capture_output=True, text=True,
                         timeout=240, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, out.stdout
    line = json.loads(lines[0])
    assert line["scenario"] == scenario
    if "cpus" in line:  # B5 and B8 are other scripts with their own fields
        assert line["cpus"] == os.cpu_count()
    return line


def test_b1_and_b2_measure_committed_pins():
    b1 = run("B1")
    assert b1["clients"] == 16 and b1["leader"]["pins"] > 0 and b1["spread"]["pins"] > 0
    assert 0 < b1["leader"]["p50_ms"] <= b1["leader"]["p99_ms"]
    b2 = run("B2")
    assert b2["leader"]["pins"] > 0 and b2["follower"]["pins"] > 0


def test_b3_b4_import_and_listing():
    b3 = run("B3")
    assert b3["median"]["wall_s"] >= b3["median"]["import_s"] > 0
    b4 = run("B4")
    for key in ("pin_ls_leader", "pin_ls_follower", "status_leader", "status_follower"):
        assert b4[key].get("lines") == b4["pins"], (key, b4[key])
        assert 0 < b4[key]["ttfb_ms"] <= b4[key]["total_s"] * 1000


def test_b4_at_a_million_reads_while_the_trackers_pin():
    b4 = run("B4-1M")  # 2,000 pins in quick mode
    assert b4["trackers_idle"] is False and b4["import"]["wall_s"] > 0
    for key in ("pin_ls_leader", "pin_ls_follower"):
        assert b4[key].get("lines") == b4["pins"], (key, b4[key])


def test_b5_memory_per_pin():
    b5 = run("B5")
    assert all(r["bytes_per_pin"] > 0 for r in b5["results"])


def test_b6_snapshot_and_restart():
    b6 = run("B6")
    assert b6["snapshot_s"] is not None and b6["pins_until_snapshot"] > 0
    assert b6["restart_to_ready_s"] is not None


def test_b7_failover():
    b7 = run("B7")
    assert b7["runs"] == 1 and b7["no_failover"] == 0
    assert b7["each_run"][0]["new_terms"] >= 1


def test_b8_proxy_add_overhead():
    b8 = run("B8")
    assert "skipped" not in b8, "benchmarks/proxy_bench.py is part of the project"
    assert b8["1k"]["added_ms"] is not None
