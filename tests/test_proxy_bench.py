"""The B8 benchmark script (proxy add against direct add) runs in quick mode and
prints its JSON line with every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.loopback
@pytest.mark.slow
def test_proxy_bench_quick_prints_one_json_line():
    script = os.path.join(ROOT, "benchmarks", "proxy_bench.py")
    out = subprocess.run([sys.executable, script, "--quick"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    [line] = out.stdout.strip().splitlines()
    figures = json.loads(line)
    assert figures["scenario"] == "B8" and figures["quick"] is True
    for key in ("direct_p50_ms", "proxy_p50_ms", "direct_p99_ms", "proxy_p99_ms"):
        assert figures["1k"][key] > 0, key
    assert "added_ms" in figures["1k"]
    for size in ("1m", "100m"):
        assert figures[size]["direct_mb_s"] > 0 and figures[size]["proxy_mb_s"] > 0
        assert figures[size]["ratio"] > 0
    # every add through the proxy became a cluster pin (3 warm-up + 10 + 3 + 1 distinct uploads)
    assert figures["cluster_pins"] == 17
