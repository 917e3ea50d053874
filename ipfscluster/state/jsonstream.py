"""Incremental reading of big JSON documents (state exports and backups).

A backup of a million pins is a ~200 MB JSON document; ``json.load`` would hold the
text *and* every decoded object at once.  The readers here keep one chunk (64 KiB)
of text plus the value being decoded: they scan the structural characters
themselves and hand each element to the C-accelerated ``json.JSONDecoder.raw_decode``.

Why not a library: ``ijson`` would do, but needs a C extension (yajl) to be fast and
is one more dependency for two small loops over the stdlib decoder.

Readers:

- :func:`iter_array`: the elements of a top-level JSON array (``state export``);
- :class:`Scanner`: the primitive (peek, expect a character, decode one value, iterate
  the members of an object) used by the backup reader in :mod:`.migrations`;
- :func:`iter_values`: a stream of concatenated values (NDJSON).

Errors: :class:`ValueError` with the character offset, wrapped by the callers into
their typed error.
"""

from __future__ import annotations

import codecs
import json
from typing import IO, Any, Iterator

__all__ = ["Scanner", "iter_array", "iter_values"]

_WHITESPACE = " \t\n\r"
_CHUNK = 1 << 16


class Scanner:
    """A forward-only JSON tokenizer over a text or binary file object."""

    def __init__(self, fileobj: IO, chunk_size: int = _CHUNK):
        self._file = fileobj
        self._chunk = chunk_size
        self._buf = ""
        self._pos = 0
        self._consumed = 0  # characters dropped from the front of the buffer
        self._eof = False
        self._decoder = json.JSONDecoder()
        self._utf8 = None
        self._mark = None

    # -- buffer -----------------------------------------------------------------

    def _fill(self) -> bool:
        """Append one more chunk; False at end of input."""
        if self._eof:
            return False
        data = self._file.read(self._chunk)
        if isinstance(data, (bytes, bytearray, memoryview)):
            if self._utf8 is None:
                self._utf8 = codecs.getincrementaldecoder("utf-8-sig")()
            text = self._utf8.decode(bytes(data), final=not data)
        else:
            text = data
        if not data:
            self._eof = True
        keep = self._pos if self._mark is None else self._mark
        if keep:
            self._buf = self._buf[keep:]
            self._consumed += keep
            self._pos -= keep
            if self._mark is not None:
                self._mark = 0
        self._buf += text
        return bool(data)

    @property
    def offset(self) -> int:
        """Characters read so far (for error messages)."""
        return self._consumed + self._pos

    def mark(self) -> None:
        """Remember the current position for :meth:`rewind`."""
        self._mark = self._pos

    def rewind(self) -> None:
        """Go back to the position of the last :meth:`mark`."""
        self._pos = self._mark
        self._mark = None

    # -- tokens -----------------------------------------------------------------

    def peek(self) -> str:
        """The next non-blank character without consuming it ('' at end of input)."""
        while True:
            buf, pos = self._buf, self._pos
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self._fill():
                return ""

    def expect(self, chars: str) -> str:
        """Consume the next non-blank character, which must be one of ``chars``."""
        ch = self.peek()
        if not ch or ch not in chars:
            what = repr(ch) if ch else "end of input"
            raise ValueError(f"expected one of {chars!r} at character {self.offset}, found {what}")
        self._pos += 1
        return ch

    def value(self) -> Any:
        """Decode and consume the next JSON value."""
        if not self.peek():
            raise ValueError(f"expected a JSON value at character {self.offset}, found end of input")
        while True:
            try:
                obj, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as err:
                if self._fill():
                    continue
                raise ValueError(f"invalid JSON at character {self._consumed + err.pos}: {err.msg}") from None
            if end == len(self._buf) and not self._eof:
                # a number (or anything) touching the end may continue in the next chunk
                if self._fill():
                    continue
            self._pos = end
            return obj

    def members(self) -> Iterator[str]:
        """Iterate over the keys of the object starting here.

        After each key is yielded the caller must consume its value (with
        :meth:`value` or by descending into it).  Consumes the closing brace.
        """
        self.expect("{")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise ValueError(f"expected an object key at character {self.offset}")
            self.expect(":")
            yield key
            if self.expect(",}") == "}":
                return

    def elements(self) -> Iterator[Any]:
        """Iterate over the decoded elements of the array starting here."""
        self.expect("[")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value()
            if self.expect(",]") == "]":
                return

    def at_end(self) -> bool:
        """True when only blanks remain."""
        return self.peek() == ""


def iter_array(fileobj: IO) -> Iterator[Any]:
    """The elements of the JSON array in ``fileobj``, one at a time.

    Raises ValueError if the document is not one JSON array.
    """
    scanner = Scanner(fileobj)
    yield from scanner.elements()
    if not scanner.at_end():
        raise ValueError(f"unexpected data after the array at character {scanner.offset}")


def iter_values(scanner: Scanner) -> Iterator[Any]:
    """The concatenated JSON values (e.g. NDJSON lines) remaining in ``scanner``."""
    while not scanner.at_end():
        yield scanner.value()
