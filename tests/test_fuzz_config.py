"""Property-based fuzzing of ``service.json``: bad input gives a typed, clear error.

Hypothesis (derandomized, bounded examples) breaks a valid ``service.json`` in the
ways an operator or a disk does: bytes cut anywhere, bytes flipped or inserted
(including non-UTF-8), an empty file, roots that are not objects, every key of
every section given a value of the wrong type, bad durations, bad multiaddresses,
huge numbers, unknown keys at every level, missing sections, escaped lone
surrogates, deep nesting, ``NaN``.  :meth:`ServiceConfig.load` is called on each.

The properties:

- the only exception is :class:`~ipfscluster.errors.ConfigError` (never a raw
  KeyError/TypeError/ValueError/UnicodeDecodeError/RecursionError);
- its message is one line; it names the file (for a file that cannot be parsed)
  or the dotted ``section.key`` at fault (for a bad value), and says what to do;
- the file on disk is never changed by a failed load.

Two real-process tests check the entry points (``ipfs-cluster-service daemon`` and
``twistd ipfs-cluster``): exit status 1, one line on stderr, no traceback.
"""

from __future__ import annotations

import copy
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipfscluster.config import ServiceConfig, config_path
from ipfscluster.config.base import MAX_INT, BoolKind, DurationKind, IntKind, ListKind, MultiaddrKind, kind_of
from ipfscluster.config.restapi import CredentialsKind
from ipfscluster.config.service import SECTIONS
from ipfscluster.errors import ConfigError
from ipfscluster.identity import Identity
from tests import cli_processes as procs

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

IDENTITY = Identity.generate()
VALID = ServiceConfig.default("/unused", secret=b"\x01" * 32, identity=IDENTITY).to_json()
VALID_BYTES = (json.dumps(VALID, indent=2) + "\n").encode()

# (section path, key) for every setting of every section
SETTINGS = [(cls.PATH, key) for cls in SECTIONS.values() for key in cls.keys()]
CLASSES = {cls.PATH: cls for cls in SECTIONS.values()}
DURATION_KEYS = [(p, k) for p, k in SETTINGS if isinstance(kind_of(CLASSES[p], k), DurationKind)]
MULTIADDR_KEYS = [(p, k) for p, k in SETTINGS if isinstance(kind_of(CLASSES[p], k), MultiaddrKind)]
INT_KEYS = [(p, k) for p, k in SETTINGS if isinstance(kind_of(CLASSES[p], k), IntKind)]

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
bad_durations = st.one_of(
    st.sampled_from(["", "1", "1x", "s", "-1s", "0", "1.s.", "1e3s", "1 s", "9999999999999999999h",
                     "2562048h", "1h-1m", "µ", "1µ", "--1s", "+", ".s", "1..5s", "0x10s"]),
    st.text(alphabet="0123456789.-+smhuµnx ", max_size=10),
)
bad_multiaddrs = st.one_of(
    st.sampled_from(["", "/", "ip4/1.2.3.4/tcp/1", "/ip4/1.2.3/tcp/1", "/ip4/1.2.3.4/tcp/65536",
                     "/ip4/1.2.3.4/tcp/-1", "/ip4/1.2.3.4", "/tcp/9096", "/ip6/::zz/tcp/1",
                     "/dns4//tcp/1", "/ip4/1.2.3.4/tcp/1/p2p/notapeer", "/unix/tmp/sock",
                     "/ip4/1.2.3.4/udp/1", "/ip4/1.2.3.4/tcp/1/p2p/" + IDENTITY.peer_id + "/tcp/2"]),
    st.text(alphabet="/ip46tcpdnsu0123456789.:", max_size=30),
)
huge = st.sampled_from([MAX_INT + 1, 2**64, 10**30, -(2**63) - 1, -(10**30)])


def dotted(path: str, key: str) -> str:
    return f"{path}.{key}"


def set_value(obj: dict, path: str, key: str, value) -> dict:
    out = copy.deepcopy(obj)
    group, _, impl = path.partition(".")
    section = out[group][impl] if impl else out[group]
    section[key] = value
    return out


def write(folder: str, data: bytes) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(config_path(folder), "wb") as f:
        f.write(data)


def load_error(folder: str, data: bytes) -> ConfigError | None:
    """Write ``data`` as service.json and load it: the ConfigError, or None when it
    loaded.  Any other exception fails the test.  The file must be left unchanged."""
    write(folder, data)
    try:
        ServiceConfig.load(folder)
        error = None
    except ConfigError as err:
        error = err
        assert str(err) and "\n" not in str(err), repr(str(err))
        assert "Traceback" not in str(err)
    with open(config_path(folder), "rb") as f:
        assert f.read() == data, "a failed load changed service.json"
    return error


def names_the_file(folder: str, err: ConfigError) -> None:
    assert config_path(folder) in str(err), str(err)
    assert "restore it from a backup" in str(err) or "init" in str(err), str(err)


def names_the_key(err: ConfigError, key: str) -> None:
    assert key in str(err), (key, str(err))
    assert err.key == key or err.key.startswith(key + "["), (err.key, key)


IDENTITY_KEYS = {"cluster.id", "cluster.private_key"}


def value_error(folder: str, path: str, key: str, value) -> ConfigError | None:
    """:func:`load_error` of the valid file with ``path.key`` set to ``value``; a
    ConfigError must name that key (the identity keys may name each other: a valid
    peer ID that is not the key's is reported on cluster.id)."""
    err = load_error(folder, json.dumps(set_value(VALID, path, key, value)).encode())
    if err is not None:
        if dotted(path, key) in IDENTITY_KEYS:
            assert err.key in IDENTITY_KEYS, str(err)
        else:
            names_the_key(err, dotted(path, key))
    return err


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "peer")


def test_the_unbroken_file_loads(folder):
    write(folder, VALID_BYTES)
    assert ServiceConfig.load(folder).cluster.peer_id == IDENTITY.peer_id


# --- files that are not a JSON object ---------------------------------------------------


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(VALID_BYTES) - 2))
def test_truncated_file(cut, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("cut") / "peer")
    data = VALID_BYTES[:cut]
    err = load_error(folder, data)
    assert err is not None
    names_the_file(folder, err)
    if data.strip():
        assert "is it truncated?" in str(err), str(err)
    else:
        assert "is empty" in str(err)


@FUZZ
@given(position=st.integers(min_value=0, max_value=len(VALID_BYTES) - 1),
       junk=st.binary(min_size=1, max_size=4), replace=st.booleans())
def test_bytes_flipped_or_inserted(position, junk, replace, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("flip") / "peer")
    end = position + len(junk) if replace else position
    data = VALID_BYTES[:position] + junk + VALID_BYTES[end:]
    err = load_error(folder, data)
    if err is not None and not err.key:  # a file-level problem: the file is named
        names_the_file(folder, err)


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes(data, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("bytes") / "peer")
    assert load_error(folder, data) is not None


@pytest.mark.parametrize("data, message", [
    (b"", "is empty; restore it from a backup"),
    (b" \n\t\n", "is empty; restore it from a backup"),
    (b"\xff\xfe{}", "is not UTF-8 text (byte 0xff at offset 0); save it as UTF-8 JSON"),
    (VALID_BYTES[:40] + b"\xc3\x28" + VALID_BYTES[40:], "is not UTF-8 text (byte 0xc3 at offset 40)"),
    (b"\xef\xbb\xbf" + VALID_BYTES, "is not valid JSON: Unexpected UTF-8 BOM"),
    (b"[" * 100_000, "its JSON nests too deeply"),
    (b'{"cluster": ' + b"1" * 5000 + b"}", "holds a number with thousands of digits"),
    (b'{"cluster": NaN}', "is not valid JSON: NaN is not a JSON number"),
    (b'{"cluster": -Infinity}', "is not valid JSON: -Infinity is not a JSON number"),
    (b'{"cluster": {}} trailing', "is not valid JSON: Extra data at line 1 column 17"),
])
def test_file_level_errors(folder, data, message):
    err = load_error(folder, data)
    assert err is not None and message in str(err), str(err)
    names_the_file(folder, err)


@pytest.mark.parametrize("root", [[], [VALID], "cluster", 1, 1.5, True, None])
def test_root_that_is_not_an_object(folder, root):
    err = load_error(folder, json.dumps(root).encode())
    assert "service.json: the file must hold a JSON object" in str(err)


# --- values ---------------------------------------------------------------------------------


@FUZZ
@given(where=st.sampled_from(SETTINGS), value=json_value)
def test_any_value_for_any_key(where, value, tmp_path_factory):
    """Every value of any JSON type for every key either loads or names the key."""
    folder = str(tmp_path_factory.mktemp("value") / "peer")
    value_error(folder, *where, value)


@pytest.mark.parametrize("where", SETTINGS, ids=[dotted(*w) for w in SETTINGS])
def test_wrong_type_for_every_key(folder, where):
    path, key = where
    kind = kind_of(CLASSES[path], key)
    accepted = {IntKind: int, BoolKind: bool, ListKind: list, CredentialsKind: (dict, type(None))}
    right = next((t for k, t in accepted.items() if isinstance(kind, k)), str)
    for value in [[], {"a": 1}, 1.5, True, 7, None]:
        if isinstance(value, right) and not (right is int and isinstance(value, bool)):
            continue
        assert value_error(folder, path, key, value) is not None, (path, key, value)


@FUZZ
@given(where=st.sampled_from(DURATION_KEYS), value=bad_durations)
def test_bad_durations(where, value, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("duration") / "peer")
    err = value_error(folder, *where, value)
    assert err is None or "duration" in str(err) or "too short" in str(err), str(err)


@FUZZ
@given(where=st.sampled_from(MULTIADDR_KEYS), value=bad_multiaddrs)
def test_bad_multiaddrs(where, value, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("maddr") / "peer")
    err = value_error(folder, *where, value)
    assert err is None or "example:" in str(err), str(err)
    for list_key in ("peers", "bootstrap"):  # a peer address always needs /p2p/<peer ID>
        err = value_error(folder, "cluster", list_key, [value])
        assert err is not None and err.key == f"cluster.{list_key}[0]", err


@pytest.mark.parametrize("where", INT_KEYS, ids=[dotted(*w) for w in INT_KEYS])
def test_huge_numbers(folder, where):
    path, key = where
    for value in (MAX_INT + 1, 2**64, 10**30, -(10**30)):
        err = value_error(folder, path, key, value)
        assert err is not None, value
        assert "too large" in str(err) or "too small" in str(err), str(err)
    text = json.dumps(set_value(VALID, path, key, 12345.5)).replace("12345.5", "1e400")
    err = load_error(folder, text.encode())  # a JSON number Python reads as infinity
    assert err is not None and "is not an integer" in str(err), str(err)
    names_the_key(err, dotted(path, key))


@FUZZ
@given(where=st.sampled_from(SETTINGS + [("cluster", None), ("consensus", None)]),
       name=st.text(min_size=1, max_size=10), value=json_value)
def test_unknown_keys(where, name, value, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("unknown") / "peer")
    path, key = where
    obj = copy.deepcopy(VALID)
    if key is None and path == "consensus":
        target, prefix = obj["consensus"], "consensus"
    else:
        group, _, impl = path.partition(".")
        target, prefix = (obj[group][impl] if impl else obj[group]), path
    if name in target or name in ("replication_factor", "http_listen_multiaddress"):
        return  # a known (or legacy) key: not this property
    target[name] = value
    err = load_error(folder, json.dumps(obj).encode())
    assert err is not None
    assert err.key == f"{prefix}.{name}"
    assert str(err).startswith(f'unknown key "{prefix}.'), str(err)  # the name quoted, escaped
    assert "; remove it (valid keys: " in str(err), str(err)
    if name.isprintable() and '"' not in name and "\\" not in name:
        assert f'unknown key "{prefix}.{name}"; remove it' in str(err)


def test_unknown_top_level_key(folder):
    obj = dict(VALID, crdt={})
    err = load_error(folder, json.dumps(obj).encode())
    assert str(err).startswith('unknown key "crdt"; remove it (valid keys: cluster, consensus,')


@pytest.mark.parametrize("section", ["consensus", "api", "ipfs_connector", "pin_tracker", "monitor", "informer"])
def test_missing_sections_take_defaults_and_missing_cluster_does_not(folder, section):
    obj = {k: v for k, v in VALID.items() if k != section}
    assert load_error(folder, json.dumps(obj).encode()) is None
    err = load_error(folder, json.dumps({k: v for k, v in obj.items() if k != "cluster"}).encode())
    assert str(err).startswith("cluster: missing; the \"cluster\" section holds the peer identity")


@pytest.mark.parametrize("key", ["id", "private_key"])
def test_missing_required_key(folder, key):
    obj = copy.deepcopy(VALID)
    del obj["cluster"][key]
    err = load_error(folder, json.dumps(obj).encode())
    assert str(err).startswith(f"cluster.{key}: missing; every peer needs it")


@pytest.mark.parametrize("group", ["consensus", "api", "informer"])
@pytest.mark.parametrize("value", [[], "raft", 1, None])
def test_group_that_is_not_an_object(folder, group, value):
    err = load_error(folder, json.dumps(dict(VALID, **{group: value})).encode())
    assert err is not None and str(err).startswith(f"{group}: "), str(err)
    assert "is not a JSON object" in str(err)


@pytest.mark.parametrize("path", sorted(CLASSES))
@pytest.mark.parametrize("value", [[], 1, "raft", None, True])
def test_section_that_is_not_an_object(folder, path, value):
    obj = copy.deepcopy(VALID)
    group, _, impl = path.partition(".")
    if impl:
        obj[group][impl] = value
    else:
        obj[group] = value
    err = load_error(folder, json.dumps(obj).encode())
    assert err is not None and err.key == path, (path, value, err)
    assert str(err).startswith(f"{path}: ") and "is not a JSON object" in str(err), str(err)


@pytest.mark.parametrize("where", [("cluster", "peername"), ("api.restapi", "ssl_cert_file"),
                                   ("consensus.raft", "data_folder")])
def test_escaped_lone_surrogate(folder, where):
    path, key = where
    text = json.dumps(set_value(VALID, path, key, "x\ud800y"))  # json.dumps escapes it as \ud800
    assert "\\ud800" in text
    err = load_error(folder, text.encode())
    assert str(err).startswith(f"{path}.{key}: the text holds an escaped lone surrogate"), str(err)


# --- the real entry points ------------------------------------------------------------------


def _one_clean_line(result, folder):
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error loading configuration: {config_path(folder)} "), lines[0]
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("data, message", [
    (VALID_BYTES[: len(VALID_BYTES) // 2], "ends before its JSON is complete (is it truncated?)"),
    (b"\x80" + VALID_BYTES, "is not UTF-8 text (byte 0x80 at offset 0)"),
], ids=["truncated", "not-utf8"])
def test_process_daemon_broken_file(tmp_path, data, message):
    folder = str(tmp_path / "peer")
    write(folder, data)
    result = procs.run(procs.service_cmd("-c", folder, "daemon"), cwd=tmp_path)
    assert message in _one_clean_line(result, folder)


@pytest.mark.slow
def test_process_twistd_empty_file(tmp_path):
    folder = str(tmp_path / "peer")
    write(folder, b"")
    result = procs.run(procs.twistd_cmd("--config", folder), cwd=tmp_path)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.splitlines() == [
        f"error loading configuration: {config_path(folder)} is empty; restore it from a backup "
        f"(or write a new configuration, and a new peer identity, with "
        f'"ipfs-cluster-service -c {folder} -f init")'
    ], result.stderr
