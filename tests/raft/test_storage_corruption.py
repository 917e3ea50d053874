"""Damaged Raft data on disk: the peer refuses to start rather than lose anything.

The files are damaged the way disks and operators damage them -- bytes cut off or
flipped in ``raft.db``, its WAL, the stable store row, snapshot files and their
headers; the newest snapshot deleted; a half-written snapshot left behind -- and
then opened as a starting peer opens them (:meth:`RaftStorage.open`, then
:meth:`SnapshotStore.select`).  The rules checked:

- a torn tail of entries above the commit index may be dropped, with a warning;
- anything that could lose committed or acknowledged data (a bad row in the middle
  or at/below the commit index, a damaged term/vote, committed entries missing, an
  empty or missing ``raft.db`` in a folder that held one, a compacted log with no
  usable snapshot) raises a typed :class:`~ipfscluster.errors.RaftStorageError`
  whose message names the file and what to do;
- an older intact snapshot replaces a damaged newer one only when the log covers
  everything after it;
- no raw sqlite3/struct/zlib/TypeError escapes; when the data opens, the committed
  part is exactly what was written.

The last tests run ``ipfs-cluster-service daemon`` on damaged data folders: exit
status 1 and one ``error starting cluster: …`` line, no traceback.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipfscluster.config import ServiceConfig
from ipfscluster.consensus.raft.snapshots import SNAPSHOTS_FOLDER, SnapshotStore, read_meta
from ipfscluster.consensus.raft.storage import CREATED_FILE_NAME, DB_FILE_NAME, RaftStorage, StoredEntry
from ipfscluster.errors import (
    InvalidStateImport,
    NoValidSnapshot,
    RaftStorageError,
    SnapshotCorrupted,
    StateCorrupted,
    StateVersionError,
    StorageCorrupted,
)
from ipfscluster.state import MapState
from ipfscluster.state.snapshot import read_header
from ipfscluster.stateops import stored_version
from ipfscluster.testing.fakecluster import synthetic_cid
from ipfscluster.types import Pin
from tests import cli_processes as procs
from tests.raft.test_snapshots import log_lines  # noqa: F401 (a fixture)

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

ENTRIES = 200
COMMIT = 150
TERM, VOTE = 4, "12D3KooWVoteForThisPeer"
WHAT_TO_DO = "restore the data folder from a backup, or remove this peer from the cluster"
VOTERS = {"voters": ["12D3KooWA", "12D3KooWB"], "config_index": 1}


def data_of(index: int) -> bytes:
    return b"entry-%05d|" % index + bytes(range(index % 200, index % 200 + 40))


def entry(index: int) -> StoredEntry:
    return StoredEntry(index=index, term=1 + (index - 1) // 50, kind=1, data=data_of(index))


def write_log(folder: str, *, close: bool = True) -> RaftStorage:
    """ENTRIES entries in batches of 10, term/vote, commit COMMIT; closed (the WAL
    checkpointed into raft.db) unless ``close`` is false."""
    s = RaftStorage.open(folder)
    for first in range(1, ENTRIES + 1, 10):
        s.save(entries=[entry(i) for i in range(first, first + 10)], hard_state=(TERM, VOTE))
    s.save(commit=COMMIT)
    if close:
        s.close()
    return s


def db_path(folder: str) -> str:
    return os.path.join(folder, DB_FILE_NAME)


def patch(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def flip(path: str, offset: int, mask: int = 0xFF) -> None:
    with open(path, "rb") as f:
        f.seek(offset)
        byte = f.read(1)[0]
    patch(path, offset, bytes([byte ^ mask]))


def truncate(path: str, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def offset_of(path: str, needle: bytes) -> int:
    with open(path, "rb") as f:
        content = f.read()
    assert content.count(needle) == 1, needle
    return content.index(needle)


def tamper(folder: str, sql: str, params=()) -> None:
    """Change the database behind the storage's back (bit rot that SQLite cannot see)."""
    conn = sqlite3.connect(db_path(folder))
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def refuses(folder: str, error=StorageCorrupted, *, file: str | None = None, match: str = ""):
    """Opening ``folder`` raises ``error`` naming the file and saying what to do."""
    with pytest.raises(error) as info:
        s = RaftStorage.open(folder)
        s.close()
    message = str(info.value)
    assert (file or db_path(folder)) in message, message
    assert match in message, message
    assert "\n" not in message
    return info.value


def check_nothing_committed_lost(s: RaftStorage) -> None:
    """What opened holds the written hard state and committed entries exactly; an
    uncommitted tail may be shorter, never different."""
    assert s.hard_state() == (TERM, VOTE)
    assert s.commit_index() == COMMIT
    assert COMMIT <= s.last_index() <= ENTRIES
    assert s.entries(1, s.last_index() + 1) == [entry(i) for i in range(1, s.last_index() + 1)]


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "ipfs-cluster-data")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The files of :func:`write_log`, written once per module: ``closed`` (the WAL
    checkpointed into raft.db) and ``crashed`` (copied while open: all in the WAL)."""
    closed = str(tmp_path_factory.mktemp("written") / "closed")
    write_log(closed)
    live_folder = str(tmp_path_factory.mktemp("written") / "live")
    live = write_log(live_folder, close=False)
    crashed = str(tmp_path_factory.mktemp("written") / "crashed")
    os.makedirs(crashed)
    for name in (DB_FILE_NAME, DB_FILE_NAME + "-wal", CREATED_FILE_NAME):
        shutil.copyfile(os.path.join(live_folder, name), os.path.join(crashed, name))
    live.close()
    return {"closed": closed, "crashed": crashed}


def copy_of(tmp_path_factory, source: str) -> str:
    folder = str(tmp_path_factory.mktemp("copy") / "data")
    shutil.copytree(source, folder)
    return folder


def test_intact_data_opens_with_everything(folder):
    write_log(folder)
    s = RaftStorage.open(folder)
    try:
        check_nothing_committed_lost(s)
        assert s.last_index() == ENTRIES
    finally:
        s.close()


# --- the database file: missing, empty, cut ---------------------------------------------


def test_deleted_database_is_refused(folder):
    write_log(folder)
    os.unlink(db_path(folder))
    err = refuses(folder, match="is missing although this data folder has held it")
    assert WHAT_TO_DO in str(err)
    assert not os.path.exists(db_path(folder))  # nothing was created in its place


@pytest.mark.parametrize("cut", [0, 50, 100, 4095, 4096, 8192, "half", "last-byte"])
def test_truncated_database_is_refused(folder, cut):
    write_log(folder)
    size = os.path.getsize(db_path(folder))
    cut = {"half": size // 2, "last-byte": size - 1}.get(cut, cut)
    truncate(db_path(folder), cut)
    err = refuses(folder)
    assert WHAT_TO_DO in str(err) or "cannot be read" in str(err), str(err)
    if cut == 0:
        assert "is empty although this data folder has held it" in str(err)
        assert os.path.getsize(db_path(folder)) == 0  # SQLite did not start a new one


@pytest.mark.parametrize("name", [DB_FILE_NAME, "raft.lock"])
def test_a_folder_in_place_of_a_file_is_a_clear_error(folder, name):
    os.makedirs(os.path.join(folder, name))
    with pytest.raises(RaftStorageError) as info:
        RaftStorage.open(folder).close()
    assert type(info.value) is RaftStorageError  # cannot be used; not "damaged"
    assert os.path.join(folder, name) in str(info.value)
    assert "writable by the user running the peer (consensus.raft.data_folder)" in str(info.value)


def test_a_new_folder_and_a_folder_from_before_the_marker_open(folder, tmp_path):
    s = RaftStorage.open(folder)  # new: no marker yet, then one
    s.close()
    assert os.path.exists(os.path.join(folder, CREATED_FILE_NAME))
    write_log(folder)
    os.unlink(os.path.join(folder, CREATED_FILE_NAME))  # written by an older release
    s = RaftStorage.open(folder)
    try:
        check_nothing_committed_lost(s)
    finally:
        s.close()
    assert os.path.exists(os.path.join(folder, CREATED_FILE_NAME))


@FUZZ
@given(data=st.data())
def test_flipped_bytes_in_the_database(tmp_path_factory, written, data):
    """Any byte of raft.db flipped: refused with a typed error, or nothing committed lost."""
    folder = copy_of(tmp_path_factory, written["closed"])
    size = os.path.getsize(db_path(folder))
    for _ in range(data.draw(st.integers(1, 3), label="flips")):
        flip(db_path(folder), data.draw(st.integers(0, size - 1), label="offset"),
             data.draw(st.integers(1, 255), label="mask"))
    try:
        s = RaftStorage.open(folder)
    except RaftStorageError as err:
        assert db_path(folder) in str(err) and "\n" not in str(err)
        return
    try:
        check_nothing_committed_lost(s)
    finally:
        s.close()


# --- rows: the middle, the tail, the stable store --------------------------------------------


@pytest.mark.parametrize("index", [1, 60, COMMIT - 1, COMMIT])
def test_damaged_row_at_or_below_the_commit_index_is_refused(folder, index):
    write_log(folder)
    flip(db_path(folder), offset_of(db_path(folder), b"entry-%05d|" % index) + 3)
    err = refuses(folder, match=f"is damaged at index {index} (checksum mismatch)")
    assert err.index == index and WHAT_TO_DO in str(err)


@pytest.mark.parametrize("index", [COMMIT + 1, 180, ENTRIES - 1])
def test_damaged_row_in_the_middle_of_the_uncommitted_part_is_refused(folder, index):
    """Good entries after the damaged one: it was not a torn write, it is damage."""
    write_log(folder)
    flip(db_path(folder), offset_of(db_path(folder), b"entry-%05d|" % index) + 3)
    err = refuses(folder, match=f"is damaged at index {index}")
    assert err.index == index


@pytest.mark.allow_logged_errors
def test_damaged_uncommitted_tail_is_dropped_with_a_warning(folder, log_lines):
    write_log(folder)
    for index in (ENTRIES - 2, ENTRIES - 1, ENTRIES):
        flip(db_path(folder), offset_of(db_path(folder), b"entry-%05d|" % index) + 20)
    s = RaftStorage.open(folder)
    try:
        check_nothing_committed_lost(s)
        assert s.last_index() == ENTRIES - 3
    finally:
        s.close()
    dropped = [e for e in log_lines if "dropping {count} damaged uncommitted" in e["log_format"]]
    assert len(dropped) == 1
    assert (dropped[0]["count"], dropped[0]["index"], dropped[0]["path"]) == (3, ENTRIES - 2, db_path(folder))


def test_damaged_vote_is_refused(folder):
    write_log(folder)
    flip(db_path(folder), offset_of(db_path(folder), VOTE.encode()) + 5, 0x01)
    refuses(folder, match="Raft stable store (term and vote) in")


@pytest.mark.parametrize("sql, params", [
    ("UPDATE hard SET term = term + 1", ()),
    ("UPDATE hard SET vote = 'someone-else'", ()),
    ("UPDATE hard SET vote = ?", (b"\xff\xfe",)),
    ("UPDATE hard SET term = 'four'", ()),
    ("UPDATE hard SET term = 4.5", ()),
    ("UPDATE hard SET crc = -1", ()),
    ("UPDATE hard SET base_index = 9223372036854775807", ()),
], ids=["term", "vote", "vote-blob", "term-text", "term-real", "crc-negative", "base-huge"])
def test_damaged_stable_store_is_refused(folder, sql, params):
    write_log(folder)
    tamper(folder, sql, params)
    err = refuses(folder)
    assert WHAT_TO_DO in str(err) or "cannot be read" in str(err), str(err)


@pytest.mark.parametrize("sql", [
    "UPDATE log SET data = 'text' WHERE idx = 42",
    "UPDATE log SET term = 'x' WHERE idx = 42",
    "UPDATE log SET term = -1 WHERE idx = 42",
    "UPDATE log SET kind = 1e300 WHERE idx = 42",
    "UPDATE log SET crc = X'00' WHERE idx = 42",
    "UPDATE log SET idx = 100000 WHERE idx = 42",
], ids=["data-text", "term-text", "term-negative", "kind-real", "crc-blob", "moved"])
def test_row_values_of_the_wrong_type_are_refused(folder, sql):
    write_log(folder)
    tamper(folder, sql)
    refuses(folder)


def test_committed_entries_missing_at_the_end_are_refused(folder):
    write_log(folder)
    tamper(folder, "DELETE FROM log WHERE idx > 140")  # rows gone, the commit index says 150
    err = refuses(folder, match="ends at index 140 but entries up to 150 were committed")
    assert err.index == 141


# --- the WAL (a crash copy: the transactions are still in raft.db-wal) ----------------------


@FUZZ
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(1, 255)),
                                                 max_size=2))
def test_damaged_wal_gives_an_earlier_consistent_state_or_an_error(tmp_path_factory, written,
                                                                    cut, flips):
    """SQLite replays the WAL up to its last intact commit: a cut or garbled WAL
    brings back a prefix of whole transactions (never half of one), or an error.
    (It cannot tell a WAL damaged after its fsync from a crash before it: see the
    storage module's "What cannot be detected".)"""
    copy = copy_of(tmp_path_factory, written["crashed"])
    wal = os.path.join(copy, DB_FILE_NAME + "-wal")
    size = os.path.getsize(wal)
    for where, mask in flips:
        flip(wal, int(where * size), mask)
    truncate(wal, int(cut * size))
    try:
        s = RaftStorage.open(copy)
    except RaftStorageError as err:
        assert copy in str(err)
        return
    try:
        last = s.last_index()
        assert last % 10 == 0  # whole batches only
        assert s.entries(1, last + 1) == [entry(i) for i in range(1, last + 1)]
        assert s.hard_state() == ((TERM, VOTE) if last else (0, None))
        assert s.commit_index() in (0, COMMIT) and s.commit_index() <= last
    finally:
        s.close()


# --- snapshots ----------------------------------------------------------------------------------


def snapshot_store(folder: str) -> SnapshotStore:
    return SnapshotStore.open(folder)


def empty_state() -> bytes:
    """A real (empty) shared-state payload, as a peer writes it."""
    buf = io.BytesIO()
    MapState().snapshot(buf)
    return buf.getvalue()


def compacted(folder: str, *, snapshots=(100, 140), base: int = 120) -> tuple[SnapshotStore, list]:
    """The log of :func:`write_log`, snapshots at ``snapshots`` and the log compacted
    to ``base`` (entries ``<= base`` dropped)."""
    s = write_log(folder, close=False)
    store = snapshot_store(folder)
    metas = [store.write(entry(i).term, i, VOTERS, [empty_state()]) for i in snapshots]
    s.save(log_base=(base, entry(base).term))
    s.close()
    return store, metas


def select(folder: str, store: SnapshotStore):
    s = RaftStorage.open(folder)
    try:
        return store.select(s)
    finally:
        s.close()


@FUZZ
@given(data=st.data())
def test_any_damage_to_a_snapshot_file_is_detected(tmp_path_factory, data):
    folder = str(tmp_path_factory.mktemp("snap") / "data")
    store = snapshot_store(folder)
    meta = store.write(3, 77, VOTERS, [bytes(range(256)) * 8])
    size = meta.file_size
    if data.draw(st.booleans(), label="truncate"):
        truncate(meta.path, data.draw(st.integers(0, size - 1), label="size"))
    else:
        flip(meta.path, data.draw(st.integers(0, size - 1), label="offset"),
             data.draw(st.integers(1, 255), label="mask"))
    with pytest.raises(SnapshotCorrupted) as info:
        store.verify(read_meta(meta.path))
    assert meta.path in str(info.value) and "\n" not in str(info.value)


def state_with_pins(count: int) -> bytes:
    state = MapState()
    for i in range(count):
        state.add(Pin(cid=synthetic_cid(i)))
    buf = io.BytesIO()
    state.snapshot(buf)
    return buf.getvalue()


STATE = state_with_pins(12)


@FUZZ
@given(data=st.data())
def test_damaged_state_payload_is_a_typed_error(data):
    """A snapshot whose file checksum is fine but whose state bytes are not (written
    damaged, or by a broken release) fails the restore with a typed error."""
    if data.draw(st.booleans(), label="truncate"):
        damaged = STATE[:data.draw(st.integers(0, len(STATE) - 1), label="size")]
    else:
        position = data.draw(st.integers(0, len(STATE) - 1), label="offset")
        mask = data.draw(st.integers(1, 255), label="mask")
        damaged = STATE[:position] + bytes([STATE[position] ^ mask]) + STATE[position + 1:]
    restored = MapState()
    try:
        restored.restore(io.BytesIO(damaged))
    except (StateCorrupted, StateVersionError, InvalidStateImport) as err:
        assert "\n" not in str(err)
        return
    assert restored.count() == 12  # a flip in a spot that does not matter


def test_a_huge_configuration_length_is_not_read(folder):
    store = snapshot_store(folder)
    meta = store.write(3, 77, VOTERS, [b"x"])
    patch(meta.path, 68, b"\xff\xff\xff\xf0")  # the length of the configuration JSON
    with pytest.raises(SnapshotCorrupted, match="its header is truncated"):
        read_meta(meta.path)


def test_a_renamed_snapshot_is_not_trusted(folder):
    store = snapshot_store(folder)
    meta = store.write(3, 77, VOTERS, [b"x"])
    renamed = os.path.join(store.folder, "snapshot-%020d-%020d.snap" % (3, 500))
    os.rename(meta.path, renamed)
    with pytest.raises(SnapshotCorrupted, match="its header says term 3, index 77"):
        read_meta(renamed)


@pytest.mark.allow_logged_errors
@pytest.mark.parametrize("damage", ["flip-header", "flip-config", "flip-payload", "truncate", "delete"])
def test_damaged_newest_snapshot_falls_back_when_the_log_covers_the_older_one(folder, damage, log_lines):
    store, (older, newest) = compacted(folder, snapshots=(100, 140), base=100)
    if damage == "delete":
        os.unlink(newest.path)
    elif damage == "truncate":
        truncate(newest.path, newest.file_size - 1)
    else:
        offset = {"flip-header": 20, "flip-config": 75, "flip-payload": newest.payload_offset + 2}[damage]
        flip(newest.path, offset)
    chosen = select(folder, store)
    assert (chosen.term, chosen.index) == (older.term, older.index)
    if damage != "delete":
        errors = [e for e in log_lines if "skipping a newer Raft snapshot" in e["log_format"]]
        assert len(errors) == 1 and newest.path in errors[0]["why"]


@pytest.mark.parametrize("damage", ["flip-payload", "delete"])
def test_damaged_newest_snapshot_is_refused_when_the_log_does_not_cover_the_older_one(folder, damage):
    store, (older, newest) = compacted(folder, snapshots=(100, 140), base=120)
    if damage == "delete":
        os.unlink(newest.path)
    else:
        flip(newest.path, newest.payload_offset)
    with pytest.raises(NoValidSnapshot) as info:
        select(folder, store)
    message = str(info.value)
    assert "starts after index 120 but no valid snapshot covers it" in message
    assert folder in message and "restore the data folder from a backup" in message
    assert "before the start of the log" in message  # why the older one cannot serve


def test_state_version_check_skips_a_damaged_newest_snapshot(folder):
    """The start-up's state version check reads the snapshot that can serve, not a
    damaged newer one (whose garbage must not read as "unreadable state")."""
    store, (older, newest) = compacted(folder, snapshots=(100, 140), base=100)
    patch(newest.path, newest.payload_offset, b"{not json")
    assert stored_version(folder) == stored_version_of(older)
    os.unlink(older.path)
    assert stored_version(folder) is None


def stored_version_of(meta) -> int:
    with open(meta.path, "rb") as f:
        f.seek(meta.payload_offset)
        return read_header(f.read(64))[0]


def test_only_snapshot_damaged_after_compaction_is_refused(folder):
    store, (only,) = compacted(folder, snapshots=(140,), base=130)
    flip(only.path, only.payload_offset + 1)
    with pytest.raises(NoValidSnapshot, match="payload checksum does not match"):
        select(folder, store)


@pytest.mark.allow_logged_errors
def test_damaged_snapshot_without_compaction_starts_from_the_log(folder, log_lines):
    s = write_log(folder, close=False)
    store = snapshot_store(folder)
    meta = store.write(entry(140).term, 140, VOTERS, [b"state"])
    s.close()
    flip(meta.path, meta.payload_offset)
    assert select(folder, store) is None  # the whole log is there: nothing is lost
    assert any("starting from the log" in e["log_format"] for e in log_lines)


def test_half_written_snapshots_are_removed_with_a_warning(folder, log_lines):
    store, (older, newest) = compacted(folder, snapshots=(100, 140), base=100)
    half = os.path.join(store.folder, os.path.basename(newest.path).replace("140", "190") + ".tmp")
    partial = half.replace(".tmp", ".partial")
    for path in (half, partial):
        with open(path, "wb") as f:
            f.write(b"IPCRSNAP\x00\x00")
    reopened = SnapshotStore.open(folder)
    assert sorted(os.listdir(reopened.folder)) == sorted(
        os.path.basename(m.path) for m in (older, newest))
    removed = {e["path"] for e in log_lines if "removing the unfinished Raft snapshot" in e["log_format"]}
    assert removed == {half, partial}
    assert select(folder, reopened).index == 140


# --- the start-up path: one clear line, exit status 1 -------------------------------------------


def _peer(tmp_path) -> tuple[str, str]:
    folder = str(tmp_path / "peer")
    config = ServiceConfig.init(folder, secret=b"")
    with open(config.path) as f:
        obj = json.load(f)
    obj["cluster"]["listen_multiaddress"] = "/ip4/127.0.0.1/tcp/0"
    obj["api"]["restapi"]["listen_multiaddress"] = "/ip4/127.0.0.1/tcp/0"
    obj["ipfs_connector"]["ipfshttp"]["proxy_listen_multiaddress"] = "/ip4/127.0.0.1/tcp/0"
    with open(config.path, "w") as f:
        json.dump(obj, f)
    return folder, ServiceConfig.load(folder).raft_data_folder


def _refuses_to_start(tmp_path, folder, message, twistd=False):
    cmd = procs.twistd_cmd("--config", folder) if twistd else procs.service_cmd("-c", folder, "daemon")
    result = procs.run(cmd, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "#error]" in line or "#critical]" in line]
    assert len(errors) == 1, output
    assert "error starting cluster: " in errors[0] and message in errors[0], errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("twistd", [False, True], ids=["ipfs-cluster-service", "twistd"])
def test_process_refuses_a_lost_database(tmp_path, twistd):
    folder, data = _peer(tmp_path)
    write_log(data)
    os.unlink(db_path(data))
    _refuses_to_start(tmp_path, folder, f"the Raft log {db_path(data)} is missing although", twistd)


@pytest.mark.slow
def test_process_refuses_a_compacted_log_without_a_valid_snapshot(tmp_path):
    folder, data = _peer(tmp_path)
    _, (only,) = compacted(data, snapshots=(140,), base=130)
    flip(only.path, only.payload_offset)
    _refuses_to_start(tmp_path, folder, "no valid snapshot covers it")
    assert os.path.exists(only.path) and os.path.exists(db_path(data))  # nothing deleted
    assert os.listdir(os.path.join(data, SNAPSHOTS_FOLDER)) == [os.path.basename(only.path)]
