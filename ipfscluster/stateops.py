"""The peer's data on disk, offline: execution lock, backups, ``state`` commands.

Everything here works on a configuration folder while no peer runs from it (the
daemon uses the lock and the backups; ``ipfs-cluster-service state …`` uses the rest):

- **Execution lock** (:class:`ExecutionLock`): ``<config>/cluster.lock`` held with
  ``flock`` for the life of a daemon or a ``state`` command, so two processes never
  share a configuration folder (reference §2.3, 0.3.5).  The kernel drops the lock
  when the process dies, so a stale file never blocks a restart.
- **Backups** (:func:`write_backup`): on a clean shutdown of a ready peer the shared
  state is written in the ``state export`` format to
  ``<config>/backups/<UTC YYYYMMDD_HH:MM:SS>`` (§10.3); ``state import`` restores one.
- **Reading the shared state offline** (:func:`load_state`): the newest valid Raft
  snapshot, then the committed log entries after it (a peer that crashed before its
  final snapshot still exports everything it had committed).
- **Writing it** (:func:`import_state`): the Raft data folder is rotated (kept as
  ``.old.0`` …) and a fresh one holds a single snapshot — term 1, index 2 with the
  membership of the old data, else ``cluster.peers`` + this peer (§10.5).  Importing
  the same file on every stopped peer gives them identical logs, so they start as
  one cluster.
- **Versions** (:func:`stored_version`, :func:`upgrade_state`): a snapshot whose
  payload is an older state format (an upstream JSON backup, a previous binary
  layout) makes the daemon refuse to start until ``state upgrade`` (or
  ``daemon --upgrade``) rewrites it in the current format.

Why hand-written: these are small compositions of our own storage, snapshot and
state modules; no library does this.
"""

from __future__ import annotations

import fcntl
import io
import os
import time
from typing import IO

from ipfscluster.consensus.raft.consensus import PinsetStateMachine, rotate_folder
from ipfscluster.consensus.raft.messages import ENTRY_CONFIG, ENTRY_NORMAL, Entry, decode_config
from ipfscluster.consensus.raft.snapshots import SnapshotStore
from ipfscluster.consensus.raft.storage import DB_FILE_NAME, RaftStorage
from ipfscluster.errors import ExecutionLockError, NotFound, StateCorrupted, StateVersionError
from ipfscluster.state import MapState, export
from ipfscluster.state.snapshot import HEADER_PREFIX, VERSION, read_header

LOCK_FILE = "cluster.lock"
BACKUPS_FOLDER = "backups"
IMPORT_TERM = 1
IMPORT_INDEX = 2

OUT_OF_DATE = (
    "Out of date ipfs-cluster state is saved (state format {found}, this program uses "
    "{current}). To migrate to the new version, run ipfs-cluster-service state upgrade "
    "(or start the daemon with --upgrade); a backup of the state is written to "
    "{backups} first."
)


class ExecutionLock:
    """``<folder>/cluster.lock`` held with an exclusive ``flock`` (see module doc)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> "ExecutionLock":
        """Take the lock (returns self).

        :raises ExecutionLockError: another process holds it, with what to do.
        """
        if self._fd is not None:
            return self
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ExecutionLockError(
                "could not obtain execution lock: %s is held by another process. An "
                "ipfs-cluster-service daemon or state command is already using the "
                "configuration folder %s; stop it first, or use another folder (-c). The "
                "lock is released automatically when that process ends" % (self.path, self.folder)
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (idempotent); the file stays."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


# --- backups -----------------------------------------------------------------------


def backup_name(seconds: float) -> str:
    """The backup file name for a unix time: ``YYYYMMDD_HH:MM:SS`` in UTC."""
    return time.strftime("%Y%m%d_%H:%M:%S", time.gmtime(seconds))


def write_backup(config_folder: str, state, seconds: float) -> str:
    """Write ``state`` (export format) to ``<config>/backups/<UTC time>``; return the
    path.  A second backup within the same second gets a ``.N`` suffix.

    :raises OSError: when the file cannot be written.
    """
    folder = os.path.join(config_folder, BACKUPS_FOLDER)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    base = os.path.join(folder, backup_name(seconds))
    path, n = base, 0
    while os.path.exists(path):
        n += 1
        path = "%s.%d" % (base, n)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        export(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    return path


# --- reading the stored state --------------------------------------------------------


def _has_data(data_folder: str) -> bool:
    return os.path.exists(os.path.join(data_folder, DB_FILE_NAME))


def _no_state(data_folder: str) -> NotFound:
    return NotFound(
        "no snapshot found: there is no shared state in %s (the peer never ran with this "
        "configuration, or its data was cleaned up)" % data_folder)


def stored_version(data_folder: str) -> int | None:
    """The state format version of the newest intact Raft snapshot, None without one.

    Needs no lock.  A damaged newer snapshot is skipped (the start-up reports it and
    decides whether an older one may serve).  JSON payloads (upstream backups) report
    the version they declare (1 for a bare map).
    """
    folder = os.path.join(data_folder, "snapshots")
    if not os.path.isdir(folder):
        return None
    meta = SnapshotStore(folder).latest_valid()
    if meta is None:
        return None
    with open(meta.path, "rb") as f:
        f.seek(meta.payload_offset)
        head = f.read(min(meta.size, 64))
    if head.startswith(HEADER_PREFIX):
        return read_header(head)[0]
    return _json_version(SnapshotStore(folder), meta)


def _json_version(store: SnapshotStore, meta) -> int:
    import json

    try:
        obj = json.loads(b"".join(store.payload(meta)))
    except ValueError:
        raise StateCorrupted("the Raft snapshot %s holds no state this program can read" % meta.path) from None
    if isinstance(obj, dict) and isinstance(obj.get("Version"), int):
        return obj["Version"]
    return 1


def check_state_current(data_folder: str, config_folder: str) -> None:
    """Refuse an out-of-date stored state.

    :raises StateVersionError: with the "run state upgrade" message.
    """
    found = stored_version(data_folder)
    if found is not None and found < VERSION:
        raise StateVersionError(OUT_OF_DATE.format(
            found=found, current=VERSION, backups=os.path.join(config_folder, BACKUPS_FOLDER)),
            version=found)


def load_state(data_folder: str) -> tuple[MapState, dict]:
    """The shared state stored in ``data_folder`` and facts about it.

    Returns ``(state, info)`` with info keys ``voters``, ``term``, ``index`` (of the
    newest snapshot or entry read), ``snapshot`` (its path or None).
    Raises NotFound ("no snapshot found") without Raft data, StorageLocked while a
    peer runs on it, and the storage/state errors for damaged data.
    """
    if not _has_data(data_folder):
        raise _no_state(data_folder)
    storage = RaftStorage.open(data_folder, entry_factory=Entry)
    try:
        snaps = SnapshotStore.open(data_folder)
        meta = snaps.select(storage)
        state = MapState()
        machine = PinsetStateMachine(state)
        info = {"voters": (), "term": 0, "index": 0, "snapshot": None}
        start = storage.first_index()
        if meta is not None:
            state.restore(io.BytesIO(b"".join(snaps.payload(meta))))
            info.update(voters=tuple((meta.configuration or {}).get("voters", ())),
                        term=meta.term, index=meta.index, snapshot=meta.path)
            start = max(start, meta.index + 1)
        commit = storage.commit_index()
        if commit < start and meta is None:
            raise _no_state(data_folder)
        for entry in storage.entries(start, commit + 1) if commit >= start else ():
            if entry.kind == ENTRY_NORMAL:
                machine.apply(entry)
            elif entry.kind == ENTRY_CONFIG:
                info["voters"] = tuple(decode_config(entry.data).voters)
            info.update(term=entry.term, index=entry.index)
        return state, info
    finally:
        storage.close()


def export_state(data_folder: str, out: IO) -> int:
    """Write the stored shared state to ``out`` as a JSON array; return the count."""
    state, _ = load_state(data_folder)
    return export(state, out)


# --- writing it -------------------------------------------------------------------------


def _membership(data_folder: str, default_voters) -> tuple[str, ...]:
    if _has_data(data_folder):
        try:
            _, info = load_state(data_folder)
        except NotFound:
            info = {"voters": ()}
        if info["voters"]:
            return tuple(info["voters"])
    return tuple(sorted(set(default_voters)))


def write_state(data_folder: str, state: MapState, voters, *, term: int = IMPORT_TERM,
                index: int = IMPORT_INDEX) -> str:
    """Rotate ``data_folder`` and create a fresh one whose only content is a snapshot
    of ``state`` at ``(term, index)`` with ``voters``; return the snapshot path."""
    buf = io.BytesIO()
    state.snapshot(buf)
    return write_snapshot_payload(data_folder, buf.getvalue(), voters, term=term, index=index)


def write_snapshot_payload(data_folder: str, payload: bytes, voters, *, term: int = IMPORT_TERM,
                           index: int = IMPORT_INDEX) -> str:
    """Rotate ``data_folder`` and create a fresh one holding one Raft snapshot with the
    state bytes ``payload`` (any state format the peer reads) at ``(term, index)``;
    the log starts after it and the stable store is at ``term``.  Returns its path."""
    rotate_folder(data_folder)
    snaps = SnapshotStore.open(data_folder)
    meta = snaps.write(term, index, {"voters": list(voters), "config_index": 0}, [payload])
    storage = RaftStorage.open(data_folder, entry_factory=Entry)
    try:
        storage.save(log_base=(index, term), hard_state=(term, None), commit=index)
    finally:
        storage.close()
    return meta.path


def import_state(data_folder: str, source: IO, default_voters) -> int:
    """Replace the stored shared state with the pins of ``source`` (an export or a
    backup, any version); return the number of pins.  The old data folder is kept
    as ``.old.0``.  Raises InvalidStateImport / StateVersionError for a bad file
    (nothing changed then)."""
    from ipfscluster.state import import_

    state = import_(source)
    voters = _membership(data_folder, default_voters)
    write_state(data_folder, state, voters)
    return state.count()


def upgrade_state(data_folder: str, config_folder: str, seconds: float) -> tuple[int | None, str | None]:
    """Rewrite an out-of-date stored state in the current format.

    Returns ``(old version, backup path)``; ``(version, None)`` when nothing had to be
    done (already current, or no state at all: version None).
    """
    found = stored_version(data_folder)
    if found is None or found >= VERSION:
        return found, None
    state, info = load_state(data_folder)
    backup = write_backup(config_folder, state, seconds)
    write_state(data_folder, state, info["voters"], term=max(info["term"], IMPORT_TERM),
                index=max(info["index"], IMPORT_INDEX))
    return found, backup


def cleanup(data_folder: str) -> bool:
    """Rotate the Raft data folder away (``.old.0``, 5 kept); False if there was none."""
    if not os.path.exists(data_folder):
        return False
    rotate_folder(data_folder)
    return True
