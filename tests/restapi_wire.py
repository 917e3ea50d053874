"""Parse raw HTTP/1.x responses (status, headers, de-chunked body, trailers) for
the REST API tests that check the bytes on the wire."""

from __future__ import annotations


def _fields(block: bytes) -> dict[bytes, bytes]:
    out = {}
    for line in block.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b":")
            out[name.strip().lower()] = value.strip()
    return out


def parse_response(raw: bytes, partial: bool = False):
    """Return ``(status, headers, body, trailers)`` of the first response in ``raw``.

    Chunked bodies are decoded and their trailer fields returned; with
    ``partial`` an unfinished chunked body gives what has arrived (trailers None).
    Raises ValueError for bytes that are not an HTTP response.
    """
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no complete response head in %r" % raw[:200])
    status_line, _, header_block = head.partition(b"\r\n")
    status = int(status_line.split(b" ")[1])
    headers = _fields(header_block)
    if headers.get(b"transfer-encoding") != b"chunked":
        length = headers.get(b"content-length")
        return status, headers, rest if length is None else rest[: int(length)], None
    body = bytearray()
    pos = 0
    while True:
        eol = rest.find(b"\r\n", pos)
        if eol < 0:
            if partial:
                return status, headers, bytes(body), None
            raise ValueError("chunked body cut short")
        size = int(rest[pos:eol].split(b";")[0], 16)
        if size == 0:
            end = rest.find(b"\r\n\r\n", eol)
            if end < 0:
                if partial:
                    return status, headers, bytes(body), None
                raise ValueError("trailer section cut short")
            return status, headers, bytes(body), _fields(rest[eol + 2 : end + 2])
        if eol + 2 + size + 2 > len(rest):
            if partial:
                return status, headers, bytes(body), None
            raise ValueError("chunk cut short")
        body += rest[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2
