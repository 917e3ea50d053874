"""``informer.disk`` and ``informer.numpin``: the allocation metric informers (§3.5).

Both sections are always present and validated, whichever informer ``--alloc``
selects (as upstream does).  A metric is valid for ``metric_ttl`` and pushed every
``metric_ttl / 2``.
"""

from __future__ import annotations

import attrs

from ipfscluster.config.base import DurationKind, Section, StrKind, setting
from ipfscluster.config.durations import Duration

METRIC_TYPES = ("freespace", "reposize")


@attrs.frozen
class DiskInformerConfig(Section):
    """The ``informer.disk`` section (``metric_type``: freespace or reposize)."""

    PATH = "informer.disk"

    metric_ttl: Duration = setting(DurationKind(), Duration.parse("30s"))
    metric_type: str = setting(StrKind(choices=METRIC_TYPES), "freespace")


@attrs.frozen
class NumpinInformerConfig(Section):
    """The ``informer.numpin`` section (metric: number of pins)."""

    PATH = "informer.numpin"

    metric_ttl: Duration = setting(DurationKind(), Duration.parse("10s"))
