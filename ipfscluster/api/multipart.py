"""multipart/form-data bodies of ``POST /add`` (REST API and IPFS proxy).

Why our own parser (reference §15): twisted.web's form parsing loses filenames and
drops parts whose disposition is ``file; filename=...`` without a ``name``, and the
``multipart`` package refuses those parts.  twisted.web has already buffered the
body (memory or a temporary file) when a handler runs, so :func:`parse_parts`
splits it on the boundary with ``bytes.find`` (exact for binary content) and reads
each part's header block with the stdlib ``email`` parser, which copes with every
disposition variant clients send (quoted boundaries, ``form-data`` and ``file``
dispositions, URL-encoded filenames, field names such as
``file?mode=0644&mtime=5``).  Nested ``multipart/mixed`` directory bodies are left
as they are in the part's ``body`` (their ``boundary`` is in ``content_params``).

:func:`encode_parts` writes parts back into one body, so the cluster can forward an
upload to the IPFS daemon unchanged.

This is the generic part of ``ipfscluster.testing.fakeipfs.multipart`` (the fake
daemon keeps its own copy, with the kubo tree building on top).
"""

from __future__ import annotations

import email.message
import email.parser
import email.utils

import attrs

from ipfscluster.errors import InvalidInput

__all__ = ["MultipartError", "Part", "boundary_of", "parse_parts", "encode_parts"]


class MultipartError(InvalidInput):
    """The multipart request body cannot be parsed; send multipart/form-data with a boundary."""


@attrs.frozen
class Part:
    """One body part.

    ``headers``: lower-cased header names to values; ``name``: the disposition's
    form field name ("" when absent); ``filename``: the raw ``filename`` parameter
    (None when absent); ``content_type``: the media type ("" when absent);
    ``content_params``: its parameters (``boundary`` …); ``body``: the bytes.
    """

    headers: dict
    name: str
    filename: str | None
    content_type: str
    content_params: dict
    body: bytes


def boundary_of(content_type: str) -> bytes:
    """Return the ``boundary`` parameter of a ``multipart/*`` Content-Type value.

    Raises :class:`MultipartError` when the type is not multipart or has no boundary.
    """
    header = email.message.Message()
    header["content-type"] = content_type or ""
    if header.get_content_maintype() != "multipart":
        raise MultipartError(
            f"expected a multipart/form-data body, got Content-Type {content_type!r}"
        )
    value = header.get_param("boundary")
    if not value:
        raise MultipartError("the multipart Content-Type has no boundary parameter")
    return email.utils.collapse_rfc2231_value(value).encode("latin-1")


def _read_part(raw: bytes) -> Part:
    if raw.startswith(b"\r\n"):
        head, content = b"", raw[2:]
    else:
        blank = raw.find(b"\r\n\r\n")
        if blank < 0:
            raise MultipartError("malformed multipart body: a part header has no end")
        head, content = raw[:blank], raw[blank + 4 :]
    msg = email.parser.BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
    media, params = "", {}
    if msg.get("content-type"):
        media = msg.get_content_type()
        params = {k.lower(): email.utils.collapse_rfc2231_value(v) for k, v in msg.get_params()[1:]}

    def disposition(key):
        value = msg.get_param(key, header="content-disposition")
        return None if value is None else email.utils.collapse_rfc2231_value(value)

    return Part(
        headers={k.lower(): str(v) for k, v in msg.items()},
        name=disposition("name") or "",
        filename=disposition("filename"),
        content_type=media,
        content_params=params,
        body=content,
    )


def parse_parts(body, boundary: bytes) -> list[Part]:
    """Split the multipart ``body`` on ``boundary``; return its parts in order.

    ``body`` is ``bytes`` or an ``mmap`` of the buffered upload (so a large upload
    is not copied whole once more: only the parts' bodies are).  Raises
    :class:`MultipartError` when the body does not contain the boundary or is cut
    short (no closing delimiter).
    """
    delimiter = b"--" + boundary
    separator = b"\r\n" + delimiter
    if body[: len(delimiter)] == delimiter:
        pos = len(delimiter)
    else:
        first = body.find(separator)
        if first < 0:
            raise MultipartError("the multipart body does not contain its boundary")
        pos = first + len(separator)
    parts = []
    while body[pos : pos + 2] != b"--":
        line_end = body.find(b"\n", pos)
        end = body.find(separator, line_end + 1) if line_end >= 0 else -1
        if end < 0:
            raise MultipartError("the multipart body ends before its closing boundary")
        parts.append(_read_part(body[line_end + 1 : end]))
        pos = end + len(separator)
    return parts


def encode_parts(parts, boundary: str = "ipfscluster-boundary-5b2e9d") -> tuple[bytes, str]:
    """Write ``parts`` (:class:`Part` values) into one multipart/form-data body.

    Each part keeps its headers (``Content-Disposition``, ``Content-Type``,
    ``Abspath`` …) and body.  Returns ``(body, content_type)``.  Raises
    :class:`MultipartError` when the boundary occurs inside a part.
    """
    delimiter = b"--" + boundary.encode("latin-1")
    out = bytearray()
    for part in parts:
        if delimiter in part.body:
            raise MultipartError("the multipart boundary occurs inside a part; choose another one")
        out += delimiter + b"\r\n"
        for key, value in part.headers.items():
            out += b"%s: %s\r\n" % (key.title().encode("latin-1"), value.encode("utf-8"))
        out += b"\r\n" + part.body + b"\r\n"
    out += delimiter + b"--\r\n"
    return bytes(out), f"multipart/form-data; boundary={boundary}"
