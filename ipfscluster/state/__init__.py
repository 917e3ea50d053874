"""The shared state: the pinset agreed through consensus (``pin ls``).

- :class:`MapState` (:mod:`.mapstate`): the :class:`~ipfscluster.interfaces.IState`
  implementation, compact in memory (:mod:`.store`, :mod:`.codec`);
- :mod:`.snapshot`: the versioned, checksummed, streamed snapshot format;
- :mod:`.migrations`: older versions (upstream JSON backups and exports) and the
  JSON export/import used by ``ipfs-cluster-service state export|import``.

Helpers for the service commands: :func:`export` and :func:`import_`.
"""

from __future__ import annotations

from typing import IO

from ipfscluster.state.mapstate import NOT_FOUND_MESSAGE, MapState
from ipfscluster.state.migrations import MIGRATIONS, export, migrate, read_pins
from ipfscluster.state.snapshot import VERSION

__all__ = [
    "MIGRATIONS",
    "MapState",
    "NOT_FOUND_MESSAGE",
    "VERSION",
    "export",
    "import_",
    "migrate",
    "read_pins",
]


def import_(fileobj: IO) -> MapState:
    """A new :class:`MapState` holding the pins of a JSON export or backup.

    Any version is upgraded.  Raises InvalidStateImport, StateVersionError or
    InvalidField (see :func:`~ipfscluster.state.migrations.read_pins`).
    """
    state = MapState()
    state.restore(fileobj)
    return state
