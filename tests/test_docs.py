"""The documentation against the code.

- The generated references (``docs/_ext/ipfscluster_docs.py``) cover every
  ``service.json`` key with the default the code writes, every command of
  ``ipfs-cluster-service`` (``state`` subcommands included) and of
  ``ipfs-cluster-ctl``, and every peer RPC command; the generator refuses a key
  that has no description.
- The hand-written pages cover what the code serves: every REST route of the
  Klein app in ``docs/rest-api.rst``, every ctl command in ``docs/ctl.rst``, and
  the TLS/secret messages of ``ipfscluster/rpc/tls.py`` in the troubleshooting
  page.
- The whole site builds with ``sphinx-build -W`` (warnings are errors; slow).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


def _load_ext():
    spec = importlib.util.spec_from_file_location("ipfscluster_docs", os.path.join(DOCS, "_ext", "ipfscluster_docs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ext = _load_ext()


def _read(name: str) -> str:
    with open(os.path.join(DOCS, name), encoding="utf-8") as f:
        return f.read()


# --- configuration reference ----------------------------------------------------------


def _all_keys() -> list[str]:
    from ipfscluster.config.service import SECTIONS

    return [f"{cls.PATH}.{name}" for cls in SECTIONS.values() for name in cls.keys()]


def test_config_reference_lists_every_key_once():
    text = ext.config_reference()
    keys = _all_keys()
    assert len(keys) > 40  # every section, not an empty list
    for key in keys:
        assert text.count(f"\n``{key}``\n") == 1, key


def test_config_reference_defaults_are_the_code_defaults():
    from ipfscluster.config.service import SECTIONS, ServiceConfig

    written = ServiceConfig.default("/nonexistent").to_json()
    text = ext.config_reference()
    checked = 0
    for cls in SECTIONS.values():
        section = written
        for part in cls.PATH.split("."):
            section = section[part]
        for name in cls.keys():
            if name in ("id", "private_key", "secret", "peername") or name not in section:
                continue
            block = text.split(f"\n``{cls.PATH}.{name}``\n", 1)[1].split("\n\n.. _config", 1)[0]
            expected = json.dumps(section[name], ensure_ascii=False)
            assert f":default: ``{expected}``" in block, (cls.PATH, name, block)
            checked += 1
    assert checked > 35


def test_config_reference_describes_the_validators():
    text = ext.config_reference()

    def block(key):
        return text.split(f"\n``{key}``\n", 1)[1].split("\n\n.. _config", 1)[0]

    assert "``0s`` allowed" in block("api.restapi.read_timeout")
    assert "longer than ``0s``" in block("consensus.raft.heartbeat_timeout")
    assert "an integer ≥ 1" in block("pin_tracker.maptracker.concurrent_pins")
    assert "an integer ≥ -1" in block("cluster.replication_factor_min")
    assert '``"freespace"``, ``"reposize"``' in block("informer.disk.metric_type")
    assert "``/p2p/<peer ID>``" in block("cluster.peers")
    assert "64 hexadecimal characters" in block("cluster.secret")
    assert "``init`` writes a new random value" in block("cluster.secret")
    assert "required" in block("cluster.id")
    assert "the machine's host name" in block("cluster.peername")
    assert "left out of the file while empty" in block("api.restapi.ssl_cert_file")


@pytest.mark.parametrize(
    "table, drop, add",
    [
        ("KEY_HELP", "consensus.raft.commit_timeout", None),  # a key without a description
        ("KEY_HELP", None, "cluster.gone_key"),  # a description of a key that does not exist
        ("SECTION_HELP", "informer.numpin", None),  # a section without a description
    ],
)
def test_config_reference_refuses_a_table_out_of_step(monkeypatch, table, drop, add):
    entries = dict(getattr(ext, table))
    if drop:
        del entries[drop]
    if add:
        entries[add] = "removed long ago"
    monkeypatch.setattr(ext, table, entries)
    with pytest.raises(ext.DocsDriftError, match=re.escape(drop or add)):
        ext.config_reference()


def test_example_config_is_a_complete_loadable_file():
    from ipfscluster.config.service import ServiceConfig

    body = ext.example_config().split("\n", 2)[2]
    data = json.loads(body)
    assert data["cluster"]["secret"] == "<64 hex characters>"
    # with a real identity and secret put back, the example is a valid file
    real = ServiceConfig.default("/nonexistent").to_json()
    for key in ("id", "private_key", "secret", "peername"):
        data["cluster"][key] = real["cluster"][key]
    assert ServiceConfig.from_json(data, "/nonexistent").to_json() == real


# --- command references ---------------------------------------------------------------


def test_service_reference_lists_every_command_and_flag():
    from ipfscluster import service_cli, state_cli

    text = ext.service_reference()
    commands = [c for c in service_cli.COMMANDS if c != "h"]
    assert "daemon" in commands and "state" in commands
    for command in commands:
        assert f"``ipfs-cluster-service {command}``" in text, command
    for sub in state_cli.SUBCOMMANDS:
        assert f"``ipfs-cluster-service state {sub}``" in text, sub
    for flag in ("--config FOLDER", "--loglevel LEVEL", "--bootstrap MULTIADDR", "--custom-secret",
                 "--upgrade", "--base-port P", "--file FILE"):
        assert flag in text, flag


def test_twistd_reference_lists_every_plugin_option():
    from ipfscluster import tap

    text = ext.twistd_reference()
    for option in [o[0] for o in tap.Options.optParameters] + [o[0] for o in tap.Options.optFlags]:
        assert f"--{option}" in text, option


def _ctl_paths() -> list[str]:
    import io

    from ipfscluster.ctl import main as ctl_main

    parser = ctl_main.build_parser(io.StringIO())
    return [p[len(ctl_main.PROG) + 1:] for p in ctl_main.command_paths(parser)]


def test_ctl_reference_lists_every_command():
    text = ext.ctl_reference()
    paths = _ctl_paths()
    assert {"pin add", "peers rm", "health graph", "status"} <= set(paths)
    for path in paths:
        assert f"``ipfs-cluster-ctl {path}``" in text, path
    for option in ("--replication-min", "--wait-timeout", "--basic-auth USER[:PASS]", "--no-check-certificate"):
        assert option in text, option


def test_the_ctl_guide_mentions_every_command():
    text = _read("ctl.rst")
    for path in _ctl_paths():
        assert f"``{path}" in text, path


def test_rpc_reference_lists_every_command():
    from ipfscluster.rpc import commands

    text = ext.rpc_reference()
    names = [n.decode() for n in commands.all_commands()]
    assert "Cluster.Pin" in names and "Raft.Message" in names
    for name in names:
        assert f"``{name}``" in text, name
    assert "``IncompatibleProtocol``" in text  # RPC.Hello's declared error


# --- REST API ----------------------------------------------------------------------------


def _doc_routes(text: str) -> dict[str, list[str]]:
    """``"METHOD /path"`` (placeholders as ``{}``) → the doc lines naming it."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        for method, path in re.findall(r"``(GET|POST|DELETE|PUT|PATCH) (/[^`\s]*)``", line):
            key = f"{method} {re.sub(r'{[^}]*}', '{}', path)}"
            found.setdefault(key, []).append(line)
    return found


def _code_routes():
    from ipfscluster.api.rest.server import RestAPI

    for rule in RestAPI.app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            options = []
            match = re.search(r"<any\(([^)]*)\):[^>]*>", rule.rule)
            path = rule.rule
            if match:
                options = match.group(1).split(",")
                path = path.replace(match.group(0), options[0])
            yield method, re.sub(r"<[^>]*>", "{}", path), options


def test_every_rest_route_is_in_the_rest_api_page():
    documented = _doc_routes(_read("rest-api.rst"))
    routes = list(_code_routes())
    assert len(routes) >= 20
    for method, path, options in routes:
        key = f"{method} {path}"
        assert key in documented, f"docs/rest-api.rst does not document {key}"
        for option in options[1:]:  # /pins/{ipfs|ipns|ipld}/...: every namespace named
            assert any(option in line for line in documented[key]), (key, option)


def test_route_check_catches_an_undocumented_route():
    documented = _doc_routes("``GET /pins/{cid}`` and ``POST /pins/{cid}/sync``")
    assert "GET /pins/{}" in documented and "POST /pins/{}/sync" in documented
    assert "DELETE /pins/{}" not in documented


# --- the guide against the code ------------------------------------------------------------


def test_troubleshooting_quotes_the_tls_and_secret_messages():
    from ipfscluster.rpc import tls

    text = " ".join(_read("troubleshooting.rst").split())
    code = "\n".join(_code_strings(f"ipfscluster/rpc/{m}.py") for m in ("tls", "protocol", "client"))
    assert tls._SECRET_HINT in text
    for fragment in (
        "is not signed by this cluster's CA",
        "the other peer does not accept our certificate",
        "presented a certificate chain of another cluster CA",
        "the other peer says our certificate expired",
        "the other side does not speak the cluster transport",
        "closed before the TLS handshake completed",
        "check the clocks of both machines, then restart that peer to renew it",
        "the address recorded for",
        "run the same ipfscluster release on every peer",
    ):
        assert fragment in text, fragment
        assert fragment in code, f"{fragment!r} is no longer in the code: update the page"
    start = _code_strings("ipfscluster/consensus/raft/consensus.py") + _code_strings("ipfscluster/stateops.py")
    for fragment in ("is set to join a cluster (cluster.bootstrap or --bootstrap, with an empty "
                     "cluster.peers) but its Raft data folder", "already holds a Raft log",
                     "cluster peers do not match raft peers", "could not obtain execution lock"):
        assert fragment in text, fragment
        assert fragment in start, f"{fragment!r} is no longer in the code: update the page"
    assert "cluster.secret is empty: the cluster RPC is NOT protected" in tls.EMPTY_SECRET_WARNING
    assert "cluster.secret is empty: the cluster RPC is NOT protected" in text


def _code_strings(path: str) -> str:
    """Every string literal of a module (adjacent literals joined, f-string fields
    as ``{}``), one per line: the messages as the code writes them."""
    import ast

    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
    return "\n".join(out)


def test_guide_covers_every_topic():
    pages = {name: _read(name).lower() for name in os.listdir(DOCS) if name.endswith(".rst")}
    site = " ".join(pages.values())
    for topic in ("installation", "service.json", "starting", "consensus", "shared state",
                  "local state", "ipfs state", "static membership", "bootstrap", "pinning",
                  "unpinning", "failover", "ipfs proxy", "composite cluster", "basic auth",
                  "https", "upgrad", "troubleshooting", "sandbox"):
        assert topic in site, topic
    index = pages["index.rst"]
    for page in ("installation", "configuration", "starting", "consensus", "pinning", "monitoring",
                 "ipfs-proxy", "security", "upgrading", "troubleshooting", "config-reference",
                 "commands", "rest-api", "architecture", "rpc-protocol"):
        assert f"\n   {page}\n" in index, page


# --- the Sphinx build -----------------------------------------------------------------------


def _sphinx(src, out, tmp_path):
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(src), str(out),
         "-d", str(tmp_path / "doctrees")],
        capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_toctree_directive_skips_absent_pages_and_collects_the_rest(tmp_path):
    pytest.importorskip("sphinx")
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {os.path.join(DOCS, '_ext')!r})\n"
        "extensions = ['ipfscluster_docs']\nroot_doc = 'index'\n"
    )
    (src / "index.rst").write_text(
        "Home\n====\n\n.. ipfscluster-toctree::\n   :caption: Guide\n\n   first\n   ?absent\n\n"
        ".. ipfscluster-toctree::\n   :caption: More\n   :rest:\n"
    )
    for name in ("first", "added-later"):
        (src / f"{name}.rst").write_text(f"{name}\n{'=' * len(name)}\n\nText.\n")
    result = _sphinx(src, tmp_path / "html", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    index = (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
    assert 'href="first.html"' in index and 'href="added-later.html"' in index
    assert "absent" not in index


@pytest.mark.slow
def test_sphinx_build_has_no_warnings(tmp_path):
    pytest.importorskip("sphinx")
    out = tmp_path / "html"
    result = _sphinx(DOCS, out, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    reference = (out / "config-reference.html").read_text(encoding="utf-8")
    for key in _all_keys():
        assert key in reference, key
    commands = (out / "commands.html").read_text(encoding="utf-8")
    assert "ipfs-cluster-service state export" in commands
    assert "ipfs-cluster-ctl pin add" in commands
    assert (out / "architecture.html").exists() and (out / "rpc-protocol.html").exists()
