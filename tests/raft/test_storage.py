"""Tests of the durable Raft log and stable store (ipfscluster.consensus.raft.storage)."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipfscluster.consensus.raft.storage import RaftStorage, StoredEntry, _hard_crc, entry_crc
from ipfscluster.errors import (
    LogCompacted,
    LogUnavailable,
    RaftStorageError,
    StorageCorrupted,
    StorageLocked,
)


def E(index, term, data=None, kind=1):
    return StoredEntry(index=index, term=term, kind=kind,
                       data=data if data is not None else b"cmd-%d" % index)


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "ipfs-cluster-data")


@pytest.fixture
def store(folder):
    s = RaftStorage.open(folder)
    yield s
    s.close()


def reopen(s, folder):
    s.close()
    return RaftStorage.open(folder)


def count_commits(s):
    """Attach a trace callback counting COMMIT statements run by the connection."""
    seen = []
    s._conn.set_trace_callback(lambda stmt: seen.append(stmt) if stmt.strip().upper() == "COMMIT" else None)
    return seen


def test_empty_storage(store, folder):
    assert store.hard_state() == (0, None)
    assert (store.first_index(), store.last_index(), store.last_term()) == (1, 0, 0)
    assert store.term(0) == 0
    assert store.entries(1, 1) == []
    assert os.path.exists(os.path.join(folder, "raft.db"))
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_append_read_and_survive_reopen(store, folder):
    store.append([E(1, 1), E(2, 1), E(3, 2)])
    store.set_hard_state(2, "peerB")
    assert store.entries(1, 4) == [E(1, 1), E(2, 1), E(3, 2)]
    assert store.term(2) == 1 and store.term(3) == 2
    store = reopen(store, folder)
    try:
        assert store.hard_state() == (2, "peerB")
        assert store.last_index() == 3 and store.last_term() == 2
        assert [e.index for e in store.entries(1, 4)] == [1, 2, 3]
        assert store.entries(2, 4)[1].data == b"cmd-3"
    finally:
        store.close()


def test_append_conflicting_suffix_is_replaced(store):
    store.append([E(i, 1) for i in range(1, 6)])
    store.append([E(3, 2, b"new3"), E(4, 2, b"new4")])
    assert store.last_index() == 4 and store.last_term() == 2
    assert [(e.index, e.term, e.data) for e in store.entries(1, 5)] == [
        (1, 1, b"cmd-1"), (2, 1, b"cmd-2"), (3, 2, b"new3"), (4, 2, b"new4")]
    with pytest.raises(LogUnavailable):
        store.entries(1, 6)


def test_gap_is_refused(store):
    store.append([E(1, 1)])
    with pytest.raises(RaftStorageError, match="contiguous"):
        store.append([E(3, 1)])
    with pytest.raises(RaftStorageError, match="contiguous"):
        store.append([E(2, 1), E(4, 1)])
    assert store.last_index() == 1


def test_truncate_from(store, folder):
    store.append([E(i, i) for i in range(1, 11)])
    store.truncate_from(6)
    assert store.last_index() == 5 and store.last_term() == 5
    store.truncate_from(20)  # past the end: nothing to do
    store = reopen(store, folder)
    try:
        assert store.last_index() == 5
        with pytest.raises(LogUnavailable):
            store.term(6)
    finally:
        store.close()


def test_max_bytes_limits_but_returns_at_least_one(store, folder):
    store.append([E(i, 1, b"x" * 100) for i in range(1, 11)])
    assert len(store.entries(1, 11, max_bytes=350)) == 3
    assert len(store.entries(1, 11, max_bytes=10)) == 1
    store = reopen(store, folder)  # from the database instead of the cache
    try:
        assert len(store.entries(1, 11, max_bytes=350)) == 3
        assert len(store.entries(1, 11, max_bytes=10)) == 1
        assert len(store.entries(1, 11)) == 10
    finally:
        store.close()


def test_cache_and_database_agree(folder):
    s = RaftStorage.open(folder, cache_entries=8)
    try:
        for start in range(1, 60, 7):
            s.append([E(i, 1 + i // 10) for i in range(start, start + 7)])
        s.truncate_from(40)
        s.append([E(40, 9), E(41, 9)])
        from_cache = s.entries(1, 42)
        s = reopen(s, folder)
        assert s.entries(1, 42) == from_cache
        assert [s.term(i) for i in range(1, 42)] == [e.term for e in from_cache]
    finally:
        s.close()


def test_group_commit_one_transaction_per_batch(store):
    commits = count_commits(store)
    before = store.transactions
    store.save(hard_state=(1, "me"), entries=[E(i, 1) for i in range(1, 101)], commit=0)
    assert len(commits) == 1
    assert store.transactions == before + 1
    # a Ready carrying a truncation, entries, term/vote and commit: still one
    store.save(truncate_from=50, entries=[E(50, 2), E(51, 2)], hard_state=(2, None), commit=49)
    assert len(commits) == 2
    assert store.last_index() == 51 and store.hard_state() == (2, None)
    assert store.commit_index() == 49
    # nothing to do: no transaction at all
    store.save()
    assert len(commits) == 2


def test_commit_only_save_can_skip_the_fsync(store, folder):
    store.append([E(1, 1), E(2, 1)])
    synced = store.synced_transactions
    store.save(commit=2, durable=False)
    assert store.synced_transactions == synced and store.commit_index() == 2
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
    store.append([E(3, 1)])
    assert store.synced_transactions == synced + 1
    store = reopen(store, folder)
    try:
        assert store.commit_index() == 2 and store.last_index() == 3
    finally:
        store.close()


def test_save_is_atomic_when_it_fails_midway(store, folder, monkeypatch):
    store.append([E(i, 1) for i in range(1, 6)])
    store.save(hard_state=(1, "a"), commit=3)
    original_write = RaftStorage._write

    def write_then_crash(self, plan):
        original_write(self, plan)  # every statement ran inside the transaction ...
        raise RuntimeError("power cut")  # ... but the commit never happens

    monkeypatch.setattr(RaftStorage, "_write", write_then_crash)
    with pytest.raises(RuntimeError):
        store.save(truncate_from=3, entries=[E(3, 2), E(4, 2), E(5, 2), E(6, 2)],
                   hard_state=(2, "b"), commit=5)
    monkeypatch.setattr(RaftStorage, "_write", original_write)
    # neither memory nor disk changed
    assert store.hard_state() == (1, "a") and store.commit_index() == 3
    assert store.last_index() == 5 and store.term(4) == 1
    store = reopen(store, folder)
    try:
        assert store.hard_state() == (1, "a")
        assert [(e.index, e.term) for e in store.entries(1, 6)] == [(i, 1) for i in range(1, 6)]
    finally:
        store.close()


def test_compaction_keeps_trailing_logs(store, folder):
    store.append([E(i, 1 + i // 4) for i in range(1, 21)])
    assert store.compact(15, trailing_logs=5) == 10
    assert store.first_index() == 11 and store.log_base() == (10, 3)
    assert store.term(10) == 3
    with pytest.raises(LogCompacted):
        store.entries(9, 12)
    with pytest.raises(LogCompacted):
        store.term(9)
    assert store.compact(12, trailing_logs=5) == 10  # nothing new to drop
    with pytest.raises(LogUnavailable):
        store.compact(21)
    with pytest.raises(RaftStorageError, match="snapshot"):
        store.truncate_from(10)
    store = reopen(store, folder)
    try:
        assert store.log_base() == (10, 3) and store.first_index() == 11
        assert store.last_index() == 20
        assert [e.index for e in store.entries(11, 21)] == list(range(11, 21))
    finally:
        store.close()


def test_compact_everything_then_continue(store, folder):
    store.append([E(i, 2) for i in range(1, 6)])
    store.compact(5)
    assert (store.first_index(), store.last_index(), store.last_term()) == (6, 5, 2)
    assert store.entries(6, 6) == []
    store.append([E(6, 3)])
    store = reopen(store, folder)
    try:
        assert store.log_base() == (5, 2) and store.entries(6, 7) == [E(6, 3)]
    finally:
        store.close()


def test_install_snapshot_base_matching_keeps_suffix(store):
    store.append([E(i, 1) for i in range(1, 11)])
    store.save(log_base=(6, 1), hard_state=(3, None))
    assert store.log_base() == (6, 1)
    assert [e.index for e in store.entries(7, 11)] == [7, 8, 9, 10]


def test_install_snapshot_base_conflicting_discards_log(store, folder):
    store.append([E(i, 1) for i in range(1, 11)])
    store.save(log_base=(6, 2))  # the leader's entry 6 has another term
    assert (store.first_index(), store.last_index(), store.last_term()) == (7, 6, 2)
    store.append([E(7, 2)])
    store = reopen(store, folder)
    try:
        assert store.entries(7, 8) == [E(7, 2)] and store.term(6) == 2
    finally:
        store.close()


def test_install_snapshot_beyond_log(store):
    store.append([E(1, 1)])
    store.save(log_base=(50, 4))
    assert (store.first_index(), store.last_index(), store.last_term()) == (51, 50, 4)
    store.append([E(51, 4)])
    assert store.term(51) == 4


def test_stale_log_base_is_ignored(store):
    store.append([E(i, 1) for i in range(1, 11)])
    store.compact(6)
    store.save(log_base=(3, 1))  # an older snapshot than the log base: no change
    assert store.log_base() == (6, 1) and store.last_index() == 10
    assert [e.index for e in store.entries(7, 11)] == [7, 8, 9, 10]


def test_second_opener_is_locked_out(store, folder):
    with pytest.raises(StorageLocked, match="in use"):
        RaftStorage.open(folder)


def test_entry_factory_builds_callers_type(folder):
    class Mine:
        def __init__(self, index, term, kind, data):
            self.index, self.term, self.kind, self.data = index, term, kind, data

    s = RaftStorage.open(folder, entry_factory=Mine)
    try:
        s.append([E(1, 1)])
        s = reopen(s, folder)
        s.close()
        s = RaftStorage.open(folder, entry_factory=Mine)
        (got,) = s.entries(1, 2)
        assert isinstance(got, Mine) and got.data == b"cmd-1"
    finally:
        s.close()


# --- damaged files ------------------------------------------------------------------


def _tamper(folder, sql, params=()):
    """Change the database behind the storage's back, as bit rot would."""
    conn = sqlite3.connect(os.path.join(folder, "raft.db"))
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def _garble_row(folder, index):
    _tamper(folder, "UPDATE log SET data = ? WHERE idx = ?", (b"garbage", index))


def test_damaged_uncommitted_tail_is_dropped(store, folder):
    store.append([E(i, 1) for i in range(1, 11)])
    store.save(commit=7)
    store.close()
    _garble_row(folder, 9)
    _garble_row(folder, 10)
    s = RaftStorage.open(folder)
    try:
        assert s.last_index() == 8
        assert [e.index for e in s.entries(1, 9)] == list(range(1, 9))
        s.append([E(9, 2)])  # and it keeps working
    finally:
        s.close()


def test_damaged_row_in_the_middle_is_an_error(store, folder):
    store.append([E(i, 1) for i in range(1, 11)])
    store.close()
    _garble_row(folder, 4)
    with pytest.raises(StorageCorrupted) as info:
        RaftStorage.open(folder)
    assert info.value.index == 4 and "raft.db" in str(info.value) and "index 4" in str(info.value)


def test_damaged_committed_tail_is_an_error(store, folder):
    store.append([E(i, 1) for i in range(1, 11)])
    store.save(commit=10)
    store.close()
    _garble_row(folder, 10)
    with pytest.raises(StorageCorrupted) as info:
        RaftStorage.open(folder)
    assert info.value.index == 10


def test_damaged_row_detected_on_read(store, folder):
    store.append([E(i, 1) for i in range(1, 4)])
    _garble_row(folder, 2)
    store._cache.clear()
    store._cache_start = 4
    with pytest.raises(StorageCorrupted, match="index 2"):
        store.entries(1, 4)


def test_gap_in_rows_is_an_error(store, folder):
    store.append([E(i, 1) for i in range(1, 6)])
    store.close()
    _tamper(folder, "DELETE FROM log WHERE idx = 3")
    with pytest.raises(StorageCorrupted, match="gap"):
        RaftStorage.open(folder)


def test_damaged_stable_store_is_an_error(store, folder):
    store.set_hard_state(5, "x")
    store.close()
    _tamper(folder, "UPDATE hard SET term = 4")
    with pytest.raises(StorageCorrupted, match="stable store"):
        RaftStorage.open(folder)


def test_not_a_database_is_an_error(folder):
    os.makedirs(folder)
    with open(os.path.join(folder, "raft.db"), "wb") as f:
        f.write(b"this is not sqlite" * 100)
    with pytest.raises(StorageCorrupted, match="cannot be read"):
        RaftStorage.open(folder)


def _crash_copy(folder, dest):
    """Copy the database files as a crash would leave them (connection still open)."""
    os.makedirs(dest)
    for name in ("raft.db", "raft.db-wal"):
        shutil.copyfile(os.path.join(folder, name), os.path.join(dest, name))
    return os.path.join(dest, "raft.db-wal")


def _batches_written(store):
    batches = []
    for b in range(6):
        batch = [E(b * 10 + i, b + 1, b"payload-%d-%d" % (b, i) * 20) for i in range(1, 11)]
        store.save(entries=batch, hard_state=(b + 1, "v"))
        batches.append(batch)
    return batches


def _assert_prefix_of_batches(s, batches):
    """The recovered log is exactly the first k whole batches for some k."""
    got = s.entries(1, s.last_index() + 1)
    k = len(got) // 10
    assert len(got) == 10 * k
    assert got == [e for batch in batches[:k] for e in batch]
    assert s.hard_state() == ((k, "v") if k else (0, None))
    return k


def test_crash_copy_without_damage_has_everything(store, folder, tmp_path):
    batches = _batches_written(store)
    _crash_copy(folder, str(tmp_path / "copy"))
    s = RaftStorage.open(str(tmp_path / "copy"))
    try:
        assert _assert_prefix_of_batches(s, batches) == 6
    finally:
        s.close()


@pytest.mark.parametrize("keep_fraction", [0.3, 0.55, 0.8, 0.97])
def test_torn_wal_tail_recovers_a_prefix_of_transactions(store, folder, tmp_path, keep_fraction):
    batches = _batches_written(store)
    wal = _crash_copy(folder, str(tmp_path / "copy"))
    size = os.path.getsize(wal)
    with open(wal, "r+b") as f:
        f.truncate(int(size * keep_fraction))
    s = RaftStorage.open(str(tmp_path / "copy"))
    try:
        k = _assert_prefix_of_batches(s, batches)
        assert k < 6
        s.append([E(s.last_index() + 1, 9)])  # the node carries on
    finally:
        s.close()


def test_garbled_wal_tail_drops_only_the_damaged_transactions(store, folder, tmp_path):
    batches = _batches_written(store)
    wal = _crash_copy(folder, str(tmp_path / "copy"))
    size = os.path.getsize(wal)
    with open(wal, "r+b") as f:
        f.seek(size - 3000)
        f.write(os.urandom(2000))
    s = RaftStorage.open(str(tmp_path / "copy"))
    try:
        k = _assert_prefix_of_batches(s, batches)
        assert 1 <= k < 6
    finally:
        s.close()


def test_crc_covers_every_field():
    base = entry_crc(1, 2, 3, b"abc")
    assert len({base, entry_crc(9, 2, 3, b"abc"), entry_crc(1, 9, 3, b"abc"),
                entry_crc(1, 2, 9, b"abc"), entry_crc(1, 2, 3, b"abd")}) == 5


def test_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RaftStorageError, match="data_folder"):
        RaftStorage.open(str(blocker / "sub"))


def test_close_is_idempotent(folder):
    s = RaftStorage.open(folder)
    s.close()
    s.close()
    RaftStorage.open(folder).close()  # the lock was released


# --- model-based: random operation sequences against a dict model ---------------------


class _Model:
    def __init__(self):
        self.log, self.base, self.hard, self.commit = {}, (0, 0), (0, None), 0

    @property
    def last(self):
        return max(self.log, default=self.base[0])

    def term(self, index):
        return self.base[1] if index == self.base[0] else self.log[index][0]

    def truncate(self, index):
        for i in [i for i in self.log if i >= index]:
            del self.log[i]

    def install(self, index, term):
        if index <= self.base[0]:
            return
        keep = index <= self.last and self.term(index) == term
        for i in [i for i in self.log if i <= index or not keep]:
            del self.log[i]
        self.base = (index, term)


_ops = st.one_of(
    st.tuples(st.just("append"), st.integers(-3, 1), st.integers(1, 4), st.integers(1, 5)),
    st.tuples(st.just("truncate"), st.integers(-3, 2)),
    st.tuples(st.just("compact"), st.integers(-4, 0), st.integers(0, 3)),
    st.tuples(st.just("install"), st.integers(-2, 4), st.integers(1, 5)),
    st.tuples(st.just("hard"), st.integers(0, 9), st.sampled_from([None, "a", "b"]),
              st.integers(0, 5)),
    st.tuples(st.just("reopen")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_ops, min_size=1, max_size=14))
def test_storage_matches_a_simple_model(tmp_path_factory, ops):
    folder = str(tmp_path_factory.mktemp("model"))
    s, m = RaftStorage.open(folder), _Model()
    try:
        for op in ops:
            s = _apply_model_op(s, m, op, folder)
            assert (s.log_base(), s.last_index(), s.hard_state()) == (m.base, m.last, m.hard)
            assert s.entries(s.first_index(), s.last_index() + 1) == [
                E(i, m.log[i][0], m.log[i][1]) for i in sorted(m.log)]
            if m.log:
                assert s.last_term() == m.log[m.last][0]
    finally:
        s.close()


def _apply_model_op(s, m, op, folder):
    kind = op[0]
    if kind == "append":
        _, offset, count, term = op
        first = max(m.last + 1 + offset, m.base[0] + 1)
        batch = [E(first + k, term, b"d%d-%d" % (first + k, term)) for k in range(count)]
        if first > m.last + 1:
            with pytest.raises(RaftStorageError, match="contiguous"):
                s.append(batch)
            return s
        s.append(batch)
        m.truncate(first)
        m.log.update({e.index: (e.term, e.data) for e in batch})
    elif kind == "truncate":
        index = max(m.last + op[1], m.base[0] + 1)
        s.truncate_from(index)
        m.truncate(index)
    elif kind == "compact" and m.last > m.base[0]:
        upto = max(m.last + op[1], m.base[0] + 1)
        new_base = upto - op[2]
        s.compact(upto, trailing_logs=op[2])
        if new_base > m.base[0]:
            m.install(new_base, m.term(new_base))
    elif kind == "install":
        index, term = max(0, m.last + op[1]), op[2]
        s.save(log_base=(index, term))
        m.install(index, term)
    elif kind == "hard":
        s.save(hard_state=(op[1], op[2]), commit=op[3])
        m.hard, m.commit = (op[1], op[2]), op[3]
    elif kind == "reopen":
        s.close()
        if m.commit > m.last:  # committed entries are gone: never start without them
            with pytest.raises(StorageCorrupted, match="committed entries are missing"):
                RaftStorage.open(folder)
            m.commit = 0
            _tamper(folder, "UPDATE hard SET commit_index = 0, crc = ?",
                    (_hard_crc(m.hard[0], m.hard[1], 0, *m.base),))
        s = RaftStorage.open(folder)
    return s
