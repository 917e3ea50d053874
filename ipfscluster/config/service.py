"""``service.json`` as a whole: the sections together, the folder, load/save/init.

Layout of the file (2-space JSON, keys in this order, like upstream)::

    {"cluster": {...},
     "consensus": {"raft": {...}},
     "api": {"restapi": {...}},
     "ipfs_connector": {"ipfshttp": {...}},
     "pin_tracker": {"maptracker": {...}},
     "monitor": {"monbasic": {...}},
     "informer": {"disk": {...}, "numpin": {...}}}

Every section is validated on load, even one the peer will not use (both
informers), and unknown keys at any level are errors naming the key.  A missing
component section takes its defaults; the ``cluster`` section must be there
(it holds the identity).

Files: the folder is created with mode 0700, ``service.json`` is written with mode
0600 through a temporary file in the same folder that is fsynced and renamed over
the old file (then the folder is fsynced), so a crash leaves either the old or the
new file, never half of one.

Folder choice (:func:`config_folder`): ``-c``/``--config``, else the environment
variable ``IPFS_CLUSTER_PATH``, else ``~/.ipfs-cluster``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Mapping

import attrs

from ipfscluster.config.base import Section, show
from ipfscluster.config.cluster import ClusterConfig
from ipfscluster.config.informer import DiskInformerConfig, NumpinInformerConfig
from ipfscluster.config.ipfshttp import IPFSHTTPConfig
from ipfscluster.config.monitor import MonBasicConfig
from ipfscluster.config.pintracker import MapTrackerConfig
from ipfscluster.config.raft import DEFAULT_DATA_FOLDER_NAME, RaftConfig
from ipfscluster.config.restapi import RestAPIConfig
from ipfscluster.errors import ConfigError, ConfigExists, ConfigNotFound

CONFIG_FILE = "service.json"
ENV_CONFIG_PATH = "IPFS_CLUSTER_PATH"
DEFAULT_FOLDER_NAME = ".ipfs-cluster"

# ServiceConfig attribute name → section class, in file order
SECTIONS: dict[str, type[Section]] = {
    "cluster": ClusterConfig,
    "raft": RaftConfig,
    "restapi": RestAPIConfig,
    "ipfshttp": IPFSHTTPConfig,
    "pintracker": MapTrackerConfig,
    "monitor": MonBasicConfig,
    "disk_informer": DiskInformerConfig,
    "numpin_informer": NumpinInformerConfig,
}


def config_folder(flag: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The configuration folder: ``flag`` (``-c``), else ``$IPFS_CLUSTER_PATH``, else
    ``~/.ipfs-cluster`` (HOME from the environment, else the user's home).  Returns
    an absolute path."""
    environ = os.environ if environ is None else environ
    folder = flag or environ.get(ENV_CONFIG_PATH)
    if not folder:
        home = environ.get("HOME") or os.path.expanduser("~")
        folder = os.path.join(home, DEFAULT_FOLDER_NAME)
    return os.path.abspath(os.path.expanduser(folder))


def config_path(folder: str) -> str:
    """``<folder>/service.json``."""
    return os.path.join(folder, CONFIG_FILE)


def resolve_path(folder: str, path: str) -> str:
    """``path`` if absolute (``~`` expanded), else ``path`` relative to ``folder``."""
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(folder, path))


def _section_at(obj: dict, path: str) -> tuple[bool, object]:
    """(present?, value) of the dotted section ``path`` in the top-level object."""
    group, _, impl = path.partition(".")
    if group not in obj:
        return False, None
    if not impl:
        return True, obj[group]
    inner = obj[group]
    if not isinstance(inner, dict):
        raise ConfigError(
            f'{group}: {json.dumps(inner)} is not a JSON object (expected {{"{impl}": {{...}}}})',
            key=group,
            value=inner,
        )
    return (impl in inner), inner.get(impl)


def _check_unknown(obj: dict) -> None:
    paths = [cls.PATH for cls in SECTIONS.values()]
    groups: dict[str, list[str]] = {}
    for path in paths:
        group, _, impl = path.partition(".")
        groups.setdefault(group, []).append(impl)
    for key in obj:
        if key not in groups:
            raise ConfigError(
                f'unknown key {show(key)}; remove it (valid keys: {", ".join(groups)})', key=key, value=obj[key]
            )
        impls = groups[key]
        if impls != [""] and isinstance(obj[key], dict):
            for impl in obj[key]:
                if impl not in impls:
                    valid = ", ".join(f"{key}.{i}" for i in impls)
                    raise ConfigError(
                        f"unknown key {show(key + '.' + impl)}; remove it (valid keys: {valid})",
                        key=f"{key}.{impl}",
                        value=obj[key][impl],
                    )


@attrs.frozen
class ServiceConfig:
    """The whole configuration of one peer plus the folder it lives in.

    Sections: ``cluster``, ``raft`` (consensus.raft), ``restapi`` (api.restapi),
    ``ipfshttp`` (ipfs_connector.ipfshttp), ``pintracker``
    (pin_tracker.maptracker), ``monitor`` (monitor.monbasic), ``disk_informer``
    (informer.disk), ``numpin_informer`` (informer.numpin).  Change one with
    ``attrs.evolve(cfg, cluster=attrs.evolve(cfg.cluster, peers=...))``.
    """

    folder: str
    cluster: ClusterConfig
    raft: RaftConfig = attrs.field(factory=RaftConfig)
    restapi: RestAPIConfig = attrs.field(factory=RestAPIConfig)
    ipfshttp: IPFSHTTPConfig = attrs.field(factory=IPFSHTTPConfig)
    pintracker: MapTrackerConfig = attrs.field(factory=MapTrackerConfig)
    monitor: MonBasicConfig = attrs.field(factory=MonBasicConfig)
    disk_informer: DiskInformerConfig = attrs.field(factory=DiskInformerConfig)
    numpin_informer: NumpinInformerConfig = attrs.field(factory=NumpinInformerConfig)

    # --- building -------------------------------------------------------------------

    @classmethod
    def default(cls, folder: str, secret: bytes | None = None, identity=None) -> ServiceConfig:
        """Every section with its defaults, a new identity (unless ``identity``) and a
        random secret (unless ``secret``; ``b""`` for none)."""
        return cls(folder=folder, cluster=ClusterConfig.default(identity=identity, secret=secret))

    @classmethod
    def from_json(cls, obj, folder: str) -> ServiceConfig:
        """Validate the parsed ``service.json`` object.

        :raises ConfigError: (or :class:`IdentityMismatch`) naming the key at fault.
        """
        if not isinstance(obj, dict):
            raise ConfigError(
                f"{CONFIG_FILE}: the file must hold a JSON object with the sections "
                f'"cluster", "consensus", ... (found {type(obj).__name__})',
                key="",
                value=obj,
            )
        _check_unknown(obj)
        sections = {}
        for name, section in SECTIONS.items():
            present, value = _section_at(obj, section.PATH)
            if present:
                sections[name] = section.from_json(value)
            elif name == "cluster":
                raise ConfigError(
                    'cluster: missing; the "cluster" section holds the peer identity '
                    '(run "ipfs-cluster-service init" to write a complete configuration)',
                    key="cluster",
                    value=None,
                )
        return cls(folder=folder, **sections)

    def to_json(self) -> dict:
        """The ``service.json`` object (sections in file order)."""
        out: dict = {}
        for name, section in SECTIONS.items():
            group, _, impl = section.PATH.partition(".")
            data = getattr(self, name).to_json()
            if impl:
                out.setdefault(group, {})[impl] = data
            else:
                out[group] = data
        return out

    # --- files ----------------------------------------------------------------------

    @property
    def path(self) -> str:
        """``<folder>/service.json``."""
        return config_path(self.folder)

    @classmethod
    def load(cls, folder: str) -> ServiceConfig:
        """Read and validate ``<folder>/service.json``.

        Also checks that configured TLS files exist.

        :raises ConfigNotFound: the file does not exist (the message says to run init).
        :raises ConfigError: the file cannot be read, is not JSON, or a value is invalid.
        """
        path = config_path(folder)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ConfigNotFound(
                f'{path} does not exist; run "ipfs-cluster-service -c {folder} init" first',
                key="",
                value=path,
            ) from None
        except OSError as err:
            raise ConfigError(
                f"cannot read {path}: {err.strerror or err}; check that it is a readable file",
                key="",
                value=path,
            ) from None
        obj = parse_json(data, path)
        try:
            config = cls.from_json(obj, folder)
            config._check_files()
        except ConfigError as err:
            if _CONTROL.search(err.message):  # a value or key echoed in the message
                err.message = _CONTROL.sub(lambda m: ascii(m.group())[1:-1], err.message)
                err.args = (err.message,)
            raise
        return config

    def _check_files(self) -> None:
        for key in ("ssl_cert_file", "ssl_key_file"):
            name = getattr(self.restapi, key)
            if name and not os.path.isfile(self.resolve_path(name)):
                raise ConfigError(
                    f'api.restapi.{key}: "{name}" is not a readable file '
                    f"(looked for {self.resolve_path(name)})",
                    key=f"api.restapi.{key}",
                    value=name,
                )

    def save(self, folder: str | None = None) -> str:
        """Write ``service.json`` atomically into ``folder`` (default: this config's
        folder; created 0700, file 0600); return the file's path.

        :raises OSError: when the folder or file cannot be written.
        """
        folder = self.folder if folder is None else folder
        os.makedirs(folder, mode=0o700, exist_ok=True)
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        write_atomically(config_path(folder), text.encode("utf-8"), mode=0o600)
        return config_path(folder)

    @classmethod
    def init(cls, folder: str, secret: bytes | None = None, force: bool = False) -> ServiceConfig:
        """Write a fresh default configuration to ``folder`` and return it.

        ``secret``: the cluster secret (None → random, ``b""`` → none).  A new
        identity is always generated.

        :raises ConfigExists: ``service.json`` exists and ``force`` is false; the
            message tells the operator how to overwrite it.
        """
        cls.check_can_init(folder, force)
        config = cls.default(folder, secret=secret)
        config.save()
        return config

    @staticmethod
    def check_can_init(folder: str, force: bool = False) -> None:
        """Check that ``init`` may write into ``folder``.

        :raises ConfigExists: ``service.json`` exists and ``force`` is false.
        """
        path = config_path(folder)
        if os.path.exists(path) and not force:
            raise ConfigExists(
                f"{path} exists. Try running: ipfs-cluster-service -f init", key="", value=path
            )

    # --- derived values -------------------------------------------------------------

    def resolve_path(self, path: str) -> str:
        """``path`` resolved against the configuration folder (if relative)."""
        return resolve_path(self.folder, path)

    @property
    def raft_data_folder(self) -> str:
        """``consensus.raft.data_folder``, or ``<folder>/ipfs-cluster-data`` if empty."""
        return self.resolve_path(self.raft.data_folder or DEFAULT_DATA_FOLDER_NAME)


_RESTORE = "fix it or restore it from a backup"
# characters that would break the one-line error message (shown escaped instead)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def parse_json(data: bytes, path: str):
    """The JSON value of the bytes of ``path`` (a ``service.json``).

    :raises ConfigError: naming ``path`` and saying what to do, for bytes that are
        not UTF-8, an empty file, invalid or truncated JSON, ``NaN``/``Infinity``,
        numbers too long to read, nesting too deep, and escaped lone surrogates
        (``"\\ud800"``, text that cannot be written back as UTF-8).
    """

    def fail(what: str) -> ConfigError:
        return ConfigError(f"{path} {what}; {_RESTORE}", key="", value=None)

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "save it as UTF-8 JSON or restore it from a backup",
            key="",
            value=None,
        ) from None
    if not text.strip():
        raise ConfigError(
            f"{path} is empty; restore it from a backup (or write a new configuration, "
            f'and a new peer identity, with "ipfs-cluster-service -c {os.path.dirname(path)} -f init")',
            key="",
            value=None,
        )

    def no_constant(name):
        raise fail(f"is not valid JSON: {name} is not a JSON number")

    try:
        obj = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as err:
        if err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string"):
            raise fail(f"ends before its JSON is complete (is it truncated?): {err.msg} at "
                       f"line {err.lineno} column {err.colno}") from None
        raise fail(f"is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except RecursionError:
        raise fail("is not a configuration: its JSON nests too deeply") from None
    except ValueError:  # an integer with more digits than Python converts
        raise fail("is not a configuration: it holds a number with thousands of digits") from None
    bad = _unencodable(obj, "")
    if bad is not None:
        key = bad or "(top level)"
        raise ConfigError(
            f"{key}: the text holds an escaped lone surrogate (such as \\ud800), which is not "
            f"valid Unicode; {_RESTORE}",
            key=bad,
            value=None,
        )
    return obj


def _unencodable(obj, key: str) -> str | None:
    """The dotted key of the first string (or object key) in ``obj`` that cannot be
    encoded as UTF-8, or None."""
    stack = [(obj, key)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return where
        elif isinstance(value, dict):
            for name, item in value.items():
                inner = f"{where}.{name}" if where else name
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    return where or "(top level)"
                stack.append((item, inner))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))
    return None


def write_atomically(path: str, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, rename,
    fsync of the folder.  The file gets ``mode``.

    :raises OSError: when writing fails (the old file is then left untouched).
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def startup_warnings(config: ServiceConfig) -> list[str]:
    """Warnings the peer logs when it starts: an empty secret, a ``service.json``
    that other users can read (it holds the private key and the secret)."""
    warnings = []
    if not config.cluster.secret:
        warnings.append(
            "cluster.secret is empty: the cluster RPC is NOT protected and any peer that "
            "can reach this one may join the cluster and change the pinset; set a "
            "32-byte hex secret on every peer"
        )
    try:
        mode = os.stat(config.path).st_mode & 0o777
    except OSError:
        mode = 0
    if mode & 0o077:
        warnings.append(
            f"{config.path} is open to other users (mode {mode:04o}) although it holds "
            f"the private key and the cluster secret; run: chmod 600 {config.path}"
        )
    return warnings
