"""Tests of Raft snapshot files (ipfscluster.consensus.raft.snapshots)."""

from __future__ import annotations

import hashlib
import os

import pytest
from twisted.logger import globalLogPublisher

from ipfscluster.consensus.raft.snapshots import (
    DEFAULT_CHUNK_SIZE,
    KEEP,
    SnapshotMeta,
    SnapshotStore,
    file_name,
    read_meta,
)
from ipfscluster.consensus.raft.storage import RaftStorage, StoredEntry
from ipfscluster.errors import NoValidSnapshot, SnapshotChunkRejected, SnapshotCorrupted

PEERS = ["12D3KooWA", "12D3KooWB", "12D3KooWC"]


@pytest.fixture
def data(tmp_path):
    return str(tmp_path / "data")


@pytest.fixture
def snaps(data):
    return SnapshotStore.open(data)


@pytest.fixture
def storage(data):
    s = RaftStorage.open(data)
    yield s
    s.close()


@pytest.fixture
def log_lines():
    lines = []

    def observer(event):
        if event.get("log_namespace") == "consensus":
            lines.append(event)

    globalLogPublisher.addObserver(observer)
    yield lines
    globalLogPublisher.removeObserver(observer)


def payload_of(n, seed=0):
    return bytes((i * 31 + seed) % 251 for i in range(n))


def chunks_of(data, size=1000):
    return (data[i:i + size] for i in range(0, len(data), size))


def read_all(store, meta):
    return b"".join(store.payload(meta))


def test_write_and_read_back(snaps):
    body = payload_of(200_000)
    meta = snaps.write(3, 120, PEERS, chunks_of(body, 7_000))
    assert (meta.term, meta.index, meta.configuration) == (3, 120, PEERS)
    assert meta.size == len(body) and meta.sha256 == hashlib.sha256(body).digest()
    assert os.path.basename(meta.path) == file_name(3, 120)
    assert os.path.getsize(meta.path) == meta.file_size
    snaps.verify(meta)
    assert read_all(snaps, meta) == body
    assert all(len(b) <= 64 * 1024 for b in snaps.payload(meta))
    assert read_meta(meta.path) == meta
    assert not [n for n in os.listdir(snaps.folder) if not n.endswith(".snap")]


def test_empty_payload(snaps):
    meta = snaps.write(1, 1, {"voters": []}, [])
    snaps.verify(meta)
    assert meta.size == 0 and read_all(snaps, meta) == b""
    assert meta.configuration == {"voters": []}


def test_failed_write_leaves_nothing(snaps):
    def broken():
        yield b"abc"
        raise RuntimeError("serialiser failed")

    with pytest.raises(RuntimeError):
        snaps.write(1, 5, PEERS, broken())
    assert os.listdir(snaps.folder) == []


def test_interrupted_writes_are_cleaned_on_open(snaps, data):
    writer = snaps.create(2, 10, PEERS)
    writer.write(b"half")  # crash: never committed
    receiver = snaps.receive(2, 11, 1000)
    receiver.write(0, b"x" * 10)
    again = SnapshotStore.open(data)
    assert again.list() == []
    writer.abort()
    receiver.abort()


def test_only_newest_five_kept_by_term_then_index(snaps):
    for term, index in [(1, 10), (1, 20), (2, 25), (2, 30), (3, 31), (3, 40), (4, 41)]:
        snaps.write(term, index, PEERS, [b"s%d" % index])
    kept = [(m.term, m.index) for m in snaps.list()]
    assert kept == [(4, 41), (3, 40), (3, 31), (2, 30), (2, 25)]
    assert len(kept) == KEEP
    assert snaps.latest().index == 41


def test_select_none_when_nothing_compacted(snaps, storage):
    assert snaps.select(storage) is None


def test_select_newest_consistent(snaps, storage):
    storage.append([StoredEntry(i, 1 if i <= 50 else 2, 1, b"x") for i in range(1, 101)])
    snaps.write(1, 40, PEERS, [b"old"])
    snaps.write(2, 90, PEERS, [b"new"])
    storage.compact(90, trailing_logs=20)
    chosen = snaps.select(storage)
    assert (chosen.term, chosen.index) == (2, 90)
    assert read_all(snaps, chosen) == b"new"


def _corrupt_payload(meta):
    with open(meta.path, "r+b") as f:
        f.seek(meta.payload_offset + meta.size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.allow_logged_errors
@pytest.mark.parametrize("damage", ["payload", "truncate", "header"])
def test_damaged_newest_falls_back_loudly(snaps, storage, log_lines, damage):
    storage.append([StoredEntry(i, 1, 1, b"x") for i in range(1, 101)])
    snaps.write(1, 60, PEERS, chunks_of(payload_of(5000, 1)))
    newest = snaps.write(1, 80, PEERS, chunks_of(payload_of(5000, 2)))
    storage.compact(80, trailing_logs=30)  # base 50: both snapshots are usable
    if damage == "payload":
        _corrupt_payload(newest)
    elif damage == "truncate":
        with open(newest.path, "r+b") as f:
            f.truncate(newest.file_size - 100)
    else:
        with open(newest.path, "r+b") as f:
            f.seek(14)
            f.write(b"\xff")
    chosen = snaps.select(storage)
    assert chosen.index == 60 and read_all(snaps, chosen) == payload_of(5000, 1)
    errors = [e for e in log_lines if "skipping a newer Raft snapshot" in e["log_format"]]
    assert len(errors) == 1 and newest.path in errors[0]["why"]


def test_no_valid_snapshot_after_compaction_is_an_error(snaps, storage):
    storage.append([StoredEntry(i, 1, 1, b"x") for i in range(1, 101)])
    meta = snaps.write(1, 80, PEERS, [b"only one"])
    storage.compact(80, trailing_logs=10)
    _corrupt_payload(meta)
    with pytest.raises(NoValidSnapshot) as info:
        snaps.select(storage)
    assert "index 70" in str(info.value) and "payload checksum" in str(info.value)


def test_snapshot_older_than_log_base_is_not_used(snaps, storage):
    storage.append([StoredEntry(i, 1, 1, b"x") for i in range(1, 101)])
    snaps.write(1, 30, PEERS, [b"too old"])
    storage.compact(90, trailing_logs=10)  # base 80 > 30
    with pytest.raises(NoValidSnapshot, match="before the start of the log"):
        snaps.select(storage)


def test_snapshot_with_conflicting_term_is_not_used(snaps, storage):
    storage.append([StoredEntry(i, 2, 1, b"x") for i in range(1, 11)])
    snaps.write(3, 8, PEERS, [b"from another history"])
    assert snaps.select(storage) is None  # nothing compacted: start from the log


def test_snapshot_beyond_log_end_is_used(snaps, storage):
    storage.append([StoredEntry(i, 1, 1, b"x") for i in range(1, 4)])
    snaps.write(5, 500, PEERS, [b"installed"])  # crash before the log base was saved
    assert snaps.select(storage).index == 500


def _transfer(leader, follower, meta, *, chunk=DEFAULT_CHUNK_SIZE, drop=(), dup=()):
    """Send ``meta`` chunk by chunk; the offsets in ``drop`` are lost once."""
    reader = leader.open_reader(meta)
    receiver = follower.receive(meta.term, meta.index, reader.size)
    dropped, offset, sends = set(), 0, 0
    try:
        while not receiver.complete:
            data = reader.read_at(offset, chunk)
            assert 0 < len(data) <= chunk
            sends += 1
            if offset in drop and offset not in dropped:
                dropped.add(offset)
                offset += len(data)  # the leader moves on, unaware of the loss
                continue
            try:
                offset = receiver.write(offset, data)
            except SnapshotChunkRejected as exc:
                offset = exc.expected  # the follower asks for what it misses
            if offset in dup:
                receiver.write(offset - len(data), data)  # a duplicate arrives late
        return receiver.finish(), sends
    finally:
        reader.close()


def test_install_snapshot_in_chunks_with_drops_and_duplicates(tmp_path):
    leader = SnapshotStore.open(str(tmp_path / "leader"))
    follower = SnapshotStore.open(str(tmp_path / "follower"))
    body = payload_of(300_000, 7)
    meta = leader.write(4, 999, PEERS, chunks_of(body, 50_000))
    size = DEFAULT_CHUNK_SIZE
    got, sends = _transfer(leader, follower, meta, drop={size, 3 * size}, dup={2 * size})
    assert (got.term, got.index, got.configuration) == (4, 999, PEERS)
    assert read_all(follower, got) == body
    chunk_count = -(-meta.file_size // size)
    assert sends > chunk_count  # re-sent what was dropped
    assert DEFAULT_CHUNK_SIZE <= 65535  # fits one AMP value
    assert follower.select(_NoLog()) == got


class _NoLog:
    def log_base(self):
        return (0, 0)

    def last_index(self):
        return 0


def test_receiver_rejects_gaps_and_overruns(snaps):
    receiver = snaps.receive(1, 1, 100)
    assert receiver.write(0, b"a" * 40) == 40
    with pytest.raises(SnapshotChunkRejected) as info:
        receiver.write(50, b"b" * 10)
    assert info.value.expected == 40
    with pytest.raises(SnapshotChunkRejected):
        receiver.write(40, b"c" * 61)
    assert receiver.write(20, b"a" * 20) == 40  # duplicate: no change
    with pytest.raises(SnapshotChunkRejected, match="incomplete"):
        receiver.finish()
    receiver.abort()
    assert snaps.list() == []


def test_received_garbage_is_refused(snaps, tmp_path):
    leader = SnapshotStore.open(str(tmp_path / "leader"))
    meta = leader.write(2, 50, PEERS, [b"payload" * 100])
    raw = open(meta.path, "rb").read()
    damaged = raw[:-10] + b"X" * 10
    receiver = snaps.receive(2, 50, len(damaged))
    receiver.write(0, damaged)
    with pytest.raises(SnapshotCorrupted, match="checksum"):
        receiver.finish()
    assert os.listdir(snaps.folder) == []


def test_received_file_for_other_index_is_refused(snaps, tmp_path):
    leader = SnapshotStore.open(str(tmp_path / "leader"))
    meta = leader.write(2, 50, PEERS, [b"payload"])
    raw = open(meta.path, "rb").read()
    receiver = snaps.receive(2, 51, len(raw))
    receiver.write(0, raw)
    with pytest.raises(SnapshotCorrupted, match="instead of"):
        receiver.finish()


def test_reader_survives_pruning(snaps):
    first = snaps.write(1, 1, PEERS, [b"first"])
    reader = snaps.open_reader(first)
    try:
        for i in range(2, 2 + KEEP):
            snaps.write(1, i, PEERS, [b"later"])
        assert not os.path.exists(first.path)
        raw = b"".join(data for _, data in reader.chunks(4))
        assert raw.endswith(b"first") and len(raw) == first.file_size
    finally:
        reader.close()


@pytest.mark.parametrize("content", [b"", b"IPCRSNAP", b"NOTASNAPSHOT" * 10])
def test_read_meta_rejects_garbage(tmp_path, content):
    path = tmp_path / file_name(1, 1)
    path.write_bytes(content)
    with pytest.raises(SnapshotCorrupted):
        read_meta(str(path))


def test_list_reports_damaged_files_in_order(snaps):
    snaps.write(1, 5, PEERS, [b"ok"])
    bad = os.path.join(snaps.folder, file_name(2, 9))
    with open(bad, "wb") as f:
        f.write(b"junk")
    items = snaps.list()
    assert isinstance(items[0], SnapshotCorrupted) and isinstance(items[1], SnapshotMeta)
    assert snaps.latest().index == 5
