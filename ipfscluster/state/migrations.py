"""State versions, migrations, and the JSON import/export formats (reference §10.5).

State versions
==============

====  ==========================  ==================================================
ver.  written by                  pin entry
====  ==========================  ==================================================
1     upstream ≤ 0.1              ``PinMap`` of CID -> ``{}`` (everything everywhere)
2     upstream 0.2 - 0.3.1        ``cid``, ``allocations``, ``replication_factor``
                                  (+ ``name`` from 0.3.1; legacy ``everywhere``)
3     upstream 0.3.2 - 0.3.4      ``cid``, ``name``, ``allocations``,
                                  ``replication_factor_min``/``_max``
4     upstream 0.3.5              + ``recursive``
5     ipfscluster (current)       today's upstream pin JSON (:meth:`Pin.to_json`);
                                  in snapshots, the binary layout of :mod:`.snapshot`
====  ==========================  ==================================================

:func:`migrate` upgrades a stream of JSON entries of one version to the current
version by chaining one step per version (1->2: replication -1, no allocations;
2->3: the factor copied to min and max; 3->4: ``recursive`` true; 4->5: ``mode``,
``max_depth`` and ``type``).  Each step handles one entry at a time, so a migration
runs in constant memory whatever the number of pins.  A future version N+1 adds one
step here, bumps :data:`~ipfscluster.state.snapshot.VERSION`, and ships a fixture of
version N in ``tests/fixtures/state/``.

JSON documents understood by :func:`read_pins` (and so by ``restore``/``import_``):

- a backup ``{"PinMap": {"<cid>": entry, ...}, "Version": N}`` (upstream writes it
  at shutdown; the version may come before or after the map);
- an export: a JSON array of entries (``state export``), or entries one per line
  (NDJSON).  Exports carry no version, so each entry's version is told from its
  keys (``replication_factor`` -> 2, ``recursive`` -> 4, min/max without a mode ->
  3, else current).

A replication factor of 0 in an imported entry ("the cluster default", never stored
by a running cluster) becomes -1 (everywhere), as upstream's v1 migration does.
"""

from __future__ import annotations

import io
from typing import IO, Any, Callable, Iterable, Iterator

from ipfscluster.errors import InvalidField, InvalidInput, InvalidStateImport, StateVersionError
from ipfscluster.state.jsonstream import Scanner, iter_values
from ipfscluster.state.snapshot import VERSION
from ipfscluster.types import Pin

__all__ = [
    "MIGRATIONS",
    "export",
    "migrate",
    "pin_from_entry",
    "pins_from_entries",
    "read_entries",
    "read_pins",
    "write_export",
]


def _v1_to_v2(entry: dict) -> dict:
    return {"cid": entry["cid"], "allocations": [], "replication_factor": -1}


def _v2_to_v3(entry: dict) -> dict:
    factor = entry.get("replication_factor", -1)
    if entry.get("everywhere") and not factor:
        factor = -1
    out = {k: v for k, v in entry.items() if k not in ("replication_factor", "everywhere")}
    out["replication_factor_min"] = factor
    out["replication_factor_max"] = factor
    return out


def _v3_to_v4(entry: dict) -> dict:
    return {**entry, "recursive": True}


def _v4_to_v5(entry: dict) -> dict:
    out = {k: v for k, v in entry.items() if k != "recursive"}
    recursive = entry.get("recursive", True) is not False
    out["mode"] = "recursive" if recursive else "direct"
    out["max_depth"] = -1 if recursive else 0
    out["type"] = "pin"
    return out


#: version N -> the step upgrading one entry from N to N + 1
MIGRATIONS: dict[int, Callable[[dict], dict]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
}
assert max(MIGRATIONS) + 1 == VERSION, "add the migration to the current version"


def migrate(from_version: int, entries: Iterable[dict]) -> Iterator[dict]:
    """Upgrade JSON pin entries of ``from_version`` to the current version, lazily.

    Returns an iterator of current-version entries (accepted by
    :meth:`Pin.from_json`).  Raises :class:`StateVersionError` for a version that is
    unknown or newer than this code.
    """
    if from_version not in MIGRATIONS and from_version != VERSION:
        raise StateVersionError(
            f"cannot upgrade state version {from_version}: this peer knows versions "
            f"1 to {VERSION}" + (" (upgrade ipfscluster)" if isinstance(from_version, int)
                                 and from_version > VERSION else ""),
            version=from_version,
        )
    steps = [MIGRATIONS[v] for v in range(from_version, VERSION)]
    for entry in entries:
        for step in steps:
            entry = step(entry)
        yield entry


def entry_version(entry: dict) -> int:
    """The state version of an export entry, told from its keys (see module doc)."""
    if "replication_factor" in entry or "everywhere" in entry:
        return 2
    if "recursive" in entry:
        return 4
    if "replication_factor_min" in entry and not {"mode", "max_depth", "type"} & entry.keys():
        return 3
    if entry.keys() <= {"cid"}:
        return 1
    return VERSION


def _per_entry(entries: Iterable[dict]) -> Iterator[dict]:
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidStateImport(f"expected a pin object, found {type(entry).__name__}")
        version = entry_version(entry)
        if version == VERSION:
            yield entry  # the usual case: no generator per entry
        else:
            yield from migrate(version, [entry])


def _backup_entries(scanner: Scanner, fileobj) -> tuple[int, Iterator[dict]]:
    """(version, entries) of a backup object; the scanner is just inside nothing yet."""
    version = None
    found_map = False
    for key in scanner.members():
        if key == "Version":
            version = scanner.value()
            if found_map:
                break
        elif key == "PinMap":
            found_map = True
            if version is not None:
                return version, _pinmap(scanner)
            _skip_value(scanner)
        else:
            scanner.value()
    if version is None or not isinstance(version, int):
        raise InvalidStateImport('the backup has no integer "Version"')
    if not found_map:
        return version, iter(())
    # the version came after the map: read the document again from the start
    if fileobj.seekable():
        fileobj.seek(0)
        scanner = Scanner(fileobj)
        for key in scanner.members():
            if key == "PinMap":
                return version, _pinmap(scanner)
            scanner.value()
    raise InvalidStateImport("the backup lists its Version after the PinMap and cannot be re-read")


def _skip_value(scanner: Scanner) -> None:
    if scanner.peek() == "{":
        for _ in scanner.members():
            _skip_value(scanner)
    else:
        scanner.value()


def _pinmap(scanner: Scanner) -> Iterator[dict]:
    for cid in scanner.members():
        entry = scanner.value()
        if not isinstance(entry, dict):
            raise InvalidStateImport(f"the backup entry for {cid} is not an object")
        if "cid" not in entry:
            entry = {**entry, "cid": cid}
        yield entry


def read_pins(fileobj: IO) -> Iterator[Pin]:
    """The pins of a JSON backup or export (any version), upgraded, one at a time.

    ``fileobj`` is a text or binary file object positioned at the document (it must
    be seekable for backups that list their ``Version`` after the ``PinMap``).
    Raises :class:`InvalidStateImport` for a document that is neither,
    :class:`StateVersionError` for an unknown version, and
    :class:`~ipfscluster.errors.InvalidInput` (``InvalidField``) for a bad entry.
    """
    return pins_from_entries(read_entries(fileobj))


def read_entries(fileobj: IO) -> Iterator[dict]:
    """The JSON entries of a backup or export, upgraded to the current version
    (accepted by :func:`pin_from_entry`), one at a time; raises as :func:`read_pins`
    does except for a bad entry (found by :func:`pin_from_entry`)."""
    scanner = Scanner(fileobj)
    try:
        first = scanner.peek()
        if first == "[":
            entries = _per_entry(scanner.elements())
        elif first == "{":
            scanner.mark()
            keys = scanner.members()
            head = next(keys, None)
            scanner.rewind()
            if head in ("PinMap", "Version"):
                version, raw = _backup_entries(scanner, fileobj)
                entries = migrate(version, raw)
            else:
                entries = _per_entry(iter_values(scanner))
        elif first == "":
            return
        else:
            raise InvalidStateImport(
                "the file is not a state export or backup: expected a JSON array of pins, "
                'pins one per line, or {"PinMap": …, "Version": N}'
            )
        yield from entries
    except ValueError as err:
        raise InvalidStateImport(f"the file is not valid JSON: {err}") from None


def pins_from_entries(entries: Iterable[dict]) -> Iterator[Pin]:
    """Current-version JSON entries -> Pin values (replication 0 becomes -1)."""
    for entry in entries:
        yield pin_from_entry(entry)


def pin_from_entry(entry: dict) -> Pin:
    """One current-version JSON entry -> its Pin (replication 0 becomes -1); raises
    InvalidField naming the pin and the field."""
    if entry.get("replication_factor_min", 0) in (0, None) and entry.get(
        "replication_factor_max", 0
    ) in (0, None):
        entry = {**entry, "replication_factor_min": -1, "replication_factor_max": -1}
    try:
        return Pin.from_json(entry)
    except InvalidInput as err:
        raise InvalidField(f"cannot import the pin {entry.get('cid')!r}: {err}") from None


def write_export(pins: Iterable[Pin], fileobj: IO) -> int:
    """Write ``pins`` as a JSON array (upstream ``state export``), one pin per line.

    ``fileobj`` may be text or binary.  Returns the number of pins written.
    """
    import json

    binary = not isinstance(fileobj, io.TextIOBase)
    write: Callable[[str], Any] = (
        (lambda text: fileobj.write(text.encode("utf-8"))) if binary else fileobj.write
    )
    count = 0
    write("[")
    for pin in pins:
        write(("\n" if count == 0 else ",\n") + json.dumps(pin.to_json(), separators=(",", ":")))
        count += 1
    write("\n]\n" if count else "]\n")
    return count


def export(state, fileobj: IO) -> int:
    """Write every pin of ``state`` (an IState) as a JSON array; returns the count."""
    return write_export(state.list(), fileobj)
