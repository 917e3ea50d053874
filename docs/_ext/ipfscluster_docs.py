"""Reference pages generated from the code, so that they cannot drift from it.

A Sphinx extension (``extensions = ["ipfscluster_docs"]`` in ``docs/conf.py``) and
a small command-line tool.  Each reference is a pure function that returns
reStructuredText, built from the live objects of the package:

- :func:`config_reference`: every section class of ``service.json``
  (``ipfscluster.config.service.SECTIONS``): for each key its default (the JSON
  the section writes), its accepted values (read from the key's *kind*, the
  validator the loader runs) and a one-line description from :data:`KEY_HELP`.
  A key without a description, or a description of a key that does not exist,
  is an error: the build fails instead of publishing a stale page.
- :func:`service_reference`: ``ipfs-cluster-service`` from its argparse parsers
  (``_main_parser`` and ``_command_parser`` of :mod:`ipfscluster.service_cli`).
- :func:`twistd_reference`: the ``twistd ipfs-cluster`` options
  (:class:`ipfscluster.tap.Options`).
- :func:`ctl_reference`: ``ipfs-cluster-ctl`` from its argparse parser
  (:func:`ipfscluster.ctl.main.build_parser`), every command and subcommand.
- :func:`rpc_reference`: every AMP command between peers
  (:func:`ipfscluster.rpc.commands.all_commands`) with its arguments, response
  and declared errors.
- :func:`example_config`: a complete ``service.json`` with every default.

Directives: ``.. ipfscluster-reference:: config|service|twistd|ctl|rpc|example-config``.
Command line: ``python docs/_ext/ipfscluster_docs.py config`` prints the text.

The argparse walk reads ``parser._actions`` (argparse has no public API to list
the options of a parser); the standard library has kept that attribute stable
for as long as argparse has existed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys

import attrs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ipfscluster.config import base as config_base  # noqa: E402
from ipfscluster.config.cluster import SecretKind  # noqa: E402
from ipfscluster.config.durations import Duration  # noqa: E402
from ipfscluster.config.restapi import CredentialsKind  # noqa: E402
from ipfscluster.config.service import SECTIONS  # noqa: E402

#: One-line description of every ``service.json`` key, by dotted key.  The
#: generator fails on a key missing here and on an entry naming no key.
KEY_HELP: dict[str, str] = {
    # cluster
    "cluster.id": "This peer's ID (``12D3KooW…``), derived from ``private_key``; "
    "the two must belong together.",
    "cluster.peername": "A human-friendly name shown by ``id`` and ``peers ls``.",
    "cluster.private_key": "The peer's Ed25519 private key (base64, libp2p protobuf). "
    "Keep it secret: whoever holds it is this peer.",
    "cluster.secret": "The cluster secret shared by every peer; the peers' mutual TLS "
    "certificates are derived from it. Empty: the cluster RPC is unprotected.",
    "cluster.peers": "The other members of the cluster (multiaddresses with "
    "``/p2p/<peer ID>``). Kept up to date by the peer as members join and leave.",
    "cluster.bootstrap": "Peers to ask to join through when ``peers`` is empty "
    "(one is enough); cleared once the peer has joined.",
    "cluster.leave_on_shutdown": "Leave the cluster (remove this peer from the "
    "peerset) when the peer shuts down gracefully.",
    "cluster.listen_multiaddress": "Where the peer listens for other cluster peers "
    "(mutual TLS, AMP).",
    "cluster.state_sync_interval": "How often the peer compares the shared state "
    "with its local state and tracks or untracks what differs.",
    "cluster.ipfs_sync_interval": "How often the peer compares its local state "
    "with what the IPFS daemon has pinned (ipfs state).",
    "cluster.replication_factor_min": "Fewest peers that must pin a CID (``-1``: "
    "every peer). A pin fails when fewer peers are available.",
    "cluster.replication_factor_max": "Most peers that pin a CID (``-1``: every peer).",
    "cluster.monitor_ping_interval": "How often the peer sends its ``ping`` metric; "
    "a peer whose ping expires is considered down and its pins are re-allocated.",
    # consensus.raft
    "consensus.raft.data_folder": "Where Raft keeps its log, stable store and "
    "snapshots (empty: ``<config folder>/ipfs-cluster-data``).",
    "consensus.raft.wait_for_leader_timeout": "How long the peer waits at start for "
    "a Raft leader before it gives up and shuts down.",
    "consensus.raft.network_timeout": "Time limit of one call to another peer "
    "(dial included).",
    "consensus.raft.commit_retries": "How many times a failed commit is retried.",
    "consensus.raft.commit_retry_delay": "Pause between commit retries.",
    "consensus.raft.heartbeat_timeout": "Leader heartbeat period; a follower that "
    "hears nothing for this long (and ``election_timeout``) starts an election.",
    "consensus.raft.election_timeout": "Base election timeout (randomised between "
    "one and two times this value).",
    "consensus.raft.commit_timeout": "Longest a leader waits to batch proposals "
    "before replicating them.",
    "consensus.raft.max_append_entries": "Most log entries in one AppendEntries message.",
    "consensus.raft.trailing_logs": "Log entries kept after a snapshot so that "
    "slightly lagging followers catch up without a snapshot.",
    "consensus.raft.snapshot_interval": "How often the peer checks whether to take "
    "a snapshot.",
    "consensus.raft.snapshot_threshold": "New log entries since the last snapshot "
    "that trigger the next one.",
    "consensus.raft.leader_lease_timeout": "A leader that cannot reach a quorum for "
    "this long steps down (check-quorum).",
    # api.restapi
    "api.restapi.listen_multiaddress": "Where the REST API listens (``ipfs-cluster-ctl`` "
    "talks to it).",
    "api.restapi.ssl_cert_file": "HTTPS certificate (PEM); with ``ssl_key_file``. "
    "Relative paths are relative to the configuration folder.",
    "api.restapi.ssl_key_file": "HTTPS private key (PEM); with ``ssl_cert_file``.",
    "api.restapi.read_timeout": "Longest time to read a whole request (``0s``: none).",
    "api.restapi.read_header_timeout": "Longest time to read the request headers "
    "(``0s``: none).",
    "api.restapi.write_timeout": "Longest time to write a response (``0s``: none).",
    "api.restapi.idle_timeout": "How long an idle keep-alive connection stays open "
    "(``0s``: forever).",
    "api.restapi.basic_auth_credentials": "``null`` (no authentication) or "
    "``{\"user\": \"password\", …}``: HTTP basic authentication for every request.",
    "api.restapi.cors_allowed_origins": "CORS: origins allowed to call the API "
    "(default: every origin).",
    "api.restapi.cors_allowed_methods": "CORS: allowed methods (default: GET, POST, HEAD).",
    "api.restapi.cors_allowed_headers": "CORS: allowed request headers.",
    "api.restapi.cors_exposed_headers": "CORS: response headers exposed to scripts.",
    "api.restapi.max_body_size": "Largest ``POST /add`` body in bytes (0: 1 GiB).",
    # ipfs_connector.ipfshttp
    "ipfs_connector.ipfshttp.proxy_listen_multiaddress": "Where the IPFS proxy "
    "listens (point IPFS clients here instead of at the daemon).",
    "ipfs_connector.ipfshttp.node_multiaddress": "The IPFS daemon's RPC API (kubo's "
    "``Addresses.API``).",
    "ipfs_connector.ipfshttp.connect_swarms_delay": "After start, wait this long and "
    "then connect the IPFS daemons of all peers to each other (``0s``: at once).",
    "ipfs_connector.ipfshttp.proxy_read_timeout": "IPFS proxy: longest time to read "
    "a request (``0s``: none).",
    "ipfs_connector.ipfshttp.proxy_read_header_timeout": "IPFS proxy: longest time "
    "to read the request headers (``0s``: none).",
    "ipfs_connector.ipfshttp.proxy_write_timeout": "IPFS proxy: longest time to "
    "write a response (``0s``: none).",
    "ipfs_connector.ipfshttp.proxy_idle_timeout": "IPFS proxy: how long an idle "
    "keep-alive connection stays open (``0s``: forever).",
    "ipfs_connector.ipfshttp.pin_timeout": "Time limit of one ``pin/add`` call to "
    "the IPFS daemon.",
    # pin_tracker.maptracker
    "pin_tracker.maptracker.pinning_timeout": "How long one pin operation may take "
    "before its status becomes ``pin_error``.",
    "pin_tracker.maptracker.unpinning_timeout": "How long one unpin operation may "
    "take before its status becomes ``unpin_error``.",
    "pin_tracker.maptracker.max_pin_queue_size": "Pin/unpin operations in the "
    "queue at once. Pins beyond it wait as ``pin_queued`` and join the queue as "
    "it drains; an unpin beyond it is ``unpin_error`` (``unpin queue is full``).",
    "pin_tracker.maptracker.concurrent_pins": "Pin operations run at once "
    "(1: one at a time, the serialized queue).",
    # monitor.monbasic
    "monitor.monbasic.check_interval": "How often the monitor looks for expired "
    "metrics and raises alerts.",
    # informer
    "informer.disk.metric_ttl": "How long a disk metric is valid; it is sent every "
    "half of this.",
    "informer.disk.metric_type": "``freespace`` (allocate to the peers with most "
    "free space) or ``reposize`` (to the smallest repositories).",
    "informer.numpin.metric_ttl": "How long a pin-count metric is valid; it is sent "
    "every half of this.",
}


#: What each section configures, by section path (checked like :data:`KEY_HELP`).
SECTION_HELP: dict[str, str] = {
    "cluster": "The peer itself: its identity, the cluster secret, the members, the "
    "default replication factors and the periodic loops.",
    "consensus.raft": "The Raft consensus that replicates the shared state: timings, "
    "batching and snapshots.",
    "api.restapi": "The REST API that ``ipfs-cluster-ctl`` and other clients use.",
    "ipfs_connector.ipfshttp": "The connection to the IPFS daemon, and the IPFS proxy.",
    "pin_tracker.maptracker": "The local pin tracker: the queue of pin and unpin operations.",
    "monitor.monbasic": "The peer monitor, which stores metrics and raises alerts.",
    "informer.disk": "The disk informer (``--alloc disk-freespace`` or ``disk-reposize``).",
    "informer.numpin": "The pin-count informer (``--alloc numpin``).",
}


class DocsDriftError(Exception):
    """The code and the documentation tables disagree (the build stops)."""


# --- service.json ---------------------------------------------------------------------


def _settings(cls):
    return [a for a in attrs.fields(cls) if config_base._KIND in a.metadata]


def describe_kind(kind) -> str:
    """What a setting of ``kind`` accepts, in words (from the validator's parameters)."""
    if isinstance(kind, config_base.DurationKind):
        examples = "a Go duration (``500ms``, ``1m30s``, ``2h0m0s``)"
        if kind.minimum == Duration(0):
            return examples + "; ``0s`` allowed"
        if kind.minimum == Duration(1):
            return examples + " longer than ``0s``"
        return f"{examples} of at least ``{kind.minimum}``"
    if isinstance(kind, config_base.IntKind):
        return f"an integer ≥ {kind.minimum}"
    if isinstance(kind, config_base.BoolKind):
        return "``true`` or ``false``"
    if isinstance(kind, config_base.StrKind):
        if kind.choices:
            return "one of " + ", ".join(f"``{json.dumps(c)}``" for c in kind.choices)
        return "a string"
    if isinstance(kind, config_base.MultiaddrKind):
        what = "an IP address and TCP port to listen on" if kind.use == "listen" else (
            "an IP address or DNS name and a TCP port to dial")
        text = f"a multiaddress: {what} (``{kind.example}``)"
        if kind.needs_peer_id:
            text += ", ending in ``/p2p/<peer ID>``"
        return text
    if isinstance(kind, config_base.ListKind):
        return "a list of " + _plural(describe_kind(kind.item))
    if isinstance(kind, SecretKind):
        return "64 hexadecimal characters (32 bytes), or ``\"\"``"
    if isinstance(kind, CredentialsKind):
        return "``null`` or a non-empty object ``{\"user\": \"password\"}``"
    doc = (type(kind).__doc__ or "").strip().splitlines()
    if not doc:
        raise DocsDriftError(f"no description for the setting kind {type(kind).__name__}")
    return doc[0]


def _plural(text: str) -> str:
    for article in ("a ", "an "):
        if text.startswith(article):
            return "(each) " + text[len(article):]
    return text


_INIT_JSON: dict = {}


def _init_value(path: str, name: str):
    """The value ``init`` writes for a key (a fresh default configuration)."""
    if not _INIT_JSON:
        from ipfscluster.config.service import ServiceConfig

        _INIT_JSON.update(ServiceConfig.default("/nonexistent").to_json())
    node = _INIT_JSON
    for part in path.split("."):
        node = node[part]
    return node.get(name)


def _default_json(cls, attribute, kind):
    """(JSON text of the default or None, note) for one setting."""
    if attribute.metadata.get("required"):
        return None, "required; ``init`` writes a new one"
    default = attribute.default
    if isinstance(default, attrs.Factory):
        func = default.factory
        if getattr(func, "__name__", "") == "gethostname":
            return None, "the machine's host name"
        value = func()
    else:
        value = default
    dumped = kind.dump(value)
    notes = []
    if kind.omit_when_empty and not value:
        notes.append("left out of the file while empty")
    if _init_value(cls.PATH, attribute.name) not in (dumped, None):
        notes.append("``init`` writes a new random value")
    return json.dumps(dumped, ensure_ascii=False), "; ".join(notes)


def config_keys() -> list[str]:
    """Every dotted ``service.json`` key (``cluster.secret``, …), from the section classes."""
    return [f"{cls.PATH}.{name}" for cls in SECTIONS.values() for name in cls.keys()]


def _check_help() -> None:
    keys = set(config_keys()) | {cls.PATH for cls in SECTIONS.values()}
    documented = set(KEY_HELP) | set(SECTION_HELP)
    missing = sorted(keys - documented)
    stale = sorted(documented - keys)
    if missing or stale:
        raise DocsDriftError(
            "docs/_ext/ipfscluster_docs.py KEY_HELP/SECTION_HELP are out of step with ipfscluster.config: "
            f"undocumented keys {missing}, documented keys that do not exist {stale}"
        )


def config_reference() -> str:
    """The ``service.json`` reference (reST): one section per config section class.

    :raises DocsDriftError: a key lacks a description in :data:`KEY_HELP` or the
        table describes a key the code does not have.
    """
    _check_help()
    out = []
    for cls in SECTIONS.values():
        title = f"``{cls.PATH}``"
        out += [title, "~" * len(title), ""]
        out += [SECTION_HELP[cls.PATH], ""]
        if cls.LEGACY_KEYS:
            legacy = ", ".join(f"``{k}``" for k in cls.LEGACY_KEYS)
            out += [f"Older key names still read: {legacy}.", ""]
        for attribute in _settings(cls):
            kind = attribute.metadata[config_base._KIND]
            key = f"{cls.PATH}.{attribute.name}"
            default, note = _default_json(cls, attribute, kind)
            out += [f".. _config-{key.replace('.', '-').replace('_', '-')}:", ""]
            out += [f"``{key}``"]
            out += [f"    {KEY_HELP[key]}", ""]
            out += [f"    :accepts: {describe_kind(kind)}"]
            if default is not None:
                out += [f"    :default: ``{default}``" + (f" ({note})" if note else "")]
            else:
                out += [f"    :default: {note}"]
            out += [""]
    return "\n".join(out) + "\n"


def example_config() -> str:
    """A complete ``service.json`` with every default (identity and secret elided)."""
    from ipfscluster.config.service import ServiceConfig

    data = ServiceConfig.default("/var/lib/ipfs-cluster").to_json()
    data["cluster"]["id"] = "12D3KooW…"
    data["cluster"]["private_key"] = "CAESQ…"
    data["cluster"]["secret"] = "<64 hex characters>"
    data["cluster"]["peername"] = "<host name>"
    body = json.dumps(data, indent=2, ensure_ascii=False)
    return ".. code-block:: json\n\n" + "\n".join("   " + line for line in body.splitlines()) + "\n"


# --- command lines ----------------------------------------------------------------------


def _option_rows(parser: argparse.ArgumentParser, skip_help: bool = True) -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.help is None and action.default == argparse.SUPPRESS:
            continue  # an undocumented alias kept for compatibility
        if skip_help and isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            names = ", ".join(action.option_strings)
            if action.nargs != 0 and not isinstance(action, argparse._VersionAction):
                names += " " + (action.metavar or action.dest.upper())
        else:
            names = action.metavar or action.dest
        text = (action.help or "").replace("%(default)s", str(action.default))
        if action.choices and action.option_strings and "choices" not in text:
            text += " (one of: " + ", ".join(str(c) for c in action.choices) + ")"
        if not text:
            text = "(no description)" if action.option_strings else "positional argument"
        out += [f"``{names}``", f"    {_escape(text)}", ""]
    return out


def _escape(text: str) -> str:
    # argparse help is plain text: keep reST from reading * and ` as markup
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`")


def _usage(parser: argparse.ArgumentParser) -> list[str]:
    usage = parser.format_usage().strip()
    if usage.lower().startswith("usage: "):
        usage = usage[len("usage: "):]
    return ["::", ""] + ["    " + line for line in usage.splitlines()] + [""]


def service_commands() -> list[str]:
    """The ``ipfs-cluster-service`` subcommands (aliases left out), with the
    ``state`` subcommands as ``"state export"`` … after ``"state"``."""
    from ipfscluster import service_cli

    out = []
    for command in service_cli.COMMANDS:
        if command == "h":
            continue
        out.append(command)
        if command == "state":
            out += [f"state {sub}" for sub in _state_subcommands()]
    return out


def _state_subcommands() -> dict[str, str]:
    from ipfscluster import state_cli

    return dict(state_cli.SUBCOMMANDS)


def _own_options(parser, main) -> list:
    """The options of a subcommand's parser that are not global flags."""
    return [a for a in parser._actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
            and not (a.option_strings and any(a.option_strings == g.option_strings for g in main._actions))]


def _rows_of(actions) -> list[str]:
    sub = argparse.ArgumentParser(add_help=False)
    sub._actions = actions
    return _option_rows(sub)


def service_reference() -> str:
    """``ipfs-cluster-service``: usage, global flags and every subcommand (reST)."""
    from ipfscluster import service_cli

    main = service_cli._main_parser()
    out = ["Usage:", ""] + _usage(main)
    out += [_escape(main.description or ""), ""]
    out += ["Global flags (before or after the subcommand):", ""]
    out += _option_rows(main)
    for command in service_commands():
        title = f"``ipfs-cluster-service {command}``"
        out += [title, "~" * len(title), ""]
        if command.startswith("state "):
            from ipfscluster import state_cli

            sub = command.split()[1]
            text = _state_subcommands()[sub]
            out += [_escape(text[:1].upper() + text[1:]) + ".", ""]
            parser = state_cli._parser(sub)
            out += _usage(parser)
            own = _own_options(parser, main)
        else:
            out += [_command_summary(main, command), ""]
            own = _own_options(service_cli._command_parser(command), main)
        if own:
            out += ["Options:", ""] + _rows_of(own)
    return "\n".join(out) + "\n"


def _command_summary(main: argparse.ArgumentParser, command: str) -> str:
    """The line of the main parser's epilog that describes ``command``."""
    lines = (main.epilog or "").splitlines()
    for i, line in enumerate(lines):
        words = line.split()
        # a command's line is indented by two spaces; deeper lines continue it
        if words and words[0] == command and not line.startswith("   "):
            text = " ".join(words[1:])
            for cont in lines[i + 1:]:
                if not cont.startswith(" " * 10):
                    break  # the next command
                text += " " + cont.strip()
            return _escape(text[:1].upper() + text[1:] + ("" if text.endswith(".") else "."))
    parser = service_cli_parser(command)
    return _escape(parser.description or "")


def service_cli_parser(command: str) -> argparse.ArgumentParser:
    """``ipfs-cluster-service``'s parser of ``command``."""
    from ipfscluster import service_cli

    return service_cli._command_parser(command)


def twistd_reference() -> str:
    """``twistd ipfs-cluster`` options (reST), from :class:`ipfscluster.tap.Options`."""
    from ipfscluster import tap

    out = ["::", "", "    twistd [twistd options] ipfs-cluster [options]", ""]
    for long, short, default, text in tap.Options.optParameters:
        names = f"-{short}, --{long}" if short else f"--{long}"
        extra = f" (default: {default})" if default else ""
        out += [f"``{names} {long.upper()}``", f"    {_escape(text)}{extra}", ""]
    for long, short, text in tap.Options.optFlags:
        names = f"-{short}, --{long}" if short else f"--{long}"
        out += [f"``{names}``", f"    {_escape(text)}", ""]
    return "\n".join(out) + "\n"


def _ctl_parser():
    from ipfscluster.ctl import main as ctl_main

    return ctl_main.build_parser(io.StringIO())


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def ctl_commands() -> list[tuple[str, argparse.ArgumentParser, str]]:
    """Every ``ipfs-cluster-ctl`` command as (``"pin add"``, parser, help), depth first."""
    found = []

    def walk(parser, prefix):
        sub = _subparsers(parser)
        if sub is None:
            return
        helps = {a.dest: a.help for a in sub._choices_actions}
        seen = set()
        for name, child in sub.choices.items():
            if id(child) in seen:
                continue  # an alias of the previous name
            seen.add(id(child))
            path = f"{prefix} {name}".strip()
            found.append((path, child, helps.get(name, "")))
            walk(child, path)

    walk(_ctl_parser(), "")
    return found


def ctl_reference() -> str:
    """``ipfs-cluster-ctl``: global options and every command with its options (reST)."""
    parser = _ctl_parser()
    out = ["Usage:", ""] + _usage(parser)
    out += [_escape(parser.description or ""), "", _escape(parser.epilog or ""), ""]
    out += ["Global options:", ""] + _option_rows(parser)
    for path, child, text in ctl_commands():
        title = f"``ipfs-cluster-ctl {path}``"
        out += [title, "~" * len(title), ""]
        out += [_escape(text[:1].upper() + text[1:]) + ".", ""] if text else []
        out += _usage(child)
        rows = _option_rows(child)
        if rows:
            out += rows
    return "\n".join(out) + "\n"


# --- peer RPC -------------------------------------------------------------------------------


def _argument_type(argument) -> str:
    name = type(argument).__name__
    value_type = getattr(argument, "value_type", None)  # JSONValue / JSONList
    if value_type is not None:
        name = f"list of {value_type.__name__}" if name == "JSONList" else value_type.__name__
        name += " (JSON)"
    if getattr(argument, "optional", False):
        name += ", optional"
    return name


def _arguments(pairs) -> str:
    if not pairs:
        return "—"
    return "; ".join(f"``{key.decode()}`` ({_argument_type(arg)})" for key, arg in pairs)


def rpc_reference() -> str:
    """Every AMP command between peers (reST table), from ``rpc.commands``."""
    from ipfscluster.rpc import commands

    rows = []
    for name, cmd in sorted(commands.all_commands().items()):
        errors = ", ".join(f"``{cls.__name__}``" for cls in cmd.errors if cls.__name__ != "ClusterError")
        rows.append((f"``{name.decode()}``", _arguments(cmd.arguments), _arguments(cmd.response), errors or "—"))
    out = [".. list-table::", "   :header-rows: 1", "   :widths: 20 35 30 15", "",
           "   * - Command", "     - Arguments", "     - Response", "     - Declared errors"]
    for row in rows:
        out.append(f"   * - {row[0]}")
        out += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(out) + "\n"


REFERENCES = {
    "config": config_reference,
    "example-config": example_config,
    "service": service_reference,
    "twistd": twistd_reference,
    "ctl": ctl_reference,
    "rpc": rpc_reference,
}


# --- Sphinx -----------------------------------------------------------------------------


def setup(app):
    """Register ``.. ipfscluster-reference:: NAME``."""
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives
    from docutils.statemachine import StringList
    from sphinx.util.nodes import nested_parse_with_titles

    class ReferenceDirective(Directive):
        required_arguments = 1
        has_content = False

        def run(self):
            name = self.arguments[0]
            if name not in REFERENCES:
                raise self.error(f"unknown reference {name!r} (known: {', '.join(REFERENCES)})")
            try:
                text = REFERENCES[name]()
            except DocsDriftError as err:
                raise self.error(str(err)) from None
            node = nodes.section()
            node.document = self.state.document
            source = f"<ipfscluster-reference {name}>"
            lines = StringList(text.splitlines(), source=source)
            nested_parse_with_titles(self.state, lines, node)
            return node.children

    class TocTreeDirective(Directive):
        """A toctree whose ``?name`` entries are left out when the page does not
        exist (pages other helpers may add), and with ``:rest:`` every page not
        listed by an earlier ``ipfscluster-toctree`` of the same document, so
        that a new page never breaks the ``-W`` build as "not in any toctree"."""

        has_content = True
        option_spec = {"caption": directives.unchanged, "rest": directives.flag,
                       "maxdepth": directives.positive_int}

        def run(self):
            env = self.state.document.settings.env
            listed = env.temp_data.setdefault("ipfscluster_listed", {env.docname})
            entries = []
            for line in self.content:
                name = line.strip()
                if not name:
                    continue
                optional = name.startswith("?")
                name = name.lstrip("?")
                if optional and name not in env.found_docs:
                    continue
                entries.append(name)
            if "rest" in self.options:
                entries += sorted(d for d in env.found_docs if d not in listed and d not in entries)
            listed.update(entries)
            if not entries:
                return []
            text = [".. toctree::", f"   :maxdepth: {self.options.get('maxdepth', 2)}"]
            if self.options.get("caption"):
                text.append(f"   :caption: {self.options['caption']}")
            text += [""] + [f"   {e}" for e in entries]
            node = nodes.section()
            node.document = self.state.document
            self.state.nested_parse(StringList(text, source=env.docname), self.content_offset, node)
            return node.children

    app.add_directive("ipfscluster-reference", ReferenceDirective)
    app.add_directive("ipfscluster-toctree", TocTreeDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}


if __name__ == "__main__":  # pragma: no cover - manual use
    if len(sys.argv) != 2 or sys.argv[1] not in REFERENCES:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(REFERENCES)}}}")
    sys.stdout.write(REFERENCES[sys.argv[1]]())
