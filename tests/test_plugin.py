"""The twistd plugin: discovery, ``twistd --help``, ``twistd -n ipfs-cluster`` runs."""

from __future__ import annotations

import os
import signal

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins

from ipfscluster import tap
from ipfscluster.config import ServiceConfig
from tests import cli_processes as procs
from tests.cli_processes import (
    BAD_CONFIGS,
    running,  # noqa: F401  (fixture)
    write_bad,
)


def test_plugin_is_discovered():
    makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
    maker = makers["ipfs-cluster"]
    assert maker.options is tap.Options
    assert maker.makeService is tap.makeService
    assert "IPFS Cluster" in maker.description


def test_no_init_file_under_twisted():
    for dirpath, _, files in os.walk(os.path.join(procs.ROOT, "twisted")):
        assert "__init__.py" not in files, dirpath


@pytest.mark.slow
def test_twistd_help_lists_the_plugin(tmp_path):
    result = procs.run([procs.TWISTD, "--help"], cwd=tmp_path)
    assert result.returncode == 0
    assert "ipfs-cluster" in result.stdout
    options = procs.run([procs.TWISTD, "ipfs-cluster", "--help"], cwd=tmp_path)
    assert "--config" in options.stdout and "--loglevel" in options.stdout


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_twistd_bad_config_is_one_line_exit_1(case, tmp_path):
    folder = str(tmp_path / "peer")
    mutate, message = BAD_CONFIGS[case]
    write_bad(folder, mutate)
    result = procs.run(procs.twistd_cmd("--config", folder), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error loading configuration: {message}")


@pytest.mark.slow
def test_twistd_bad_flag_exits_1(tmp_path):
    result = procs.run(procs.twistd_cmd("--alloc", "best"), cwd=tmp_path)
    assert result.returncode == 1
    assert 'unknown allocation strategy "best"' in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_twistd_runs_the_peer_and_stops_on_sigterm(tmp_path, running):
    folder = str(tmp_path / "peer")
    peer_id = ServiceConfig.init(folder).cluster.peer_id
    proc = running(procs.twistd_cmd("--config", folder, "--loglevel", "debug"), cwd=tmp_path)
    out = proc.wait_for(f"peer {peer_id} is ready")
    assert f"[service#info] listening on: /ip4/127.0.0.1/tcp/9096/p2p/{peer_id}" in out
    status, elapsed = proc.stop(signal.SIGTERM)
    # twistd stops the application cleanly, then re-raises the signal so the exit
    # status says "terminated by SIGTERM" (twistd's own convention since Twisted 21.2)
    assert status == -signal.SIGTERM and elapsed < 2.0
    output = proc.output.decode()
    assert f"peer {peer_id} stopped" in output
    assert "Traceback" not in output
