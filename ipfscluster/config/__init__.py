"""``service.json``: every section of the peer's configuration.

- :mod:`.durations`: Go duration strings (``"1m0s"``) ↔ exact nanoseconds.
- :mod:`.base`: the section machinery (JSON kinds, validation, unknown keys).
- one module per component section: :mod:`.cluster`, :mod:`.raft`,
  :mod:`.restapi`, :mod:`.ipfshttp`, :mod:`.pintracker`, :mod:`.monitor`,
  :mod:`.informer`.  A component imports only its own section module.
- :mod:`.service`: :class:`ServiceConfig` (all sections + the folder), load, save,
  init, folder rules.
"""

from ipfscluster.config.cluster import ClusterConfig
from ipfscluster.config.durations import Duration
from ipfscluster.config.informer import DiskInformerConfig, NumpinInformerConfig
from ipfscluster.config.ipfshttp import IPFSHTTPConfig
from ipfscluster.config.monitor import MonBasicConfig
from ipfscluster.config.pintracker import MapTrackerConfig
from ipfscluster.config.raft import RaftConfig
from ipfscluster.config.restapi import RestAPIConfig
from ipfscluster.config.service import (
    CONFIG_FILE,
    ENV_CONFIG_PATH,
    ServiceConfig,
    config_folder,
    config_path,
    resolve_path,
    startup_warnings,
)

__all__ = [
    "CONFIG_FILE",
    "ENV_CONFIG_PATH",
    "ClusterConfig",
    "DiskInformerConfig",
    "Duration",
    "IPFSHTTPConfig",
    "MapTrackerConfig",
    "MonBasicConfig",
    "NumpinInformerConfig",
    "RaftConfig",
    "RestAPIConfig",
    "ServiceConfig",
    "config_folder",
    "config_path",
    "resolve_path",
    "startup_warnings",
]
