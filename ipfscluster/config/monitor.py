"""``monitor.monbasic``: settings of the peer monitor (reference §3.5)."""

from __future__ import annotations

import attrs

from ipfscluster.config.base import DurationKind, Section, setting
from ipfscluster.config.durations import Duration


@attrs.frozen
class MonBasicConfig(Section):
    """The ``monitor.monbasic`` section: how often expired metrics raise alerts."""

    PATH = "monitor.monbasic"

    check_interval: Duration = setting(DurationKind(), Duration.parse("15s"))
