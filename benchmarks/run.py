"""Run the performance scenarios B1–B8 of ``shared/benchmarks.md``.

Usage::

    python benchmarks/run.py B1 [--quick] [--runs N]
    python benchmarks/run.py B4-1M           # B4 at 1M pins (not part of "all")
    python benchmarks/run.py all [--quick]

Each scenario starts what it needs (peer processes, fake kubo daemons), measures,
stops everything it started and prints ONE JSON line
(``{"scenario": "B1", ..., "cpus": 2, "python": "3.11.x"}``).  ``all`` runs every
scenario in its own process, one after another.  ``--quick`` is a small run that
finishes in seconds (``tests/test_benchmarks_quick.py`` runs it so the scripts
cannot rot); its figures are not the ones to report.

B5 is ``benchmarks/state_memory.py`` and B8 ``benchmarks/proxy_bench.py`` (when
present); they are run as they are, in a child process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))

SCENARIOS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"]
#: run only when named (minutes of set-up)
EXTRA = ["B4-1M"]
#: scenarios that are separate scripts
SCRIPTS = {"B5": "state_memory.py", "B8": "proxy_bench.py"}


def _coroutine(name: str):
    if name == "B1":
        from b_ingest import b1 as fn
    elif name == "B2":
        from b_ingest import b2 as fn
    elif name == "B3":
        from b_bulk import b3 as fn
    elif name == "B4":
        from b_bulk import b4 as fn
    elif name == "B4-1M":
        from b_bulk import b4_1m as fn
    elif name == "B6":
        from b_restart import b6 as fn
    elif name == "B7":
        from b_failover import b7 as fn
    else:
        raise SystemExit(f"unknown scenario {name}")
    return fn


def run_one(name: str, quick: bool, runs: int) -> int:
    """Run one scenario in this process; returns the exit status."""
    if name in SCRIPTS:
        script = os.path.join(HERE, SCRIPTS[name])
        if not os.path.exists(script):
            print(f'{{"scenario": "{name}", "skipped": "{SCRIPTS[name]} is not there yet"}}', flush=True)
            return 0
        return subprocess.call([sys.executable, script] + (["--quick"] if quick else []))
    from twisted.internet import defer, task

    fn = _coroutine(name)
    task.react(lambda reactor: defer.Deferred.fromCoroutine(fn(reactor, quick, runs)))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", help="B1 … B8, or all")
    parser.add_argument("--quick", action="store_true", help="a short run (seconds)")
    parser.add_argument("--runs", type=int, default=0,
                        help="measurement runs whose median is reported (default 3, 1 with --quick)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    name = args.scenario.upper()
    if name == "ALL":
        status = 0
        for scenario in SCENARIOS:
            argv = [sys.executable, os.path.abspath(__file__), scenario, "--runs", str(runs)]
            status |= subprocess.call(argv + (["--quick"] if args.quick else []))
        return status
    if name not in SCENARIOS + EXTRA:
        parser.error(f"unknown scenario {args.scenario!r}: choose one of "
                     f"{', '.join(SCENARIOS + EXTRA)} or all")
    return run_one(name, args.quick, runs)


if __name__ == "__main__":
    sys.exit(main())
