"""The RPC benchmark script runs (quick mode) and prints its JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.loopback
def test_rpc_bench_quick_prints_one_json_line():
    script = os.path.join(ROOT, "benchmarks", "rpc_bench.py")
    out = subprocess.run(
        [sys.executable, script, "--quick"], capture_output=True, text=True, timeout=120, check=True
    )
    [line] = out.stdout.strip().splitlines()
    figures = json.loads(line)
    assert figures["scenario"] == "rpc" and figures["tls"] == "TLSv1.3"
    for key in ("round_trips_per_s_1", "round_trips_per_s_16", "mb_per_s", "p50_ms_1", "nodelay_speedup"):
        assert figures[key] > 0, key
