"""ServiceConfig: the whole service.json, its folder, load/save/init."""

from __future__ import annotations

import json
import os
import stat

import attrs
import pytest

from ipfscluster.config import ServiceConfig, config_folder, config_path, resolve_path, startup_warnings
from ipfscluster.config.durations import Duration
from ipfscluster.config.service import SECTIONS, write_atomically
from ipfscluster.errors import ConfigError, ConfigExists, ConfigNotFound, IdentityMismatch
from ipfscluster.identity import Identity

TOP_LEVEL = ["cluster", "consensus", "api", "ipfs_connector", "pin_tracker", "monitor", "informer"]


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "peer")


@pytest.fixture
def written(folder):
    return ServiceConfig.init(folder)


def read_json(folder):
    with open(config_path(folder)) as f:
        return json.load(f)


def write_json(folder, obj):
    os.makedirs(folder, exist_ok=True)
    with open(config_path(folder), "w") as f:
        json.dump(obj, f)


def load_error(folder, mutate) -> ConfigError:
    obj = read_json(folder)
    mutate(obj)
    write_json(folder, obj)
    with pytest.raises(ConfigError) as info:
        ServiceConfig.load(folder)
    return info.value


# --- init / save / load ------------------------------------------------------------


def test_init_writes_every_section(folder, written):
    obj = read_json(folder)
    assert list(obj) == TOP_LEVEL
    assert list(obj["consensus"]) == ["raft"]
    assert list(obj["api"]) == ["restapi"]
    assert list(obj["ipfs_connector"]) == ["ipfshttp"]
    assert list(obj["pin_tracker"]) == ["maptracker"]
    assert list(obj["monitor"]) == ["monbasic"]
    assert list(obj["informer"]) == ["disk", "numpin"]
    assert obj["cluster"]["id"].startswith("12D3KooW")
    assert len(obj["cluster"]["secret"]) == 64
    assert obj["consensus"]["raft"]["heartbeat_timeout"] == "1s"
    assert obj["ipfs_connector"]["ipfshttp"]["pin_timeout"] == "2m0s"
    assert obj["pin_tracker"]["maptracker"]["max_pin_queue_size"] == 4096
    assert obj == written.to_json()


def test_file_format_modes_and_round_trip(folder, written):
    with open(config_path(folder)) as f:
        text = f.read()
    assert text.startswith('{\n  "cluster": {\n    "id": ')
    assert text.endswith("}\n")
    assert stat.S_IMODE(os.stat(config_path(folder)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    loaded = ServiceConfig.load(folder)
    assert loaded == written
    assert loaded.cluster.identity.peer_id == written.cluster.peer_id
    assert os.listdir(folder) == ["service.json"]  # no temporary file left


def test_save_keeps_changes(folder, written):
    changed = attrs.evolve(
        written,
        raft=attrs.evolve(written.raft, heartbeat_timeout=Duration.parse("2s")),
        cluster=attrs.evolve(written.cluster, replication_factor_min=2, replication_factor_max=3),
    )
    assert changed.save() == config_path(folder)
    assert ServiceConfig.load(folder) == changed
    elsewhere = os.path.join(folder, "copy")
    assert changed.save(elsewhere) == config_path(elsewhere)
    assert ServiceConfig.load(elsewhere) == attrs.evolve(changed, folder=elsewhere)
    assert read_json(folder)["consensus"]["raft"]["heartbeat_timeout"] == "2s"


def test_init_refuses_to_overwrite(folder, written):
    with pytest.raises(ConfigExists) as info:
        ServiceConfig.init(folder)
    assert str(info.value) == f"{config_path(folder)} exists. Try running: ipfs-cluster-service -f init"
    assert ServiceConfig.load(folder) == written


def test_init_force_overwrites_with_a_new_identity(folder, written):
    again = ServiceConfig.init(folder, secret=b"", force=True)
    assert again.cluster.peer_id != written.cluster.peer_id
    assert ServiceConfig.load(folder) == again
    assert read_json(folder)["cluster"]["secret"] == ""


def test_init_uses_the_given_secret(folder):
    config = ServiceConfig.init(folder, secret=b"\x07" * 32)
    assert read_json(folder)["cluster"]["secret"] == "07" * 32
    assert config.cluster.secret == b"\x07" * 32


def test_missing_sections_take_defaults(folder, written):
    write_json(folder, {"cluster": read_json(folder)["cluster"]})
    loaded = ServiceConfig.load(folder)
    assert loaded == attrs.evolve(ServiceConfig(folder=folder, cluster=written.cluster))
    assert loaded.restapi == SECTIONS["restapi"]()


def test_upstream_style_file_loads(folder):
    identity = Identity.generate()
    write_json(folder, {
        "cluster": {
            "id": identity.peer_id,
            "private_key": identity.private_key_b64,
            "secret": "",
            "peers": [],
            "bootstrap": [],
            "leave_on_shutdown": False,
            "listen_multiaddress": "/ip4/0.0.0.0/tcp/9096",
            "state_sync_interval": "1m0s",
            "ipfs_sync_interval": "2m10s",
            "replication_factor": -1,
            "monitor_ping_interval": "15s",
        },
        "consensus": {"raft": {"heartbeat_timeout": "1s", "election_timeout": "1s"}},
        "api": {"restapi": {"listen_multiaddress": "/ip4/127.0.0.1/tcp/9094",
                            "basic_auth_credentials": None}},
        "ipfs_connector": {"ipfshttp": {"connect_swarms_delay": "7s"}},
        "monitor": {"monbasic": {"check_interval": "15s"}},
        "informer": {"disk": {"metric_ttl": "30s", "metric_type": "reposize"},
                     "numpin": {"metric_ttl": "10s"}},
    })
    config = ServiceConfig.load(folder)
    assert config.ipfshttp.connect_swarms_delay == Duration.parse("7s")
    assert config.disk_informer.metric_type == "reposize"
    assert startup_warnings(config) and "NOT protected" in startup_warnings(config)[0]


# --- load errors -------------------------------------------------------------------


def test_missing_file_says_to_run_init(folder):
    with pytest.raises(ConfigNotFound) as info:
        ServiceConfig.load(folder)
    assert str(info.value) == (
        f'{config_path(folder)} does not exist; run "ipfs-cluster-service -c {folder} init" first'
    )


def test_invalid_json(folder):
    os.makedirs(folder)
    with open(config_path(folder), "w") as f:
        f.write('{"cluster": ')
    with pytest.raises(ConfigError, match=r"ends before its JSON is complete \(is it truncated\?\): "
                       r"Expecting value at line 1 column 13; fix it or restore it from a backup$"):
        ServiceConfig.load(folder)
    with open(config_path(folder), "w") as f:
        f.write('{"cluster": ]}')
    with pytest.raises(ConfigError, match=r"is not valid JSON: Expecting value at line 1 column 13;"):
        ServiceConfig.load(folder)
    write_json(folder, [])
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        ServiceConfig.load(folder)


def test_unknown_keys_at_every_level(folder, written):
    err = load_error(folder, lambda o: o.update(foo={}))
    assert str(err).startswith('unknown key "foo"; remove it (valid keys: cluster, consensus, api,')
    err = load_error(folder, lambda o: o["consensus"].update(crdt={}))
    assert str(err) == 'unknown key "consensus.crdt"; remove it (valid keys: consensus.raft)'
    ServiceConfig.init(folder, force=True)
    err = load_error(folder, lambda o: o["consensus"]["raft"].update(foo=1))
    assert str(err).startswith('unknown key "consensus.raft.foo"; remove it (valid keys: data_folder,')


def test_group_must_be_an_object(folder, written):
    err = load_error(folder, lambda o: o.update(consensus=[]))
    assert str(err) == 'consensus: [] is not a JSON object (expected {"raft": {...}})'


def test_cluster_section_is_required(folder, written):
    err = load_error(folder, lambda o: o.pop("cluster"))
    assert str(err).startswith("cluster: missing")


def test_errors_of_sections_surface_on_load(folder, written):
    err = load_error(folder, lambda o: o["consensus"]["raft"].update(heartbeat_timeout="1x"))
    assert str(err) == 'consensus.raft.heartbeat_timeout: "1x" is not a duration (examples: "1s", "500ms", "1m0s")'
    other = Identity.generate()
    ServiceConfig.init(folder, force=True)
    with pytest.raises(IdentityMismatch):
        obj = read_json(folder)
        obj["cluster"]["id"] = other.peer_id
        write_json(folder, obj)
        ServiceConfig.load(folder)


def test_ssl_files_must_exist_relative_to_the_folder(folder, written):
    def use_tls(obj):
        obj["api"]["restapi"].update(ssl_cert_file="tls/cert.pem", ssl_key_file="/nonexistent/key.pem")

    err = load_error(folder, use_tls)
    assert str(err) == (
        f'api.restapi.ssl_cert_file: "tls/cert.pem" is not a readable file '
        f"(looked for {os.path.join(folder, 'tls', 'cert.pem')})"
    )
    os.makedirs(os.path.join(folder, "tls"))
    for name in ("cert.pem", "key.pem"):
        with open(os.path.join(folder, "tls", name), "w") as f:
            f.write("x")
    obj = read_json(folder)
    obj["api"]["restapi"].update(ssl_cert_file="tls/cert.pem", ssl_key_file="tls/key.pem")
    write_json(folder, obj)
    config = ServiceConfig.load(folder)
    assert config.resolve_path(config.restapi.ssl_key_file) == os.path.join(folder, "tls", "key.pem")


# --- folders and paths -------------------------------------------------------------


def test_config_folder_rules(tmp_path):
    env = {"HOME": str(tmp_path / "home"), "IPFS_CLUSTER_PATH": str(tmp_path / "env")}
    assert config_folder(str(tmp_path / "flag"), env) == str(tmp_path / "flag")
    assert config_folder(None, env) == str(tmp_path / "env")
    assert config_folder(None, {"HOME": str(tmp_path / "home")}) == str(tmp_path / "home" / ".ipfs-cluster")
    assert config_folder("relative", {}) == os.path.join(os.getcwd(), "relative")


def test_resolve_path():
    assert resolve_path("/etc/cluster", "cert.pem") == "/etc/cluster/cert.pem"
    assert resolve_path("/etc/cluster", "../x/cert.pem") == "/etc/x/cert.pem"
    assert resolve_path("/etc/cluster", "/abs/cert.pem") == "/abs/cert.pem"


def test_raft_data_folder(folder, written):
    assert written.raft_data_folder == os.path.join(folder, "ipfs-cluster-data")
    relative = attrs.evolve(written, raft=attrs.evolve(written.raft, data_folder="raft"))
    assert relative.raft_data_folder == os.path.join(folder, "raft")
    absolute = attrs.evolve(written, raft=attrs.evolve(written.raft, data_folder="/data/raft"))
    assert absolute.raft_data_folder == "/data/raft"


def test_write_atomically_replaces_and_cleans_up(tmp_path):
    path = str(tmp_path / "f.json")
    write_atomically(path, b"one")
    write_atomically(path, b"two", mode=0o640)
    with open(path, "rb") as f:
        assert f.read() == b"two"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert os.listdir(tmp_path) == ["f.json"]
    with pytest.raises(TypeError):
        write_atomically(path, "not bytes")
    assert os.listdir(tmp_path) == ["f.json"]
    with open(path, "rb") as f:
        assert f.read() == b"two"


def test_startup_warnings(folder):
    config = ServiceConfig.init(folder)
    assert startup_warnings(config) == []
    warnings = startup_warnings(ServiceConfig.default(folder, secret=b""))
    assert len(warnings) == 1 and "cluster.secret is empty" in warnings[0]
    os.chmod(config.path, 0o644)
    assert startup_warnings(config) == [
        f"{config.path} is open to other users (mode 0644) although it holds the private "
        f"key and the cluster secret; run: chmod 600 {config.path}"
    ]
