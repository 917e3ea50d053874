"""The Raft commit benchmark (benchmarks/raft_commit.py) runs in quick mode, in both
save modes, and prints one JSON line with every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.loopback
@pytest.mark.slow
@pytest.mark.parametrize("flags", [[], ["--sync-saves"]])
def test_raft_commit_bench_quick_prints_one_json_line(flags):
    script = os.path.join(ROOT, "benchmarks", "raft_commit.py")
    out = subprocess.run([sys.executable, script, "--quick", "--seconds", "0.3", *flags],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    [line] = out.stdout.strip().splitlines()
    figures = json.loads(line)
    assert figures["scenario"] == "raft_commit" and figures["quick"] is True
    assert figures["saves"] == ("reactor thread" if flags else "thread pool")
    for layer in ("raft", "cluster"):
        for n in (1, 16):
            assert figures[f"{layer}_n_{n}"] > 0
            assert 0 < figures[f"{layer}_p50_ms_{n}"] <= figures[f"{layer}_p99_ms_{n}"]
            assert figures[f"{layer}_per_s_{n}"] > 0
