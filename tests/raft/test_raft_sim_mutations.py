"""The simulator's checks can fail: each test plants a known Raft bug and asserts the
seeded nemesis finds it within a few dozen seeds (mutation testing of the harness)."""

from __future__ import annotations

import pytest

from ipfscluster.consensus.raft import core as core_mod
from ipfscluster.consensus.raft import sim as sim_mod
from ipfscluster.consensus.raft.invariants import InvariantViolation
from ipfscluster.consensus.raft.messages import AppendEntries, HardState


def first_violation(seeds=60, steps=300):
    for seed in range(seeds):
        try:
            sim_mod.run_seed(seed, steps)
        except InvariantViolation as exc:
            return seed, str(exc)
    return None


def test_unmutated_core_passes_the_same_seeds():
    assert first_violation(seeds=20) is None


def test_catches_missing_election_restriction(monkeypatch):
    """§5.4.1 disabled (every candidate's log counts as up to date)."""
    monkeypatch.setattr(core_mod.RaftCore, "_up_to_date", lambda self, li, lt: True)
    found = first_violation()
    assert found is not None and ("Completeness" in found[1] or "Matching" in found[1]
                                  or "committed" in found[1] or "Safety" in found[1]), found


def test_catches_forgotten_vote_after_restart(monkeypatch):
    """The vote is not read back from disk (PySyncObj's bug)."""
    real = sim_mod.load_disk

    def amnesic(disk):
        hs, snap, entries, base = real(disk)
        if hs is not None:
            hs = HardState(hs.term, None, hs.commit)
        return hs, snap, entries, base

    monkeypatch.setattr(sim_mod, "load_disk", amnesic)
    found = first_violation()
    assert found is not None and "vote" in found[1], found


def test_catches_skipped_log_consistency_check(monkeypatch):
    """The follower trusts prevLogTerm without comparing it to its own log."""
    real = core_mod.RaftCore._handle_append

    def trusting(self, m):
        if self.commit <= m.prev_index <= self.last_index:
            m = AppendEntries(m.src, m.dst, m.term, m.prev_index, self.term_at(m.prev_index),
                              m.commit, m.entries)
        real(self, m)

    monkeypatch.setattr(core_mod.RaftCore, "_handle_append", trusting)
    found = first_violation()
    assert found is not None, "a broken consistency check went unnoticed"


def test_catches_missing_fsync(monkeypatch):
    """The driver never fsyncs: a crash loses what was already acknowledged."""
    monkeypatch.setattr(sim_mod.Disk, "fsync", lambda self: None)
    found = first_violation()
    assert found is not None, "lost durability went unnoticed"


def test_violation_report_names_seed_and_schedule(monkeypatch, capsys):
    monkeypatch.setattr(sim_mod.Disk, "fsync", lambda self: None)
    assert sim_mod.main(["--seeds", "5", "--events", "300"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATION seed=" in out and "replay: --seed" in out and "t=" in out


@pytest.mark.parametrize("steps", [300])
def test_replay_from_seed_is_identical(steps):
    a = sim_mod.run_seed(7, steps)
    b = sim_mod.run_seed(7, steps)
    assert a.trace == b.trace and a.events == b.events
    assert [(o.req, o.ok, o.ret) for o in a.history] == [(o.req, o.ok, o.ret) for o in b.history]
