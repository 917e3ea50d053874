"""B5: memory per pin in the shared state (RSS delta / pins at 100k and 1M pins).

Each measurement runs in a fresh subprocess: it records the resident set size
(``/proc/self/statm``), adds N pins to an empty :class:`~ipfscluster.state.MapState`
(each ``Pin`` built and dropped right away, as the Raft apply step does), collects
garbage and records the RSS again.  Two pin shapes are measured:

- ``allocated``: a CIDv0 pin with replication 3/3, three allocations among 10 peers
  and a commit timestamp (what a replicated pin looks like);
- ``everywhere``: a CIDv0 pin replicated everywhere, no timestamp (the smallest).

Prints one JSON line::

    {"scenario": "B5", "target_bytes_per_pin": 500,
     "results": [{"pins": 100000, "shape": "allocated", "bytes_per_pin": ...}, ...]}

``--quick`` measures 20k pins only (a test runs it so the script cannot rot).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

TARGET = 500


def rss_bytes() -> int:
    """The resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(pins: int, shape: str) -> dict:
    """Fill a state with ``pins`` pins of ``shape``; returns the figures."""
    from ipfscluster.cid import CID
    from ipfscluster.identity import Identity
    from ipfscluster.state import MapState
    from ipfscluster.types import Pin

    rng = random.Random(5)
    peers = [Identity.generate().peer_id for _ in range(10)]
    state = MapState()
    # warm up the code paths and allocator arenas before the baseline
    state.add(Pin(CID.v0(rng.randbytes(32)), replication_factor_min=-1, replication_factor_max=-1))
    state.rm(next(state.list()).cid)
    gc.collect()
    before = rss_bytes()
    base_ts = 1_700_000_000_000_000_000
    for i in range(pins):
        cid = CID.v0(rng.randbytes(32))
        if shape == "allocated":
            pin = Pin(
                cid,
                replication_factor_min=3,
                replication_factor_max=3,
                allocations=tuple(rng.sample(peers, 3)),
                timestamp=base_ts + i * 1_000_003,
            )
        else:
            pin = Pin(cid, replication_factor_min=-1, replication_factor_max=-1)
        state.add(pin)
    gc.collect()
    after = rss_bytes()
    assert state.count() == pins
    return {
        "pins": pins,
        "shape": shape,
        "rss_delta_bytes": after - before,
        "bytes_per_pin": round((after - before) / pins, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k pins only")
    parser.add_argument("--one", nargs=2, metavar=("PINS", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(int(args.one[0]), args.one[1])))
        return 0
    sizes = [20_000] if args.quick else [100_000, 1_000_000]
    results = []
    for pins in sizes:
        for shape in ("allocated", "everywhere"):
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--one", str(pins), shape],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(out))
    ok = all(r["bytes_per_pin"] <= TARGET for r in results)
    print(json.dumps({"scenario": "B5", "target_bytes_per_pin": TARGET, "ok": ok, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
