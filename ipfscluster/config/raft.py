"""``consensus.raft``: settings of the Raft consensus (reference §3.2).

Keys and defaults are those of ipfs-cluster 0.3.x.  ``data_folder`` empty (the
default, and then left out of the file) means ``<config folder>/ipfs-cluster-data``;
:meth:`ipfscluster.config.service.ServiceConfig.raft_data_folder` resolves it.
All durations must be longer than zero.
"""

from __future__ import annotations

import attrs

from ipfscluster.config.base import DurationKind, IntKind, Section, StrKind, setting
from ipfscluster.config.durations import Duration

DEFAULT_DATA_FOLDER_NAME = "ipfs-cluster-data"

_d = Duration.parse


@attrs.frozen
class RaftConfig(Section):
    """The ``consensus.raft`` section."""

    PATH = "consensus.raft"

    data_folder: str = setting(StrKind(omit_when_empty=True), "")
    wait_for_leader_timeout: Duration = setting(DurationKind(), _d("15s"))
    network_timeout: Duration = setting(DurationKind(), _d("10s"))
    commit_retries: int = setting(IntKind(minimum=0), 1)
    commit_retry_delay: Duration = setting(DurationKind(), _d("200ms"))
    heartbeat_timeout: Duration = setting(DurationKind(), _d("1s"))
    election_timeout: Duration = setting(DurationKind(), _d("1s"))
    commit_timeout: Duration = setting(DurationKind(), _d("50ms"))
    max_append_entries: int = setting(IntKind(minimum=1), 64)
    trailing_logs: int = setting(IntKind(minimum=0), 10240)
    snapshot_interval: Duration = setting(DurationKind(), _d("2m0s"))
    snapshot_threshold: int = setting(IntKind(minimum=1), 8192)
    leader_lease_timeout: Duration = setting(DurationKind(), _d("500ms"))
