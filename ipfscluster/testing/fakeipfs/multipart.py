"""multipart/form-data parsing for ``add`` and ``block/put``, as kubo reads it.

Why our own: twisted.web's form parsing loses filenames and drops parts whose
disposition is ``file; filename=...`` (no ``name``); the ``multipart`` package
refuses those parts (reference §15).  The body is already buffered by twisted.web,
so this parser splits it on the boundary with ``bytes.find`` (exact for binary
content, fast for large uploads) and reads each part's header block with the stdlib
``email`` header parser, which copes with every disposition variant clients send.

How parts become files and directories follows kubo's multipart reader:

- a part's path is its ``filename`` parameter, URL-unescaped (``d%2Fx.txt`` is
  ``d/x.txt``; ``+`` is a space; a bad escape keeps the raw text), then cleaned;
  a part without a filename has the empty name;
- ``Content-Type: application/x-directory`` (or a nested ``multipart/form-data``)
  declares a directory; ``application/symlink`` a symlink; anything else a file;
- directories named by a path but never declared are created implicitly;
- the form field name may carry ``?mode=0644&mtime=5&mtime-nsecs=...`` (octal mode,
  seconds); the field name itself is otherwise ignored;
- old clients nest a ``multipart/mixed`` body inside a directory part; its parts
  are read as the directory's content.

Errors raise :class:`MultipartError` (an InvalidInput: kubo answers 400).
"""

from __future__ import annotations

import email.message
import email.parser
import email.utils
import posixpath
import urllib.parse

import attrs

from ipfscluster.errors import InvalidInput

__all__ = [
    "MultipartError",
    "Part",
    "FileEntry",
    "DirectoryEntry",
    "SymlinkEntry",
    "boundary_of",
    "parse_parts",
    "parse_tree",
    "encode_multipart",
]

DIRECTORY_TYPES = ("application/x-directory", "multipart/form-data", "multipart/mixed")
SYMLINK_TYPE = "application/symlink"


class MultipartError(InvalidInput):
    """The multipart request body cannot be parsed."""


@attrs.frozen
class Part:
    """One body part: lower-cased header names to values, its disposition's form
    ``name`` ("" when absent), ``filename`` (None when absent, raw text), media
    ``content_type`` ("" when absent), its parameters, and the ``body`` bytes."""

    headers: dict
    name: str
    filename: str | None
    content_type: str
    content_params: dict
    body: bytes


class _Named:
    """Entries are named by the last component of their path."""

    path: str

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


@attrs.frozen
class FileEntry(_Named):
    """A file of an upload: its path in the upload, content, metadata from the field
    name (``mode`` int or None, ``mtime`` seconds or None) and ``Abspath`` header."""

    path: str
    data: bytes
    mode: int | None = None
    mtime: int | None = None
    abspath: str | None = None


@attrs.define
class DirectoryEntry(_Named):
    """A directory of an upload; ``children`` keeps the order parts arrived in."""

    path: str
    children: dict = attrs.field(factory=dict)
    mode: int | None = None
    mtime: int | None = None


@attrs.frozen
class SymlinkEntry(_Named):
    """A symlink of an upload and its target."""

    path: str
    target: str
    mode: int | None = None
    mtime: int | None = None


def boundary_of(content_type: str) -> bytes:
    """Return the boundary parameter of a ``multipart/*`` Content-Type header value.
    Raises MultipartError when the type is not multipart or has no boundary."""
    msg = email.message.Message()
    msg["content-type"] = content_type or ""
    if msg.get_content_maintype() != "multipart":
        raise MultipartError(f"expected a multipart body, got Content-Type {content_type!r}")
    boundary = msg.get_param("boundary")
    if not boundary:
        raise MultipartError("no multipart boundary param in Content-Type")
    return email.utils.collapse_rfc2231_value(boundary).encode("latin-1")


def _parse_headers(block: bytes) -> tuple[dict, email.message.Message]:
    msg = email.parser.BytesHeaderParser().parsebytes(block + b"\r\n\r\n")
    headers = {k.lower(): str(v) for k, v in msg.items()}
    return headers, msg


def _param(msg, name: str, header: str):
    value = msg.get_param(name, header=header)
    if value is None:
        return None
    return email.utils.collapse_rfc2231_value(value)


def parse_parts(body: bytes, boundary: bytes) -> list[Part]:
    """Split a multipart ``body`` on ``boundary``.  Returns the parts in order.
    Raises MultipartError for a body without the boundary or cut short."""
    body = bytes(body)
    delim = b"--" + boundary
    if body.startswith(delim):
        pos = len(delim)
    else:
        first = body.find(b"\r\n" + delim)
        if first < 0:
            raise MultipartError("multipart body does not contain its boundary")
        pos = first + 2 + len(delim)
    parts = []
    while True:
        if body.startswith(b"--", pos):
            return parts
        eol = body.find(b"\n", pos)
        if eol < 0:
            raise MultipartError("multipart: NextPart: EOF")
        pos = eol + 1
        end = body.find(b"\r\n" + delim, pos)
        if end < 0:
            raise MultipartError("multipart: NextPart: EOF")
        raw = body[pos:end]
        if raw.startswith(b"\r\n"):
            head, content = b"", raw[2:]
        else:
            split = raw.find(b"\r\n\r\n")
            if split < 0:
                raise MultipartError("malformed MIME header: missing blank line")
            head, content = raw[:split], raw[split + 4 :]
        headers, msg = _parse_headers(head)
        ctype = msg.get("content-type")
        params = {}
        if ctype:
            ctype = msg.get_content_type()
            params = {k.lower(): email.utils.collapse_rfc2231_value(v) for k, v in msg.get_params()[1:]}
        parts.append(
            Part(
                headers=headers,
                name=_param(msg, "name", "content-disposition") or "",
                filename=_param(msg, "filename", "content-disposition"),
                content_type=ctype or "",
                content_params=params,
                body=content,
            )
        )
        pos = end + 2 + len(delim)


def _unescape(filename: str) -> str:
    try:
        return urllib.parse.unquote_plus(filename, errors="strict")
    except UnicodeDecodeError:
        return filename


def _clean(filename: str | None) -> str:
    path = posixpath.normpath("/" + _unescape(filename or ""))
    # normpath keeps a leading "//"; kubo's path.Clean does not
    return path.lstrip("/")


def _metadata(field_name: str) -> tuple[int | None, int | None]:
    if "?" not in field_name:
        return None, None
    query = urllib.parse.parse_qs(field_name.split("?", 1)[1])
    mode = mtime = None
    try:
        if "mode" in query:
            mode = int(query["mode"][0], 8)
    except ValueError:
        mode = None
    try:
        if "mtime" in query:
            mtime = int(query["mtime"][0])
    except ValueError:
        mtime = None
    return mode, mtime


class _TreeBuilder:
    def __init__(self):
        self.root = DirectoryEntry("")

    def _dir(self, path: str) -> DirectoryEntry:
        node = self.root
        walked = []
        for component in [c for c in path.split("/") if c]:
            walked.append(component)
            child = node.children.get(component)
            if not isinstance(child, DirectoryEntry):
                child = DirectoryEntry("/".join(walked))
                node.children[component] = child
            node = child
        return node

    def _put(self, path: str, entry) -> None:
        parent = self._dir(posixpath.dirname(path))
        name = posixpath.basename(path)
        if not name:
            # unnamed parts (no filename) are separate entries, never merged
            parent.children[object()] = entry
            return
        existing = parent.children.get(name)
        if isinstance(existing, DirectoryEntry) and isinstance(entry, DirectoryEntry):
            existing.mode, existing.mtime = entry.mode, entry.mtime
            return
        parent.children[name] = entry

    def add(self, part: Part, prefix: str = "") -> None:
        path = _clean(part.filename)
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            path = posixpath.join(prefix, path) if path else prefix
        mode, mtime = _metadata(part.name)
        if part.content_type in DIRECTORY_TYPES:
            self._put(path, DirectoryEntry(path, mode=mode, mtime=mtime))
            boundary = part.content_params.get("boundary")
            if part.content_type.startswith("multipart/") and boundary:
                for sub in parse_parts(part.body, boundary.encode("latin-1")):
                    self.add(sub, path)
        elif part.content_type == SYMLINK_TYPE:
            self._put(path, SymlinkEntry(path, part.body.decode("utf-8"), mode, mtime))
        else:
            abspath = part.headers.get("abspath-encoded")
            abspath = _unescape(abspath) if abspath else part.headers.get("abspath")
            self._put(path, FileEntry(path, part.body, mode, mtime, abspath))


def parse_tree(body: bytes, content_type: str) -> list:
    """Parse a multipart upload into its top-level entries (FileEntry,
    DirectoryEntry, SymlinkEntry), in the order they arrived.  Raises
    MultipartError when the body cannot be parsed."""
    builder = _TreeBuilder()
    for part in parse_parts(body, boundary_of(content_type)):
        builder.add(part)
    return list(builder.root.children.values())


def encode_multipart(files, boundary: str = "fakeipfs-boundary-7d3c1a") -> tuple[bytes, str]:
    """Build a multipart/form-data body the way kubo's Go client does.

    ``files``: an iterable of ``(path, content)``; ``content`` is bytes for a file
    or None for a directory (sent as ``application/x-directory``).  Paths are
    URL-escaped in the ``filename`` parameter.  Returns ``(body, content_type)``.
    """
    out = bytearray()
    for path, content in files:
        name = urllib.parse.quote(path, safe="")
        out += b"--" + boundary.encode() + b"\r\n"
        if content is None:
            out += b'Content-Disposition: form-data; name="file"; filename="%s"\r\n' % name.encode()
            out += b"Content-Type: application/x-directory\r\n\r\n"
        else:
            out += b'Content-Disposition: form-data; name="file"; filename="%s"\r\n' % name.encode()
            out += b"Content-Type: application/octet-stream\r\n\r\n" + bytes(content)
        out += b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return bytes(out), f"multipart/form-data; boundary={boundary}"
