"""Every service.json section: defaults, JSON round trips, validation errors."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from ipfscluster.config.base import (
    BoolKind,
    DurationKind,
    IntKind,
    ListKind,
    MultiaddrKind,
    Section,
    StrKind,
    kind_of,
)
from ipfscluster.config.cluster import ClusterConfig, SecretKind, parse_secret
from ipfscluster.config.durations import Duration
from ipfscluster.config.informer import DiskInformerConfig, NumpinInformerConfig
from ipfscluster.config.ipfshttp import IPFSHTTPConfig
from ipfscluster.config.monitor import MonBasicConfig
from ipfscluster.config.pintracker import MapTrackerConfig
from ipfscluster.config.raft import RaftConfig
from ipfscluster.config.restapi import CredentialsKind, RestAPIConfig
from ipfscluster.config.service import SECTIONS as SERVICE_SECTIONS
from ipfscluster.config.service import ServiceConfig
from ipfscluster.errors import ConfigError, IdentityMismatch
from ipfscluster.identity import Identity
from ipfscluster.multiaddr import Multiaddr

ID_A = Identity.generate()
ID_B = Identity.generate()

COMPONENT_SECTIONS = [
    RaftConfig,
    RestAPIConfig,
    IPFSHTTPConfig,
    MapTrackerConfig,
    MonBasicConfig,
    DiskInformerConfig,
    NumpinInformerConfig,
]
ALL_SECTIONS = [ClusterConfig, *COMPONENT_SECTIONS]


def cluster_json(**changes):
    base = ClusterConfig.default(identity=ID_A, secret=b"\x01" * 32).to_json()
    base.update(changes)
    return base


def minimal_json(cls):
    """The smallest valid JSON object of a section."""
    if cls is ClusterConfig:
        return {"id": ID_A.peer_id, "private_key": ID_A.private_key_b64}
    return {}


def settings_of(cls):
    return [(a.name, kind_of(cls, a.name)) for a in attrs.fields(cls) if a.name in cls.keys()]


def error_for(cls, **values) -> ConfigError:
    obj = minimal_json(cls)
    obj.update(values)
    with pytest.raises(ConfigError) as info:
        cls.from_json(obj)
    return info.value


# --- defaults (reference §3 and §3.6) ----------------------------------------------

EXPECTED_DEFAULTS = {
    RaftConfig: {
        "wait_for_leader_timeout": "15s",
        "network_timeout": "10s",
        "commit_retries": 1,
        "commit_retry_delay": "200ms",
        "heartbeat_timeout": "1s",
        "election_timeout": "1s",
        "commit_timeout": "50ms",
        "max_append_entries": 64,
        "trailing_logs": 10240,
        "snapshot_interval": "2m0s",
        "snapshot_threshold": 8192,
        "leader_lease_timeout": "500ms",
    },
    RestAPIConfig: {
        "listen_multiaddress": "/ip4/127.0.0.1/tcp/9094",
        "read_timeout": "30s",
        "read_header_timeout": "5s",
        "write_timeout": "1m0s",
        "idle_timeout": "2m0s",
        "basic_auth_credentials": None,
    },
    IPFSHTTPConfig: {
        "proxy_listen_multiaddress": "/ip4/127.0.0.1/tcp/9095",
        "node_multiaddress": "/ip4/127.0.0.1/tcp/5001",
        "connect_swarms_delay": "30s",
        "proxy_read_timeout": "10m0s",
        "proxy_read_header_timeout": "5s",
        "proxy_write_timeout": "10m0s",
        "proxy_idle_timeout": "1m0s",
        "pin_timeout": "2m0s",
    },
    MapTrackerConfig: {
        "pinning_timeout": "1h0m0s",
        "unpinning_timeout": "5m0s",
        "max_pin_queue_size": 4096,
        "concurrent_pins": 1,
    },
    MonBasicConfig: {"check_interval": "15s"},
    DiskInformerConfig: {"metric_ttl": "30s", "metric_type": "freespace"},
    NumpinInformerConfig: {"metric_ttl": "10s"},
}


@pytest.mark.parametrize("cls", COMPONENT_SECTIONS, ids=lambda c: c.PATH)
def test_component_defaults_are_the_reference_ones(cls):
    assert cls.default().to_json() == EXPECTED_DEFAULTS[cls]
    assert list(cls.default().to_json()) == list(EXPECTED_DEFAULTS[cls])
    # absent keys take the defaults
    assert cls.from_json({}) == cls.default()


def test_cluster_defaults():
    section = ClusterConfig.default(identity=ID_A, secret=b"\xab" * 32)
    data = section.to_json()
    assert data == {
        "id": ID_A.peer_id,
        "peername": section.peername,
        "private_key": ID_A.private_key_b64,
        "secret": "ab" * 32,
        "peers": [],
        "bootstrap": [],
        "leave_on_shutdown": False,
        "listen_multiaddress": "/ip4/0.0.0.0/tcp/9096",
        "state_sync_interval": "1m0s",
        "ipfs_sync_interval": "2m10s",
        "replication_factor_min": -1,
        "replication_factor_max": -1,
        "monitor_ping_interval": "15s",
    }
    assert section.peername  # the host name
    assert section.peer_id == ID_A.peer_id
    assert section.peer_id.startswith("12D3KooW")


def test_cluster_default_makes_a_new_identity_and_secret():
    one, two = ClusterConfig.default(), ClusterConfig.default()
    assert one.peer_id != two.peer_id
    assert len(one.secret) == 32 and one.secret != two.secret
    assert ClusterConfig.default(secret=b"").secret == b""


def test_raft_data_folder_is_written_only_when_set():
    assert "data_folder" not in RaftConfig().to_json()
    section = RaftConfig.from_json({"data_folder": "/var/lib/raft"})
    assert section.to_json()["data_folder"] == "/var/lib/raft"


# --- round trips -------------------------------------------------------------------

LISTEN = ["/ip4/127.0.0.1/tcp/9096", "/ip4/0.0.0.0/tcp/1", "/ip6/::1/tcp/4001"]
CONNECT = [*LISTEN, "/dns4/example.com/tcp/9096", "/dns6/example.com/tcp/1"]


def kind_strategy(kind):
    if isinstance(kind, DurationKind):
        return st.integers(kind.minimum.nanoseconds, 10**15).map(Duration)
    if isinstance(kind, IntKind):
        return st.integers(kind.minimum, 10**9)
    if isinstance(kind, BoolKind):
        return st.booleans()
    if isinstance(kind, StrKind):
        if kind.choices:
            return st.sampled_from(kind.choices)
        return st.text(min_size=0, max_size=20)
    if isinstance(kind, MultiaddrKind):
        addresses = st.sampled_from(LISTEN if kind.use == "listen" else CONNECT)
        if kind.needs_peer_id:
            return addresses.map(lambda a: Multiaddr.parse(f"{a}/p2p/{ID_B.peer_id}"))
        return addresses.map(Multiaddr.parse)
    if isinstance(kind, ListKind):
        return st.lists(kind_strategy(kind.item), max_size=3).map(tuple)
    if isinstance(kind, SecretKind):
        return st.one_of(st.just(b""), st.binary(min_size=32, max_size=32))
    if isinstance(kind, CredentialsKind):
        return st.one_of(
            st.none(),
            st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), min_size=1,
                            max_size=3),
        )
    raise AssertionError(f"no strategy for {kind!r}")


@st.composite
def sections(draw, cls):
    values = {}
    for name, kind in settings_of(cls):
        values[name] = draw(kind_strategy(kind))
    if cls is ClusterConfig:
        values["id"], values["private_key"] = ID_A.peer_id, ID_A.private_key_b64
        factor = draw(st.one_of(st.just((-1, -1)), st.tuples(st.integers(1, 5), st.integers(5, 9))))
        values["replication_factor_min"], values["replication_factor_max"] = factor
    if cls is RestAPIConfig and bool(values["ssl_cert_file"]) != bool(values["ssl_key_file"]):
        values["ssl_key_file"] = values["ssl_cert_file"]
    return cls(**values)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_section_json_round_trip(data):
    cls = data.draw(st.sampled_from(ALL_SECTIONS))
    section = data.draw(sections(cls))
    encoded = json.loads(json.dumps(section.to_json()))
    assert cls.from_json(encoded) == section
    assert cls.from_json(encoded).to_json() == encoded


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_whole_service_config_round_trip(data):
    config = ServiceConfig(
        folder="/peer",
        **{name: data.draw(sections(cls)) for name, cls in SERVICE_SECTIONS.items()},
    )
    encoded = json.loads(json.dumps(config.to_json(), indent=2))
    assert ServiceConfig.from_json(encoded, "/peer") == config


@pytest.mark.parametrize("cls", ALL_SECTIONS, ids=lambda c: c.PATH)
def test_durations_written_back_in_go_form(cls):
    names = [n for n, k in settings_of(cls) if isinstance(k, DurationKind)]
    obj = minimal_json(cls)
    obj.update({name: "90000ms" for name in names})
    data = cls.from_json(obj).to_json()
    assert all(data[name] == "1m30s" for name in names)


# --- validation errors -------------------------------------------------------------


def every(kind_type):
    return [
        (cls, name)
        for cls in ALL_SECTIONS
        for name, kind in settings_of(cls)
        if isinstance(kind, kind_type)
    ]


@pytest.mark.parametrize("cls,name", every(DurationKind), ids=str)
def test_bad_duration_names_key_and_value(cls, name):
    err = error_for(cls, **{name: "1x"})
    key = f"{cls.PATH}.{name}"
    assert str(err) == f'{key}: "1x" is not a duration (examples: "1s", "500ms", "1m0s")'
    assert (err.key, err.value) == (key, "1x")
    assert "\n" not in str(err)


@pytest.mark.parametrize("cls,name", every(DurationKind), ids=str)
def test_negative_duration_refused(cls, name):
    err = error_for(cls, **{name: "-1s"})
    assert str(err).startswith(f'{cls.PATH}.{name}: "-1s" is too short')


def test_zero_duration_refused_where_it_makes_no_sense():
    assert "must be longer than 0s" in str(error_for(RaftConfig, heartbeat_timeout="0s"))
    assert IPFSHTTPConfig.from_json({"connect_swarms_delay": "0s"}).connect_swarms_delay == Duration(0)
    assert RestAPIConfig.from_json({"write_timeout": "0s"}).write_timeout == Duration(0)


@pytest.mark.parametrize("cls,name", every(IntKind), ids=str)
def test_bad_integer(cls, name):
    for bad in ("3", 1.5, True, None):
        err = error_for(cls, **{name: bad})
        assert str(err).startswith(f"{cls.PATH}.{name}: {json.dumps(bad)} is not an integer")


def test_integer_below_minimum():
    err = error_for(MapTrackerConfig, concurrent_pins=0)
    assert str(err) == "pin_tracker.maptracker.concurrent_pins: 0 is too small; it must be at least 1"


def test_bad_boolean_and_choice():
    assert str(error_for(ClusterConfig, leave_on_shutdown="yes")) == (
        'cluster.leave_on_shutdown: "yes" is not a boolean (expected true or false)'
    )
    assert str(error_for(DiskInformerConfig, metric_type="latency")) == (
        'informer.disk.metric_type: "latency" is not valid (expected one of "freespace", "reposize")'
    )


@pytest.mark.parametrize("cls", ALL_SECTIONS, ids=lambda c: c.PATH)
def test_unknown_key_is_named(cls):
    err = error_for(cls, foo=1)
    assert str(err).startswith(f'unknown key "{cls.PATH}.foo"; remove it (valid keys: ')
    for name in cls.keys():
        assert name in str(err)
    assert err.key == f"{cls.PATH}.foo"


@pytest.mark.parametrize("cls", ALL_SECTIONS, ids=lambda c: c.PATH)
def test_section_must_be_an_object(cls):
    with pytest.raises(ConfigError, match=f"^{cls.PATH}: \\[\\] is not a JSON object"):
        cls.from_json([])


@pytest.mark.parametrize(
    "cls,name",
    [(c, n) for c, n in every(MultiaddrKind)] + [(ClusterConfig, "peers"), (ClusterConfig, "bootstrap")],
    ids=str,
)
def test_bad_multiaddr_names_key_and_value(cls, name):
    value = ["/ip4/1.2.3/tcp/9096"] if name in ("peers", "bootstrap") else "/ip4/1.2.3/tcp/9096"
    err = error_for(cls, **{name: value})
    key = f"{cls.PATH}.{name}" + ("[0]" if isinstance(value, list) else "")
    assert str(err).startswith(f'{key}: "/ip4/1.2.3/tcp/9096" is not a valid multiaddress')
    assert err.key == key


def test_peers_need_a_peer_id():
    err = error_for(ClusterConfig, peers=["/ip4/127.0.0.1/tcp/9096"])
    assert str(err).startswith('cluster.peers[0]: "/ip4/127.0.0.1/tcp/9096" has no peer ID')
    with pytest.raises(ConfigError, match="is not a list"):
        ClusterConfig.from_json(cluster_json(bootstrap="/ip4/127.0.0.1/tcp/9096"))


@pytest.mark.parametrize(
    "cls,name,value,message",
    [
        (ClusterConfig, "listen_multiaddress", "/ip4/0.0.0.0/udp/9096",
         "cannot be used to listen: it needs an IP address or DNS name and a /tcp/ port"),
        (RestAPIConfig, "listen_multiaddress", "/dns4/example.com/tcp/9094",
         "cannot be used to listen: use an IP address"),
        (IPFSHTTPConfig, "node_multiaddress", "/ip4/127.0.0.1/udp/5001",
         "cannot be used to connect: it needs an IP address or DNS name and a /tcp/ port"),
    ],
)
def test_multiaddr_must_fit_its_use(cls, name, value, message):
    err = error_for(cls, **{name: value})
    assert str(err).startswith(f'{cls.PATH}.{name}: "{value}" {message}')


def test_node_multiaddress_may_be_a_dns_name():
    section = IPFSHTTPConfig.from_json({"node_multiaddress": "/dns4/ipfs.local/tcp/5001"})
    assert section.node_multiaddress.client_endpoint_string() == "tcp:host=ipfs.local:port=5001"


def test_peers_accept_ipfs_alias():
    addr = f"/ip4/10.0.0.1/tcp/9096/ipfs/{ID_B.peer_id}"
    section = ClusterConfig.from_json(cluster_json(peers=[addr]))
    assert section.peers[0].peer_id == ID_B.peer_id


# --- cluster specifics -------------------------------------------------------------


@pytest.mark.parametrize(
    "text,message",
    [
        ("abc", "the secret is 3 hex characters, an odd number"),
        ("ab" * 16, "the secret is 16 bytes (32 hex characters)"),
        ("ab" * 33, "the secret is 33 bytes (66 hex characters)"),
        ("zz" * 32, "the secret (64 characters) is not hexadecimal"),
    ],
)
def test_bad_secret_gives_its_length(text, message):
    err = error_for(ClusterConfig, secret=text)
    assert str(err) == (
        f"cluster.secret: {message}; it must be 32 bytes written as 64 hex characters, or empty"
    )
    assert text not in str(err)  # the secret is never echoed
    assert err.key == "cluster.secret"


def test_secret_forms():
    assert parse_secret("") == b""
    assert parse_secret("AB" * 32) == b"\xab" * 32
    section = ClusterConfig.from_json(cluster_json(secret="AB" * 32))
    assert section.to_json()["secret"] == "ab" * 32
    assert ClusterConfig.from_json(cluster_json(secret="")).secret == b""
    with pytest.raises(ConfigError, match="^CLUSTER_SECRET: the secret is 2 bytes"):
        parse_secret("abcd", key="CLUSTER_SECRET")
    with pytest.raises(ConfigError, match="cluster.secret"):
        attrs.evolve(ClusterConfig.from_json(cluster_json()), secret=b"short")


def test_id_must_match_private_key():
    with pytest.raises(IdentityMismatch) as info:
        ClusterConfig.from_json(cluster_json(id=ID_B.peer_id))
    assert str(info.value).startswith(f"cluster.id {ID_B.peer_id} does not match cluster.private_key")
    assert info.value.key == "cluster.id"
    assert isinstance(info.value, ConfigError)


def test_bad_id_and_bad_private_key():
    err = error_for(ClusterConfig, id="QmNotAPeer")
    assert str(err).startswith('cluster.id: "QmNotAPeer" is not a valid peer ID')
    err = error_for(ClusterConfig, private_key="bm90IGEga2V5")
    assert str(err).startswith("cluster.private_key: the private key cannot be decoded")
    assert "bm90IGEga2V5" not in str(err)


@pytest.mark.parametrize("name", ["id", "private_key"])
def test_identity_is_required(name):
    obj = minimal_json(ClusterConfig)
    del obj[name]
    with pytest.raises(ConfigError, match=f"^cluster.{name}: missing"):
        ClusterConfig.from_json(obj)


@pytest.mark.parametrize(
    "rmin,rmax,message",
    [
        (2, 1, "cluster.replication_factor_min: 2 is larger than cluster.replication_factor_max (1)"),
        (-1, 3, "cluster.replication_factor_min (-1) and cluster.replication_factor_max (3) disagree"),
        (3, -1, "cluster.replication_factor_min (3) and cluster.replication_factor_max (-1) disagree"),
        (-2, -1, "cluster.replication_factor_min: -2 is too small; it must be at least -1"),
        (1, -5, "cluster.replication_factor_max: -5 is too small; it must be at least -1"),
    ],
)
def test_bad_replication_factors(rmin, rmax, message):
    err = error_for(ClusterConfig, replication_factor_min=rmin, replication_factor_max=rmax)
    assert str(err).startswith(message)


def test_replication_factor_zero_means_everywhere():
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        section = ClusterConfig.from_json(cluster_json(replication_factor_min=0, replication_factor_max=0))
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert (section.replication_factor_min, section.replication_factor_max) == (-1, -1)
    warned = [formatEvent(e) for e in events if e.get("log_namespace") == "config"]
    assert warned == [
        f"cluster.{name} is 0, which is not valid; using -1 (pin on every peer)"
        for name in ("replication_factor_min", "replication_factor_max")
    ]
    assert all(e["log_level"] == LogLevel.warn for e in events if e.get("log_namespace") == "config")
    with pytest.raises(ConfigError, match="is not valid; use -1"):
        attrs.evolve(section, replication_factor_min=0)


def test_old_replication_factor_key_sets_both():
    obj = minimal_json(ClusterConfig)
    obj["replication_factor"] = 3
    section = ClusterConfig.from_json(obj)
    assert (section.replication_factor_min, section.replication_factor_max) == (3, 3)
    assert "replication_factor" not in section.to_json()
    obj["replication_factor_max"] = 4
    with pytest.raises(ConfigError, match="^cluster.replication_factor: the old key"):
        ClusterConfig.from_json(obj)
    with pytest.raises(ConfigError, match='^cluster.replication_factor: "x" is not an integer'):
        ClusterConfig.from_json({**minimal_json(ClusterConfig), "replication_factor": "x"})


# --- restapi specifics -------------------------------------------------------------


def test_basic_auth_credentials():
    assert RestAPIConfig.from_json({"basic_auth_credentials": None}).basic_auth_credentials is None
    section = RestAPIConfig.from_json({"basic_auth_credentials": {"admin": "s3cret"}})
    assert section.basic_auth_credentials == {"admin": "s3cret"}
    assert section.to_json()["basic_auth_credentials"] == {"admin": "s3cret"}
    err = error_for(RestAPIConfig, basic_auth_credentials={})
    assert str(err).startswith("api.restapi.basic_auth_credentials: {} is empty; set it to null")
    assert "is not valid" in str(error_for(RestAPIConfig, basic_auth_credentials="admin:pw"))
    assert "user 'admin'" in str(error_for(RestAPIConfig, basic_auth_credentials={"admin": 1}))


def test_ssl_files_both_or_none():
    err = error_for(RestAPIConfig, ssl_cert_file="cert.pem")
    assert str(err).startswith("api.restapi.ssl_key_file: missing; HTTPS needs both")
    section = RestAPIConfig.from_json({"ssl_cert_file": "c.pem", "ssl_key_file": "k.pem"})
    assert section.tls_enabled
    assert not RestAPIConfig().tls_enabled


def test_http_listen_multiaddress_alias():
    section = RestAPIConfig.from_json({"http_listen_multiaddress": "/ip4/127.0.0.1/tcp/1234"})
    assert str(section.listen_multiaddress) == "/ip4/127.0.0.1/tcp/1234"
    assert "http_listen_multiaddress" not in section.to_json()
    with pytest.raises(ConfigError, match="keep only one of them"):
        RestAPIConfig.from_json(
            {"http_listen_multiaddress": "/ip4/127.0.0.1/tcp/1", "listen_multiaddress": "/ip4/127.0.0.1/tcp/2"}
        )
    with pytest.raises(ConfigError, match="^api.restapi.http_listen_multiaddress: 5 is not"):
        RestAPIConfig.from_json({"http_listen_multiaddress": 5})


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="^consensus.raft.heartbeat_timeout"):
        RaftConfig(heartbeat_timeout="1s")
    with pytest.raises(ConfigError, match="^pin_tracker.maptracker.concurrent_pins: 0 is too small"):
        attrs.evolve(MapTrackerConfig(), concurrent_pins=0)


def test_every_section_is_a_frozen_attrs_section():
    for cls in ALL_SECTIONS:
        assert issubclass(cls, Section)
        assert attrs.has(cls)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        RaftConfig().commit_retries = 5
