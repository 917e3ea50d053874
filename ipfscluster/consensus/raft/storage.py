"""Durable Raft log and stable store in SQLite (``<data_folder>/raft.db``).

What is stored
--------------
* ``log``: one row per entry ``(idx, term, kind, data, crc)``; ``crc`` is the CRC-32
  of ``(index, term, kind, data)`` so a damaged row is detected when it is read, not
  applied.
* ``hard``: one row with the *hard state* (``term``, ``vote``, ``commit``) and the
  *log base* ``(base_index, base_term)``: the last entry dropped by compaction or
  covered by an installed snapshot, needed to answer ``term(first_index() - 1)``
  for AppendEntries consistency checks.  That row carries a CRC as well.

Durability
----------
The database runs with ``journal_mode=WAL`` and ``synchronous=FULL``: a transaction
is on disk (the WAL fsynced) when ``COMMIT`` returns.  Everything of one Raft
*Ready* (new term/vote, a truncated conflicting suffix, new entries, the commit
index, an installed snapshot's log base) goes through :meth:`RaftStorage.save` in a
single transaction, so one batch of proposals costs one fsync (group commit) and a
crash in the middle leaves nothing of it behind.  The driver must call ``save``
*before* it sends any message that depends on the data (votes, AppendEntries
replies, acknowledgements).

Recovery
--------
SQLite already discards a torn or garbled WAL tail (each WAL frame is checksummed
and only frames up to the last intact commit frame are replayed).  On top of that,
:meth:`RaftStorage.open` verifies the CRC of every log row: damaged rows at the very
end of the log and above the persisted commit index are dropped with a loud warning
(they were never committed, so the cluster still has them); a damaged row anywhere
else, or a gap in the indexes, raises :class:`~ipfscluster.errors.StorageCorrupted`
naming the file and the index, because dropping it could lose acknowledged data.

Damage SQLite does not report by itself is caught at open as well: ``PRAGMA
quick_check`` (structure of the file), row values of the wrong type, a commit
index past the end of the log (committed entries vanished), and a database file that is
missing or empty although :data:`CREATED_FILE_NAME` says this folder has held one
(SQLite would silently start a new, empty database: a peer that forgot its term,
vote and log).  Every such case raises :class:`~ipfscluster.errors.StorageCorrupted`
naming the file and what to do; nothing raw from sqlite3, struct or zlib escapes.

What cannot be detected: SQLite replays the WAL up to its last intact commit frame,
so a WAL whose tail was cut or garbled *after* it was fsynced comes back as an
older, consistent state (a prefix of the transactions), exactly as if the crash had
happened before those commits -- the disk lost acknowledged writes and nothing on
it says so.

A lock file (``flock``) stops a second process from using the same data folder.

Why SQLite and not a hand-written append-only file: the project design (DESIGN.md §2)
fixes stdlib ``sqlite3``; it gives atomic multi-row transactions, torn-write
recovery and indexed reads for free, and measured group commits cost one WAL fsync.

All methods are synchronous and meant to be called from the reactor thread only.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import struct
import zlib
from typing import Any, Callable, Iterable, Sequence

import attrs
from twisted.logger import Logger

from ipfscluster.consensus.raft.snapshots import fsync_folder
from ipfscluster.errors import (
    LogCompacted,
    LogUnavailable,
    RaftStorageError,
    StorageCorrupted,
    StorageLocked,
)

log = Logger(namespace="consensus")

DB_FILE_NAME = "raft.db"
LOCK_FILE_NAME = "raft.lock"
#: written (and fsynced) once the database file holds its schema: from then on a
#: missing or empty database file is damage, not a new peer
CREATED_FILE_NAME = "raft.created"
_WHAT_TO_DO = ("restore the data folder from a backup, or remove this peer from the "
               "cluster, delete the data folder and join again to re-sync")
SCHEMA_VERSION = 1
DEFAULT_CACHE_ENTRIES = 1024

_ENTRY_HEADER = struct.Struct(">QQI")
_HARD_HEADER = struct.Struct(">QQQQ")


@attrs.frozen
class StoredEntry:
    """A log entry as read back from storage (the default ``entry_factory``)."""

    index: int
    term: int
    kind: int
    data: bytes


@attrs.frozen
class HardState:
    """The durable per-node Raft state: current term, vote in it, commit index."""

    term: int = 0
    vote: str | None = None
    commit: int = 0


def entry_crc(index: int, term: int, kind: int, data: bytes) -> int:
    """CRC-32 of an entry's ``(index, term, kind, data)``."""
    return zlib.crc32(data, zlib.crc32(_ENTRY_HEADER.pack(index, term, kind)))


def _hard_crc(term: int, vote: str | None, commit: int, base_index: int, base_term: int) -> int:
    header = _HARD_HEADER.pack(term, commit, base_index, base_term)
    return zlib.crc32((vote or "").encode("utf-8"), zlib.crc32(header))


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS log ("
    " idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " data BLOB NOT NULL, crc INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hard ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, vote TEXT,"
    " commit_index INTEGER NOT NULL, base_index INTEGER NOT NULL,"
    " base_term INTEGER NOT NULL, crc INTEGER NOT NULL)",
)


class RaftStorage:
    """The Raft log plus stable store of one node.  Create with :meth:`open`.

    Indexes start at 1.  With nothing compacted, the log base is ``(0, 0)``.
    ``transactions`` counts committed write transactions, ``synced_transactions``
    those that were fsynced (all but ``save(durable=False)``).
    """

    def __init__(self, conn: sqlite3.Connection, path: str, lock_fd: int,
                 entry_factory: Callable[..., Any], cache_entries: int):
        self._conn = conn
        self.path = path
        self._lock_fd = lock_fd
        self._factory = entry_factory
        self._cache_size = cache_entries
        self.transactions = 0
        self.synced_transactions = 0
        self._hard = HardState()
        self._base_index = 0
        self._base_term = 0
        self._last_index = 0
        self._last_term = 0
        # in-memory copy of the newest entries: _cache[i] has index _cache_start + i
        self._cache: list[Any] = []
        self._cache_start = 1

    # --- opening / closing ------------------------------------------------------

    @classmethod
    def open(cls, folder: str, *, file_name: str = DB_FILE_NAME,
             entry_factory: Callable[..., Any] = StoredEntry,
             cache_entries: int = DEFAULT_CACHE_ENTRIES) -> "RaftStorage":
        """Open (creating when missing) the storage in ``folder``.

        ``entry_factory(index=, term=, kind=, data=)`` builds the entry objects
        returned by :meth:`entries`.  Returns the storage, with a damaged tail
        already dropped.  Raises :class:`StorageLocked` when another process holds
        the folder, :class:`StorageCorrupted` when the files are damaged beyond a
        torn tail, :class:`RaftStorageError` when the folder cannot be used.
        """
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise RaftStorageError(
                "cannot create the Raft data folder %s: %s; check the path and its "
                "permissions (consensus.raft.data_folder)" % (folder, exc.strerror),
                path=folder) from exc
        lock_fd = _lock_folder(folder)
        path = os.path.join(folder, file_name)
        marker = os.path.join(folder, CREATED_FILE_NAME)
        try:
            _check_not_lost(path, marker)
            conn = None
            try:
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=OFF")
                for statement in _SCHEMA:
                    conn.execute(statement)
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    conn.execute("PRAGMA user_version=%d" % SCHEMA_VERSION)
                elif version != SCHEMA_VERSION:
                    raise RaftStorageError(
                        "the Raft log %s has format version %d; this program reads "
                        "version %d" % (path, version, SCHEMA_VERSION), path=path)
                problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)")]
                if problems != ["ok"]:
                    text = "; ".join(" ".join(p.split()) for p in problems)
                    raise sqlite3.DatabaseError(
                        "integrity check: %s" % " ".join(text.split()[:40]))
                if not os.path.exists(marker):
                    _write_marker(conn, marker)
                storage = cls(conn, path, lock_fd, entry_factory, cache_entries)
                storage._load()
            except (OSError, sqlite3.OperationalError) as exc:
                _close(conn)
                if isinstance(exc, sqlite3.OperationalError) and not _is_access_problem(exc):
                    raise _unreadable(path, exc) from exc
                raise RaftStorageError(
                    "cannot open the Raft log %s (%s); check that the data folder and its "
                    "files exist and are writable by the user running the peer "
                    "(consensus.raft.data_folder)" % (path, getattr(exc, "strerror", None) or exc),
                    path=path) from exc
            except (sqlite3.DatabaseError, struct.error, TypeError, ValueError,
                    OverflowError, UnicodeError) as exc:
                _close(conn)
                raise _unreadable(path, exc) from exc
            except BaseException:
                _close(conn)
                raise
        except BaseException:
            os.close(lock_fd)
            raise
        return storage

    def close(self) -> None:
        """Close the database and release the folder lock.  Idempotent."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            os.close(self._lock_fd)

    def _load(self) -> None:
        row = self._conn.execute(
            "SELECT term, vote, commit_index, base_index, base_term, crc FROM hard"
        ).fetchone()
        if row is not None:
            term, vote, commit, base_index, base_term, crc = row
            if not (_are_ints(term, commit, base_index, base_term, crc)
                    and (vote is None or isinstance(vote, str))
                    and _hard_crc(term, vote, commit, base_index, base_term) == crc):
                raise StorageCorrupted(
                    "the Raft stable store (term and vote) in %s is damaged (checksum "
                    "mismatch); %s" % (self.path, _WHAT_TO_DO), path=self.path, index=None)
            self._hard = HardState(term, vote, commit)
            self._base_index, self._base_term = base_index, base_term
        self._verify_log()
        if self._hard.commit > self._last_index:
            raise StorageCorrupted(
                "the Raft log %s ends at index %d but entries up to %d were committed: "
                "committed entries are missing; %s"
                % (self.path, self._last_index, self._hard.commit, _WHAT_TO_DO),
                path=self.path, index=self._last_index + 1)

    def _verify_log(self) -> None:
        rows = self._conn.execute(
            "SELECT idx, term, kind, data, crc FROM log ORDER BY idx DESC")
        bad_tail: list[int] = []
        expected = None
        good_seen = False
        last = None
        for index, term, kind, data, crc in rows:
            if expected is not None and index != expected:
                raise StorageCorrupted(
                    "the Raft log %s has a gap before index %d; %s"
                    % (self.path, expected, _WHAT_TO_DO), path=self.path,
                    index=index + 1)
            expected = index - 1
            valid = _row_valid(index, term, kind, data, crc)
            if valid:
                if not good_seen:
                    last = (index, term)
                good_seen = True
            elif good_seen or index <= self._hard.commit:
                raise StorageCorrupted(
                    "the Raft log %s is damaged at index %d (checksum mismatch) and "
                    "entries after it or up to the commit index %d depend on it; %s"
                    % (self.path, index, self._hard.commit, _WHAT_TO_DO),
                    path=self.path, index=index)
            else:
                bad_tail.append(index)
        if expected is not None and expected != self._base_index:
            raise StorageCorrupted(
                "the Raft log %s starts at index %d but its base is %d; %s"
                % (self.path, expected + 1, self._base_index, _WHAT_TO_DO),
                path=self.path, index=expected + 1)
        if bad_tail:
            log.warn(
                "Raft log {path}: dropping {count} damaged uncommitted entries from "
                "index {index} (torn write; the leader sends them again)",
                path=self.path, count=len(bad_tail), index=min(bad_tail))
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM log WHERE idx >= ?", (min(bad_tail),))
            self._conn.execute("COMMIT")
            self.transactions += 1
        if last is None:
            last = (self._base_index, self._base_term)
        self._last_index, self._last_term = last
        self._cache_start = self._last_index + 1
        self._cache = []

    # --- reading ----------------------------------------------------------------

    def hard_state(self) -> tuple[int, str | None]:
        """Return ``(current_term, voted_for)``; ``voted_for`` is ``None`` if none."""
        return self._hard.term, self._hard.vote

    def commit_index(self) -> int:
        """Return the last persisted commit index (0 if never saved)."""
        return self._hard.commit

    def log_base(self) -> tuple[int, int]:
        """Return ``(index, term)`` of the entry just before :meth:`first_index`."""
        return self._base_index, self._base_term

    def first_index(self) -> int:
        """Index of the first entry kept (``last_index() + 1`` when the log is empty)."""
        return self._base_index + 1

    def last_index(self) -> int:
        """Index of the last entry (the log base index when the log is empty)."""
        return self._last_index

    def last_term(self) -> int:
        """Term of the last entry (the log base term when the log is empty)."""
        return self._last_term

    def term(self, index: int) -> int:
        """Return the term of the entry at ``index``.

        Works for ``first_index() - 1`` too (the log base).  Raises
        :class:`LogCompacted` below that and :class:`LogUnavailable` past the end.
        """
        if index == self._base_index:
            return self._base_term
        if index == self._last_index:
            return self._last_term
        self._check_range(index, index + 1)
        cached = self._cached(index)
        if cached is not None:
            return cached.term
        row = self._conn.execute("SELECT term FROM log WHERE idx = ?", (index,)).fetchone()
        return row[0]

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Any]:
        """Return the entries with ``lo <= index < hi``, checksums verified.

        With ``max_bytes``, stop before the total ``data`` size would exceed it (at
        least one entry is always returned when the range is not empty).  Raises
        :class:`LogCompacted` if ``lo < first_index()``, :class:`LogUnavailable` if
        ``hi > last_index() + 1`` and :class:`StorageCorrupted` for a damaged row.
        """
        if hi <= lo:
            return []
        self._check_range(lo, hi)
        if lo >= self._cache_start and self._cache:
            found = self._cache[lo - self._cache_start:hi - self._cache_start]
        else:
            found = []
            rows = self._conn.execute(
                "SELECT idx, term, kind, data, crc FROM log WHERE idx >= ? AND idx < ? "
                "ORDER BY idx", (lo, hi))
            size = 0
            for index, term, kind, data, crc in rows:
                if not _row_valid(index, term, kind, data, crc):
                    raise StorageCorrupted(
                        "the Raft log %s is damaged at index %d (checksum mismatch); %s"
                        % (self.path, index, _WHAT_TO_DO), path=self.path, index=index)
                data = bytes(data)
                size += len(data)
                if max_bytes is not None and found and size > max_bytes:
                    return found
                found.append(self._factory(index=index, term=term, kind=kind, data=data))
            return found
        return _limit(found, max_bytes)

    def _check_range(self, lo: int, hi: int) -> None:
        if lo <= self._base_index:
            raise LogCompacted(
                "log entry %d was compacted (the log starts at %d)"
                % (lo, self._base_index + 1), index=lo)
        if hi > self._last_index + 1:
            raise LogUnavailable(
                "log entry %d is past the end of the log (%d)" % (hi - 1, self._last_index),
                index=hi - 1)

    def _cached(self, index: int):
        position = index - self._cache_start
        if 0 <= position < len(self._cache):
            return self._cache[position]
        return None

    # --- writing ----------------------------------------------------------------

    def append(self, entries: Sequence[Any]) -> None:
        """Append ``entries`` (contiguous), replacing any conflicting suffix; one fsync."""
        self.save(entries=entries)

    def truncate_from(self, index: int) -> None:
        """Delete the entries with index ``>= index``; one fsync."""
        self.save(truncate_from=index)

    def set_hard_state(self, term: int, vote: str | None) -> None:
        """Persist ``(term, vote)``; one fsync."""
        self.save(hard_state=(term, vote))

    def save(self, *, hard_state: tuple[int, str | None] | None = None,
             entries: Sequence[Any] = (), truncate_from: int | None = None,
             commit: int | None = None,
             log_base: tuple[int, int] | None = None, durable: bool = True) -> None:
        """Persist everything of one Raft Ready in ONE transaction (one fsync).

        Applied in this order: ``log_base=(index, term)`` (an installed snapshot:
        entries up to ``index`` are dropped; the whole log is dropped unless it holds
        ``(index, term)``; ignored when ``index`` is not above the current base), ``truncate_from`` (drop entries ``>= index``),
        ``entries`` (each with ``index``, ``term``, ``kind``, ``data``; contiguous;
        an entry at or below the last index first truncates the log from there),
        ``hard_state=(term, vote)`` and ``commit``.  Nothing is applied if anything
        fails.  ``durable=False`` skips the fsync (for a Ready that only moves the
        commit index, which may be lost harmlessly: the next durable save syncs it,
        and a process crash without power loss keeps it anyway).
        Raises :class:`RaftStorageError` for a non-contiguous batch or a
        truncation into the compacted part, :class:`StorageCorrupted` on disk errors.
        """
        plan = _Plan(self)
        if log_base is not None:
            plan.install_base(*log_base)
        if truncate_from is not None:
            plan.truncate(truncate_from)
        if entries:
            plan.add_entries(entries)
        if hard_state is not None:
            plan.hard = attrs.evolve(plan.hard, term=hard_state[0], vote=hard_state[1])
        if commit is not None:
            plan.hard = attrs.evolve(plan.hard, commit=commit)
        if plan.empty():
            return
        self._execute(plan, durable)
        self._adopt(plan)

    def compact(self, upto_index: int, trailing_logs: int = 0) -> int:
        """Drop entries ``<= upto_index - trailing_logs`` after a snapshot at ``upto_index``.

        Returns the new log base index (unchanged when nothing is dropped).  The
        entry at the new base must exist; raises :class:`LogUnavailable` if
        ``upto_index`` is past the end of the log.
        """
        if upto_index > self._last_index:
            raise LogUnavailable(
                "cannot compact up to %d: the log ends at %d" % (upto_index, self._last_index),
                index=upto_index)
        new_base = upto_index - trailing_logs
        if new_base <= self._base_index:
            return self._base_index
        self.save(log_base=(new_base, self.term(new_base)))
        return self._base_index

    def _execute(self, plan: "_Plan", durable: bool = True) -> None:
        conn = self._conn
        try:
            if not durable:
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._write(plan)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise StorageCorrupted(
                "cannot write the Raft log %s: %s" % (self.path, exc),
                path=self.path, index=None) from exc
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous=FULL")
        self.transactions += 1
        self.synced_transactions += durable

    def _write(self, plan: "_Plan") -> None:
        conn = self._conn
        if plan.delete_upto is not None:
            conn.execute("DELETE FROM log WHERE idx <= ?", (plan.delete_upto,))
        if plan.delete_from is not None:
            conn.execute("DELETE FROM log WHERE idx >= ?", (plan.delete_from,))
        if plan.new_entries:
            conn.executemany(
                "INSERT INTO log (idx, term, kind, data, crc) VALUES (?, ?, ?, ?, ?)",
                ((e.index, e.term, e.kind, e.data, entry_crc(e.index, e.term, e.kind, e.data))
                 for e in plan.new_entries))
        if plan.hard_changed():
            h = plan.hard
            conn.execute(
                "INSERT OR REPLACE INTO hard (id, term, vote, commit_index, base_index, "
                "base_term, crc) VALUES (1, ?, ?, ?, ?, ?, ?)",
                (h.term, h.vote, h.commit, plan.base_index, plan.base_term,
                 _hard_crc(h.term, h.vote, h.commit, plan.base_index, plan.base_term)))

    def _adopt(self, plan: "_Plan") -> None:
        self._hard = plan.hard
        self._base_index, self._base_term = plan.base_index, plan.base_term
        self._last_index, self._last_term = plan.last_index, plan.last_term
        cache = self._cache
        if plan.delete_from is not None:
            del cache[max(0, plan.delete_from - self._cache_start):]
        if plan.delete_upto is not None:
            drop = plan.delete_upto + 1 - self._cache_start
            if drop > 0:
                del cache[:drop]
                self._cache_start += drop
        if not cache:
            self._cache_start = (plan.new_entries[0].index if plan.new_entries
                                 else self._last_index + 1)
        cache.extend(
            self._factory(index=e.index, term=e.term, kind=e.kind, data=bytes(e.data))
            for e in plan.new_entries)
        excess = len(cache) - self._cache_size
        if excess > 0:
            del cache[:excess]
            self._cache_start += excess


class _Plan:
    """The effect of one ``save`` computed before touching the database."""

    def __init__(self, storage: RaftStorage):
        self._storage = storage
        self.original_hard = storage._hard
        self.hard = storage._hard
        self.original_base = (storage._base_index, storage._base_term)
        self.base_index, self.base_term = self.original_base
        self.last_index, self.last_term = storage._last_index, storage._last_term
        self.delete_upto: int | None = None
        self.delete_from: int | None = None
        self.new_entries: list[Any] = []

    def empty(self) -> bool:
        return (self.delete_upto is None and self.delete_from is None
                and not self.new_entries and not self.hard_changed())

    def hard_changed(self) -> bool:
        return (self.hard != self.original_hard
                or (self.base_index, self.base_term) != self.original_base)

    def install_base(self, index: int, term: int) -> None:
        if index <= self.base_index:
            return  # older than what the log already covers: nothing to drop
        storage = self._storage
        keeps_suffix = (self.base_index < index <= self.last_index
                        and storage.term(index) == term)
        if keeps_suffix:
            self.delete_upto = index
        else:
            self.delete_upto = max(self.last_index, index)
            self.last_index, self.last_term = index, term
        self.base_index, self.base_term = index, term

    def truncate(self, index: int) -> None:
        if index <= self.base_index:
            raise RaftStorageError(
                "cannot truncate the Raft log from %d: entries up to %d are in a "
                "snapshot" % (index, self.base_index), index=index)
        if index > self.last_index:
            return
        self.delete_from = index if self.delete_from is None else min(self.delete_from, index)
        self.last_index = index - 1
        self.last_term = (self.base_term if self.last_index == self.base_index
                          else self._storage.term(self.last_index))

    def add_entries(self, entries: Iterable[Any]) -> None:
        entries = list(entries)
        first = entries[0].index
        if first <= self.last_index:
            self.truncate(first)
        if first != self.last_index + 1:
            raise RaftStorageError(
                "log entries must be contiguous: got index %d after %d"
                % (first, self.last_index), index=first)
        for previous, entry in zip(entries, entries[1:]):
            if entry.index != previous.index + 1:
                raise RaftStorageError(
                    "log entries must be contiguous: got index %d after %d"
                    % (entry.index, previous.index), index=entry.index)
        self.new_entries = entries
        self.last_index, self.last_term = entries[-1].index, entries[-1].term


def _limit(entries: list[Any], max_bytes: int | None) -> list[Any]:
    if max_bytes is None:
        return list(entries)
    size = 0
    for position, entry in enumerate(entries):
        size += len(entry.data)
        if position and size > max_bytes:
            return entries[:position]
    return list(entries)


def _lock_folder(folder: str) -> int:
    path = os.path.join(folder, LOCK_FILE_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise RaftStorageError(
            "cannot use the Raft data folder %s: %s (%s); check that it is writable by "
            "the user running the peer (consensus.raft.data_folder)"
            % (folder, exc.strerror, path), path=folder) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StorageLocked(
            "the Raft data folder %s is in use by another process; stop the other "
            "ipfs-cluster-service first" % folder, path=folder) from exc
    return fd


def _are_ints(*values) -> bool:
    return all(isinstance(v, int) and 0 <= v < 1 << 64 for v in values)


def _row_valid(index, term, kind, data, crc) -> bool:
    """Whether a log row has values of the right types and a matching CRC (a damaged
    file can hand back text, floats or out-of-range numbers in any column)."""
    return (_are_ints(index, term, kind, crc) and kind < 1 << 32
            and isinstance(data, bytes) and entry_crc(index, term, kind, data) == crc)


def _close(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        conn.close()


def _is_access_problem(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite could not open or write the file (permissions, a folder in its
    place), as opposed to finding it damaged."""
    text = str(exc).lower()
    return any(words in text for words in ("readonly", "unable to open", "permission"))


def _unreadable(path: str, exc: Exception) -> StorageCorrupted:
    return StorageCorrupted("the Raft log %s cannot be read (%s); %s"
                            % (path, exc, _WHAT_TO_DO), path=path, index=None)


def _check_not_lost(path: str, marker: str) -> None:
    """Refuse a missing or empty database in a folder that has held one (SQLite would
    start a new, empty database, and delete a WAL next to an empty file)."""
    if not os.path.exists(marker):
        return
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        size = None
    if not size:
        raise StorageCorrupted(
            "the Raft log %s is %s although this data folder has held it (%s exists): "
            "the term, vote and log are lost; %s"
            % (path, "missing" if size is None else "empty", CREATED_FILE_NAME,
               _WHAT_TO_DO), path=path, index=None)


def _write_marker(conn: sqlite3.Connection, marker: str) -> None:
    """Move the schema into the database file, then record (fsynced) that it exists."""
    conn.execute("PRAGMA wal_checkpoint(FULL)")
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"this folder holds a Raft log: raft.db must not be missing or empty\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_folder(os.path.dirname(marker))

