"""The kubo RPC API's wire conventions, as the IPFS proxy speaks them.

- **Command resolution.**  ``/api/v0/<command>`` with the command's arguments in
  ``arg`` query values; a path component after the command is its first argument
  (``/api/v0/pin/add/<cid>``, the path form kubo also accepts).
  :func:`resolve` maps a request path to the intercepted endpoint it names, or
  None when the request must go to the daemon unchanged.
- **Options.**  Every other query key is an option; booleans are read like
  Go's ``strconv.ParseBool`` (kubo parses them that way: ``1 t T TRUE true True``
  / ``0 f F FALSE false False``), any other spelling is a 400.
- **Errors.**  ``{"Message": …, "Code": …, "Type": "error"}``: 400 with code 1
  (kubo's ``ErrClient``) for bad arguments, 500 with code 0 (``ErrNormal``)
  otherwise (reference §15).
- **JSON.**  Compact, one value per line, ``<``, ``>`` and ``&`` escaped as Go's
  ``json.Encoder`` writes them.

Written by hand: each rule is a few lines and no library speaks kubo's dialect.
"""

from __future__ import annotations

import json
import urllib.parse

from ipfscluster.errors import ClusterError, InvalidInput, InvalidParameter

__all__ = [
    "API_PREFIX",
    "INTERCEPTED",
    "KuboQuery",
    "ProxyArgumentError",
    "error_body",
    "error_status",
    "go_json",
    "resolve",
]

API_PREFIX = "/api/v0/"

#: the commands the proxy answers itself (POST only); the value says whether a
#: trailing path component is the command's first argument
INTERCEPTED = {
    "add": False,
    "pin/add": True,
    "pin/rm": True,
    "pin/ls": True,
    "pin/update": True,
    "repo/stat": False,
}

#: kubo's short option names of the intercepted commands
_ALIASES = {
    "add": {"w": "wrap-with-directory", "n": "only-hash", "q": "quiet", "Q": "quieter", "p": "progress"},
    "pin/add": {"r": "recursive", "n": "name"},
    "pin/rm": {"r": "recursive"},
    "pin/ls": {"t": "type", "q": "quiet", "s": "stream", "n": "names"},
    "repo/stat": {"s": "size-only", "H": "human"},
}

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")

ERR_NORMAL = 0
ERR_CLIENT = 1


class ProxyArgumentError(InvalidInput):
    """A request argument or option is missing or invalid (HTTP 400, kubo code 1)."""


def resolve(path: bytes | str) -> str | None:
    """The intercepted endpoint a request path names (``"pin/add"``), or None.

    ``/api/v0/pin/add``, ``/api/v0/pin/add/`` and ``/api/v0/pin/add/<arg>`` all name
    ``pin/add``; ``/api/v0/add/x`` names nothing (kubo's ``add`` takes no path
    argument).  Never raises.
    """
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    path = path.split("?", 1)[0]
    if not path.startswith(API_PREFIX):
        return None
    rest = urllib.parse.unquote(path[len(API_PREFIX) :])
    for endpoint, takes_path_arg in INTERCEPTED.items():
        if rest == endpoint or rest == endpoint + "/":
            return endpoint
        if takes_path_arg and rest.startswith(endpoint + "/"):
            return endpoint
    return None


def path_argument(path: bytes | str, endpoint: str) -> str | None:
    """The argument given in the path form (``/api/v0/<endpoint>/<arg>``), or None."""
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    rest = urllib.parse.unquote(path.split("?", 1)[0][len(API_PREFIX) :])
    tail = rest[len(endpoint) + 1 :]
    return tail or None


class KuboQuery:
    """The arguments and options of one request to an intercepted command.

    :param endpoint: the command (``pin/add`` …).
    :param uri: the request URI (path and query).
    """

    def __init__(self, endpoint: str, uri: bytes | str):
        if isinstance(uri, bytes):
            uri = uri.decode("utf-8", "replace")
        self.endpoint = endpoint
        path, _, query = uri.partition("?")
        aliases = _ALIASES.get(endpoint, {})
        leading = path_argument(path, endpoint) if INTERCEPTED.get(endpoint) else None
        self.args: list[str] = [leading] if leading else []
        self.options: dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            if key == "arg":
                self.args.append(value)
            else:
                self.options.setdefault(aliases.get(key, key), value)

    def has(self, name: str) -> bool:
        """True when the option ``name`` was given (even empty)."""
        return name in self.options

    def bool(self, name: str, default: bool) -> bool:
        """The boolean option ``name`` (``default`` when absent or empty).

        Raises :class:`ProxyArgumentError` for a spelling Go's ``ParseBool`` rejects.
        """
        value = self.options.get(name, "")
        if value == "":
            return default
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ProxyArgumentError(
            f'invalid value "{value}" for option "{name}": use true or false', parameter=name, value=value
        )

    def str(self, name: str, default: str = "") -> str:
        """The text option ``name`` (``default`` when absent)."""
        return self.options.get(name, default)

    def require_args(self, what: str, count: int | None = None) -> list[str]:
        """The arguments; raises :class:`ProxyArgumentError` naming ``what`` when
        there are none (or not exactly ``count``)."""
        if not self.args:
            raise ProxyArgumentError(f'argument "{what}" is required')
        if count is not None and len(self.args) != count:
            raise ProxyArgumentError(
                f"{self.endpoint} takes exactly {count} arguments ({what}), got {len(self.args)}"
            )
        return self.args


def go_json(value) -> bytes:
    """``value`` as Go's ``json.Encoder`` writes it: compact, HTML characters
    escaped, one trailing newline."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode("utf-8") + b"\n"


def error_status(err: Exception) -> int:
    """400 for an argument error (any ``InvalidInput``), else 500."""
    return 400 if isinstance(err, (InvalidInput, InvalidParameter)) else 500


def error_body(err: Exception | str, status: int | None = None) -> bytes:
    """kubo's error object for ``err`` (a message or an exception), as one JSON line.

    ``Code`` is 1 for a 400, 0 otherwise.
    """
    if status is None:
        status = error_status(err) if isinstance(err, Exception) else 500
    message = str(err) if isinstance(err, (ClusterError, str)) else f"{type(err).__name__}: {err}"
    code = ERR_CLIENT if status == 400 else ERR_NORMAL
    return go_json({"Message": message, "Code": code, "Type": "error"})
