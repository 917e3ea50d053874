"""Raft snapshot files: ``<data_folder>/snapshots/snapshot-<term>-<index>.snap``.

File format (all integers big-endian)::

    offset  size  field
    0       8     magic  b"IPCRSNAP"
    8       4     format version (1)
    12      8     term of the last entry the snapshot covers
    20      8     index of that entry
    28      8     payload size in bytes
    36      32    SHA-256 of the payload
    68      4     length L of the configuration JSON
    72      L     configuration (the peerset at ``index``), JSON, UTF-8
    72+L    4     CRC-32 of bytes 0 .. 72+L
    76+L    size  payload: the state machine's serialised bytes

Writing (:meth:`SnapshotStore.write`, :meth:`SnapshotStore.create`): the payload is
streamed chunk by chunk into ``<name>.tmp`` (never held in memory as a whole) while
its SHA-256 is computed; size and checksum are then written into the header, the file
is fsynced, renamed to its final name and the folder fsynced, so a crash leaves
either the complete old set of files or the complete new one.  The newest
:data:`KEEP` snapshots by ``(term, index)`` are kept, older ones deleted.

InstallSnapshot: the leader sends the *raw file bytes* in chunks of at most
:data:`DEFAULT_CHUNK_SIZE` (an AMP value holds at most 65,535 bytes), read with
:meth:`SnapshotStore.open_reader`; the follower feeds them to a
:class:`SnapshotReceiver`, which checks offsets (a duplicate is ignored, a gap is
refused with the offset it needs next, so a dropped chunk is simply re-sent) and on
:meth:`~SnapshotReceiver.finish` verifies the whole file -- header CRC, size,
SHA-256 and the announced term/index -- before it is renamed into place.  The
checksum therefore covers the transfer end to end.

Start-up (:meth:`SnapshotStore.select`): the newest snapshot that is valid *and*
consistent with the log is used.  A damaged newest snapshot makes us fall back to an
older valid one with a loud error in the log (never silently); if the log was
compacted and no snapshot covers it, :class:`~ipfscluster.errors.NoValidSnapshot`.

Why hand-written: the format is a 76-byte header; no library adds anything here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zlib
from typing import Any, Iterable, Iterator

import attrs
from twisted.logger import Logger

from ipfscluster.errors import (
    NoValidSnapshot,
    RaftStorageError,
    SnapshotChunkRejected,
    SnapshotCorrupted,
)

log = Logger(namespace="consensus")

SNAPSHOTS_FOLDER = "snapshots"
KEEP = 5
FORMAT_VERSION = 1
MAGIC = b"IPCRSNAP"
DEFAULT_CHUNK_SIZE = 60 * 1024
READ_BLOCK = 64 * 1024
_FIXED = struct.Struct(">8sIQQQ32sI")  # magic, version, term, index, size, sha256, L
_CRC = struct.Struct(">I")
_NAME = re.compile(r"^snapshot-(\d{20})-(\d{20})\.snap$")


@attrs.frozen
class SnapshotMeta:
    """What a snapshot file says about itself (its header), plus where it is."""

    path: str
    term: int
    index: int
    configuration: Any = attrs.field(eq=False)
    size: int  # payload bytes
    sha256: bytes
    payload_offset: int  # where the payload starts in the file

    @property
    def file_size(self) -> int:
        """Size of the whole file: what an InstallSnapshot transfer sends."""
        return self.payload_offset + self.size


def file_name(term: int, index: int) -> str:
    """The file name of the snapshot at ``(term, index)``."""
    return "snapshot-%020d-%020d.snap" % (term, index)


def fsync_folder(folder: str) -> None:
    """fsync a folder, so that a rename or a new file in it is durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _header(term: int, index: int, configuration: Any, size: int, digest: bytes) -> bytes:
    config = json.dumps(configuration, separators=(",", ":"), sort_keys=True).encode("utf-8")
    fixed = _FIXED.pack(MAGIC, FORMAT_VERSION, term, index, size, digest, len(config))
    head = fixed + config
    return head + _CRC.pack(zlib.crc32(head))


def read_meta(path: str) -> SnapshotMeta:
    """Read and check the header of the snapshot file at ``path``.

    Checks magic, version, header CRC and that the file is exactly as long as the
    header says (the payload checksum is checked by :meth:`SnapshotStore.verify`).
    Raises :class:`SnapshotCorrupted` naming the file.
    """
    try:
        with open(path, "rb") as f:
            fixed = f.read(_FIXED.size)
            if len(fixed) < _FIXED.size:
                raise _corrupt(path, "its header is truncated")
            magic, version, term, index, size, digest, config_len = _FIXED.unpack(fixed)
            if magic != MAGIC:
                raise _corrupt(path, "it is not a snapshot file")
            if version != FORMAT_VERSION:
                raise _corrupt(path, "format version %d is not supported" % version)
            actual = os.fstat(f.fileno()).st_size
            if _FIXED.size + config_len + _CRC.size > actual:  # never read a damaged length
                raise _corrupt(path, "its header is truncated")
            config = f.read(config_len)
            crc = f.read(_CRC.size)
            if len(config) < config_len or len(crc) < _CRC.size:
                raise _corrupt(path, "its header is truncated")
            if _CRC.unpack(crc)[0] != zlib.crc32(fixed + config):
                raise _corrupt(path, "its header checksum does not match")
            payload_offset = f.tell()
    except OSError as exc:
        raise _corrupt(path, "it cannot be read (%s)" % exc.strerror) from exc
    if actual != payload_offset + size:
        raise _corrupt(path, "it has %d payload bytes instead of %d"
                       % (actual - payload_offset, size))
    try:
        configuration = json.loads(config.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise _corrupt(path, "its configuration cannot be decoded") from exc
    named = _NAME.match(os.path.basename(path))
    if named and (int(named.group(1)), int(named.group(2))) != (term, index):
        raise _corrupt(path, "its header says term %d, index %d, not what its name says"
                       % (term, index))
    return SnapshotMeta(path=path, term=term, index=index, configuration=configuration,
                        size=size, sha256=digest, payload_offset=payload_offset)


def _corrupt(path: str, why: str) -> SnapshotCorrupted:
    return SnapshotCorrupted("the Raft snapshot %s is damaged: %s" % (path, why), path=path)


class SnapshotWriter:
    """Streams one new snapshot to a temporary file; :meth:`commit` publishes it."""

    def __init__(self, store: "SnapshotStore", term: int, index: int, configuration: Any):
        self._store = store
        self.term, self.index, self.configuration = term, index, configuration
        self.path = os.path.join(store.folder, file_name(term, index))
        self._tmp = self.path + ".tmp"
        self._file = open(self._tmp, "wb")
        self._header = _header(term, index, configuration, 0, b"\0" * 32)
        self._file.write(self._header)
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` to the payload."""
        self._hash.update(chunk)
        self._size += len(chunk)
        self._file.write(chunk)

    def commit(self) -> SnapshotMeta:
        """Finish the file: header, fsync, rename, folder fsync, prune old ones.

        Returns the new snapshot's :class:`SnapshotMeta`.
        """
        header = _header(self.term, self.index, self.configuration, self._size,
                         self._hash.digest())
        assert len(header) == len(self._header)
        f = self._file
        f.seek(0)
        f.write(header)
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(self._tmp, self.path)
        fsync_folder(self._store.folder)
        self._store.prune()
        return read_meta(self.path)

    def abort(self) -> None:
        """Throw the unfinished snapshot away."""
        self._file.close()
        _unlink(self._tmp)


class SnapshotReader:
    """Random access to a snapshot file's raw bytes (for InstallSnapshot chunks).

    Keeps the file open, so a snapshot pruned during a transfer stays readable.
    """

    def __init__(self, meta: SnapshotMeta):
        self.meta = meta
        self.size = meta.file_size
        self._file = open(meta.path, "rb")

    def read_at(self, offset: int, length: int = DEFAULT_CHUNK_SIZE) -> bytes:
        """Return up to ``length`` raw bytes from ``offset`` (``b""`` at the end)."""
        self._file.seek(offset)
        return self._file.read(max(0, min(length, self.size - offset)))

    def chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[tuple[int, bytes]]:
        """Yield ``(offset, bytes)`` over the whole file."""
        offset = 0
        while offset < self.size:
            data = self.read_at(offset, chunk_size)
            yield offset, data
            offset += len(data)

    def close(self) -> None:
        self._file.close()


class SnapshotReceiver:
    """Assembles a snapshot sent by the leader in chunks (InstallSnapshot).

    ``write(offset, data)`` returns the next offset wanted; a chunk that starts past
    it raises :class:`SnapshotChunkRejected` (with ``expected``, the offset to
    resend from); a duplicate or overlapping chunk is accepted (same bytes).
    """

    def __init__(self, store: "SnapshotStore", term: int, index: int, total_size: int):
        self._store = store
        self.term, self.index, self.total_size = term, index, total_size
        self.path = os.path.join(store.folder, file_name(term, index))
        self._tmp = self.path + ".partial"
        self._file = open(self._tmp, "wb")
        self.received = 0

    def matches(self, term: int, index: int, total_size: int) -> bool:
        """Whether this receiver is assembling the snapshot ``(term, index, size)``."""
        return (term, index, total_size) == (self.term, self.index, self.total_size)

    def write(self, offset: int, data: bytes) -> int:
        """Store ``data`` at ``offset``; return the next offset wanted."""
        if offset > self.received:
            raise SnapshotChunkRejected(
                "snapshot chunk at offset %d does not follow the %d bytes received"
                % (offset, self.received), expected=self.received)
        if offset + len(data) > self.total_size:
            raise SnapshotChunkRejected(
                "snapshot chunk at offset %d overruns the announced size %d"
                % (offset, self.total_size), expected=self.received)
        end = offset + len(data)
        if end > self.received:
            self._file.seek(offset)
            self._file.write(data)
            self.received = end
        return self.received

    @property
    def complete(self) -> bool:
        return self.received == self.total_size

    def finish(self) -> SnapshotMeta:
        """Verify the whole file and publish it; return its :class:`SnapshotMeta`.

        Raises :class:`SnapshotChunkRejected` if bytes are missing and
        :class:`SnapshotCorrupted` (after discarding the file) if the header, the
        checksum or the term/index do not match.
        """
        if not self.complete:
            raise SnapshotChunkRejected(
                "snapshot incomplete: %d of %d bytes received"
                % (self.received, self.total_size), expected=self.received)
        f = self._file
        f.flush()
        os.fsync(f.fileno())
        f.close()
        try:
            meta = read_meta(self._tmp)
            if (meta.term, meta.index) != (self.term, self.index):
                raise _corrupt(self._tmp, "it holds (term %d, index %d) instead of "
                               "(term %d, index %d)" % (meta.term, meta.index,
                                                        self.term, self.index))
            self._store.verify(meta)
        except SnapshotCorrupted:
            _unlink(self._tmp)
            raise
        os.replace(self._tmp, self.path)
        fsync_folder(self._store.folder)
        self._store.prune()
        return attrs.evolve(meta, path=self.path)

    def abort(self) -> None:
        """Throw the partial snapshot away."""
        self._file.close()
        _unlink(self._tmp)


class SnapshotStore:
    """The snapshot files of one node.  Create with :meth:`open`."""

    def __init__(self, folder: str, keep: int = KEEP):
        self.folder = folder
        self.keep = keep

    @classmethod
    def open(cls, data_folder: str, keep: int = KEEP) -> "SnapshotStore":
        """Open ``<data_folder>/snapshots`` (created if missing), removing files of
        writes or transfers a crash interrupted.  Raises :class:`RaftStorageError`."""
        folder = os.path.join(data_folder, SNAPSHOTS_FOLDER)
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            for name in os.listdir(folder):
                if name.endswith((".tmp", ".partial")):
                    log.warn("removing the unfinished Raft snapshot {path} (a write or a "
                             "transfer was interrupted)", path=os.path.join(folder, name))
                    _unlink(os.path.join(folder, name))
        except OSError as exc:
            raise RaftStorageError(
                "cannot use the Raft snapshot folder %s: %s; check its permissions"
                % (folder, exc.strerror), path=folder) from exc
        return cls(folder, keep)

    # --- writing ------------------------------------------------------------------

    def create(self, term: int, index: int, configuration: Any) -> SnapshotWriter:
        """Start a snapshot covering the log up to ``(term, index)``."""
        return SnapshotWriter(self, term, index, configuration)

    def write(self, term: int, index: int, configuration: Any,
              chunks: Iterable[bytes]) -> SnapshotMeta:
        """Write a whole snapshot from an iterable of payload chunks; return its meta."""
        writer = self.create(term, index, configuration)
        try:
            for chunk in chunks:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.commit()

    def receive(self, term: int, index: int, total_size: int) -> SnapshotReceiver:
        """Start receiving a snapshot file of ``total_size`` bytes from the leader."""
        return SnapshotReceiver(self, term, index, total_size)

    # --- reading ------------------------------------------------------------------

    def list(self) -> list[SnapshotMeta | SnapshotCorrupted]:
        """Every snapshot file, newest ``(term, index)`` first.

        A file whose header is damaged appears as its :class:`SnapshotCorrupted`
        error (ordered by the term/index in its name).
        """
        found = []
        for name in os.listdir(self.folder):
            match = _NAME.match(name)
            if not match:
                continue
            key = (int(match.group(1)), int(match.group(2)))
            path = os.path.join(self.folder, name)
            try:
                found.append((key, read_meta(path)))
            except SnapshotCorrupted as exc:
                found.append((key, exc))
        found.sort(key=lambda item: item[0], reverse=True)
        return [item for _, item in found]

    def verify(self, meta: SnapshotMeta) -> None:
        """Check the payload's SHA-256 against the header (reading 64 KiB blocks).

        Raises :class:`SnapshotCorrupted`.
        """
        digest = hashlib.sha256()
        for block in self.payload(meta):
            digest.update(block)
        if digest.digest() != meta.sha256:
            raise _corrupt(meta.path, "its payload checksum does not match")

    def payload(self, meta: SnapshotMeta, block_size: int = READ_BLOCK) -> Iterator[bytes]:
        """Yield the payload in blocks of ``block_size`` bytes (not verified: call
        :meth:`verify` first, or use :meth:`select`, which does)."""
        try:
            with open(meta.path, "rb") as f:
                f.seek(meta.payload_offset)
                remaining = meta.size
                while remaining:
                    block = f.read(min(block_size, remaining))
                    if not block:
                        raise _corrupt(meta.path, "its payload is truncated")
                    remaining -= len(block)
                    yield block
        except OSError as exc:
            raise _corrupt(meta.path, "it cannot be read (%s)" % exc.strerror) from exc

    def open_reader(self, meta: SnapshotMeta) -> SnapshotReader:
        """Open the file of ``meta`` for chunked sending."""
        return SnapshotReader(meta)

    def select(self, storage) -> SnapshotMeta | None:
        """Return the snapshot to restore at start-up, or ``None`` for none.

        ``storage`` answers ``log_base()``, ``last_index()`` and ``term(index)``
        (a :class:`~ipfscluster.consensus.raft.storage.RaftStorage`).  The newest
        valid snapshot consistent with the log wins: its index must not be below the
        log base (else entries between them are missing), and if the log holds its
        index the terms must agree.  Damaged or inconsistent newer snapshots are
        skipped with an error in the log.  Raises :class:`NoValidSnapshot` when the
        log was compacted (base index > 0) and no snapshot covers it.
        """
        base_index, _ = storage.log_base()
        skipped = []
        for item in self.list():
            if isinstance(item, SnapshotCorrupted):
                skipped.append(str(item))
                continue
            try:
                self.verify(item)
            except SnapshotCorrupted as exc:
                skipped.append(str(exc))
                continue
            reason = _inconsistency(item, storage)
            if reason:
                skipped.append("the Raft snapshot %s %s" % (item.path, reason))
                continue
            for why in skipped:
                log.error("skipping a newer Raft snapshot: {why}; using {path} "
                          "(term {term}, index {index}) instead", why=why,
                          path=item.path, term=item.term, index=item.index)
            return item
        if base_index > 0:
            raise NoValidSnapshot(
                "the Raft log in %s starts after index %d but no valid snapshot "
                "covers it (%s); restore the data folder from a backup, or remove "
                "this peer and join it again with a clean data folder"
                % (os.path.dirname(self.folder), base_index,
                   "; ".join(skipped) or "there are no snapshots"),
                path=self.folder)
        for why in skipped:
            log.error("ignoring a Raft snapshot: {why}; starting from the log", why=why)
        return None

    def latest(self) -> SnapshotMeta | None:
        """The newest snapshot whose header is valid (payload not verified)."""
        for item in self.list():
            if isinstance(item, SnapshotMeta):
                return item
        return None

    def latest_valid(self) -> SnapshotMeta | None:
        """The newest snapshot whose header *and* payload checksum are valid (damaged
        newer ones are skipped silently: :meth:`select` reports them at start-up)."""
        for item in self.list():
            if isinstance(item, SnapshotMeta):
                try:
                    self.verify(item)
                except SnapshotCorrupted:
                    continue
                return item
        return None

    def prune(self) -> None:
        """Delete all but the newest :attr:`keep` snapshot files."""
        names = sorted((n for n in os.listdir(self.folder) if _NAME.match(n)), reverse=True)
        for name in names[self.keep:]:
            _unlink(os.path.join(self.folder, name))


def _inconsistency(meta: SnapshotMeta, storage) -> str:
    base_index, base_term = storage.log_base()
    if meta.index < base_index:
        return ("ends at index %d, before the start of the log (%d)"
                % (meta.index, base_index + 1))
    if meta.index == base_index:
        return "" if meta.term == base_term else (
            "has term %d at index %d but the log has %d" % (meta.term, meta.index, base_term))
    if meta.index <= storage.last_index():
        term = storage.term(meta.index)
        if term != meta.term:
            return ("has term %d at index %d but the log has %d"
                    % (meta.term, meta.index, term))
    return ""


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
