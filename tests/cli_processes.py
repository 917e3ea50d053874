"""Helpers for tests that run ``ipfs-cluster-service`` / ``twistd`` as real processes.

Output is read from a pipe with ``select`` until an expected text shows up or a
deadline passes (no fixed sleeps); :class:`Running` kills what it started.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from ipfscluster.config import ServiceConfig, config_path
from ipfscluster.identity import Identity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
STARTUP_DEADLINE = 60.0  # generous: the machine is shared
ERROR_RULE = "it must be 32 bytes written as 64 hex characters, or empty"


def env(**extra) -> dict:
    """The environment of a child: this checkout on PYTHONPATH (so the twistd plugin
    in ./twisted/plugins is found without installing), no CLUSTER_SECRET leaking in."""
    out = {k: v for k, v in os.environ.items() if k not in ("CLUSTER_SECRET", "IPFS_CLUSTER_PATH")}
    out["PYTHONPATH"] = ROOT + os.pathsep + out.get("PYTHONPATH", "")
    out.update(extra)
    return out


def service_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "ipfscluster.service_cli", *args]


def twistd_cmd(*args) -> list[str]:
    return [TWISTD, "-n", "--pidfile=", "ipfs-cluster", *args]


def run(cmd, cwd, **extra_env) -> subprocess.CompletedProcess:
    """Run to completion (deadline STARTUP_DEADLINE) and capture text output."""
    return subprocess.run(
        cmd, cwd=cwd, env=env(**extra_env), capture_output=True, text=True, timeout=STARTUP_DEADLINE
    )


class Running:
    """A child process whose stdout+stderr are read as they come."""

    def __init__(self, cmd, cwd, ignore_sigint=False, **extra_env):
        # ignore_sigint: start the child as a shell starts a background job
        preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env(**extra_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=preexec,
        )
        self.output = b""

    def _read_until(self, done, deadline: float) -> None:
        fd = self.proc.stdout.fileno()
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:  # the child closed its output: it is exiting
                    return
                self.output += chunk

    def wait_for(self, text: str, timeout: float = STARTUP_DEADLINE) -> str:
        """Wait until ``text`` appears in the output; return the output so far."""
        self._read_until(lambda: text.encode() in self.output, time.monotonic() + timeout)
        out = self.output.decode(errors="replace")
        if text not in out:
            pytest.fail(f"{text!r} did not appear; exit status {self.proc.poll()}; output:\n{out}")
        return out

    def stop(self, signum=signal.SIGTERM, timeout: float = 2.0) -> tuple[int, float]:
        """Send ``signum``; return (exit status, seconds it took to exit)."""
        start = time.monotonic()
        self.proc.send_signal(signum)
        status = self.proc.wait(timeout=timeout)
        elapsed = time.monotonic() - start
        self._read_until(lambda: False, time.monotonic() + 1.0)
        return status, elapsed

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def running():
    """A fixture: ``running(cmd, cwd, **env)`` starts a :class:`Running` child; every
    child still alive at teardown is killed."""
    started = []

    def start(cmd, cwd, ignore_sigint=False, **extra_env):
        proc = Running(cmd, cwd, ignore_sigint=ignore_sigint, **extra_env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


# --- invalid configurations (each: how to break service.json, start of the message)


def write_bad(folder, mutate):
    """A fresh configuration in ``folder``, then ``mutate`` applied to its JSON."""
    ServiceConfig.init(folder, force=True)
    with open(config_path(folder)) as f:
        obj = json.load(f)
    mutate(obj)
    with open(config_path(folder), "w") as f:
        json.dump(obj, f)


OTHER = Identity.generate()

BAD_CONFIGS = {
    "duration": (
        lambda o: o["consensus"]["raft"].update(heartbeat_timeout="1x"),
        'consensus.raft.heartbeat_timeout: "1x" is not a duration (examples: "1s", "500ms", "1m0s")',
    ),
    "secret": (
        lambda o: o["cluster"].update(secret="abcd"),
        "cluster.secret: the secret is 2 bytes (4 hex characters); " + ERROR_RULE,
    ),
    "unknown key": (
        lambda o: o["api"]["restapi"].update(foo=1),
        'unknown key "api.restapi.foo"; remove it (valid keys: listen_multiaddress,',
    ),
    "multiaddr": (
        lambda o: o["cluster"].update(listen_multiaddress="/ip4/0.0.0.0/tcp/notaport"),
        'cluster.listen_multiaddress: "/ip4/0.0.0.0/tcp/notaport" is not a valid multiaddress',
    ),
    "identity": (
        lambda o: o["cluster"].update(id=OTHER.peer_id),
        f"cluster.id {OTHER.peer_id} does not match cluster.private_key",
    ),
}
