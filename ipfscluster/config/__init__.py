"""``service.json``: every section of the peer's configuration.

- :mod:`.durations`: Go duration strings (``"1m0s"``) ↔ exact nanoseconds.
- :mod:`.base`: the section machinery (JSON kinds, validation, unknown keys).
- one module per component section: :mod:`.cluster`, :mod:`.raft`,
  :mod:`.restapi`, :mod:`.ipfshttp`, :mod:`.pintracker`, :mod:`.monitor`,
  :mod:`.informer`.  A component imports only its own section module.
- :mod:`.service`: :class:`ServiceConfig` (all sections + the folder), load, save,
  init, folder rules.
"""

from ipfscluster.config.durations import Duration
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
    "Duration",
    "ServiceConfig",
    "config_folder",
    "config_path",
    "resolve_path",
    "startup_warnings",
]
